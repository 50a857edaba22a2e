"""kiln.train: `kiln train` in-process, its metrics, its progress events, the GIL released, Ctrl-C."""
import os
import signal
import threading

import pytest

import kiln
import kiln.training
from conftest import BABYWEIGHT, kiln as run_kiln

CONFIG = os.path.join(BABYWEIGHT, "wide_deep.pbtxt")


def test_the_metrics_are_kiln_trains(tmp_path):
    cli = run_kiln("train", "--config", CONFIG, "--set", "epochs=2", "--set", f"output_dir={tmp_path / 'cli'}")
    printed = {line.split()[1]: float(line.split()[2]) for line in cli.stdout.splitlines() if line.startswith("eval ")}
    r = kiln.train(CONFIG, epochs=2, output_dir=str(tmp_path / "py"), progress=False)
    assert printed and set(r["metrics"]) == set(printed)
    for name, value in printed.items():
        assert abs(r["metrics"][name] - value) <= 5e-7 * max(1.0, abs(value)), name
    assert r["epochs"] == 2 and r["steps"] > 0 and r["checkpoint"].startswith(str(tmp_path / "py"))
    # Run again: resumed at the end, nothing trained.
    assert kiln.train(CONFIG, epochs=2, output_dir=str(tmp_path / "py"), progress=False)["already_done"]


def test_progress_events_reach_python(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(kiln.training._Bar, "update", lambda self, e: events.append(e))
    r = kiln.train(CONFIG, epochs=1, log_every_steps=5, output_dir=str(tmp_path))
    steps = [e for e in events if not e["message"]]
    assert len(steps) >= 3
    assert steps[-1]["step"] == r["steps"] == steps[-1]["total"]
    assert all(e["loss"] > 0 for e in steps)


def test_the_gil_is_released_while_it_trains(tmp_path):
    """This thread sees a checkpoint of the middle of the run while the final one is not written
    yet: it ran Python code while the trainer was inside C++. With the GIL held throughout, it
    could only look before the run began (no checkpoint) or after it ended (the final one there)."""
    done = threading.Event()
    result = {}

    def run():
        result["r"] = kiln.train(CONFIG, epochs=100, output_dir=str(tmp_path), progress=False,
                                 **{"checkpoint.every_steps": 50, "checkpoint.keep_last": 100})
        done.set()

    t = threading.Thread(target=run)
    t.start()
    checkpoints = tmp_path / "checkpoints"
    newest_seen = []  # the newest checkpoint step at each look
    while not done.is_set():
        steps = [int(p.name[5:-6]) for p in checkpoints.glob("ckpt-*.kckpt")] if checkpoints.exists() else []
        if steps:
            newest_seen.append(max(steps))
    t.join()
    final = result["r"]["steps"]
    assert any(step < final for step in newest_seen), (final, newest_seen[:3])


def test_ctrl_c_stops_it(tmp_path):
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        kiln.train(CONFIG, epochs=100000, log_every_steps=1, output_dir=str(tmp_path), progress=False)


def test_a_bad_override_names_the_field(tmp_path):
    with pytest.raises(kiln.KilnError, match="no_such_field"):
        kiln.train(CONFIG, no_such_field=3, output_dir=str(tmp_path), progress=False)
