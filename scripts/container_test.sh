#!/usr/bin/env bash
# The serving container, built and run without a Docker daemon: podman builds
# docker/Dockerfile.cpu (--isolation chroot) on a Debian 12 base image made here by debootstrap
# from the configured Debian mirror, and runs it (runc, host network) as docker/k8s/serving.yaml
# does; tests/tools/container_check.py checks the manifest against the image and the running
# container (probes, metrics, the predict request, SIGTERM drain). Not part of scripts/test.sh:
# the first run compiles kiln inside the image (about 6 minutes on 2 cores); later runs reuse
# podman's cached layers while the sources are unchanged. Installs what it needs (Debian packages).
#   scripts/container_test.sh           build (or reuse) kiln:cpu, run and check it
#   KILN_CONTAINER_REBASE=1 ...         make the debootstrap base images again
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work="${KILN_BUILD_DIR:-build}/container"
image=localhost/kiln:cpu
mkdir -p "$work"
work=$(cd "$work" && pwd)

# podman and what it runs with, debootstrap for the base image, PyYAML for the manifest check,
# python3-venv for the example data's venv.
bash scripts/setup.sh podman runc debootstrap python3-yaml python3 python3-venv
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
podman() { $SUDO env podman "$@"; }
# podman gives containers nofile=1048576 and nproc=4194304 by default; where the engine lacks
# CAP_SYS_RESOURCE (this sandbox) runc cannot raise the hard limits that far ("error setting
# rlimit type 7: operation not permitted"), so the limits are given: the current hard nofile, and
# an nproc below what podman itself keeps.
run_args=(--runtime runc --network host --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)

# 1. The base images the Dockerfile starts FROM (debian:12, debian:12-slim), unless present: a
#    minbase Debian 12 made by debootstrap from the Debian mirror apt is configured with, trimmed
#    as Debian's slim images are (no docs, man pages, locales, apt lists or caches).
base=docker.io/library/debian
if [ -n "${KILN_CONTAINER_REBASE:-}" ] || ! podman image exists $base:12 || ! podman image exists $base:12-slim; then
  # Repository URIs of the Debian bookworm suites apt uses (main, updates, security).
  # shellcheck disable=SC2016  # apt's format fields, not shell expansions
  mapfile -t repos < <(apt-get indextargets --format '$(REPO_URI) $(CODENAME) $(LABEL) $(TARGET_OF)' |
                         awk '$2 ~ /^bookworm/ && $3 ~ /^Debian/ && $4 == "deb" {print $1, $2}' | sort -u)
  mirror=$(printf '%s\n' "${repos[@]}" | awk '$2 == "bookworm" {print $1; exit}')
  [ -n "$mirror" ] || { echo "container_test: apt has no Debian bookworm repository configured" >&2; exit 1; }
  rootfs="$work/rootfs"
  $SUDO rm -rf "$rootfs"
  echo "container_test: debootstrap --variant=minbase bookworm from $mirror"
  $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  printf '%s\n' "${repos[@]}" | awk '{print "deb", $1, $2, "main"}' | $SUDO tee "$rootfs/etc/apt/sources.list" >/dev/null
  # Keep apt's date checks as on this machine (a snapshot mirror's Release files may be old).
  apt-config dump | grep -E '^Acquire::Check-(Valid-Until|Date) ' | $SUDO tee "$rootfs/etc/apt/apt.conf.d/99mirror" >/dev/null || true
  $SUDO tee "$rootfs/etc/dpkg/dpkg.cfg.d/slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  $SUDO find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
  $SUDO find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  $SUDO rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  $SUDO tar --numeric-owner -C "$rootfs" -c . |
    podman import --quiet --change 'CMD ["bash"]' - $base:12 >/dev/null
  podman tag $base:12 $base:12-slim
  $SUDO rm -rf "$rootfs"
  echo "container_test: base image $base:12 (= 12-slim): $(podman image inspect $base:12 --format '{{.Size}}' | numfmt --to=si --round=nearest) "
fi

# 2. The image. --format docker keeps the HEALTHCHECK (OCI images have none).
echo "container_test: podman build -f docker/Dockerfile.cpu -t $image (log: $work/build.log)"
start=$(date +%s)
if ! podman build --isolation chroot --pull=never --format docker -f docker/Dockerfile.cpu -t $image . \
     > "$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  exit 1
fi
echo "container_test: built in $(( $(date +%s) - start )) s: $image $(podman image inspect $image --format '{{.Size}}' | numfmt --to=si --round=nearest)" \
     "($(podman image inspect $image --format '{{.Size}}') bytes; base $(podman image inspect $base:12-slim --format '{{.Size}}' | numfmt --to=si --round=nearest))"
podman history --format '{{.Size}}\t{{.CreatedBy}}' $image | cut -c1-150 | head -12

# 3. A babyweight servable, trained and exported by the image's own kiln (briefly: 200 steps).
bash examples/babyweight/fetch_data.sh
$SUDO rm -rf "$work/example" "$work/models" "$work/check"
mkdir -p "$work/example" "$work/models" "$work/check"
cp -rL examples/babyweight/wide_deep.pbtxt examples/babyweight/feature_spec.pbtxt examples/babyweight/data "$work/example/"
podman run --rm "${run_args[@]}" --no-healthcheck --user 0 --entrypoint /bin/sh -v "$work/example:/example" -v "$work/models:/models" \
  -w /example $image -c 'set -e; kiln train --config wide_deep.pbtxt --set max_steps=200 --set output_dir=run > train.log 2>&1 || { cat train.log; exit 1; }
                         tail -1 train.log; kiln export --config wide_deep.pbtxt --set output_dir=run --model_base_path /models/babyweight'

# 4. Run it as docker/k8s/serving.yaml does, send the predict request and SIGTERM.
body='{"instances":[{"key":"b1","is_male":"True","mother_race":"white","mother_age":26,"mother_educ":12,"father_age":28,"prenatal_visits":12,"prenatal_start_month":2,"cigs_per_day":0,"drinks_per_week":0}]}'
chmod 777 "$work/check"
args=(--image "$image" --manifest docker/k8s/serving.yaml --models "$work/models" --work "$work/check" --body "$body")
for a in "${run_args[@]}"; do args+=("--podman-arg=$a"); done
$SUDO python3 tests/tools/container_check.py "${args[@]}"
echo "container_test: passed"
