"""Runs the numpy reader printed in docs/example_shards.md on shards written by kiln transform
and checks it returns exactly the arrays `kiln transform --format npy` wrote for the same rows.

usage: example_shard_reader_check.py DOCS_MD NPY_DIR SHARD [SHARD...]   (shards in row order)
"""
import re
import sys

import numpy as np

docs, npy_dir, shards = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(docs).read()
section = text[text.index("## Reading a shard with numpy"):]
code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
scope = {}
exec(code, scope)  # defines read_kex, exactly as a reader of the docs would copy it
read_kex = scope["read_kex"]

parts = [read_kex(path)[1] for path in shards]
got = {name: np.concatenate([p[name] for p in parts]) for name in parts[0] if not name.endswith(".offsets")}
features = [name[:-4] for name in got if name.endswith(".ids")]
for name in features:
    got[name + ".offsets"] = np.concatenate([[0], np.cumsum(got[name + ".lengths"])])

failures = []
def check(name, want, have):
    if want.shape != have.shape or not np.array_equal(want, have):
        failures.append(f"{name}: npy {want.dtype}{want.shape} != shard {have.dtype}{have.shape}")

check("dense", np.load(f"{npy_dir}/dense.npy"), got["dense"])
check("label", np.load(f"{npy_dir}/label.npy"), got["label"])
for name in features:
    offsets = np.load(f"{npy_dir}/{name}.offsets.npy")
    check(name + ".offsets", offsets, got[name + ".offsets"])
    check(name + ".ids", np.load(f"{npy_dir}/{name}.ids.npy")[: offsets[-1]], got[name + ".ids"])
if not features:
    failures.append("no ids features found in the shards")
print(f"{len(got['label'])} rows, {len(features)} ids features, {len(shards)} shards")
if failures:
    print("\n".join(failures))
    sys.exit(1)
