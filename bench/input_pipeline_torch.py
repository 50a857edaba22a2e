#!/usr/bin/env python3
"""The PyTorch peer of Kiln's input pipeline alone (bench/data_beyond_memory.py): shuffled
batches of transformed examples, read from disk, with no model.

Outside the timed part, the Kiln example shards (.kex, docs/example_shards.md) are converted once
into NumPy files in a cache directory beside the shards' directory (DIR.npy_cache for DIR/*.kex;
reused while the shards are unchanged): dense.npy f32 [N, W]; per embedding feature F,
F.ids.npy i64 [N] when every example has exactly one id (true for flights), else F.ids.npy (all
ids) and F.offsets.npy i64 [N + 1] (CSR); label.npy [N]. The conversion streams block by block,
so its memory does not grow with the data.

Timed part: the files opened with np.load(mmap_mode="r") and read through a
torch.utils.data.DataLoader the way PyTorch's documentation recommends for fast map-style
loading: a Dataset whose __getitem__ takes a whole batch of indices (sampler=BatchSampler(
RandomSampler(dataset), batch_size, drop_last=False), batch_size=None, so no per-example
__getitem__ or collate) and returns a dict of tensors by fancy indexing the memmaps in the
sampler's random order (no sorting, like Kiln's shuffled pipeline); num_workers=--workers,
persistent workers, the default prefetch_factor, pin_memory=False (CPU), torch.set_num_threads(1).
One full epoch (or until --seconds-max), every batch touched (its labels summed). The time runs
from creating the epoch's iterator (worker start-up and RandomSampler's permutation included, as
a training loop pays them) to the last batch.

Prints one JSON line: {"examples", "seconds", "examples_per_s", "workers", ...} with peak memory:
ru_maxrss of the main process and of the largest worker (file pages of the memmaps included), and
the peak over the run of the main process's and workers' anonymous memory summed (RssAnon,
sampled every 0.2 s): what the loader costs beyond the page cache.

usage: bench/input_pipeline_torch.py --shards 'DIR/*.kex' [--batch-size 256] [--workers 2]
                                     [--seconds-max N] [--convert-only] [--cache DIR]
"""
import argparse, glob, json, os, resource, shutil, struct, sys, threading, time

import numpy as np

MAGIC = b"KILNEX01"


def read_footer(path):
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size < 32:
            sys.exit(f"{path}: too short to be a shard")
        f.seek(0)
        head = f.read(8)
        f.seek(size - 16)
        tail = f.read(16)
        (n,) = struct.unpack("<Q", tail[:8])
        if head != MAGIC or tail[8:] != MAGIC or n > size - 32:
            sys.exit(f"{path}: not a complete example shard")
        f.seek(size - 16 - n)
        return json.loads(f.read(n))


def shard_signature(paths, footers):
    return [{"file": os.path.abspath(p), "bytes": os.path.getsize(p), "mtime_ns": os.stat(p).st_mtime_ns,
             "state_fingerprint": ft.get("state_fingerprint"), "rows": ft["rows"]} for p, ft in zip(paths, footers)]


class NpyWriter:
    """Writes one .npy file of a known shape by appending raw values in order."""

    def __init__(self, path, dtype, shape):
        self.path, self.dtype, self.shape = path, np.dtype(dtype), tuple(shape)
        self.f = open(path, "wb")
        np.lib.format.write_array_header_1_0(self.f, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                      "fortran_order": False, "shape": self.shape})
        self.written = 0

    def append(self, a):
        a = np.ascontiguousarray(a, dtype=self.dtype)
        self.f.write(a.tobytes())
        self.written += a.size

    def close(self):
        self.f.close()
        if self.written != int(np.prod(self.shape)):
            sys.exit(f"{self.path}: wrote {self.written} values, expected shape {self.shape}")


def convert(paths, cache):
    """Converts the shards to .npy files in `cache` unless it already holds them; returns (meta, seconds)."""
    footers = [read_footer(p) for p in paths]
    signature = shard_signature(paths, footers)
    meta_path = os.path.join(cache, "meta.json")
    if os.path.exists(meta_path):
        meta = json.load(open(meta_path))
        if meta.get("shards") == signature:
            return meta, 0.0
    t0 = time.perf_counter()
    columns = [c["name"] for c in footers[0]["columns"]]
    dtypes = {c["name"]: c["dtype"] for c in footers[0]["columns"]}
    width = footers[0]["dense_width"]
    for p, ft in zip(paths, footers):
        if [c["name"] for c in ft["columns"]] != columns or ft["dense_width"] != width:
            sys.exit(f"{p}: columns differ from {paths[0]}'s")
        if ft.get("state_fingerprint") != footers[0].get("state_fingerprint"):
            sys.exit(f"{p}: made from another transform state than {paths[0]}")
    features = [c[:-len(".ids")] for c in columns if c.endswith(".ids")]
    rows = sum(ft["rows"] for ft in footers)
    ids_total = {f: sum(b["counts"][columns.index(f + ".ids")] for ft in footers for b in ft["blocks"]) for f in features}
    tmp = cache + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    out = {"dense": NpyWriter(os.path.join(tmp, "dense.npy"), "<f4", (rows, width)),
           "label": NpyWriter(os.path.join(tmp, "label.npy"), dtypes["label"], (rows,))}
    for f in features:
        out[f + ".ids"] = NpyWriter(os.path.join(tmp, f + ".ids.npy"), "<i8", (ids_total[f],))
        out[f + ".offsets"] = NpyWriter(os.path.join(tmp, f + ".offsets.npy"), "<i8", (rows + 1,))
        out[f + ".offsets"].append(np.zeros(1, np.int64))
    single = {f: True for f in features}
    base = {f: 0 for f in features}
    for p, ft in zip(paths, footers):
        with open(p, "rb") as fh:
            for block in ft["blocks"]:
                fh.seek(block["offset"])
                data = fh.read(block["bytes"])
                if len(data) != block["bytes"]:
                    sys.exit(f"{p}: block at {block['offset']} is cut short")
                pos, parts = 0, {}
                for name, count in zip(columns, block["counts"]):
                    a = np.frombuffer(data, dtypes[name], count, pos)
                    parts[name] = a
                    pos += (a.nbytes + 7) // 8 * 8
                out["dense"].append(parts["dense"])
                out["label"].append(parts["label"])
                for f in features:
                    lengths = parts[f + ".lengths"].astype(np.int64)
                    single[f] = single[f] and bool(np.all(lengths == 1))
                    out[f + ".ids"].append(parts[f + ".ids"])
                    out[f + ".offsets"].append(base[f] + np.cumsum(lengths))
                    base[f] += int(lengths.sum())
    for w in out.values():
        w.close()
    for f in features:
        if single[f]:
            os.remove(os.path.join(tmp, f + ".offsets.npy"))
    meta = {"rows": rows, "dense_width": width, "label_dtype": dtypes["label"],
            "features": {f: ("single" if single[f] else "csr") for f in features}, "shards": signature}
    json.dump(meta, open(os.path.join(tmp, "meta.json"), "w"), indent=1)
    shutil.rmtree(cache, ignore_errors=True)
    os.replace(tmp, cache)
    return meta, time.perf_counter() - t0


def rss_anon_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class AnonPeak(threading.Thread):
    """Samples RssAnon of this process and its children every 0.2 s; keeps the peak of the sum."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_kib, self.stop = 0, threading.Event()

    def run(self):
        import psutil
        me = psutil.Process()
        while not self.stop.is_set():
            try:
                pids = [me.pid] + [c.pid for c in me.children(recursive=True)]
            except psutil.Error:
                pids = [me.pid]
            self.peak_kib = max(self.peak_kib, sum(rss_anon_kib(p) for p in pids))
            self.stop.wait(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", required=True, help="pattern of the .kex shards, e.g. 'DIR/*.kex'")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds-max", type=float, default=0, help="stop after this long (0: one full epoch)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", help="directory of the .npy files (default: the shards' directory + .npy_cache)")
    ap.add_argument("--convert-only", action="store_true", help="convert (or check the cache) and exit")
    args = ap.parse_args()
    paths = sorted(glob.glob(args.shards))
    if not paths:
        sys.exit(f"no shards match {args.shards}")
    cache = args.cache or os.path.abspath(os.path.dirname(paths[0])).rstrip("/") + ".npy_cache"
    meta, convert_s = convert(paths, cache)
    if args.convert_only:
        print(json.dumps({"cache": cache, "rows": meta["rows"], "convert_s": convert_s,
                          "bytes": sum(os.path.getsize(os.path.join(cache, f)) for f in os.listdir(cache))}))
        return

    import torch
    from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

    torch.set_num_threads(1)

    class ShardArrays(Dataset):
        """The converted shards; __getitem__ takes a list of indices and returns a batch."""

        def __init__(self, cache, meta):
            self.cache, self.meta, self.arrays = cache, meta, None

        def __len__(self):
            return self.meta["rows"]

        def open(self):  # in each worker, on its first batch (memmaps are not shared through fork)
            a = lambda name: np.asarray(np.load(os.path.join(self.cache, name + ".npy"), mmap_mode="r"))
            self.arrays = {"dense": a("dense"), "label": a("label")}
            for f, kind in self.meta["features"].items():
                self.arrays[f + ".ids"] = a(f + ".ids")
                if kind == "csr":
                    self.arrays[f + ".offsets"] = a(f + ".offsets")

        def __getitem__(self, indices):
            if self.arrays is None:
                self.open()
            idx = np.asarray(indices, dtype=np.int64)  # the sampler's random order, unsorted
            batch = {"dense": torch.from_numpy(self.arrays["dense"][idx]),
                     "label": torch.from_numpy(self.arrays["label"][idx])}
            for f, kind in self.meta["features"].items():
                ids = self.arrays[f + ".ids"]
                if kind == "single":
                    batch[f] = torch.from_numpy(ids[idx])
                else:  # CSR: the examples' id runs, concatenated, and their offsets (EmbeddingBag's input)
                    offsets = self.arrays[f + ".offsets"]
                    starts, ends = offsets[idx], offsets[idx + 1]
                    lengths = ends - starts
                    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
                    batch[f] = torch.from_numpy(ids[np.repeat(starts, lengths) + within])
                    batch[f + ".offsets"] = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
            return batch

    dataset = ShardArrays(cache, meta)
    sampler = BatchSampler(RandomSampler(dataset, generator=torch.Generator().manual_seed(args.seed)),
                           args.batch_size, drop_last=False)
    loader = DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=args.workers,
                        persistent_workers=args.workers > 0, pin_memory=False)
    sampler_thread = AnonPeak()
    sampler_thread.start()
    examples, batches, checksum, first_batch_s = 0, 0, 0.0, None
    complete = True
    t0 = time.perf_counter()
    for batch in loader:  # the epoch's iterator (and the workers) start here
        examples += batch["label"].shape[0]
        checksum += float(batch["label"].sum())
        batches += 1
        if first_batch_s is None:
            first_batch_s = time.perf_counter() - t0
        if args.seconds_max > 0 and time.perf_counter() - t0 >= args.seconds_max:
            complete = examples >= len(dataset)
            break
    seconds = time.perf_counter() - t0
    del loader  # joins the persistent workers, so their ru_maxrss is counted below
    import gc
    gc.collect()
    sampler_thread.stop.set()
    sampler_thread.join()
    print(json.dumps({"examples": examples, "seconds": seconds, "examples_per_s": examples / seconds,
                      "workers": args.workers, "batch_size": args.batch_size, "batches": batches,
                      "epoch_complete": complete, "rows": meta["rows"], "first_batch_s": first_batch_s,
                      "convert_s": convert_s, "label_sum": checksum,
                      "peak_rss_mib_main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "peak_rss_mib_worker_max": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                      "peak_anon_mib_all": sampler_thread.peak_kib / 1024,
                      "features": meta["features"], "torch": torch.__version__}))


if __name__ == "__main__":
    main()
