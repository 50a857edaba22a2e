"""Fixtures of the Python package's tests: the kiln binary and a babyweight model it trained and
exported (tests/CMakeLists.txt sets KILN_BINARY, KILN_SOURCE_DIR and PYTHONPATH=BUILD/python)."""
import json
import os
import subprocess
import time
import urllib.request

import pytest

SOURCE = os.environ["KILN_SOURCE_DIR"]
BINARY = os.environ["KILN_BINARY"]
BABYWEIGHT = os.path.join(SOURCE, "examples", "babyweight")
# read_csv options that parse numbers exactly as Kiln does (correctly rounded): pandas 3 does by
# default and deprecates the option.
EXACT = {} if int(__import__("pandas").__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def kiln(*args, cwd=None):
    r = subprocess.run([BINARY, *args], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, f"kiln {' '.join(args)}: {r.stderr}"
    return r


@pytest.fixture(scope="session")
def babyweight_model(tmp_path_factory):
    """(config, output_dir, model base path) of a wide & deep babyweight model, 2 epochs."""
    work = tmp_path_factory.mktemp("babyweight")
    config = os.path.join(BABYWEIGHT, "wide_deep.pbtxt")
    out = str(work / "run")
    kiln("train", "--config", config, "--set", "epochs=2", "--set", f"output_dir={out}")
    base = str(work / "models" / "babyweight")
    kiln("export", "--config", config, "--set", f"output_dir={out}", "--model_base_path", base)
    return config, out, base


class Server:
    """kiln serve on a free loopback port, for as long as the test needs it."""

    def __init__(self, base, work):
        port_file = os.path.join(work, "port")
        self.proc = subprocess.Popen([BINARY, "serve", "--model_base_path", base, "--rest_port", "0", "--port_file", port_file],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(600):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            assert self.proc.poll() is None, self.proc.stderr.read()
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(open(port_file).read())}"

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def server(babyweight_model, tmp_path_factory):
    s = Server(babyweight_model[2], str(tmp_path_factory.mktemp("serve")))
    yield s
    s.close()
