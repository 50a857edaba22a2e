#!/usr/bin/env python3
"""Training on data beyond memory (issue 14, item 6): a flights-like CSV of --gb GB (default 5)
through analyze, transform, the input pipeline alone and one epoch of wide & deep training,
with wall time and peak resident memory for each step.

Steps, each a separate process timed under `/usr/bin/time -v` (wall time and "Maximum resident
set size" of that process):
  generate   bench/generate_flights_csv.py: --files CSV files of --gb x 1e9 bytes in total,
             bootstrap-resampled real flights rows with a little noise, plus a 50k-row eval.csv;
             reused when the work directory already holds them at that size (see --keep)
  analyze    kiln analyze --spec examples/flights/feature_spec.pbtxt over the CSV
  transform  kiln transform into --shards example shards (.kex)
  pipeline   the input pipeline alone, shuffled batches of --batch-size with no model: Kiln's
             bench/input_pipeline.cc (--shuffle_buffer; its two threads: window reader, batch producer)
             against its PyTorch peer bench/input_pipeline_torch.py (the shards converted once,
             untimed, to .npy memmaps read by a DataLoader with --torch-workers workers and a
             batch sampler; one full epoch unless --torch-seconds-max), interleaved, --repeat
             rounds; the report takes medians and the ratio of the medians. Kiln's rate leaves
             out opening the shards ("open_seconds"), PyTorch's includes starting its workers;
             the ratio with both start-ups counted is reported too
  train1     kiln train, one epoch of examples/flights/wide_deep.pbtxt from the shards, 1 rank,
             with data.csv.shuffle_buffer = --shuffle-buffer; data.csv.reading stays AUTO, which
             streams shards above data.csv.in_memory_max_mb (256 MB; the eval CSV is read whole)
  train2     the same under mpirun with 2 ranks, one thread each (batch_size per rank); each
             rank's time -v output goes to its own file
Neither the CSV nor the shards are read into the page cache beforehand: each step reads what the
previous steps left there (the report records MemAvailable and Cached before each run).

Targets (reported beside the numbers): peak RSS <= 1024 MiB for a 1-rank training run and
<= 1229 MiB per rank for 2 ranks; the pipeline >= 3e6 examples/s and >= 3x the PyTorch peer.

Writes bench/results/data_beyond_memory.json (every raw number, the machine, the commit and the
command line) and prints a markdown summary. A step that fails prints its command and the tail
of its stderr; the steps that do not depend on it still run, and the exit status is 1.

Without --keep the work directory is removed at the end, all but its logs (W/logs: each step's
stdout, stderr and time -v output).

usage: bench/run_data_beyond_memory.sh [--gb 5] [--workdir /tmp/kiln_dbm] [--keep] [--repeat 1]
                                       [--torch-seconds-max S] [--steps analyze,transform,...]
"""
import argparse, json, os, platform, re, shlex, shutil, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("KILN_BUILD_DIR", "build"))
STEPS = ["analyze", "transform", "pipeline", "train1", "train2"]
TARGETS = {"train1_rss_mib": 1024, "train2_rss_mib_per_rank": 1229, "pipeline_examples_per_s": 3e6,
           "pipeline_x_torch": 3.0}


class StepFailed(Exception):
    pass


def meminfo():
    info = {}
    for line in open("/proc/meminfo"):
        k, v = line.split(":", 1)
        if k in ("MemTotal", "MemAvailable", "Cached", "Dirty"):
            info[k + "_mib"] = int(v.split()[0]) / 1024
    return info


def parse_time_v(path):
    """Wall seconds, peak RSS (MiB), user and system seconds from a `/usr/bin/time -v -o` file."""
    text = open(path).read()
    out = {}
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    if m:
        parts = [float(x) for x in m.group(1).split(":")]
        out["wall_s"] = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["peak_rss_mib"] = int(m.group(1)) / 1024
    for key, label in (("user_s", "User time (seconds)"), ("sys_s", "System time (seconds)"),
                       ("major_faults", "Major (requiring I/O) page faults")):
        m = re.search(re.escape(label) + r": ([0-9.]+)", text)
        if m:
            out[key] = float(m.group(1))
    m = re.search(r"Exit status: (\d+)", text)
    if m:
        out["exit_status"] = int(m.group(1))
    return out


class Runner:
    def __init__(self, workdir):
        self.logs = os.path.join(workdir, "logs")
        os.makedirs(self.logs, exist_ok=True)

    def run(self, name, cmd, timed=True, env=None):
        """Runs cmd (under /usr/bin/time -v -o unless timed is False); returns (stdout, stderr, time -v numbers).
        Raises StepFailed with the command and its stderr's tail when it fails."""
        time_file = os.path.join(self.logs, f"{name}.time")
        full = (["/usr/bin/time", "-v", "-o", time_file] if timed else []) + cmd
        before = meminfo()
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        with open(os.path.join(self.logs, f"{name}.out"), "w") as so, open(os.path.join(self.logs, f"{name}.err"), "w") as se:
            p = subprocess.run(full, stdout=so, stderr=se, cwd=ROOT, env={**os.environ, **(env or {})})
        secs = time.perf_counter() - t0
        out = open(os.path.join(self.logs, f"{name}.out")).read()
        err = open(os.path.join(self.logs, f"{name}.err")).read()
        if p.returncode != 0:
            tail = "\n".join(err.strip().splitlines()[-25:]) or "\n".join(out.strip().splitlines()[-25:])
            msg = f"{name} failed (exit {p.returncode}): {shlex.join(full)}\n--- stderr tail ({self.logs}/{name}.err) ---\n{tail}"
            print(msg, file=sys.stderr, flush=True)
            raise StepFailed(msg)
        t = parse_time_v(time_file) if timed and os.path.exists(time_file) else {}
        t["process_s"] = secs
        t["mem_before"] = before
        return out, err, t


def last_json(text, what):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    raise StepFailed(f"{what}: no JSON line at the end of its output:\n{text[-2000:]}")


def csv_files(workdir):
    d = os.path.join(workdir, "csv")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if re.fullmatch(r"train-\d{5}\.csv", f)) if os.path.isdir(d) else []


def generate(args, runner, python):
    """Makes W/csv unless its marker says it holds --gb GB in --files files already."""
    d = os.path.join(args.workdir, "csv")
    marker = os.path.join(d, "generated.json")
    want = {"gb": args.gb, "files": args.files, "seed": args.seed}
    if os.path.exists(marker):
        m = json.load(open(marker))
        files = csv_files(args.workdir)
        if (all(m.get(k) == v for k, v in want.items()) and len(files) == args.files
                and sum(os.path.getsize(f) for f in files) == m.get("bytes") and m["bytes"] >= args.gb * 1e9
                and os.path.exists(os.path.join(d, "eval.csv"))):
            print(f"generate: reusing {m['bytes'] / 1e9:.2f} GB of CSV in {d}", file=sys.stderr)
            return {**m, "reused": True}
    if os.path.exists(marker):
        os.remove(marker)
    out, _, t = runner.run("generate", [python, "bench/generate_flights_csv.py", "--gb", str(args.gb), "--out", d,
                                        "--files", str(args.files), "--seed", str(args.seed)])
    m = re.search(r"train: (\d+) rows, (\d+) bytes", out)
    if not m:
        raise StepFailed(f"generate: unexpected output:\n{out}")
    w = re.search(r"\(([0-9.]+) s, ([0-9.]+) MB/s;", out)
    r = {**want, "rows": int(m.group(1)), "bytes": int(m.group(2)), "wall_s": t.get("wall_s"),
         "write_s": float(w.group(1)) if w else None, "write_mb_per_s": float(w.group(2)) if w else None,
         "peak_rss_mib": t.get("peak_rss_mib"), "mb_per_s_incl_startup": int(m.group(2)) / 1e6 / t["process_s"],
         "output": out.strip()}
    json.dump(r, open(marker, "w"), indent=1)
    return {**r, "reused": False}


def train_config(args, path, shards, state, eval_csv):
    """wide_deep.pbtxt with the data block pointed at the shards (absolute paths), one epoch."""
    text = open(os.path.join(ROOT, "examples", "flights", "wide_deep.pbtxt")).read()
    spec = os.path.join(ROOT, "examples", "flights", "feature_spec.pbtxt")
    data = (f'data {{\n  csv {{\n    train_files: "{shards}/*.kex"\n    eval_files: "{eval_csv}"\n'
            f'    feature_spec_file: "{spec}"\n    transform_state: "{state}"\n  }}\n}}\n')
    text, n = re.subn(r"^data \{\n(?:.*\n)*?\}\n", data, text, count=1, flags=re.M)
    if n != 1:
        raise StepFailed("examples/flights/wide_deep.pbtxt: no top-level data { ... } block to replace")
    text, n1 = re.subn(r"^epochs: \d+$", "epochs: 1", text, flags=re.M)
    text, n2 = re.subn(r'^output_dir: ".*"$', f'output_dir: "{os.path.join(args.workdir, "run1")}"', text, flags=re.M)
    if n1 != 1 or n2 != 1:
        raise StepFailed("examples/flights/wide_deep.pbtxt: expected one epochs and one output_dir line")
    text += f"threads: {args.threads}\n"
    with open(path, "w") as f:
        f.write("# Written by bench/data_beyond_memory.py from examples/flights/wide_deep.pbtxt.\n" + text)


def parse_train(out, err):
    r = {}
    m = re.search(r"trained (\d+) steps \((\d+) epochs\)[^,\n]*, ([0-9.]+) examples/s", out)
    if m:
        r.update(steps=int(m.group(1)), epochs=int(m.group(2)), examples_per_s=float(m.group(3)))
    r["eval"] = {k: float(v) for k, v in re.findall(r"^eval (\S+) (\S+)$", out, flags=re.M)}
    m = re.search(r"^train(?:ing)? data: .*$", err, flags=re.M)  # "streaming N rows from ..." or "N rows used"
    if m:
        r["train_data"] = m.group(0)
        n = re.search(r"(\d+) rows", m.group(0))
        r["train_rows"] = int(n.group(1)) if n else None
    m = re.search(r"^data-parallel .*$", out, flags=re.M)
    if m:
        r["data_parallel"] = m.group(0)
    return r


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return {"cpu": model, "cores": os.cpu_count(), "memory_mib": meminfo()["MemTotal_mib"],
            "platform": platform.platform()}


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def fmt(x, spec=".0f"):
    return "—" if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=5.0, help="size of the generated training CSV (1e9 bytes)")
    ap.add_argument("--files", type=int, default=8, help="training CSV files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="/tmp/kiln_dbm")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (CSV, state, shards, runs); a later run reuses the CSV. "
                         "Default: remove all of it but its logs at the end")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds of the pipeline step")
    ap.add_argument("--threads", type=int, default=2, help="threads of analyze, transform and train1")
    ap.add_argument("--shards", type=int, default=8, help="kiln transform --shards")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--shuffle-buffer", type=int, default=262144,
                    help="input_pipeline_bench --shuffle_buffer and the training runs' data.csv.shuffle_buffer")
    ap.add_argument("--torch-workers", type=int, default=2)
    ap.add_argument("--torch-seconds-max", type=float, default=0,
                    help="stop the PyTorch peer after this long and report its rate so far (0: one full epoch)")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma list of the steps to run (after generate)")
    ap.add_argument("--train-set", action="append", default=[], metavar="FIELD=VALUE",
                    help="extra --set overrides for both training runs")
    ap.add_argument("--python", default=sys.executable, help="python with numpy, torch, psutil (the bench venv)")
    ap.add_argument("--kiln", default=os.path.join(BUILD, "cli", "kiln"))
    ap.add_argument("--input-bench", default=None,
                    help="Kiln's input pipeline benchmark (bench/input_pipeline.cc); default BUILD/bench/"
                         "input_pipeline_bench, or BUILD/bench/kiln_bench_input_pipeline (its CMake target's name)")
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "data_beyond_memory.json"))
    args = ap.parse_args()
    if args.input_bench is None:
        names = [os.path.join(BUILD, "bench", n) for n in ("input_pipeline_bench", "kiln_bench_input_pipeline")]
        args.input_bench = next((n for n in names if os.access(n, os.X_OK)), names[0])
    steps = [s for s in args.steps.split(",") if s]
    if any(s not in STEPS for s in steps):
        sys.exit(f"--steps: one of {STEPS} each")
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("/usr/bin/time not found (Debian package `time`)")
    if not os.access(args.kiln, os.X_OK):
        sys.exit(f"{args.kiln} not found: build it (bench/build_kiln.sh)")
    args.workdir = os.path.abspath(args.workdir)
    os.makedirs(args.workdir, exist_ok=True)
    free = shutil.disk_usage(args.workdir).free
    # CSV + shards (~1.7x the CSV) + the PyTorch peer's .npy copy (~1.3x): ~4x the CSV.
    if free < 4.2 * args.gb * 1e9 and not csv_files(args.workdir):
        print(f"warning: {free / 1e9:.0f} GB free under {args.workdir}; this run needs about {4.2 * args.gb:.0f} GB",
              file=sys.stderr)
    W = args.workdir
    csv_glob = os.path.join(W, "csv", "train-*.csv")
    eval_csv = os.path.join(W, "csv", "eval.csv")
    state = os.path.join(W, "state.pbtxt")
    shards = os.path.join(W, "shards")
    spec = os.path.join(ROOT, "examples", "flights", "feature_spec.pbtxt")
    runner = Runner(W)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip())
    meta = {"machine": machine(), "commit": commit, "worktree_modified": dirty, "kiln": args.kiln,
            "input_bench": args.input_bench, "python": args.python, "args": vars(args),
            "command": shlex.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
            "load_average_before": os.getloadavg(), "targets": TARGETS}
    results, failed = {}, []

    def step(name, fn, needs=()):
        if name not in steps and name != "generate":
            return
        missing = [n for n in needs if n in failed]
        if missing:
            results[name] = {"skipped": f"needs {', '.join(missing)}, which failed"}
            failed.append(name)
            print(f"{name}: skipped ({results[name]['skipped']})", file=sys.stderr)
            return
        try:
            results[name] = fn()
        except StepFailed as e:
            results[name] = {"error": str(e)}
            failed.append(name)

    def do_analyze():
        out, err, t = runner.run("analyze", [args.kiln, "analyze", "--spec", spec, "--data", csv_glob,
                                             "--output", state, "--threads", str(args.threads)])
        m = re.search(r"rows (\d+)", out)
        gb = sum(os.path.getsize(f) for f in csv_files(W)) / 1e9
        return {**t, "rows": int(m.group(1)) if m else None, "csv_gb": gb,
                "mb_per_s": gb * 1e3 / t["wall_s"] if t.get("wall_s") else None}

    def do_transform():
        shutil.rmtree(shards, ignore_errors=True)
        shutil.rmtree(shards + ".npy_cache", ignore_errors=True)  # the PyTorch peer's copy of the old shards
        out, err, t = runner.run("transform", [args.kiln, "transform", "--state", state, "--data", csv_glob,
                                               "--output", shards, "--shards", str(args.shards),
                                               "--threads", str(args.threads)])
        m = re.search(r"(\d+) rows in (\d+) shards, ([0-9.]+) MiB", out)
        r = {**t, "output": out.strip().splitlines()[-1] if out.strip() else ""}
        if m:
            r.update(rows=int(m.group(1)), shards=int(m.group(2)), shard_mib=float(m.group(3)))
        if t.get("wall_s") and m:
            r["rows_per_s"] = r["rows"] / t["wall_s"]
        return r

    def do_pipeline():
        pattern = os.path.join(shards, "*.kex")
        r = {"rounds": []}
        out, _, t = runner.run("torch_convert", [args.python, "bench/input_pipeline_torch.py", "--shards", pattern,
                                                 "--convert-only"])
        r["torch_convert"] = {**last_json(out, "input_pipeline_torch.py --convert-only"), **t}
        have_kiln = os.access(args.input_bench, os.X_OK)
        if not have_kiln:
            r["kiln_error"] = f"{args.input_bench} not found (build its target; see bench/run_data_beyond_memory.sh)"
            print(f"pipeline: {r['kiln_error']}; running the PyTorch peer alone", file=sys.stderr)
        for k in range(args.repeat):
            rnd = {}
            if have_kiln:
                try:
                    # Two working threads, as in training: the window reader and the batch producer.
                    cmd = [args.input_bench, "--state", state, "--shards", pattern, "--batch_size", str(args.batch_size),
                           "--shuffle_buffer", str(args.shuffle_buffer)]
                    out, _, t = runner.run(f"pipeline_kiln_{k}", cmd)
                    j = last_json(out, "input_pipeline_bench")
                    if j.get("open_seconds") is not None:
                        j["examples_per_s_incl_open"] = j["examples"] / (j["seconds"] + j["open_seconds"])
                    rnd["kiln"] = {**j, "time_v": t}
                except StepFailed as e:
                    rnd["kiln"] = {"error": str(e)}
            cmd = [args.python, "bench/input_pipeline_torch.py", "--shards", pattern, "--batch-size",
                   str(args.batch_size), "--workers", str(args.torch_workers)]
            if args.torch_seconds_max > 0:
                cmd += ["--seconds-max", str(args.torch_seconds_max)]
            out, _, t = runner.run(f"pipeline_torch_{k}", cmd)
            rnd["torch"] = {**last_json(out, "input_pipeline_torch.py"), "time_v": t}
            if "examples_per_s" in rnd.get("kiln", {}):
                rnd["ratio"] = rnd["kiln"]["examples_per_s"] / rnd["torch"]["examples_per_s"]
                if "examples_per_s_incl_open" in rnd["kiln"]:  # both with their start-up in the time
                    rnd["ratio_incl_startup"] = rnd["kiln"]["examples_per_s_incl_open"] / rnd["torch"]["examples_per_s"]
            r["rounds"].append(rnd)
        ok = [x for x in r["rounds"] if "ratio" in x]
        r["torch_examples_per_s"] = statistics.median(x["torch"]["examples_per_s"] for x in r["rounds"])
        if ok:
            r["kiln_examples_per_s"] = statistics.median(x["kiln"]["examples_per_s"] for x in ok)
            r["kiln_seconds"] = statistics.median(x["kiln"]["seconds"] for x in ok)
            r["kiln_peak_rss_mib"] = max(x["kiln"].get("peak_rss_mib") or x["kiln"]["time_v"].get("peak_rss_mib", 0) for x in ok)
            r["ratio"] = r["kiln_examples_per_s"] / r["torch_examples_per_s"]
            r["ratio_rounds"] = [x["ratio"] for x in ok]
            if all("ratio_incl_startup" in x for x in ok):
                r["ratio_incl_startup"] = statistics.median(x["ratio_incl_startup"] for x in ok)
        elif have_kiln:
            raise StepFailed("pipeline: every input_pipeline_bench round failed: " +
                             r["rounds"][0]["kiln"].get("error", "")[-2000:])
        return r

    cfg = os.path.join(W, "wide_deep_shards.pbtxt")

    def do_train1():
        train_config(args, cfg, shards, state, eval_csv)
        shutil.rmtree(os.path.join(W, "run1"), ignore_errors=True)
        cmd = [args.kiln, "train", "--config", cfg, "--set", "resume=false",
               "--set", f"data.csv.shuffle_buffer={args.shuffle_buffer}"]
        for s in args.train_set:
            cmd += ["--set", s]
        out, err, t = runner.run("train1", cmd)
        return {**t, **parse_train(out, err), "config": cfg}

    def do_train2():
        if not os.path.exists(cfg):
            train_config(args, cfg, shards, state, eval_csv)
        run2 = os.path.join(W, "run2")
        shutil.rmtree(run2, ignore_errors=True)
        wrapper = os.path.join(W, "time_rank.sh")
        with open(wrapper, "w") as f:  # one time -v file per rank
            f.write('#!/bin/sh\nexec /usr/bin/time -v -o "%s/train2.rank${OMPI_COMM_WORLD_RANK:-0}.time" "$@"\n'
                    % runner.logs)
        os.chmod(wrapper, 0o755)
        for k in range(2):
            p = os.path.join(runner.logs, f"train2.rank{k}.time")
            if os.path.exists(p):
                os.remove(p)
        cmd = [args.mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2", wrapper, args.kiln, "train",
               "--config", cfg, "--set", "resume=false", "--set", f"output_dir={run2}", "--set", "threads=1",
               "--set", f"data.csv.shuffle_buffer={args.shuffle_buffer}"]
        for s in args.train_set:
            cmd += ["--set", s]
        out, err, t = runner.run("train2", cmd, timed=False)
        ranks = []
        for k in range(2):
            p = os.path.join(runner.logs, f"train2.rank{k}.time")
            ranks.append(parse_time_v(p) if os.path.exists(p) else {"error": f"{p} missing"})
        return {"process_s": t["process_s"], "mem_before": t["mem_before"], "ranks": ranks,
                "peak_rss_mib_per_rank": [x.get("peak_rss_mib") for x in ranks],
                "wall_s": max((x.get("wall_s") or 0) for x in ranks) or t["process_s"], **parse_train(out, err)}

    step("generate", lambda: generate(args, runner, args.python))
    step("analyze", do_analyze, needs=("generate",))
    step("transform", do_transform, needs=("generate", "analyze"))
    step("pipeline", do_pipeline, needs=("transform",))
    step("train1", do_train1, needs=("transform",))
    step("train2", do_train2, needs=("transform",))
    if "transform" in results and "error" not in results["transform"] and os.path.isdir(shards):
        results["transform"]["shard_bytes"] = dir_bytes(shards)
    meta["load_average_after"] = os.getloadavg()
    meta["failed"] = failed

    # Targets.
    checks = {}
    r1, r2, pl = results.get("train1", {}), results.get("train2", {}), results.get("pipeline", {})
    if r1.get("peak_rss_mib") is not None:
        checks["train1_rss_mib"] = r1["peak_rss_mib"] <= TARGETS["train1_rss_mib"]
    if r2.get("peak_rss_mib_per_rank") and None not in r2["peak_rss_mib_per_rank"]:
        checks["train2_rss_mib_per_rank"] = max(r2["peak_rss_mib_per_rank"]) <= TARGETS["train2_rss_mib_per_rank"]
    if pl.get("kiln_examples_per_s") is not None:
        checks["pipeline_examples_per_s"] = pl["kiln_examples_per_s"] >= TARGETS["pipeline_examples_per_s"]
        checks["pipeline_x_torch"] = pl["ratio"] >= TARGETS["pipeline_x_torch"]
    meta["targets_met"] = checks
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    json.dump({"meta": meta, "results": results}, open(args.json, "w"), indent=1)

    # Summary.
    def ok(key):
        return "" if key not in checks else (" ✓" if checks[key] else " ✗")

    gen = results.get("generate", {})
    print(f"\nData beyond memory: {gen.get('bytes', 0) / 1e9:.2f} GB of flights-like CSV, {gen.get('rows', '?')} rows "
          f"({meta['machine']['cpu']}, {meta['machine']['cores']} CPUs, {meta['machine']['memory_mib'] / 1024:.0f} GiB; "
          f"commit {commit}{' + local changes' if dirty else ''})\n")
    print("| step | wall s | peak RSS MiB | rate | target |")
    print("|---|---:|---:|---|---|")
    row = lambda *c: print("| " + " | ".join(c) + " |")

    def not_run(label, r):
        """Prints the row of a step that failed or was skipped; True when it did."""
        if "error" not in r and "skipped" not in r:
            return False
        row(label, "failed" if "error" in r else "skipped", "", "", "")
        return True
    for name in ["generate", "analyze", "transform"]:
        r = results.get(name)
        if r is None:
            continue
        if not_run(name, r):
            continue
        rate = {"generate": f"{fmt(r.get('write_mb_per_s'))} MB/s writing, {fmt(r.get('mb_per_s_incl_startup'))} MB/s "
                            "in all" + (" (reused)" if r.get("reused") else ""),
                "analyze": f"{fmt(r.get('mb_per_s'))} MB/s",
                "transform": f"{fmt(r.get('rows_per_s'))} rows/s, {r.get('shards', '?')} shards, "
                             f"{fmt(r.get('shard_mib'))} MiB"}[name]
        row(name, fmt(r.get("wall_s"), ".1f"), fmt(r.get("peak_rss_mib")), rate, "")
    if "pipeline" in results:
        if "error" in pl or "skipped" in pl:
            row("pipeline", "failed" if "error" in pl else "skipped", "", "", "")
        else:
            if "kiln_examples_per_s" in pl:
                row("pipeline, Kiln", fmt(pl["kiln_seconds"], ".1f"), fmt(pl["kiln_peak_rss_mib"]),
                    f"{pl['kiln_examples_per_s']:.3g} examples/s, {pl['ratio']:.2f}x PyTorch"
                    + (f" ({pl['ratio_incl_startup']:.2f}x with start-up)" if "ratio_incl_startup" in pl else ""),
                    f">= 3e6/s{ok('pipeline_examples_per_s')}, >= 3x{ok('pipeline_x_torch')}")
            else:
                row("pipeline, Kiln", "not run", "", pl.get("kiln_error", ""), "")
            tr = pl["rounds"][0]["torch"]
            row(f"pipeline, PyTorch ({args.torch_workers} workers)", fmt(tr["seconds"], ".1f"),
                f"{fmt(tr['peak_rss_mib_main'])} main, {fmt(tr['peak_anon_mib_all'])} anon all",
                f"{pl['torch_examples_per_s']:.3g} examples/s" + ("" if tr["epoch_complete"] else " (partial epoch)"), "")
    for name, label in (("train1", "train, 1 rank"), ("train2", "train, 2 ranks")):
        r = results.get(name)
        if r is None:
            continue
        if not_run(label, r):
            continue
        evals = ", ".join(f"{k} {v:.4g}" for k, v in r.get("eval", {}).items())
        rss = (fmt(r.get("peak_rss_mib")) if name == "train1"
               else " / ".join(fmt(x) for x in r["peak_rss_mib_per_rank"]))
        target = (f"<= 1024 MiB{ok('train1_rss_mib')}" if name == "train1"
                  else f"<= 1229 MiB per rank{ok('train2_rss_mib_per_rank')}")
        row(label, fmt(r.get("wall_s"), ".1f"), rss, f"{fmt(r.get('examples_per_s'))} examples/s; eval {evals}", target)
    print(f"\nraw numbers: {os.path.relpath(args.json, ROOT)}; logs: {runner.logs}")
    if not args.keep:  # everything but the logs
        for entry in os.listdir(W):
            if entry != "logs":
                path = os.path.join(W, entry)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
