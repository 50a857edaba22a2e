#!/usr/bin/env python3
"""Runs a servable's model.onnx (kiln export --format onnx) with ONNX Runtime and compares it with
`kiln predict` on the same rows. Prints the largest differences; exit 1 beyond the tolerance.

Tabular:  onnx_check.py --kiln BIN --model VERSION_DIR --work DIR tabular --csv FILE --label COLUMN --state STATE
          (rows without a label are left out first, so `kiln transform --format npy`, which needs
          labels, and `kiln predict` see the same rows)
Images:   onnx_check.py --kiln BIN --model VERSION_DIR --work DIR images --idx IMAGES.gz --rows N
"""
import argparse, csv, gzip, json, os, re, subprocess, sys

import numpy as np
import onnxruntime as ort


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def kiln_predictions(args, rows_file):
    out = os.path.join(args.work, "predictions.jsonl")
    run([args.kiln, "predict", "--model", args.model, "--input", rows_file, "--output", out])
    return [json.loads(line) for line in open(out)]


def compare(name, onnx_values, kiln_values, tolerance):
    a, b = np.asarray(onnx_values, np.float64), np.asarray(kiln_values, np.float64)
    assert a.shape == b.shape, f"{name}: ONNX gives {a.shape}, kiln predict {b.shape}"
    diff = np.abs(a - b)
    rel = diff / np.maximum(1.0, np.abs(b))
    print(f"{name}: {a.shape[0]} rows, max |onnx - kiln| {diff.max():.3g}, max relative {rel.max():.3g}")
    if rel.max() > tolerance:
        worst = int(np.unravel_index(rel.argmax(), rel.shape)[0])
        sys.exit(f"{name}: row {worst} differs beyond {tolerance}: onnx {a[worst]}, kiln {b[worst]}")


def tabular(args, session):
    rows = list(csv.DictReader(open(args.csv)))
    kept = [r for r in rows if r[args.label] not in ("", "NA")]
    path = os.path.join(args.work, "rows.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(kept)
    npy = os.path.join(args.work, "npy")
    run([args.kiln, "transform", "--state", args.state, "--data", path, "--output", npy, "--format", "npy"])
    feeds = {}
    for i in session.get_inputs():
        if i.name == "dense":
            feeds[i.name] = np.load(os.path.join(npy, "dense.npy")).astype(np.float32)
        else:
            ids, offsets = np.load(os.path.join(npy, i.name + ".ids.npy")), np.load(os.path.join(npy, i.name + ".offsets.npy"))
            assert (np.diff(offsets) == 1).all(), f"{i.name}: not one id per example"
            feeds[i.name] = ids[: len(offsets) - 1].astype(np.int64)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    kiln = kiln_predictions(args, path)
    assert len(kiln) == len(kept), f"kiln predict gave {len(kiln)} rows for {len(kept)}"
    return outputs, kiln


def images(args, session):
    raw = gzip.open(args.idx).read()
    n, h, w = np.frombuffer(raw[4:16], ">i4")
    pixels = np.frombuffer(raw[16:], np.uint8).reshape(n, h, w)[: args.rows]
    manifest = open(os.path.join(args.model, "servable.pbtxt")).read()
    tensor = manifest[manifest.index("tensor_input {"):]
    name = re.search(r'name: "([^"]+)"', tensor).group(1)
    scale = float(re.search(r"scale: ([0-9.eE+-]+)", tensor).group(1))
    path = os.path.join(args.work, "rows.jsonl")
    with open(path, "w") as f:
        for p in pixels:
            f.write(json.dumps({name: p.reshape(-1).tolist()}) + "\n")
    image = (pixels.astype(np.float32) * np.float32(scale)).reshape(len(pixels), h, w, 1)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {session.get_inputs()[0].name: image})))
    return outputs, kiln_predictions(args, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--model", required=True, help="servable version directory holding model.onnx")
    ap.add_argument("--work", required=True)
    ap.add_argument("--tolerance", type=float, default=1e-5, help="largest |onnx - kiln| / max(1, |kiln|)")
    sub = ap.add_subparsers(dest="kind", required=True)
    t = sub.add_parser("tabular")
    t.add_argument("--csv", required=True)
    t.add_argument("--label", required=True)
    t.add_argument("--state", required=True, help="the TransformState the model was trained with")
    i = sub.add_parser("images")
    i.add_argument("--idx", required=True)
    i.add_argument("--rows", type=int, default=200)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    session = ort.InferenceSession(os.path.join(args.model, "model.onnx"), providers=["CPUExecutionProvider"])
    outputs, kiln = (tabular if args.kind == "tabular" else images)(args, session)
    for name, values in outputs.items():
        kiln_values = [row[name] for row in kiln]
        if name == "class_ids":
            got, want = np.asarray(values).reshape(-1), np.asarray(kiln_values).reshape(-1)
            print(f"class_ids: {int((got == want).sum())} of {len(want)} equal")
            if (got != want).any():
                sys.exit("class_ids differ")
        else:
            compare(name, np.asarray(values).reshape(len(kiln), -1), np.asarray(kiln_values, np.float64).reshape(len(kiln), -1),
                    args.tolerance)
    print("ok")


if __name__ == "__main__":
    main()
