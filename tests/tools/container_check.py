#!/usr/bin/env python3
"""Runs the serving image as docker/k8s/serving.yaml runs it and checks the manifest against what
the container answers: scripts/container_test.sh calls it after building the image.

  container_check.py --image localhost/kiln:cpu --manifest docker/k8s/serving.yaml --models DIR \
                     --work DIR --body JSON [--podman-arg ARG ...]

Static: the Deployment's image, container port, probes, Prometheus annotations, Service port,
HPA target, user and volume against the image's configuration (podman image inspect). Running
(podman run --network host, with the manifest's env, args, user and /models mount): the probe
paths and the metrics path on the container port, the predict request (and its answer equal to
`kiln predict` on the same row, run from the same image), the image's HEALTHCHECK, then SIGTERM
during an upload: readiness 503 and requests still answered during shutdown_grace_s, then the
listener closed, the upload answered with Connection: close, exit status 0 with "drained".
Exit 1 on the first failed check.
"""
import argparse, http.client, json, os, socket, subprocess, sys, time

import yaml

CONTAINER = "kiln-container-test"
SHUTDOWN_DEADLINE_S = 20  # ServeConfig's default; the manifest does not change it


def fail(msg):
    sys.exit(f"container_check: FAIL: {msg}")


def ok(msg):
    print(f"container_check: ok: {msg}", flush=True)


def podman(*args, check=True):
    r = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        fail(f"podman {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


def request(port, method, path, body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        r = c.getresponse()
        return r.status, r.getheader("Content-Type", ""), r.read().decode()
    finally:
        c.close()


def named_port(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    fail(f"port name {port!r} is not one of container {container['name']}'s ports")


def arg_value(args, flag, default):
    return float(args[args.index(flag) + 1]) if flag in args else default


def static_checks(docs, image_name, image):
    kinds = {d["kind"]: d for d in docs if d}
    dep, svc, hpa = kinds.get("Deployment"), kinds.get("Service"), kinds.get("HorizontalPodAutoscaler")
    if not (dep and svc and hpa):
        fail(f"expected a Deployment, a Service and a HorizontalPodAutoscaler, got {sorted(kinds)}")
    pod = dep["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    cfg = image["Config"]

    # The image the manifest names is the one built: kiln:cpu is localhost/kiln:cpu to podman.
    if c["image"] != image_name.removeprefix("localhost/"):
        fail(f"the Deployment runs image {c['image']}, the image built is {image_name}")
    ok(f"Deployment image {c['image']} is the image built ({image['Id'][:12]})")

    port = named_port(c, "http")
    exposed = sorted(int(p.split("/")[0]) for p in (cfg.get("ExposedPorts") or {}))
    if port not in exposed:
        fail(f"containerPort {port} is not a port the image exposes {exposed}")
    if f"--rest_port {port}" not in " ".join(cfg.get("Entrypoint") or []):
        fail(f"the image's entrypoint does not serve on {port}: {cfg.get('Entrypoint')}")
    ok(f"containerPort {port} = the image's EXPOSE and its entrypoint's --rest_port")

    probes = {}
    for kind in ("readinessProbe", "livenessProbe"):
        g = c[kind]["httpGet"]
        if named_port(c, g["port"]) != port:
            fail(f"{kind} port {g['port']} is not the serving port {port}")
        probes[kind] = g["path"]
    hc = " ".join((image.get("Healthcheck") or cfg.get("Healthcheck") or {}).get("Test") or [])
    if probes["readinessProbe"] not in hc or f":{port}/" not in hc:
        fail(f"the image's HEALTHCHECK ({hc!r}) does not probe {probes['readinessProbe']} on {port}")
    ok(f"probes on port {port}: readiness {probes['readinessProbe']} (also the image's HEALTHCHECK), "
       f"liveness {probes['livenessProbe']}")

    ann = pod["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or int(ann.get("prometheus.io/port", -1)) != port:
        fail(f"Prometheus annotations {ann} do not scrape port {port}")
    metrics_path = ann.get("prometheus.io/path", "/metrics")

    (sp,) = svc["spec"]["ports"]
    if named_port(c, sp["targetPort"]) != port:
        fail(f"Service targetPort {sp['targetPort']} is not the container port {port}")
    if any(pod["metadata"]["labels"].get(k) != v for k, v in svc["spec"]["selector"].items()):
        fail(f"Service selector {svc['spec']['selector']} does not select the pods {pod['metadata']['labels']}")
    ref = hpa["spec"]["scaleTargetRef"]
    if (ref["kind"], ref["name"]) != ("Deployment", dep["metadata"]["name"]):
        fail(f"HPA targets {ref}, not Deployment {dep['metadata']['name']}")
    ok(f"Service {sp['port']} -> {sp['targetPort']} ({port}) selects the pods; HPA scales {ref['name']}")

    sc = pod["spec"].get("securityContext", {})
    user = cfg.get("User", "")
    if not user.isdigit() or int(user) == 0:
        fail(f"runAsNonRoot needs a numeric non-root USER in the image, it has {user!r}")
    if "runAsUser" in sc and sc["runAsUser"] != int(user):
        fail(f"runAsUser {sc['runAsUser']} is not the image's USER {user}")
    ok(f"runAsNonRoot/runAsUser {sc.get('runAsUser')} = the image's USER {user}")

    mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
    if "/models" not in mounts or "/models/${KILN_MODEL_NAME}" not in " ".join(cfg.get("Entrypoint") or []):
        fail(f"the image serves /models/$KILN_MODEL_NAME, the manifest mounts {mounts}")
    env = {e["name"]: e["value"] for e in c.get("env", [])}
    if not any(e.startswith("KILN_MODEL_NAME=") for e in cfg.get("Env") or []) or "KILN_MODEL_NAME" not in env:
        fail("KILN_MODEL_NAME is not set by both the image and the manifest")
    args = [str(a) for a in c.get("args", [])]
    grace = arg_value(args, "--shutdown_grace_s", 5.0)
    tgps = pod["spec"].get("terminationGracePeriodSeconds", 30)
    if not tgps > grace + SHUTDOWN_DEADLINE_S:
        fail(f"terminationGracePeriodSeconds {tgps} <= shutdown_grace_s {grace} + shutdown_deadline_s {SHUTDOWN_DEADLINE_S}")
    ok(f"model {env['KILN_MODEL_NAME']} from the /models mount; terminationGracePeriodSeconds {tgps} > "
       f"grace {grace:g} + deadline {SHUTDOWN_DEADLINE_S}")
    return dict(port=port, probes=probes, metrics_path=metrics_path, env=env, args=args, grace=grace,
                user=user, model=env["KILN_MODEL_NAME"])


def wait_ready(port, path, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if request(port, "GET", path, timeout=2)[0] == 200:
                return time.time() - t0
        except OSError:
            pass
        state = podman("inspect", CONTAINER, "--format", "{{.State.Status}}").stdout.strip()
        if state != "running":
            fail(f"the container is {state}:\n{podman('logs', CONTAINER, check=False).stderr}")
        time.sleep(0.2)
    fail(f"not ready on {path} after {timeout} s:\n{podman('logs', CONTAINER, check=False).stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--models", required=True, help="host directory mounted at /models")
    ap.add_argument("--work", required=True)
    ap.add_argument("--body", required=True, help="the predict request body")
    ap.add_argument("--podman-arg", action="append", default=[], help="passed to every podman run")
    a = ap.parse_args()

    (image,) = json.loads(podman("image", "inspect", a.image).stdout)
    m = static_checks(list(yaml.safe_load_all(open(a.manifest))), a.image, image)
    port, model = m["port"], m["model"]

    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            fail(f"port {port} is in use on this machine: the container (host network) needs it")

    # The same row through `kiln predict`, from the same image (no server involved).
    rows = json.loads(a.body)["instances"]
    with open(os.path.join(a.work, "rows.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    podman("run", "--rm", *a.podman_arg, "--no-healthcheck", "--user", m["user"], "--entrypoint", "kiln",
           "-v", f"{os.path.abspath(a.models)}:/models:ro", "-v", f"{os.path.abspath(a.work)}:/work",
           a.image, "predict", "--model", f"/models/{model}", "--input", "/work/rows.jsonl",
           "--output", "/work/predictions.jsonl")
    offline = open(os.path.join(a.work, "predictions.jsonl")).read().splitlines()

    podman("rm", "-f", "-t", "0", CONTAINER, check=False)
    # No systemd here to time the image's HEALTHCHECK: it is run by hand below.
    run = ["run", "-d", "--name", CONTAINER, *a.podman_arg, "--health-interval", "disable", "--user", m["user"],
           "-v", f"{os.path.abspath(a.models)}:/models:ro"]
    for k, v in m["env"].items():
        run += ["-e", f"{k}={v}"]
    print("$ podman " + " ".join(run + [a.image] + m["args"]), flush=True)
    podman(*run, a.image, *m["args"])
    try:
        drive(a, m, offline)
    except BaseException:
        print(podman("logs", CONTAINER, check=False).stderr, file=sys.stderr)
        raise
    finally:
        podman("rm", "-f", "-t", "0", CONTAINER, check=False)


def drive(a, m, offline):
    port, model, probes = m["port"], m["model"], m["probes"]
    took = wait_ready(port, probes["readinessProbe"])
    ok(f"ready on {probes['readinessProbe']} (port {port}) {took:.1f} s after start")
    status, _, body = request(port, "GET", probes["livenessProbe"])
    if status != 200:
        fail(f"liveness {probes['livenessProbe']} answered {status} {body}")
    ok(f"liveness {probes['livenessProbe']} answers 200")
    status, _, body = request(port, "GET", f"/v1/models/{model}")
    if status != 200 or '"state":"AVAILABLE"' not in body:
        fail(f"GET /v1/models/{model}: {status} {body}")
    ok(f"GET /v1/models/{model}: {body}")

    print(f"$ curl -s -X POST 127.0.0.1:{port}/v1/models/{model}:predict -d '{a.body}'", flush=True)
    status, _, answer = request(port, "POST", f"/v1/models/{model}:predict", a.body)
    print(answer, flush=True)
    if status != 200:
        fail(f"predict answered {status}")
    preds = json.loads(answer)["predictions"]
    rows = json.loads(a.body)["instances"]
    if len(preds) != len(rows):
        fail(f"{len(rows)} rows, {len(preds)} predictions")
    for row, p in zip(rows, preds):
        value = p["predictions"][0]
        if p.get("key") != row.get("key") or not 1.0 < value < 15.0:
            fail(f"implausible answer {p} for {row}")
    if answer != '{"predictions":[' + ",".join(offline) + "]}":
        fail(f"the server's answer {answer} differs from kiln predict's {offline}")
    ok(f"predict: 200, a birth weight of {preds[0]['predictions'][0]:.2f} lb for key {preds[0]['key']}, "
       "byte-identical to kiln predict on the same row")

    status, ctype, text = request(port, "GET", m["metrics_path"])
    want = f'kiln_requests_total{{model="{model}",version="1",status="200"}}'
    if status != 200 or not ctype.startswith("text/plain") or want not in text:
        fail(f"GET {m['metrics_path']}: {status} {ctype}, {want} missing:\n{text[:2000]}")
    ok(f"metrics at {m['metrics_path']} (prometheus.io annotations): 200 {ctype}, "
       + next(l for l in text.splitlines() if l.startswith(want)))

    hc = podman("healthcheck", "run", CONTAINER, check=False)
    if hc.returncode != 0:
        fail(f"podman healthcheck run: exit {hc.returncode} {hc.stdout.strip()} {hc.stderr.strip()}")
    ok(f"the image's HEALTHCHECK passes ({hc.stdout.strip() or 'healthy'})")

    drain(a, m)


def drain(a, m):
    port, model, probes, grace = m["port"], m["model"], m["probes"], m["grace"]
    body = a.body.encode()
    # An upload in flight across the whole shutdown: headers and half the body now, the rest
    # after the listener has closed.
    up = socket.create_connection(("127.0.0.1", port), timeout=30)
    up.sendall(f"POST /v1/models/{model}:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2])
    time.sleep(0.2)
    t0 = time.time()
    podman("kill", "--signal", "TERM", CONTAINER)
    print(f"$ podman kill --signal TERM {CONTAINER}", flush=True)
    time.sleep(0.3)
    status, _, _ = request(port, "GET", probes["readinessProbe"])
    live, _, _ = request(port, "GET", probes["livenessProbe"])
    pred, _, _ = request(port, "POST", f"/v1/models/{model}:predict", a.body)
    if (status, live, pred) != (503, 200, 200):
        fail(f"during the grace period: readiness {status} (want 503), liveness {live} (want 200), predict {pred} (want 200)")
    ok(f"after SIGTERM: readiness {status}, liveness {live}, a new predict request {pred} (grace {grace:g} s)")

    closed = None
    while time.time() - t0 < grace + 5:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                closed = time.time() - t0
                break
        time.sleep(0.05)
    if closed is None or closed < grace - 0.5:
        fail(f"the listener closed after {closed} s, want about {grace:g} s")
    ok(f"listener closed {closed:.2f} s after SIGTERM: new connections refused")

    up.sendall(body[len(body) // 2:])
    reply = b""
    while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < content_length(reply):
        chunk = up.recv(65536)
        if not chunk:
            break
        reply += chunk
    up.close()
    head = reply.split(b"\r\n\r\n", 1)[0].decode().lower()
    if not head.startswith("http/1.1 200") or "connection: close" not in head:
        fail(f"the upload in flight got {reply[:300]!r}")
    ok(f"the upload in flight during the drain: {head.splitlines()[0].upper()}, connection: close")

    exit_code = int(podman("wait", CONTAINER).stdout.strip())
    took = time.time() - t0
    logs = podman("logs", CONTAINER).stderr
    print("\n".join("  | " + l for l in logs.splitlines() if "kiln serve:" in l), flush=True)
    if exit_code != 0 or "drained, exiting" not in logs:
        fail(f"exit status {exit_code} after SIGTERM")
    ok(f"exit status 0, {took:.2f} s after SIGTERM (drained)")


def content_length(reply):
    for line in reply.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


if __name__ == "__main__":
    main()
