"""kiln analyze's medians and quantile-bucket boundaries against numpy, on columns that broke the
relative-error sketch: offset narrow columns (model years, Unix timestamps, latitudes,
longitudes), a heavy tail, heavy duplicates and a constant.

Checks, for every column: the rank error of the median and of each boundary (the distance from the
target rank floor(k (n - 1) / K) to the answer's ranks in the sorted column, by searchsorted) is at
most n // 1000 rows, and 0 for the few-distinct-value columns (which must equal numpy's
method="lower" quantiles exactly); boundaries lie inside [min, max]; a collapsed bucketization
is warned about, naming the feature; and the state is the same for 1 file with 1 thread, 3 shards
with 2 threads, and 2 MPI ranks.

usage: quantiles_vs_numpy.py KILN WORKDIR
"""
import os
import re
import subprocess
import sys

import numpy as np

kiln, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
rng = np.random.default_rng(5)
n = 60000
columns = {
    "year": rng.integers(1970, 1983, n).astype(float),
    "timestamp": np.floor(1.7e9 + 3.15e7 * rng.random(n)),
    "latitude": np.round(40.7 + 0.05 * rng.standard_normal(n), 6),
    "longitude": np.round(-74.0 + 0.05 * rng.standard_normal(n), 6),
    "heavy_tail": np.round(rng.lognormal(0, 4, n), 6),
    "duplicates": np.where(rng.random(n) < 0.7, 42.5, np.round(42.5 + rng.standard_normal(n), 4)),
    "constant": np.full(n, 7.0),
}
exact = {"year", "constant"}  # few distinct values: exact answers
buckets = {c: (4 if c in ("duplicates", "constant") else 10) for c in columns}

names = list(columns)
rows = np.column_stack([columns[c] for c in names])
def write(path, part):
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for r in part:
            f.write(",".join(repr(float(v)) for v in r) + "\n")
write(f"{work}/all.csv", rows)
for i, part in enumerate(np.array_split(rows, 3)):
    write(f"{work}/shard-{i}.csv", part)
with open(f"{work}/spec.pbtxt", "w") as f:
    for c in names:
        f.write(f'features {{ name: "{c}" numeric {{ }} missing {{ kind: MEDIAN }} }}\n')
        f.write(f'features {{ name: "{c}_bucket" source: "{c}" bucketized {{ num_quantile_buckets: {buckets[c]} }} }}\n')

def analyze(out, data, threads, mpi=False):
    cmd = [kiln, "analyze", "--spec", f"{work}/spec.pbtxt", "--data", data, "--threads", str(threads),
           "--output", f"{work}/{out}", "--quiet"]
    env = dict(os.environ)
    if mpi:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
        cmd = ["mpirun", "-np", "2"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}: {p.stderr}")
    text = open(f"{work}/{out}").read()
    return "\n".join(l for l in text.splitlines() if not l.startswith("files:")), p.stderr

one, warnings = analyze("one.pbtxt", f"{work}/all.csv", 1)
sharded, _ = analyze("sharded.pbtxt", f"{work}/shard-*.csv", 2)
ranks, _ = analyze("ranks.pbtxt", f"{work}/shard-*.csv", 1, mpi=True)
failures = []
if one != sharded:
    failures.append("3 shards with 2 threads gave another state than 1 file with 1 thread")
if one != ranks:
    failures.append("2 MPI ranks gave another state than 1 process")

# The state's features in order: "name", the median of numeric ones, the boundaries.
blocks = re.split(r"\nfeatures \{", "\n" + one.split("\nlabel {")[0])[1:]
state = {}
for b in blocks:
    name = re.search(r'name: "([^"]+)"', b).group(1)
    median = re.search(r"\n\s*median: (\S+)", b)
    state[name] = (float(median.group(1)) if median else None, [float(x) for x in re.findall(r"\n\s*boundaries: (\S+)", b)])

allowed = n // 1000
def rank_error(s, v, r):
    first, last = np.searchsorted(s, v, "left"), np.searchsorted(s, v, "right") - 1
    return int(max(first - r, r - last, 0))

worst = {}
for c in names:
    s = np.sort(columns[c])
    median, _ = state[c]
    _, boundaries = state[c + "_bucket"]
    targets = [("median", median, (n - 1) // 2)]
    K = buckets[c]
    distinct_expected = sorted(set(s[k * (n - 1) // K] for k in range(1, K)))
    if len(boundaries) != len(distinct_expected) and c in exact:
        failures.append(f"{c}: {len(boundaries)} boundaries, numpy's distinct quantiles give {len(distinct_expected)}")
    for i, v in enumerate(boundaries):
        targets.append((f"boundary {i + 1}", v, None))
    errors = []
    for what, v, r in targets:
        if not (s[0] <= v <= s[-1]):
            failures.append(f"{c}: {what} {v} outside [{s[0]}, {s[-1]}]")
        if r is None:  # a boundary: the closest of the target ranks (duplicates merge boundaries)
            e = min(rank_error(s, v, k * (n - 1) // K) for k in range(1, K))
        else:
            e = rank_error(s, v, r)
        errors.append(e)
        limit = 0 if c in exact else allowed
        if e > limit:
            failures.append(f"{c}: {what} {v} has rank error {e} > {limit}")
    if c in exact:
        q = np.quantile(columns[c], 0.5, method="lower")
        if median != q:
            failures.append(f"{c}: median {median}, numpy {q}")
        if boundaries != distinct_expected:
            failures.append(f"{c}: boundaries {boundaries}, numpy {distinct_expected}")
    worst[c] = max(errors)
for c in ("duplicates", "constant"):
    if f"feature '{c}_bucket'" not in warnings:
        failures.append(f"no collapse warning for {c}_bucket in: {warnings!r}")
print("worst rank error per column (allowed %d of %d rows): %s" % (allowed, n, worst))
if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print("OK")
