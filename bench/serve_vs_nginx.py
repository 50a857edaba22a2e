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
import resource
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


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, body, connections, seconds, delay_ms=0, server_pid=None):
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
    server0 = cpu_seconds(server_pid) if server_pid else 0
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
                         check=True, capture_output=True, text=True).stdout
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = cpu_seconds(server_pid) - server0 if server_pid else None
    wrk_cpu = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    os.unlink(script.name)
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    requests, duration_us, p50, p99, errors = map(int, m.groups())
    # CPU cores the server and wrk used over the run (they share the machine's cores).
    return {"connections": connections, "qps": requests / (duration_us / 1e6), "p50_us": p50, "p99_us": p99,
            "errors": errors, "delay_ms": delay_ms, "wrk_cores": wrk_cpu / (duration_us / 1e6),
            "server_cores": server_cpu / (duration_us / 1e6) if server_pid else None}


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
            r = wrk(url, body, c, args.seconds, server_pid=server.pid)
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
        half = wrk(url, body, conns_half, args.seconds, delay_ms=5, server_pid=server.pid)
        half["target_qps"] = peak / 2
        print(model, "half load", half, flush=True)
        # Half of peak closed-loop: the fewest connections without pauses that reach peak / 2
        # (wrk's pacing of hundreds of pausing connections adds latency of its own; nginx shows it).
        closed = None
        for c in range(1, 33):
            probe = wrk(url, body, c, 3)
            if probe["qps"] >= peak / 2:
                closed = wrk(url, body, c, args.seconds, server_pid=server.pid)
                break
        if closed:
            closed["target_qps"] = peak / 2
            print(model, "half load, closed loop", closed, flush=True)
        results["kiln"][model] = {"runs": rows, "peak_qps": peak, "half_load": half, "half_load_closed": closed}
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

    # The CNN in-process, batched as the server batches at most (max_batch_size 64) with as many
    # threads as the server has I/O threads: the server's throughput is compared with it.
    latency_bin = os.path.join(os.path.dirname(os.path.dirname(kiln)), "bench", "kiln_bench_servable_latency")
    if os.path.exists(latency_bin):
        out = subprocess.run([latency_bin, os.path.join(cnn, "1"), "--batch", "64", "--threads", str(args.io_threads),
                              "--calls", "2000"], check=True, capture_output=True, text=True).stdout
        m = re.search(r"batch 1: p50 ([\d.]+) us, p99 ([\d.]+) us; batch 64: (\d+) examples/s", out)
        results["kiln"]["fmnist_cnn"]["in_process"] = {"batch1_p50_us": float(m.group(1)), "batch1_p99_us": float(m.group(2)),
                                                      "batch64_examples_per_s": float(m.group(3)), "threads": args.io_threads}
        print("in-process", results["kiln"]["fmnist_cnn"]["in_process"], flush=True)

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
        # The same offered load as Kiln's half-load run (its connections and pause): what the
        # load generator alone adds to the latency.
        kh = results["kiln"][model]["half_load"]
        half = wrk(f"http://127.0.0.1:{ng_port}/{model}.json", body, kh["connections"], args.seconds, delay_ms=kh["delay_ms"])
        print("nginx", model, "half load", half, flush=True)
        kc = results["kiln"][model].get("half_load_closed")
        closed = wrk(f"http://127.0.0.1:{ng_port}/{model}.json", body, kc["connections"], args.seconds) if kc else None
        results["nginx"][model] = {"runs": rows, "half_load": half, "half_load_closed": closed}
    nginx.send_signal(signal.SIGQUIT)
    nginx.wait(timeout=30)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    meta = {"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z", "commit": commit,
            "machine": f"{cpu}, {os.cpu_count()} CPUs, {platform.platform()}",
            "command": os.environ.get("KILN_BENCH_COMMAND", "python3 bench/serve_vs_nginx.py " + " ".join(sys.argv[1:])),
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
    lines.append("\nServer and wrk CPU (cores used over each run; the machine has "
                 f"{os.cpu_count()}):\n")
    lines.append("| model | conns | Kiln server cores | wrk cores |\n|---|---|---|---|")
    for model in cases:
        for k in results["kiln"][model]["runs"]:
            lines.append(f"| {model} | {k['connections']} | {k['server_cores']:.2f} | {k['wrk_cores']:.2f} |")
    ip = results["kiln"]["fmnist_cnn"].get("in_process")
    if ip:
        top = max(results["kiln"]["fmnist_cnn"]["runs"], key=lambda r: r["connections"])
        per_core_server = top["qps"] / top["server_cores"]
        per_core_inproc = ip["batch64_examples_per_s"] / ip["threads"]
        lines.append(f"\nfmnist_cnn in-process (bench/servable_latency.cc, {ip['threads']} threads, same run): batch 64 "
                     f"{ip['batch64_examples_per_s']:.0f} examples/s, batch 1 p50 {ip['batch1_p50_us']:.1f} us. The server at "
                     f"{top['connections']} connections: {top['qps']:.0f} QPS = **{top['qps'] / ip['batch64_examples_per_s']:.2f}x** "
                     f"of it; per CPU core the server used, {per_core_server:.0f} vs {per_core_inproc:.0f} examples/s "
                     f"({per_core_server / per_core_inproc:.2f}x; wrk took {top['wrk_cores']:.2f} cores).")
    lines.append("\nHalf of Kiln's peak QPS (connections pausing 5 ms between requests, their number calibrated):\n")
    lines.append("| model | target QPS | achieved QPS | connections | p50 | p99 | nginx at the same load: QPS, p50, p99 |\n"
                 "|---|---|---|---|---|---|---|")
    for model in cases:
        h = results["kiln"][model]["half_load"]
        n = results["nginx"][model]["half_load"]
        lines.append(f"| {model} | {h['target_qps']:.0f} | {h['qps']:.0f} | {h['connections']} | {h['p50_us']} us | "
                     f"{h['p99_us']} us | {n['qps']:.0f}, {n['p50_us']} us, {n['p99_us']} us |")
    lines.append("\nHalf of Kiln's peak QPS closed-loop (the fewest connections without pauses that reach it; "
                 "nginx with as many connections):\n")
    lines.append("| model | target QPS | achieved QPS | connections | p50 | p99 | nginx, same connections: QPS, p50, p99 |\n"
                 "|---|---|---|---|---|---|---|")
    for model in cases:
        h = results["kiln"][model].get("half_load_closed")
        n = results["nginx"][model].get("half_load_closed")
        if h and n:
            lines.append(f"| {model} | {h['target_qps']:.0f} | {h['qps']:.0f} | {h['connections']} | {h['p50_us']} us | "
                         f"{h['p99_us']} us | {n['qps']:.0f}, {n['p50_us']} us, {n['p99_us']} us |")
    open(os.path.join(ROOT, "bench", "results", "serve.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
