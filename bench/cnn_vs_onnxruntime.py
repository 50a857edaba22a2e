#!/usr/bin/env python3
"""The Fashion-MNIST CNN in-process: Kiln (the Python package's Servable: the server's
ModelRunner) vs ONNX Runtime on the same network and weights, same threads (issue 16 item 4).

The network is Kiln's CNN (examples/fashion_mnist/cnn.pbtxt) trained for one short epoch and
exported by `kiln export --format onnx` (so both run identical layers and weights; the issue's
recipe builds it in PyTorch and exports with torch.onnx instead). ONNX Runtime as its docs
recommend for CPU latency: ORT_ENABLE_ALL graph optimisation, intra_op_num_threads = the threads,
sequential execution. Kiln gets raw pixels (it scales them), ONNX Runtime the scaled pixels, NHWC
as the export takes them; outputs are checked to agree.

Reports batch-1 latency (median and p99 of --calls calls) and batch-64 throughput (examples/s).
usage: PYTHONPATH=build/python .venv/test/bin/python bench/cnn_vs_onnxruntime.py [--threads 2]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "cli", "kiln"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
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

    model = kiln.Servable(version)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(os.path.join(version, "model.onnx"), so, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape][1:]

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(args.batch, int(np.prod(shape)))).astype(np.float32)
    feed = lambda x: {inp.name: (x * np.float32(scale)).reshape([len(x)] + shape)}
    out_name = "probabilities"
    ours = model.predict(pixels)[out_name]
    theirs = session.run([out_name], feed(pixels))[0]
    max_diff = float(np.abs(ours - theirs).max())
    assert max_diff < 1e-4, max_diff

    one = pixels[:1]
    one_feed = feed(one)
    results = {}
    for rnd in range(3):  # interleaved rounds, medians reported
        k1 = timed(lambda: model.predict(one), args.calls)
        o1 = timed(lambda: session.run([out_name], one_feed), args.calls)
        big_feed = feed(pixels)
        kb = timed(lambda: model.predict(pixels), max(50, args.calls // 20))
        ob = timed(lambda: session.run([out_name], big_feed), max(50, args.calls // 20))
        for name, t in (("kiln_b1", k1), ("ort_b1", o1), ("kiln_b64", kb), ("ort_b64", ob)):
            results.setdefault(name, []).append(t)
    med = lambda name, q: statistics.median(float(np.quantile(t, q)) for t in results[name])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    report = {
        "meta": {"machine": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
                 "cpus": os.cpu_count(), "platform": platform.platform(), "commit": commit, "threads": args.threads,
                 "onnxruntime": ort.__version__, "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
                 "max_abs_diff": max_diff},
        "batch1_p50_us": {"kiln": 1e6 * med("kiln_b1", 0.5), "onnxruntime": 1e6 * med("ort_b1", 0.5)},
        "batch1_p99_us": {"kiln": 1e6 * med("kiln_b1", 0.99), "onnxruntime": 1e6 * med("ort_b1", 0.99)},
        f"batch{args.batch}_examples_per_s": {"kiln": args.batch / med("kiln_b64", 0.5), "onnxruntime": args.batch / med("ort_b64", 0.5)},
    }
    print(json.dumps(report, indent=1))
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
