#!/usr/bin/env python3
"""Data-parallel scaling on CPU: 1 and 2 ranks of `kiln train` under mpirun, beside PyTorch DDP
(gloo) with 1 and 2 processes on the same CNN, in one run.

Every rank gets one core: one compute thread, and the process (its input-prefetch and
communication threads included) pinned to that core (mpirun --bind-to core, taskset for single
processes and for PyTorch's), so one rank cannot borrow the idle second core. The per-rank batch
stays fixed (weak scaling, as DDP and Horovod report it), and throughput is examples/s of the whole job
over its training steps (data loading before the first step excluded for both). Efficiency is
throughput(2 ranks) / (2 x throughput(1 rank)). For Kiln the run also reports, per step, the
time inside the dense gradient all-reduce, the part of it backward had already finished waiting
for (exposed), the share hidden behind backward, and the sparse (embedding) exchange. A pinned
rank has no core for a communication thread and reduces its buckets after backward; the "not
pinned" case lets both ranks' threads float over both cores, so buckets go to the communication
thread during backward.

Workloads: the Fashion-MNIST CNN (examples/fashion_mnist/cnn.pbtxt, 3.4 MB of dense gradients
per step) and flights wide & deep (examples/flights/wide_deep.pbtxt, 80 KB dense plus eight
embedding tables exchanged row-sparse).

usage: bench/run_scale.sh [--steps 200] [--repeat 3]
"""
import argparse, json, os, platform, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}

DDP_CHILD = r'''
import gzip, os, sys, time, json
import numpy as np, torch, torch.nn as nn, torch.distributed as dist
steps, batch, data = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(1)
def idx(path):
    with gzip.open(path) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)
x = torch.from_numpy(idx(data + "/train-images-idx3-ubyte.gz").copy())
y = torch.from_numpy(idx(data + "/train-labels-idx1-ubyte.gz").astype(np.int64))
net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(7 * 7 * 64, 256), nn.ReLU(), nn.Dropout(0.4), nn.Linear(256, 10))
model = nn.parallel.DistributedDataParallel(net) if world > 1 else net
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
loss_fn = nn.CrossEntropyLoss()
n = x.shape[0]
perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
if world > 1:
    dist.barrier()
t0 = time.perf_counter()
for step in range(steps):
    i = ((step * world + rank) * batch) % (n - batch)
    idxs = perm[i:i + batch]
    xb = x[idxs].float().div_(255.0).unsqueeze(1)
    opt.zero_grad(set_to_none=True)
    loss_fn(model(xb), y[idxs]).backward()
    opt.step()
if world > 1:
    dist.barrier()
dt = time.perf_counter() - t0
if rank == 0:
    print(json.dumps({"examples_per_s": steps * batch * world / dt, "torch": torch.__version__}))
'''


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])} ... failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def kiln_run(kiln, ranks, config, sets, workdir, tag, bind="core"):
    out_dir = os.path.join(workdir, tag)
    cmd = [kiln, "train", "--config", config, "--set", f"output_dir={out_dir}", "--set", "resume=false",
           "--set", "threads=1", "--set", "log_every_steps=1000000"]
    for s in sets:
        cmd += ["--set", s]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), "--bind-to", bind] + cmd
    else:
        cmd = ["taskset", "-c", "0"] + cmd
    out = run(cmd, MPI_ENV)
    r = {"examples_per_s": float(re.search(r"([0-9.]+) examples/s", out).group(1))}
    m = re.search(r"dense all-reduce ([0-9.]+) ms/step \(([0-9.]+) MB, (\d+) buckets, \d+ on the communication thread\), "
                  r"([0-9.]+) ms/step of it after "
                  r"backward \((\d+)% overlapped\); sparse exchange and state ([0-9.]+) ms/step", out)
    if m:
        r.update(allreduce_ms=float(m.group(1)), dense_mb=float(m.group(2)), buckets=int(m.group(3)),
                 exposed_ms=float(m.group(4)), overlapped_pct=float(m.group(5)), sparse_ms=float(m.group(6)))
    return r


def ddp_run(python, ranks, steps, batch):
    port = 29500 + (os.getpid() % 1000)
    procs = []
    for rank in range(ranks):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
               "WORLD_SIZE": str(ranks), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen(["taskset", "-c", str(rank), python, "-c", DDP_CHILD, str(steps), str(batch), DATA],
                                      env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate() for p in procs]
    for p, (o, e) in zip(procs, outs):
        if p.returncode != 0:
            sys.exit(f"DDP rank failed:\n{e[-3000:]}")
    return json.loads(outs[0][0].strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "cli", "kiln"))
    ap.add_argument("--torch-python", default=sys.executable)
    ap.add_argument("--workdir", default="/tmp/kiln_bench_scale")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "scale.json"))
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    cnn = os.path.join(ROOT, "examples", "fashion_mnist", "cnn.pbtxt")
    flights = os.path.join(ROOT, "examples", "flights", "wide_deep.pbtxt")
    cnn_sets = [f"max_steps={args.steps}", "batch_size=64", "data.idx.eval_images=", "data.idx.eval_labels="]
    fl_sets = [f"max_steps={args.steps * 4}", "batch_size=256", "data.csv.eval_files=",
               f"data.csv.transform_state={args.workdir}/flights_state.pbtxt"]
    # Analyze flights once, outside the timed runs.
    kiln_run(args.kiln, 1, flights, fl_sets[1:] + ["max_steps=1"], args.workdir, "flights_warm")
    cases = [
        ("cnn", "kiln 1 rank", lambda: kiln_run(args.kiln, 1, cnn, cnn_sets, args.workdir, "cnn1")),
        ("cnn", "kiln 2 ranks", lambda: kiln_run(args.kiln, 2, cnn, cnn_sets, args.workdir, "cnn2")),
        ("cnn", "kiln 2 ranks, not pinned",
         lambda: kiln_run(args.kiln, 2, cnn, cnn_sets, args.workdir, "cnn2n", bind="none")),
        ("cnn", "pytorch ddp 1 process", lambda: ddp_run(args.torch_python, 1, args.steps, 64)),
        ("cnn", "pytorch ddp 2 processes", lambda: ddp_run(args.torch_python, 2, args.steps, 64)),
        ("flights", "kiln 1 rank", lambda: kiln_run(args.kiln, 1, flights, fl_sets, args.workdir, "fl1")),
        ("flights", "kiln 2 ranks", lambda: kiln_run(args.kiln, 2, flights, fl_sets, args.workdir, "fl2")),
        ("flights", "kiln 2 ranks, not pinned",
         lambda: kiln_run(args.kiln, 2, flights, fl_sets, args.workdir, "fl2n", bind="none")),
    ]
    samples = {(w, name): [] for w, name, _ in cases}
    for _ in range(args.repeat):
        for w, name, fn in cases:
            samples[(w, name)].append(fn())
    rows = []
    for (w, name), runs in samples.items():
        r = {"workload": w, "case": name, "runs": runs,
             "examples_per_s": statistics.median(x["examples_per_s"] for x in runs)}
        for key in ("allreduce_ms", "exposed_ms", "overlapped_pct", "sparse_ms", "dense_mb", "buckets"):
            if key in runs[0]:
                r[key] = statistics.median(x[key] for x in runs)
        rows.append(r)
    by = {(r["workload"], r["case"]): r for r in rows}
    for r in rows:
        base = by[(r["workload"], "pytorch ddp 1 process" if r["case"].startswith("pytorch") else "kiln 1 rank")]
        ranks = 2 if "2" in r["case"] else 1
        r["efficiency"] = r["examples_per_s"] / (ranks * base["examples_per_s"])
        batch = 64 if r["workload"] == "cnn" else 256
        r["step_ms"] = 1e3 * batch * ranks / r["examples_per_s"]
    print(f"{'workload':8} {'case':26} {'examples/s':>10} {'eff.':>6} {'step ms':>8} {'allreduce':>9} "
          f"{'exposed':>8} {'hidden':>7} {'sparse':>7}")
    for r in rows:
        extra = ""
        if "allreduce_ms" in r:
            extra = (f"{r['allreduce_ms']:8.2f}ms {r['exposed_ms']:6.2f}ms {r['overlapped_pct']:6.0f}% "
                     f"{r['sparse_ms']:5.2f}ms")
        print(f"{r['workload']:8} {r['case']:26} {r['examples_per_s']:10.0f} {r['efficiency']:6.2f} {r['step_ms']:8.2f} "
              f"{extra}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    meta = {"machine": f"{cpu}, {os.cpu_count()} CPUs, {platform.platform()}", "commit": commit,
            "steps": args.steps, "repeat": args.repeat, "load_average_before": os.getloadavg(),
            "command": "bench/run_scale.sh " + " ".join(sys.argv[1:])}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
