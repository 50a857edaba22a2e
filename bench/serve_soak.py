#!/usr/bin/env python3
"""Serving soak (issue 16, item 6): `kiln serve` on the babyweight model at about half of its peak
QPS for --minutes (default 10), a new version exported every --reload-seconds (default 30; the
server hot-reloads it), and the fuzz tests' request corpus (tests/fuzz/corpus: bodies for other
schemas and shapes, all bad for this model) mixed in at 1% of the requests.

Pass: zero failed good requests; every bad request answered 4xx; every exported version served;
resident memory growth of the server under 5% from minute 2 to the end.

Load: wrk sends the good request on connections that each pause 5 ms between requests, their
number calibrated by short probes to offer about half of the peak QPS measured first (16
connections, no pause); beside it a client of its own sends the bad requests at 1% of that rate
and checks each answer (wrk cannot tell which request an answer belongs to).

usage: bench/run_serve_soak.sh [--minutes 10] [--reload-seconds 30] [--work DIR]
"""
import argparse, glob, json, os, platform, re, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from serve_vs_nginx import BABYWEIGHT_ROW, http, wait_port, wrk  # noqa: E402

LUA = r"""
wrk.method = 'POST'
wrk.body = %(good)s
wrk.headers['Content-Type'] = 'application/json'
function delay() return %(delay)d end
function done(summary, latency, requests)
  io.write(string.format("SOAK %%d %%d %%d %%d %%d\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


class BadTraffic(threading.Thread):
    """The fuzz corpus (bad for this model) at `rate` requests/s on a keep-alive connection of its
    own, beside wrk's good traffic; every answer must be a 4xx."""

    def __init__(self, port, bodies, rate):
        super().__init__()
        self.port, self.bodies, self.rate = port, bodies, rate
        self.stop, self.sent, self.answered_4xx, self.other = threading.Event(), 0, 0, []

    def run(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        next_at = time.time()
        while not self.stop.is_set():
            body = self.bodies[self.sent % len(self.bodies)]
            try:
                conn.request("POST", "/v1/models/babyweight:predict", body.encode(), {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                status = r.status
            except Exception as e:  # noqa: BLE001 - a dropped connection is a failure to report
                status = f"{type(e).__name__}: {e}"
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.sent += 1
            if isinstance(status, int) and 400 <= status < 500:
                self.answered_4xx += 1
            else:
                self.other.append(status)
            next_at += 1.0 / self.rate
            self.stop.wait(max(0.0, next_at - time.time()))


def lua_string(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "cli", "kiln"))
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--reload-seconds", type=float, default=30)
    ap.add_argument("--work", default="/tmp/kiln_soak")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "serve_soak.json"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    cfg = os.path.join(ROOT, "examples", "babyweight", "wide_deep.pbtxt")
    run_dir, base = os.path.join(args.work, "run"), os.path.join(args.work, "models", "babyweight")
    subprocess.run([args.kiln, "train", "--config", cfg, "--set", f"output_dir={run_dir}", "--set", "max_steps=300",
                    "--set", "resume=false"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    export = [args.kiln, "export", "--config", cfg, "--set", f"output_dir={run_dir}", "--model_base_path", base]
    subprocess.run(export, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    port_file = os.path.join(args.work, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    server = subprocess.Popen([args.kiln, "serve", "--model_base_path", base, "--rest_port", "0", "--port_file",
                               port_file, "--poll_interval_s", "1"], stderr=open(os.path.join(args.work, "serve.log"), "w"))
    port = wait_port(port_file, server)
    good = json.dumps({"instances": [dict(BABYWEIGHT_ROW, key="soak-good")]})
    url = f"http://127.0.0.1:{port}/v1/models/babyweight:predict"
    for _ in range(3):
        http(port, "/v1/models/babyweight:predict", good.encode())
    peak = wrk(url, good.encode(), 16, 5)["qps"]
    conns = 16
    for _ in range(2):  # connections pausing 5 ms each, together about peak / 2
        probe = wrk(url, good.encode(), conns, 3, delay_ms=5)
        conns = max(1, min(500, round(conns * (peak / 2) / max(probe["qps"], 1))))
    corpus = [open(f).read() for f in sorted(glob.glob(os.path.join(ROOT, "tests", "fuzz", "corpus", "*")))]
    corpus += ['{"instances": [', '{"instances": [{"mother_age": "old"}]}', "not json", '{"inputs": {"x": [1, 2]}}']
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(LUA % {"good": lua_string(good), "delay": 5})
    script.close()
    bad = BadTraffic(port, corpus, rate=max(1.0, 0.01 * peak / 2))

    seconds = int(args.minutes * 60)
    samples, exports, stop = [], [], threading.Event()

    def watch():
        start = time.time()
        next_export = start + args.reload_seconds
        while not stop.is_set():
            samples.append((time.time() - start, rss_mib(server.pid)))
            if time.time() >= next_export:
                t0 = time.time()
                r = subprocess.run(export, cwd=ROOT, capture_output=True, text=True)
                m = re.search(r"\(version (\d+),", r.stdout)
                exports.append({"at_s": round(t0 - start, 1), "ok": r.returncode == 0, "version": int(m.group(1)) if m else None,
                                "export_s": round(time.time() - t0, 2)})
                next_export += args.reload_seconds
            stop.wait(1.0)

    watcher = threading.Thread(target=watch)
    load_before = open("/proc/loadavg").read().split()[:3]
    watcher.start()
    bad.start()
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "-s", script.name, url],
                         capture_output=True, text=True).stdout
    stop.set()
    bad.stop.set()
    watcher.join()
    bad.join()
    os.unlink(script.name)
    time.sleep(2)  # the last export's version is picked up
    status = json.loads(http(port, "/v1/models/babyweight"))
    server.terminate()
    server.wait(timeout=30)
    m = re.search(r"SOAK (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if not m:
        sys.exit("wrk gave no result:\n" + out)
    good_sent, duration_us, p50, p99, socket_errors = map(int, m.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    good_fail = int(non2xx.group(1)) if non2xx else 0
    good_ok = good_sent - good_fail
    after_2min = [r for t, r in samples if t >= 120] or [r for _, r in samples]
    rss_2min, rss_end = after_2min[0], after_2min[-1]
    served = [v for v in status.get("model_version_status", [])]
    versions_ok = [e["version"] for e in exports if e["ok"]]
    newest = max(versions_ok) if versions_ok else 1
    newest_available = any(int(v["version"]) == newest and v["state"] == "AVAILABLE" for v in served)
    result = {
        "machine": {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
                    "cores": os.cpu_count(), "platform": platform.platform()},
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "command": " ".join(sys.argv), "load_average_before": load_before,
        "minutes": args.minutes, "peak_qps": peak, "connections": conns,
        "qps": (good_sent + bad.sent) / (duration_us / 1e6), "bad_rate_per_s": bad.rate,
        "good_ok": good_ok, "good_failed": good_fail, "bad_sent": bad.sent, "bad_4xx": bad.answered_4xx,
        "bad_other": [str(x) for x in bad.other[:50]], "bad_share": bad.sent / max(1, good_sent + bad.sent),
        "socket_errors": socket_errors, "p50_us": p50, "p99_us": p99,
        "exports": exports, "newest_version": newest, "newest_version_available": newest_available,
        "rss_mib_at_2min": rss_2min, "rss_mib_at_end": rss_end, "rss_growth": rss_end / rss_2min - 1,
        "rss_samples": samples[::10],
    }
    passed = (good_fail == 0 and not bad.other and socket_errors == 0 and bad.answered_4xx > 0 and all(e["ok"] for e in exports)
              and newest_available and result["rss_growth"] < 0.05)
    result["passed"] = passed
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print(f"soak {args.minutes} min at {result['qps']:.0f} QPS (peak {peak:.0f}; {conns} connections): good {good_ok} ok, "
          f"{good_fail} failed; bad {bad.answered_4xx} of {bad.sent} answered 4xx ({100 * result['bad_share']:.2f}% of all); "
          f"socket errors {socket_errors}; "
          f"p50 {p50} us, p99 {p99} us; {len(exports)} versions exported ({sum(e['ok'] for e in exports)} ok), newest "
          f"{newest} {'AVAILABLE' if newest_available else 'NOT served'}; RSS {rss_2min:.1f} MiB at 2 min -> "
          f"{rss_end:.1f} MiB at the end ({100 * result['rss_growth']:+.2f}%): {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
