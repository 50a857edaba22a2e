#!/usr/bin/env python3
"""CPU training throughput and peak memory: Kiln vs PyTorch, same models, same batch, same threads.

Both train the Fashion-MNIST MLP (784-256-256-10) and CNN (examples/fashion_mnist/cnn.pbtxt:
conv32-bn-relu-pool, conv64-bn-relu-pool, dense256-dropout, dense10) with the same optimizer for
the same number of steps, each in its own process, measured one after the other in one run.
Throughput is examples/s over the training steps (data loading excluded for both); peak memory
is the process's max RSS. Prints a table with the ratios and the fraction of the fp32 peak.

usage: bench/run_train_cpu.sh [--steps N] [--threads T] [--batch B]
"""
import argparse, gzip, json, os, platform, re, resource, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"

# Training FLOPs per example: forward plus backward (weights and activations), i.e. 3x forward
# for every layer except the first conv, whose input gradient is never needed (2x).
def flops_per_example(model):
    if model == "mlp":
        fwd = 2 * (784 * 256 + 256 * 256 + 256 * 10)
        return 3 * fwd
    conv1 = 2 * 28 * 28 * 32 * 9 * 1
    conv2 = 2 * 14 * 14 * 64 * 9 * 32
    dense = 2 * (7 * 7 * 64 * 256 + 256 * 10)
    return 2 * conv1 + 3 * (conv2 + dense)


def peak_gflops(threads, isa=None):
    """fp32 peak of `threads` threads, measured by build/bench/kiln_bench_fma_peak (a register-resident
    FMA loop per ISA level, bench/fma_peak.h): a table keyed by CPU flags is wrong for CPUs whose
    AVX-512 runs at AVX2's FMA throughput (Zen 4, some cloud Xeons). Returns (GFLOP/s, how)."""
    tool = os.path.join(ROOT, "build", "bench", "kiln_bench_fma_peak")
    if not os.access(tool, os.X_OK):
        subprocess.run(["cmake", "--build", os.path.join(ROOT, "build"), "--target", "kiln_bench_fma_peak"],
                       check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([tool, "--threads", str(threads)], check=True, capture_output=True, text=True).stdout
    peak = json.loads(out.strip().splitlines()[-1])
    if isa:  # the ISA both sides are capped to (--isa)
        return peak["per_isa"][isa], f"measured {isa} FMA loop on {threads} threads"
    return peak["gflops"], f"measured {peak['isa']} FMA loop on {threads} threads"


TORCH_CHILD = r'''
import sys, time, resource, json
sys.path.insert(0, sys.argv[6])
import numpy as np, torch, torch.nn as nn
from fashion_mnist_torch import build, read_idx
model_name, steps, threads, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(1)
x = torch.from_numpy(read_idx(sys.argv[5] + "/train-images-idx3-ubyte.gz").copy())
y = torch.from_numpy(read_idx(sys.argv[5] + "/train-labels-idx1-ubyte.gz").astype(np.int64))
net, opt = build(model_name)
loss_fn = nn.CrossEntropyLoss()
net.train()
n = x.shape[0]
g = torch.Generator().manual_seed(1)
perm = torch.randperm(n, generator=g)
t0 = time.perf_counter()
done = 0
for step in range(steps):
    i = (step * batch) % (n - batch)
    idxs = perm[i:i + batch]
    xb = x[idxs].float().div_(255.0).unsqueeze(1)
    yb = y[idxs]
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(net(xb), yb)
    loss.backward()
    opt.step()
    done += batch
dt = time.perf_counter() - t0
print(json.dumps({"examples_per_s": done / dt, "torch": torch.__version__,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''


def max_rss_of(cmd):
    """Runs cmd and returns (stdout, max RSS in MiB) of that process alone, via wait4."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(p.pid, 0)
    out, err = p.stdout.read(), p.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {err}")
    return out, usage.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--torch-python", default=sys.executable)
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--isa", choices=["avx2"], help="the fraction of peak against this ISA's loop (for runs capped with "
                    "ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2, as on an AVX2 machine)")
    ap.add_argument("--workdir", default="/tmp/kiln_bench_train")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    kiln = os.path.join(ROOT, "build", "cli", "kiln")
    peak, peak_how = peak_gflops(args.threads, args.isa)
    rows = []
    for model in ("mlp", "cnn"):
        cfg = os.path.join(ROOT, "examples", "fashion_mnist", f"{model}.pbtxt")
        out = os.path.join(args.workdir, f"kiln_{model}")
        kcmd = [kiln, "train", "--config", cfg, "--set", f"max_steps={args.steps}", "--set", f"threads={args.threads}",
                "--set", f"batch_size={args.batch}", "--set", f"output_dir={out}", "--set", "resume=false",
                "--set", "log_every_steps=1000000", "--set", "data.idx.eval_images=", "--set", "data.idx.eval_labels="]
        kout, krss = max_rss_of(kcmd)
        keps = float(re.search(r"([0-9.]+) examples/s", kout).group(1))
        tout, trss = max_rss_of([args.torch_python, "-c", TORCH_CHILD, model, str(args.steps), str(args.threads),
                                 str(args.batch), DATA, os.path.dirname(os.path.abspath(__file__))])
        t = json.loads(tout.strip().splitlines()[-1])
        f = flops_per_example(model)
        rows.append({"model": model, "kiln_examples_per_s": keps, "torch_examples_per_s": t["examples_per_s"],
                     "speedup": keps / t["examples_per_s"], "kiln_peak_rss_mib": krss, "torch_peak_rss_mib": trss,
                     "rss_ratio": krss / trss, "kiln_fraction_of_peak": keps * f / 1e9 / peak,
                     "torch_fraction_of_peak": t["examples_per_s"] * f / 1e9 / peak,
                     "train_mflop_per_example": f / 1e6, "torch_version": t["torch"]})
    print(f"CPU training, batch {args.batch}, {args.threads} threads, {args.steps} steps; "
          f"fp32 peak {peak:.0f} GFLOP/s ({peak_how})")
    print(f"{'model':5} {'kiln ex/s':>10} {'torch ex/s':>11} {'speedup':>8} {'kiln MiB':>9} {'torch MiB':>10} "
          f"{'mem ratio':>9} {'kiln %peak':>10} {'torch %peak':>11}")
    for r in rows:
        print(f"{r['model']:5} {r['kiln_examples_per_s']:10.0f} {r['torch_examples_per_s']:11.0f} {r['speedup']:7.2f}x "
              f"{r['kiln_peak_rss_mib']:9.0f} {r['torch_peak_rss_mib']:10.0f} {r['rss_ratio']:8.2f}x "
              f"{100 * r['kiln_fraction_of_peak']:9.1f}% {100 * r['torch_fraction_of_peak']:10.1f}%")
    if args.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        caps = {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
                if k in os.environ}
        meta = {"machine": platform.node(), "cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip("\t :"),
                "commit": commit, "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]), "isa_caps": caps,
                "threads": args.threads, "batch": args.batch, "steps": args.steps, "peak_gflops": peak,
                "peak_source": peak_how}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
