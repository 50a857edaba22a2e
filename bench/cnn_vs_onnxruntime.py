#!/usr/bin/env python3
"""The Fashion-MNIST CNN in-process: Kiln (the Python package's Servable: the server's
ModelRunner) vs ONNX Runtime on the same network and weights, same threads (issue 16 item 4).

The network is Kiln's CNN (examples/fashion_mnist/cnn.pbtxt) trained for one short epoch. The peer,
as the issue asks, is the same network built in PyTorch with Kiln's trained weights copied in and
exported by torch.onnx.export (bench/cnn_torch_export.py, run in the bench venv, which has torch:
scripts/python_env.sh bench), then run by ONNX Runtime as its docs recommend for CPU latency:
ORT_ENABLE_ALL graph optimisation, intra_op_num_threads = the threads, sequential execution.
Kiln gets raw pixels (it scales them), ONNX Runtime the scaled pixels in NCHW; the outputs are
checked to agree. Rounds interleave the two, and the medians over rounds are reported.

Reports batch-1 latency (median and p99 of --calls calls) and batch-64 throughput (examples/s).
--baseline DIR times another build's Python package (DIR holds its kiln/) in the same rounds, in a
subprocess, for before/after figures beside the peer's.
usage: PYTHONPATH=build/python .venv/test/bin/python bench/cnn_vs_onnxruntime.py [--threads 2] [--baseline DIR]
"""
import argparse, json, os, platform, statistics, subprocess, sys, time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: {r.stderr}")


def timed(fn, calls):
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def pixels_for(batch):
    return np.random.default_rng(1).integers(0, 256, size=(batch, 28 * 28)).astype(np.float32)


def worker(version, calls, batch):
    """--baseline's subprocess: this interpreter imported the baseline's kiln; prints its timings."""
    import kiln
    model, pixels = kiln.Servable(version), pixels_for(batch)
    one = pixels[:1]
    for _ in range(20):
        model.predict(pixels)
    print(json.dumps([timed(lambda: model.predict(one), calls), timed(lambda: model.predict(pixels), max(50, calls // 20))]))


def main():
    if sys.argv[1:2] == ["--worker"]:
        return worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "cli", "kiln"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline", help="a folder holding another build's kiln/ package, timed in the same rounds")
    ap.add_argument("--torch_python", default=os.path.join(ROOT, ".venv", "bench", "bin", "python"),
                    help="a python with torch and onnx (scripts/python_env.sh bench)")
    ap.add_argument("--workdir", default="/tmp/kiln_bench_cnn_ort")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "cnn_vs_onnxruntime.json"))
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import kiln  # after OMP_NUM_THREADS: Kiln's CPU threads follow it

    cfg = "examples/fashion_mnist/cnn.pbtxt"
    run_dir, base = os.path.join(args.workdir, "run"), os.path.join(args.workdir, "models", "cnn")
    common = ["--set", f"output_dir={run_dir}", "--set", "epochs=1", "--set", "data.idx.max_train_examples=4096",
              "--set", "data.idx.max_eval_examples=512"]
    if not os.path.exists(os.path.join(base, "1", "model.onnx")):
        sh([args.kiln, "train", "--config", cfg] + common)
        sh([args.kiln, "export", "--config", cfg, "--model_base_path", base, "--format", "onnx"] + common)
    version = os.path.join(base, "1")
    manifest = open(os.path.join(version, "servable.pbtxt")).read()
    scale = float(manifest.split("scale:")[1].split()[0])
    peer = os.path.join(args.workdir, "torch_cnn.onnx")
    sh([args.torch_python, os.path.join(ROOT, "bench", "cnn_torch_export.py"), os.path.join(version, "model.onnx"), peer])

    model = kiln.Servable(version)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(peer, so, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]

    pixels = pixels_for(args.batch)
    feed = lambda x: {inp.name: (x * np.float32(scale)).reshape(len(x), 1, 28, 28)}  # one channel: NHWC = NCHW
    out_name = "probabilities"
    ours = model.predict(pixels)[out_name]
    theirs = session.run([out_name], feed(pixels))[0]
    max_diff = float(np.abs(ours - theirs).max())
    assert max_diff < 1e-4, max_diff

    one = pixels[:1]
    one_feed = feed(one)
    results = {}
    for rnd in range(args.rounds):  # interleaved rounds, medians reported
        k1 = timed(lambda: model.predict(one), args.calls)
        o1 = timed(lambda: session.run([out_name], one_feed), args.calls)
        big_feed = feed(pixels)
        kb = timed(lambda: model.predict(pixels), max(50, args.calls // 20))
        ob = timed(lambda: session.run([out_name], big_feed), max(50, args.calls // 20))
        for name, t in (("kiln_b1", k1), ("ort_b1", o1), ("kiln_b64", kb), ("ort_b64", ob)):
            results.setdefault(name, []).append(t)
        if args.baseline:
            env = dict(os.environ, PYTHONPATH=args.baseline)
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", version, str(args.calls),
                                str(args.batch)], env=env, capture_output=True, text=True, check=True)
            b1, bb = json.loads(r.stdout)
            results.setdefault("base_b1", []).append(b1)
            results.setdefault("base_b64", []).append(bb)
    med = lambda name, q: statistics.median(float(np.quantile(t, q)) for t in results[name])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    report = {
        "meta": {"machine": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
                 "cpus": os.cpu_count(), "platform": platform.platform(), "commit": commit, "threads": args.threads,
                 "onnxruntime": ort.__version__, "peer": "PyTorch model, torch.onnx.export, ONNX Runtime",
                 "rounds": args.rounds, "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
                 "max_abs_diff": max_diff},
        "batch1_p50_us": {"kiln": 1e6 * med("kiln_b1", 0.5), "onnxruntime": 1e6 * med("ort_b1", 0.5)},
        "batch1_p99_us": {"kiln": 1e6 * med("kiln_b1", 0.99), "onnxruntime": 1e6 * med("ort_b1", 0.99)},
        f"batch{args.batch}_examples_per_s": {"kiln": args.batch / med("kiln_b64", 0.5), "onnxruntime": args.batch / med("ort_b64", 0.5)},
    }
    if args.baseline:
        report["meta"]["baseline"] = args.baseline
        report["batch1_p50_us"]["kiln_baseline"] = 1e6 * med("base_b1", 0.5)
        report["batch1_p99_us"]["kiln_baseline"] = 1e6 * med("base_b1", 0.99)
        report[f"batch{args.batch}_examples_per_s"]["kiln_baseline"] = args.batch / med("base_b64", 0.5)
    print(json.dumps(report, indent=1))
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
