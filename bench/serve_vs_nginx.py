"""Serving benchmark: wrk with keep-alive at 1, 16 and 64 connections against `kiln serve` and
against nginx (one worker) returning the same response body as a static file, in the same run.

For each Kiln model: QPS, p50/p99 latency, the batch sizes the dynamic batcher formed (from
/metrics), and p99 at about half of Kiln's peak QPS (wrk paced with a per-request delay).
Writes bench/results/serve.json and serve.md. Run through bench/run_serve.sh.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BABYWEIGHT_ROW = {"is_male": "True", "mother_race": "white", "mother_age": 26, "mother_educ": 12,
                  "father_age": 28, "prenatal_visits": 12, "prenatal_start_month": 2,
                  "cigs_per_day": 0, "drinks_per_week": 0, "key": "b1"}


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def wait_port(path, proc, timeout=60):
    for _ in range(timeout * 20):
        if os.path.exists(path) and open(path).read().strip():
            return int(open(path).read())
        if proc.poll() is not None:
            sys.exit("server exited early")
        time.sleep(0.05)
    sys.exit("server did not start")


def http(port, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def wrk(url, body, connections, seconds, delay_ms=0):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    body_lua = body.decode().replace("\\", "\\\\").replace("'", "\\'")
    script.write(f"wrk.method = 'POST'\nwrk.body = '{body_lua}'\n"
                 "wrk.headers['Content-Type'] = 'application/json'\n")
    if delay_ms:
        script.write(f"function delay() return {delay_ms} end\n")
    script.write("""
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.read +
    summary.errors.write + summary.errors.connect + summary.errors.timeout))
end
""")
    script.close()
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
                         check=True, capture_output=True, text=True).stdout
    os.unlink(script.name)
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    requests, duration_us, p50, p99, errors = map(int, m.groups())
    return {"connections": connections, "qps": requests / (duration_us / 1e6), "p50_us": p50, "p99_us": p99,
            "errors": errors, "delay_ms": delay_ms}


def batch_histogram(port, model):
    text = http(port, "/metrics").decode()
    buckets = {}
    for le, n in re.findall(r'kiln_batch_size_bucket\{model="%s",version="\d+",le="([^"]+)"\} (\d+)' % model, text):
        buckets[le] = int(n)
    return buckets


def diff_hist(after, before):
    out, prev_cum = {}, 0
    for le, cum in after.items():
        delta = cum - before.get(le, 0)
        out[le] = delta - prev_cum
        prev_cum = delta
    return {k: v for k, v in out.items() if v}


def train_and_export(kiln, work, name, config, sets):
    base = os.path.join(work, "models", name)
    if os.path.exists(os.path.join(base, "1")):
        return base
    out_dir = os.path.join(work, "runs", name)
    args = [kiln, "train", "--config", config, "--set", f"output_dir={out_dir}"] + sum((["--set", s] for s in sets), [])
    run(args, cwd=ROOT, stdout=subprocess.DEVNULL)
    run([kiln, "export", "--config", config, "--set", f"output_dir={out_dir}", "--model_base_path", base]
        + sum((["--set", s] for s in sets), []), cwd=ROOT)
    return base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default="build/cli/kiln")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", default="1,16,64")
    ap.add_argument("--work", default="/tmp/kiln_bench_serve")
    ap.add_argument("--io_threads", type=int, default=2)
    ap.add_argument("--perf_venv", default="", help="venv with tritonclient 2.41 (perf_analyzer)")
    args = ap.parse_args()
    kiln = os.path.abspath(args.kiln)
    load_start = open("/proc/loadavg").read().split()[:3]
    conns = [int(c) for c in args.connections.split(",")]
    os.makedirs(args.work, exist_ok=True)

    bw = train_and_export(kiln, args.work, "babyweight", "examples/babyweight/wide_deep.pbtxt", [])
    cnn = train_and_export(kiln, args.work, "fmnist_cnn", "examples/fashion_mnist/cnn.pbtxt",
                           ["epochs=1", "data.idx.max_train_examples=4096", "data.idx.max_eval_examples=512"])
    config = os.path.join(args.work, "serve.pbtxt")
    with open(config, "w") as f:
        f.write(f'models {{ name: "babyweight" base_path: "{bw}" }}\n'
                f'models {{ name: "fmnist_cnn" base_path: "{cnn}" }}\n'
                f"io_threads: {args.io_threads}\nbatching {{ max_batch_size: 64 }}\n")
    port_file = os.path.join(args.work, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    server = subprocess.Popen([kiln, "serve", "--config", config, "--rest_port", "0", "--port_file", port_file],
                              stderr=open(os.path.join(args.work, "serve.log"), "w"))
    port = wait_port(port_file, server)

    image = [(i * 37) % 256 for i in range(784)]
    cases = {
        "babyweight": json.dumps({"instances": [BABYWEIGHT_ROW]}).encode(),
        "fmnist_cnn": json.dumps({"instances": [image]}).encode(),
    }
    results = {"kiln": {}, "nginx": {}}
    bodies = {}
    for model, body in cases.items():
        url = f"http://127.0.0.1:{port}/v1/models/{model}:predict"
        bodies[model] = http(port, f"/v1/models/{model}:predict", body)
        for _ in range(2):  # warm
            http(port, f"/v1/models/{model}:predict", body)
        rows = []
        for c in conns:
            before = batch_histogram(port, model)
            r = wrk(url, body, c, args.seconds)
            r["batch_sizes"] = diff_hist(batch_histogram(port, model), before)
            rows.append(r)
            print(model, r, flush=True)
        peak = max(r["qps"] for r in rows)
        # Half of peak: connections that each pause 5 ms between requests; their number is
        # calibrated by a short run so that together they offer about peak / 2.
        conns_half = 64
        for _ in range(2):
            probe = wrk(url, body, conns_half, 3, delay_ms=5)
            conns_half = max(1, min(1000, round(conns_half * (peak / 2) / max(probe["qps"], 1))))
        half = wrk(url, body, conns_half, args.seconds, delay_ms=5)
        half["target_qps"] = peak / 2
        print(model, "half load", half, flush=True)
        results["kiln"][model] = {"runs": rows, "peak_qps": peak, "half_load": half}
    if args.perf_venv:
        # Triton's own load generator against the KServe v2 endpoint (random inputs, binary data).
        lib = next((os.path.join(d, "nvidia", "cuda_runtime", "lib") for d in
                    [os.path.join(args.perf_venv, "lib", p, "site-packages") for p in os.listdir(os.path.join(args.perf_venv, "lib"))]),
                   "")
        env = dict(os.environ, LD_LIBRARY_PATH=lib)
        csv = os.path.join(ROOT, "bench", "results", "perf_analyzer.csv")
        pa = subprocess.run([os.path.join(args.perf_venv, "bin", "perf_analyzer"), "-m", "babyweight", "-u",
                             f"127.0.0.1:{port}", "-i", "http", "--concurrency-range", "1:65:16",
                             "--measurement-interval", "5000", "--stability-percentage", "25", "--max-trials", "6", "-f", csv],
                            env=env, capture_output=True, text=True)
        open(os.path.join(ROOT, "bench", "results", "perf_analyzer.txt"), "w").write(pa.stdout + pa.stderr)
        print(pa.stdout[-3000:], pa.stderr[-2000:], flush=True)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)

    # nginx: the same response body as a static file; POST is answered like GET (error_page trick).
    ng = os.path.join(args.work, "nginx")
    shutil.rmtree(ng, ignore_errors=True)
    os.makedirs(os.path.join(ng, "html"))
    for model, body in bodies.items():
        open(os.path.join(ng, "html", f"{model}.json"), "wb").write(body)
    ng_port = 18080
    conf = os.path.join(ng, "nginx.conf")
    open(conf, "w").write(f"""
worker_processes 1;
daemon off;
pid {ng}/nginx.pid;
error_log {ng}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {ng}/body;
  server {{
    listen 127.0.0.1:{ng_port};
    root {ng}/html;
    location / {{ default_type application/json; error_page 405 =200 $uri; }}
  }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", ng])
    time.sleep(1)
    for model, body in cases.items():
        rows = [wrk(f"http://127.0.0.1:{ng_port}/{model}.json", body, c, args.seconds) for c in conns]
        for r in rows:
            print("nginx", model, r, flush=True)
        results["nginx"][model] = {"runs": rows}
    nginx.send_signal(signal.SIGQUIT)
    nginx.wait(timeout=30)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    meta = {"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z", "commit": commit,
            "machine": f"{cpu}, {os.cpu_count()} CPUs, {platform.platform()}",
            "command": "bash bench/run_serve.sh " + " ".join(sys.argv[1:]),
            "load_start": load_start, "load_end": open("/proc/loadavg").read().split()[:3]}
    out = {"meta": meta, **results}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    json.dump(out, open(os.path.join(ROOT, "bench", "results", "serve.json"), "w"), indent=1)
    lines = [f"# Serving benchmark\n", f"{meta['date']}, commit {commit}, {meta['machine']}; load average at start {meta['load_start']}, at end {meta['load_end']}.",
             f"Command: `{meta['command']}`. wrk -t1, keep-alive, {args.seconds} s per point; one-row requests.\n",
             "| model | conns | Kiln QPS | nginx QPS | Kiln / nginx | Kiln p50 | Kiln p99 | nginx p50 | nginx p99 | batch sizes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for model in cases:
        for k, n in zip(results["kiln"][model]["runs"], results["nginx"][model]["runs"]):
            lines.append(f"| {model} | {k['connections']} | {k['qps']:.0f} | {n['qps']:.0f} | {k['qps'] / n['qps']:.2f} | "
                         f"{k['p50_us']} us | {k['p99_us']} us | {n['p50_us']} us | {n['p99_us']} us | "
                         f"{k['batch_sizes']} |")
    lines.append("\nHalf of Kiln's peak QPS (connections pausing 5 ms between requests, their number calibrated):\n")
    lines.append("| model | target QPS | achieved QPS | connections | p50 | p99 |\n|---|---|---|---|---|---|")
    for model in cases:
        h = results["kiln"][model]["half_load"]
        lines.append(f"| {model} | {h['target_qps']:.0f} | {h['qps']:.0f} | {h['connections']} | {h['p50_us']} us | "
                     f"{h['p99_us']} us |")
    open(os.path.join(ROOT, "bench", "results", "serve.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
