#!/usr/bin/env python3
"""GPU training throughput: Kiln vs PyTorch eager and torch.compile (mode "reduce-overhead", CUDA
graphs), same models, same batch, same optimizer, same GPU, one after the other in one run.

Models: the Fashion-MNIST MLP and CNN of examples/fashion_mnist/*.pbtxt (bench/fashion_mnist_torch.py
builds the same ones in PyTorch). Throughput is examples/s over the timed steps, after warm-up:
  kiln   two runs, `warmup` and `warmup + steps` steps; the difference of their wall times
         (steps x batch / the examples/s each prints) is the time of the timed steps, so start-up,
         data loading and the warm-up steps are excluded
  torch  the training set as float tensors on the GPU, `warmup` steps, then `steps` steps timed
         with torch.cuda.synchronize() on both ends; torch.compile also warms up (compiles) first
Prints a table with the ratios; --json writes the rows. scripts/gpu_check.sh runs it in tier 2.

  python3 bench/train_gpu_vs_pytorch.py [--kiln PATH] [--data DIR] [--steps N] [--batch B]
                                        [--models mlp,cnn] [--device cuda|cpu] [--no-compile] [--json F]

--device cpu runs the same comparison on the CPU (a smoke test of the script without a GPU).
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.dirname(os.path.abspath(__file__))

TORCH_CHILD = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, torch, torch.nn as nn
from fashion_mnist_torch import build, read_idx
model_name, data, device, batch, warmup, steps, mode, limit = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), \
    int(sys.argv[6]), int(sys.argv[7]), sys.argv[8], int(sys.argv[9])
torch.manual_seed(1)
if device == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = True  # Kiln's fp32 GEMMs and convolutions run as TF32 too
    torch.backends.cudnn.allow_tf32 = True
x = torch.from_numpy(read_idx(data + "/train-images-idx3-ubyte.gz", limit).copy()).to(device)
y = torch.from_numpy(read_idx(data + "/train-labels-idx1-ubyte.gz", limit).astype(np.int64)).to(device)
x = x.float().div_(255.0).unsqueeze(1)
net, opt = build(model_name, device)
loss_fn = nn.CrossEntropyLoss()
net.train()
def step(xb, yb):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(net(xb), yb)
    loss.backward()
    opt.step()
    return loss
if mode == "compile":
    step = torch.compile(step, mode="reduce-overhead")
n = x.shape[0]
perm = torch.randperm(n, device=device)
def batch_at(i):
    idx = perm[(i * batch) % (n - batch):(i * batch) % (n - batch) + batch]
    return x[idx], y[idx]
def sync():
    if device == "cuda":
        torch.cuda.synchronize()
for i in range(warmup):
    step(*batch_at(i))
sync()
t0 = time.perf_counter()
for i in range(steps):
    step(*batch_at(warmup + i))
sync()
dt = time.perf_counter() - t0
print(json.dumps({"examples_per_s": steps * batch / dt, "torch": torch.__version__}))
'''


def kiln_seconds(args, model, steps, workdir):
    """Wall time of `steps` training steps as kiln reports it (steps x batch / examples/s)."""
    cfg = os.path.join(ROOT, "examples", "fashion_mnist", f"{model}.pbtxt")
    out = os.path.join(workdir, f"kiln_{model}_{steps}")
    cmd = [args.kiln, "train", "--config", cfg, "--set", f"device={args.device.upper()}", "--set", f"max_steps={steps}",
           "--set", f"batch_size={args.batch}", "--set", f"output_dir={out}", "--set", "resume=false",
           "--set", "log_every_steps=1000000", "--set", "data.idx.eval_images=", "--set", "data.idx.eval_labels=",
           "--set", f"data.idx.train_images={args.data}/train-images-idx3-ubyte.gz",
           "--set", f"data.idx.train_labels={args.data}/train-labels-idx1-ubyte.gz",
           "--set", "checkpoint.every_seconds=0"]
    if args.limit:
        cmd += ["--set", f"data.idx.max_train_examples={args.limit}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"kiln train failed ({' '.join(cmd)}):\n{r.stderr}")
    eps = float(re.search(r"([0-9.]+) examples/s", r.stdout).group(1))
    return steps * args.batch / eps


def torch_examples_per_s(args, model, mode):
    cmd = [args.torch_python, "-c", TORCH_CHILD, BENCH, model, args.data, args.device, str(args.batch), str(args.warmup),
           str(args.steps), mode, str(args.limit)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"torch {mode} failed for {model}:\n{r.stderr[-2000:]}", file=sys.stderr)
        return None, None
    row = json.loads(r.stdout.strip().splitlines()[-1])
    return row["examples_per_s"], row["torch"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.environ.get("KILN_BIN", os.path.join(ROOT, "build-cuda", "cli", "kiln")))
    ap.add_argument("--data", default=os.environ.get("KILN_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--limit", type=int, default=0, help="first N training examples only (0: all)")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--torch-python", default=sys.executable)
    ap.add_argument("--workdir", default="/tmp/kiln_bench_train_gpu")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    rows = []
    for model in args.models.split(","):
        kiln_eps = args.steps * args.batch / (kiln_seconds(args, model, args.warmup + args.steps, args.workdir) -
                                              kiln_seconds(args, model, args.warmup, args.workdir))
        eager, version = torch_examples_per_s(args, model, "eager")
        compiled = None if args.no_compile else torch_examples_per_s(args, model, "compile")[0]
        rows.append({"model": model, "kiln_examples_per_s": kiln_eps, "torch_eager_examples_per_s": eager,
                     "torch_compile_examples_per_s": compiled, "torch_version": version,
                     "vs_eager": kiln_eps / eager if eager else None,
                     "vs_compile": kiln_eps / compiled if compiled else None})
    print(f"training on {args.device}, batch {args.batch}, {args.steps} timed steps after {args.warmup}; "
          f"kiln {args.kiln}")
    print(f"{'model':5} {'kiln ex/s':>10} {'eager ex/s':>11} {'vs eager':>9} {'compile ex/s':>13} {'vs compile':>11}")
    fmt = lambda v, spec: format(v, spec) if v is not None else "n/a"
    for r in rows:
        print(f"{r['model']:5} {r['kiln_examples_per_s']:10.0f} {fmt(r['torch_eager_examples_per_s'], '11.0f'):>11} "
              f"{fmt(r['vs_eager'], '8.2f'):>8}x {fmt(r['torch_compile_examples_per_s'], '13.0f'):>13} "
              f"{fmt(r['vs_compile'], '10.2f'):>10}x")
    if args.json:
        meta = {"machine": platform.node(), "device": args.device, "batch": args.batch, "steps": args.steps,
                "warmup": args.warmup, "limit": args.limit}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    if any(r["torch_eager_examples_per_s"] is None for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
