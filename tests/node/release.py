"""The chart installed on the one-node cluster with the images ``make images`` built, and ways in.

A :class:`Release` is what a platform team has after ``helm install``: pods, Services, Secrets; it
reaches the gateway the two ways users do, ``kubectl port-forward`` and the Service's ClusterIP
(here through a relay from the host's loopback into the cluster's network).
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.chart.helm import CHART, helm
from tests.k8s.cluster import kubectl_binary
from tests.node.cluster import NodeCluster, images_script
from tests.support import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DEV_MOCK = ROOT / "k8s" / "dev" / "openaimock"
DEV_VALUES = ROOT / "k8s" / "dev" / "values.yaml"
UPSTREAM_KEY = "sk-dev-only"


def repository_and_tag(image: str) -> tuple[str, str]:
    """``(repository, tag)`` of a ``make images`` image (``scripts/images.sh`` name)."""
    repository, _, tag = images_script("ref", image).rpartition(":")
    return repository, tag


def image_values() -> list[str]:
    """``--set`` pairs that run the images ``make images`` built (never pulled)."""
    gateway, gateway_tag = repository_and_tag("secure-llm-gateway")
    redis, redis_tag = repository_and_tag("redis")
    return [
        "--set",
        f"image.repository={gateway}",
        "--set",
        f"image.tag={gateway_tag}",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        f"redis.image.repository={redis}",
        "--set",
        f"redis.image.tag={redis_tag}",
    ]


class Release:
    """``helm install NAME`` in ``namespace`` on ``cluster``; see the module docstring."""

    def __init__(self, cluster: NodeCluster, name: str, namespace: str, workdir: Path) -> None:
        self.cluster = cluster
        self.name = name
        self.namespace = namespace
        self.fullname = f"{name}-secure-llm-gateway"
        self.workdir = workdir

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """helm against the cluster, in the release's namespace."""
        return helm(
            *args,
            "--namespace",
            self.namespace,
            "--kubeconfig",
            str(self.cluster.kubeconfig),
            check=check,
            timeout=300,
        )

    def install_mock(self) -> None:
        """The dev mock (``k8s/dev/openaimock``) as the release's upstream, Service ``openaimock:4000``."""
        gateway, tag = repository_and_tag("secure-llm-gateway")
        self.helm(
            "install",
            "openaimock",
            str(DEV_MOCK),
            "--wait",
            "--timeout=120s",
            "--set",
            f"image.repository={gateway}",
            "--set",
            f"image.tag={tag}",
            "--set",
            "image.pullPolicy=Never",
        )

    def install(self, *values: str, action: str = "install") -> None:
        """``helm install --wait`` (or ``upgrade``) with the local images, the dev mock as the upstream."""
        self.helm(
            action,
            self.name,
            str(CHART),
            "--wait",
            "--timeout=180s",
            *image_values(),
            "--set",
            "gateway.upstream.baseUrl=http://openaimock:4000",
            "--set",
            f"gateway.upstream.apiKey={UPSTREAM_KEY}",
            *values,
        )

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl("-n", self.namespace, *args, input=input, check=check, timeout=200)

    def get(self, *args: str) -> Any:
        return self.cluster.get("-n", self.namespace, *args)

    def gateway_pods(self) -> list[str]:
        """Names of the gateway's Running pods that are not being deleted, oldest first."""
        pods = self.get("pods", "-l", "app.kubernetes.io/component=gateway")["items"]
        pods.sort(key=lambda pod: pod["metadata"]["creationTimestamp"])
        return [
            pod["metadata"]["name"]
            for pod in pods
            if pod["status"].get("phase") == "Running" and "deletionTimestamp" not in pod["metadata"]
        ]

    def secret(self, suffix: str, key: str) -> str:
        data = self.get("secret", f"{self.fullname}-{suffix}")["data"]
        return base64.b64decode(data[key]).decode()

    def service_ip(self, service: str | None = None) -> str:
        return str(self.get("service", service or self.fullname)["spec"]["clusterIP"])

    @contextmanager
    def port_forward(self, target: str, port: int = 8080) -> Iterator[str]:
        """``kubectl port-forward TARGET :PORT`` on the host; yields ``http://127.0.0.1:LOCAL``."""
        local = free_port()
        process = ManagedProcess(
            f"port-forward-{re.sub(r'[^a-z0-9]+', '-', target)}",
            [
                kubectl_binary(),
                "--kubeconfig",
                str(self.cluster.kubeconfig),
                "-n",
                self.namespace,
                "port-forward",
                target,
                f"{local}:{port}",
            ],
            {},
            self.workdir,
            local,
        )
        try:
            deadline = time.monotonic() + 30
            while "Forwarding from" not in process.output():
                if process.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"kubectl port-forward {target} did not start:\n{process.output()}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{local}"
        finally:
            process.stop()
