#!/usr/bin/env bash
# The container images the one-node test cluster runs (tests/node), built here with buildah and saved
# as archives that the cluster fixture imports into its containerd. Nothing comes from a registry:
#   python-bookworm   a Debian bookworm base with Python 3 (debootstrap), standing in for the
#                     Dockerfile's python:*-slim base, which is on a registry this machine cannot reach
#   secure-llm-gateway the project's Dockerfile, unmodified, on that base (rebuilt on every run; the
#                     layer cache makes an unchanged tree take seconds)
#   redis             Debian's package on that base (tests/node/images/redis/Containerfile)
#   pause, coredns, prometheus, prometheus-operator, prometheus-config-reloader
#                     single static binaries from scratch (pause.c from the Kubernetes module; the rest
#                     from `make tools`; Debian's Prometheus has no Kubernetes discovery)
#
#   scripts/images.sh prepare     build what is missing, one progress line per image
#   scripts/images.sh archive NAME print an image archive's path (exit 1 with one line if missing)
#   scripts/images.sh ref NAME     print the image reference the archive holds
#
# Archives live under $cache/images, keyed by the version of what they hold; buildah's storage under
# $cache/buildah (its layer cache). Needs root, buildah and debootstrap (`make system-deps`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${SECURE_LLM_GATEWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secure-llm-gateway}"
images="$cache/images"
tools="$root/scripts/tools.sh"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=http://deb.debian.org/debian
# Bump when the base recipe below changes: the key of the cached base.
BASE_REVISION=1
BASE_REF="localhost/python-$DEBIAN_SUITE:stand-in-r$BASE_REVISION"

buildah_() {
  buildah --root "$cache/buildah/root" --runroot "${TMPDIR:-/tmp}/secure-llm-gateway-buildah-run" \
    --storage-driver overlay "$@"
}

tool_version() {
  local binary
  binary=$("$tools" path "$1") || exit 1
  basename "$(dirname "$binary")" | sed 's/^[a-z-]*-v/v/'
}

# name -> image reference (the tag carries the version of what it holds)
ref() {
  case "$1" in
    python-bookworm) echo "$BASE_REF" ;;
    secure-llm-gateway) echo "localhost/secure-llm-gateway:dev" ;;
    redis) echo "localhost/redis:$DEBIAN_SUITE-r$BASE_REVISION" ;;
    prometheus) echo "localhost/prometheus:$(tool_version prometheus)" ;;
    # containerd's sandbox_image names this exact reference (tests/node/config/containerd.toml)
    pause) echo "registry.k8s.io/pause:3.10" ;;
    coredns) echo "localhost/coredns:$(tool_version coredns)" ;;
    prometheus-operator) echo "localhost/prometheus-operator:$(tool_version operator)" ;;
    prometheus-config-reloader) echo "localhost/prometheus-config-reloader:$(tool_version operator)" ;;
    *) echo "unknown image '$1'" >&2; return 2 ;;
  esac
}
IMAGES=(python-bookworm pause coredns redis prometheus prometheus-operator prometheus-config-reloader
  secure-llm-gateway)

archive() { local r; r=$(ref "$1") && echo "$images/$(echo "${r#*/}" | tr ':/' '__').tar"; }

# Each build_* commits the image $(ref NAME) into buildah's storage.
build_python-bookworm() {
  local rootfs=$images/rootfs.partial
  rm -rf "$rootfs"
  # A mirror's transient failure ends debootstrap without a word (seen once on a cold machine, while
  # retrieving a package): tried three times, from scratch, before the build fails.
  local attempt
  for attempt in 1 2 3; do
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" && break
    [ "$attempt" = 3 ] && return 1
    echo "images: debootstrap failed (attempt $attempt of 3); trying again" >&2
    rm -rf "$rootfs"
    sleep 5
  done
  # What the official python image gives a Dockerfile: `python` on PATH. The machine's extra CAs
  # (a TLS-intercepting egress proxy's, when there is one) go into the trust store, and pip is told
  # to use it, so `pip install` inside image builds works wherever it works on this machine.
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$rootfs" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends python-is-python3 >/dev/null
    update-ca-certificates >/dev/null
    apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man /var/cache/apt/*.bin'
  local c
  tar -C "$rootfs" --numeric-owner -cf "$rootfs.tar" .
  c=$(buildah_ from scratch)
  buildah_ add "$c" "$rootfs.tar" / >/dev/null  # a local tar archive is unpacked
  buildah_ config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt --cmd python3 "$c"
  buildah_ commit -q "$c" "$(ref python-bookworm)" >/dev/null
  buildah_ rm "$c" >/dev/null
  rm -rf "$rootfs" "$rootfs.tar"
}

from_containerfile() {  # $1: name, $2: context directory, $3...: more bud arguments
  local name=$1 context=$2
  shift 2
  # --cni-config-dir: buildah makes that directory even for host networking; not /etc/cni.
  buildah_ bud --pull=never --network host --layers -q --build-arg "BASE_IMAGE=$BASE_REF" \
    --cni-config-dir "$cache/buildah/cni" \
    -t "$(ref "$name")" "$@" "$context" >/dev/null
}

build_secure-llm-gateway() {
  from_containerfile secure-llm-gateway "$root" -f "$root/Dockerfile" --build-arg "PYTHON_IMAGE=$BASE_REF"
}
build_redis() { from_containerfile redis "$root/tests/node/images/redis"; }
build_prometheus() { from_binary prometheus "$("$tools" path prometheus)"; }

from_binary() {  # $1: name, $2: binary; an image of that one file at /bin/<file> (where the upstream
  # images keep it: the Prometheus Operator runs /bin/prometheus-config-reloader by path), run as nobody
  local c
  c=$(buildah_ from scratch)
  buildah_ copy "$c" "$2" "/bin/$(basename "$2")" >/dev/null
  buildah_ config --entrypoint "[\"/bin/$(basename "$2")\"]" --user 65534:65534 "$c"
  buildah_ commit -q "$c" "$(ref "$1")" >/dev/null
  buildah_ rm "$c" >/dev/null
}

build_pause() {
  local work source
  work=$(mktemp -d)
  # The kubelet's pause container, compiled from the source in the Kubernetes module `make tools` used.
  source=$(cd "$root/tools/go/kubernetes" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
  gcc -Os -static -DVERSION=v3.10 -o "$work/pause" "$source"
  strip "$work/pause"
  from_binary pause "$work/pause"
  rm -rf "$work"
}
build_coredns() { from_binary coredns "$("$tools" path coredns)"; }
build_prometheus-operator() { from_binary prometheus-operator "$("$tools" path operator)"; }
build_prometheus-config-reloader() {
  from_binary prometheus-config-reloader "$("$tools" path prometheus-config-reloader)"
}

prepare() {
  local name=$1 target started log before after
  target=$(archive "$name")
  # The project's image follows the tree: always rebuilt (seconds when nothing changed), saved again
  # only when its image ID changed.
  if [ -f "$target" ] && [ "$name" != secure-llm-gateway ]; then
    # The base is built upon: buildah's storage must hold it, not only the archive.
    if [ "$name" = python-bookworm ] && ! buildah_ images -q "$(ref "$name")" >/dev/null 2>&1; then
      buildah_ pull -q "docker-archive:$target" >/dev/null  # the archive names its reference
    fi
    echo "images: $name cached ($target)"
    return
  fi
  mkdir -p "$images"
  started=$SECONDS
  log="$images/$name.log"
  before=$(buildah_ images -q --no-trunc "$(ref "$name")" 2>/dev/null || true)
  echo "images: building $name ($(ref "$name")) ..."
  # In the background, not as an `if` condition, so that `set -e` holds inside the step.
  "build_$name" >"$log" 2>&1 &
  if ! wait $!; then
    echo "images: building $name failed; the end of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  after=$(buildah_ images -q --no-trunc "$(ref "$name")")
  if [ -f "$target" ] && [ "$before" = "$after" ]; then
    echo "images: $name unchanged in $((SECONDS - started)) s"
    return
  fi
  rm -f "$target.partial"
  buildah_ push -q "$(ref "$name")" "docker-archive:$target.partial:$(ref "$name")" >>"$log" 2>&1
  mv -f "$target.partial" "$target"
  echo "images: $name ready in $((SECONDS - started)) s"
}

case "${1-}" in
  prepare)
    shift
    (($#)) || set -- "${IMAGES[@]}"
    for name in "$@"; do prepare "$name"; done
    ;;
  archive | ref)
    (($# == 2)) || { echo "usage: $0 $1 NAME" >&2; exit 2; }
    if [ "$1" = ref ]; then ref "$2"; exit; fi
    target=$(archive "$2")
    [ -f "$target" ] || { echo "image $2 is not prepared: run \`make images\` first" >&2; exit 1; }
    echo "$target"
    ;;
  *)
    echo "usage: $0 prepare [NAME ...] | archive NAME | ref NAME   (NAME: ${IMAGES[*]})" >&2
    exit 2
    ;;
esac
