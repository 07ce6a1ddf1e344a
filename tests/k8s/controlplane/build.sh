#!/usr/bin/env bash
# Builds the control plane the Kubernetes tests run (etcd + kube-apiserver, as envtest does) from the
# Go module proxy, once per version, into a cache outside the repository; prints the cache directory.
# The versions are the ones pinned in etcd/go.mod and apiserver/go.mod beside this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k8s=$(cd "$here/apiserver" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd=$(cd "$here/etcd" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
dir="${K8S_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secure-llm-gateway/controlplane}/k8s-$k8s-etcd-$etcd"
mkdir -p "$dir"
if [ ! -x "$dir/etcd" ]; then
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$dir/etcd.partial" go.etcd.io/etcd/server/v3)
  mv "$dir/etcd.partial" "$dir/etcd"
fi
if [ ! -x "$dir/kube-apiserver" ]; then
  minor=${k8s#v1.}; minor=${minor%%.*}
  # So /version reports the real release (Helm and kubectl read it).
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s"
  ldflags="$ldflags -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  (cd "$here/apiserver" && go build -trimpath -ldflags "$ldflags" -o "$dir/kube-apiserver.partial" \
    k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$dir/kube-apiserver.partial" "$dir/kube-apiserver"
fi
echo "$dir"
