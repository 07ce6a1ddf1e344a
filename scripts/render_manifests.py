"""Render k8s/base/secure-llm-gateway.yaml from the Helm chart's defaults (one source of truth).

    python scripts/render_manifests.py --write   # after changing the chart
    python scripts/render_manifests.py --check   # exit 1 when the committed file is stale (a test runs it)

Rendered as release ``secure-llm-gateway`` in namespace ``secure-llm-gateway``, with its Secrets
expected to exist (``secure-llm-gateway-upstream`` with key ``openai-api-key``,
``secure-llm-gateway-redis`` with key ``redis-password``, ``secure-llm-gateway-tenant-hash`` with
key ``tenant-hash-key``), without the ``helm test`` pod, without Helm's hooks (kubectl would run the
pre-delete Job at once: it stops the operator), and without the labels that would claim Helm
manages the objects.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "k8s" / "base" / "secure-llm-gateway.yaml"
NAME = "secure-llm-gateway"
HEADER = "# Rendered from charts/secure-llm-gateway by scripts/render_manifests.py; do not edit.\n"


def render() -> str:
    tools = str(ROOT / "scripts" / "tools.sh")
    subprocess.run([tools, "prepare", "helm"], check=True, stdout=subprocess.DEVNULL)
    helm = subprocess.run([tools, "path", "helm"], capture_output=True, text=True, check=True).stdout.strip()
    out = subprocess.run(
        [
            helm, "template", NAME, str(ROOT / "charts" / NAME), "--namespace", NAME,
            "--skip-tests", "--no-hooks",
            "--set", f"gateway.upstream.existingSecret={NAME}-upstream",
            "--set", f"redis.auth.existingSecret={NAME}-redis",
            "--set", f"tenantHashKey.existingSecret={NAME}-tenant-hash",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    objects = [doc for doc in yaml.safe_load_all(out) if doc]
    for obj in objects:
        for metadata in (obj["metadata"], obj.get("spec", {}).get("template", {}).get("metadata", {})):
            labels = metadata.get("labels", {})
            labels.pop("helm.sh/chart", None)
            if labels.get("app.kubernetes.io/managed-by") == "Helm":
                labels["app.kubernetes.io/managed-by"] = "kustomize"
    return HEADER + yaml.safe_dump_all(objects, sort_keys=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args()
    rendered = render()
    if args.write:
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(rendered)
    elif not OUTPUT.exists() or OUTPUT.read_text() != rendered:
        print(f"{OUTPUT.relative_to(ROOT)} is stale: run python scripts/render_manifests.py --write")
        sys.exit(1)


if __name__ == "__main__":
    main()
