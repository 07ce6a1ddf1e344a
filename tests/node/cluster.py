"""A one-node Kubernetes cluster with real pods, in a network namespace of its own.

containerd, runc and the CNI plugins are Debian's (``make system-deps``); etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kubelet, kube-proxy and CoreDNS are built from the Go module
proxy (``make tools``); every image comes from ``make images`` and is imported into this cluster's
own containerd, so nothing is ever pulled. The processes run on the host, but inside a network
namespace created for the cluster: the node's address, the pod bridge, the Service ClusterIPs and
kube-proxy's iptables rules exist only there. Tests, kubectl, helm and skaffold stay on the host and
reach the API server, and any address inside, through ``tests.node.relay`` ports on 127.0.0.1.

The returned :class:`NodeCluster` is a :class:`tests.k8s.cluster.Cluster` (a kubeconfig plus
kubectl), so the API-server tests run against it unchanged. ``stop()`` deletes the workloads while
the kubelet still runs (so it unmounts and releases pod networks), stops every process, then removes
what containerd, runc, the kubelet and the CNI plugins leave on the host whatever their configuration
(mounts, cgroups, ``/run/netns/cni-*``, ``/var/lib/cni``, ``/var/log/containers`` ...) and reports
anything that is still there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from string import Template
from typing import IO

import pytest

from tests.k8s.cluster import Cluster, issue, kubeconfig_text, make_ca, wait_ready
from tests.support import ManagedProcess, prepared_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("config")

NODE_NAME = "slg-node"
# Addresses inside the cluster's own network namespace; nothing on the host uses them.
NODE_IP = "192.168.222.1"
SERVICE_CIDR = "10.0.0.0/24"
DNS_IP = "10.0.0.10"
POD_CIDR = "10.244.0.0/24"
# What the cluster needs from the machine (``make system-deps``).
HOST_COMMANDS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "nsenter", "ip", "iptables")
# Where Debian puts the CNI plugins; CNI_PLUGINS in the environment names another place.
CNI_PLUGINS = Path(os.environ.get("CNI_PLUGINS", "/usr/lib/cni"))
LOCK = Path("/run/lock/secure-llm-gateway-node.lock")
# Images every cluster imports (``make images``); tests add theirs with ``import_images``.
SYSTEM_IMAGES = ("pause", "coredns")
# Paths containerd 1.6, runc, the kubelet and the CNI plugins write to whatever they are told.
HOST_PATHS = (
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd",
    "/etc/cni",
)
READY_TIMEOUT_S = 120


def images_script(*args: str) -> str:
    """``scripts/images.sh ARGS``'s output; fails the test with its one line when an image is missing."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "images.sh"), *args], capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        pytest.fail(result.stderr.strip(), pytrace=False)
    return result.stdout.strip()


class NodeCluster(Cluster):
    """The running cluster: kubectl/helm through a kubeconfig on the host, plus relays into its network.

    Attributes: ``netns`` (the namespace's path), ``root`` (its state directory), ``socket``
    (containerd's, for ``ctr``).
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root / "kubeconfig", [])
        self.root = root
        self.name = f"slg-{uuid.uuid4().hex[:8]}"
        self.netns = f"/run/netns/{self.name}"
        self.socket = root / "containerd" / "containerd.sock"
        self._relays: list[ManagedProcess] = []
        self._lock: IO[str] | None = None
        self._netns_mounted = _netns_dir_mounted()  # `ip netns add` mounts it when it is not
        self._host_paths = {path for path in HOST_PATHS if os.path.lexists(path)}
        self._cni_netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        self._cgroups = {
            hierarchy for hierarchy in _cgroup_hierarchies() if (hierarchy / "kubepods").exists()
        }

    def lock_node(self) -> None:
        """One kubelet per machine: two would both manage the kubepods cgroups and remove each other's
        pods. Taken before the kubelet starts (held until :meth:`stop`); a second one fails at once."""
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(LOCK, "w")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise RuntimeError(
                f"another one-node test cluster runs on this machine ({LOCK} is locked)"
            ) from None

    def in_netns(self, *argv: str) -> list[str]:
        """``argv`` run inside the cluster's network namespace (``nsenter --net``, mounts untouched:
        ``ip netns exec`` remounts /sys and hides the cgroup v1 mounts runc needs)."""
        return ["nsenter", f"--net={self.netns}", *argv]

    def relay(self, target: str) -> str:
        """A ``127.0.0.1:PORT`` on the host whose connections reach ``target`` (``HOST:PORT``) inside."""
        process = ManagedProcess(
            f"relay-{target.replace(':', '-')}-{len(self._relays)}",
            [sys.executable, "-m", "tests.node.relay", "--netns", self.netns, "--target", target],
            {"PYTHONPATH": str(ROOT)},
            self.root / "logs",
            0,
            cwd=ROOT,
        )
        self._relays.append(process)
        deadline = time.monotonic() + 10
        while not (output := process.output()).partition("\n")[0].isdigit() or "\n" not in output:
            if process.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"relay to {target} did not start:\n{output}")
            time.sleep(0.05)
        return f"127.0.0.1:{output.partition(chr(10))[0]}"

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``ctr`` against this cluster's containerd, in the namespace the CRI uses."""
        return subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def import_images(self, *names: str) -> None:
        """Import ``make images`` archives (``scripts/images.sh`` names) into this node's containerd."""
        for name in names:
            result = self.ctr("images", "import", "--no-unpack", images_script("archive", name), timeout=300)
            if result.returncode != 0:
                raise RuntimeError(f"importing image {name} failed:\n{result.stdout}{result.stderr}")

    def start_component(self, name: str, *argv: str) -> ManagedProcess:
        process = ManagedProcess(name, self.in_netns(*argv), {}, self.root / "logs", 0)
        self._processes.append(process)
        return process

    def diagnose(self, namespace: str) -> str:
        """Pods, events and the last log lines of every container that is not ready: for failures."""
        parts = [self.kubectl("-n", namespace, "get", "pods", "-o", "wide", check=False).stdout]
        events = self.kubectl(
            "-n", namespace, "get", "events", "--sort-by=.lastTimestamp", check=False
        ).stdout
        parts.append("\n".join(events.splitlines()[-15:]))
        for pod in self.get("pods", "-n", namespace)["items"]:
            for status in pod["status"].get("initContainerStatuses", []) + pod["status"].get(
                "containerStatuses", []
            ):
                if not status.get("ready"):
                    logs = self.kubectl(
                        "-n",
                        namespace,
                        "logs",
                        pod["metadata"]["name"],
                        "-c",
                        status["name"],
                        "--tail=20",
                        check=False,
                    )
                    parts.append(
                        f"--- {pod['metadata']['name']}/{status['name']}:\n{logs.stdout}{logs.stderr}"
                    )
        return "\n".join(parts)

    def wait_for(self, what: str, check: object, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll ``check()`` (truthy when done) every 0.5 s; RuntimeError naming ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.5)
        raise RuntimeError(f"{what} not reached in {timeout:.0f} s; logs in {self.root / 'logs'}")

    def stop(self) -> None:
        """Stop everything and clean the host, every step even when an earlier one failed (a wedged API
        server or containerd times out); AssertionError listing the failed steps and anything left."""
        steps: list[tuple[str, Callable[[], object]]] = [("delete workloads", self._delete_workloads)]
        steps += [(f"stop {relay.log_path.name}", relay.stop) for relay in self._relays]
        # Everything but containerd, newest first; then the containers it still has; then containerd.
        steps += [
            (f"stop {process.log_path.name}", process.stop) for process in reversed(self._processes[1:])
        ]
        steps.append(("remove containers", self._remove_containers))
        steps += [("stop containerd", process.stop) for process in self._processes[:1]]
        steps += [
            ("kill shims", self._kill_shims),
            ("unmount", self._unmount),
            ("remove cgroups", self._remove_cgroups),
            (
                "delete netns",
                lambda: subprocess.run(["ip", "netns", "delete", self.name], capture_output=True),
            ),
            ("remove host paths", self._remove_host_paths),
            ("release /run/netns", self._release_netns_dir),
        ]
        problems = []
        for what, step in steps:
            try:
                step()
            except Exception as error:  # reported below, after every other step ran
                problems.append(f"{what}: {type(error).__name__}: {error}")
        for state in ("containerd", "kubelet", "etcd"):
            shutil.rmtree(self.root / state, ignore_errors=True)
        if self._lock is not None:
            LOCK.unlink(missing_ok=True)  # while still held: no other cluster can have it open and locked
            self._lock.close()
        problems += self.leftovers()
        if problems:
            raise AssertionError("the node cluster's teardown failed or left behind:\n" + "\n".join(problems))

    def leftovers(self) -> list[str]:
        """What of this cluster is still on the machine: processes, mounts, netns, cgroups, host paths."""
        left = [f"process {pid}: {cmd}" for pid, cmd in _processes_mentioning(str(self.root), self.netns)]
        left += [f"mount {mount}" for mount in mounts_under(str(self.root))]
        if os.path.exists(self.netns):
            left.append(f"network namespace {self.netns}")
        if not self._netns_mounted and _netns_dir_mounted():
            left.append("mount /run/netns (made by `ip netns add`)")
        left += [
            f"cgroup {h / 'kubepods'}"
            for h in _cgroup_hierarchies()
            if (h / "kubepods").exists() and h not in self._cgroups
        ]
        left += [
            f"host path {path}"
            for path in HOST_PATHS
            if os.path.lexists(path) and path not in self._host_paths
        ]
        return left

    def _delete_workloads(self) -> None:
        # With the kubelet still running, it stops pods itself: CNI DEL, volume unmounts, cgroups.
        if not self.kubeconfig.exists() or self.kubectl("get", "--raw", "/readyz", check=False).returncode:
            return
        self.kubectl(
            "delete",
            "deployments,statefulsets,daemonsets,replicasets,jobs,pods",
            "--all",
            "--all-namespaces",
            "--grace-period=0",
            "--force",
            "--wait=false",
            check=False,
        )
        with contextlib.suppress(RuntimeError):
            self.wait_for("pods gone", lambda: not self.ctr("containers", "list", "-q").stdout.strip(), 60)

    def _remove_containers(self) -> None:
        if not self.socket.exists():
            return
        for task in self.ctr("tasks", "list", "-q").stdout.split():
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task)
        time.sleep(0.5)
        for task in self.ctr("tasks", "list", "-q").stdout.split():
            self.ctr("tasks", "delete", "--force", task)
        for container in self.ctr("containers", "list", "-q").stdout.split():
            self.ctr("containers", "delete", container)

    def _kill_shims(self) -> None:
        for pid, _ in _processes_mentioning(str(self.root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)

    def _unmount(self) -> None:
        new_netns = (
            [
                f"/run/netns/{n}"
                for n in os.listdir("/run/netns")
                if n.startswith("cni-") and n not in self._cni_netns
            ]
            if (os.path.isdir("/run/netns"))
            else []
        )
        for mount in sorted(mounts_under(str(self.root), *new_netns), reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        for path in new_netns:
            if path != self.netns:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    def _release_netns_dir(self) -> None:
        if not self._netns_mounted and _netns_dir_mounted() and not os.listdir("/run/netns"):
            subprocess.run(["umount", "/run/netns"], capture_output=True)
            with contextlib.suppress(OSError):
                os.rmdir("/run/netns")

    def _remove_cgroups(self) -> None:
        for hierarchy in _cgroup_hierarchies():
            if hierarchy in self._cgroups or not (hierarchy / "kubepods").exists():
                continue
            for directory in sorted((hierarchy / "kubepods").rglob("*"), key=lambda p: -len(p.parts)):
                if directory.is_dir():
                    with contextlib.suppress(OSError):
                        directory.rmdir()
            with contextlib.suppress(OSError):
                (hierarchy / "kubepods").rmdir()

    def _remove_host_paths(self) -> None:
        for path in HOST_PATHS:
            if path not in self._host_paths and os.path.lexists(path):
                shutil.rmtree(path, ignore_errors=True)


def start_node_cluster(workdir: Path) -> NodeCluster:
    """Bring the cluster up (node Ready, CoreDNS Ready) and return it; on failure nothing is left.

    Needs root, ``make system-deps``, ``make tools`` and ``make images``; fails the test with the
    step to run when one is missing.
    """
    _check_machine()
    binaries = {
        name: prepared_tool(name)
        for name in (
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
            "kube-proxy",
        )
    }
    for name in SYSTEM_IMAGES:
        images_script("archive", name)  # fails now, naming `make images`, rather than half-way up
    cluster = NodeCluster(workdir)
    try:
        _bring_up(cluster, binaries)
    except BaseException:
        with contextlib.suppress(AssertionError):
            cluster.stop()
        raise
    return cluster


def _bring_up(cluster: NodeCluster, binaries: dict[str, str]) -> None:
    root = cluster.root
    for directory in ("logs", "etc", "cni/net.d", "pki"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    _make_netns(cluster.name)
    values = {
        "root": str(root),
        "node_ip": NODE_IP,
        "node_name": NODE_NAME,
        "dns_ip": DNS_IP,
        "pod_cidr": POD_CIDR,
        "cni_plugins": str(CNI_PLUGINS),
        "coredns_image": images_script("ref", "coredns"),
    }
    for name, target in (
        ("containerd.toml", "etc/containerd.toml"),
        ("10-bridge.conflist", "cni/net.d/10-bridge.conflist"),
        ("kubelet.yaml", "etc/kubelet.yaml"),
        ("kube-proxy.yaml", "etc/kube-proxy.yaml"),
        ("coredns.yaml", "etc/coredns.yaml"),
    ):
        (root / target).write_text(Template((CONFIG / name).read_text()).substitute(values))
    # No resolver inside the namespace: pods resolve cluster names through CoreDNS and nothing else.
    (root / "etc" / "resolv.conf").write_text(f"nameserver {NODE_IP}\n")

    containerd = cluster.start_component(
        "containerd", "containerd", "--config", str(root / "etc/containerd.toml")
    )
    cluster.wait_for(
        "containerd", lambda: containerd.proc.poll() is None and cluster.ctr("version").returncode == 0, 30
    )
    cluster.import_images(*SYSTEM_IMAGES)

    pki = root / "pki"
    _make_node_pki(pki)
    api_relay = cluster.relay(f"{NODE_IP}:6443")
    cluster.kubeconfig.write_text(kubeconfig_text(f"https://{api_relay}", pki))
    for user in ("controller-manager", "scheduler", "kubelet", "kube-proxy"):
        (pki / f"{user}.kubeconfig").write_text(kubeconfig_text(f"https://{NODE_IP}:6443", pki, user))

    cluster.start_component(
        "etcd",
        binaries["etcd"],
        f"--data-dir={root / 'etcd'}",
        "--listen-client-urls=http://127.0.0.1:2379",
        "--advertise-client-urls=http://127.0.0.1:2379",
        "--listen-peer-urls=http://127.0.0.1:2380",
        "--unsafe-no-fsync",  # test data: durability is not the point, speed is
    )
    apiserver = cluster.start_component(
        "kube-apiserver",
        binaries["kube-apiserver"],
        "--etcd-servers=http://127.0.0.1:2379",
        "--secure-port=6443",
        f"--advertise-address={NODE_IP}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--enable-admission-plugins=NodeRestriction",
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
    )
    apiserver.url = f"http://{api_relay}"  # wait_ready asks /readyz over TLS at this address
    wait_ready(apiserver, pki)
    cluster.start_component(
        "kube-controller-manager",
        binaries["kube-controller-manager"],
        f"--kubeconfig={pki / 'controller-manager.kubeconfig'}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
    )
    cluster.start_component(
        "kube-scheduler",
        binaries["kube-scheduler"],
        f"--kubeconfig={pki / 'scheduler.kubeconfig'}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
    )
    cluster.lock_node()
    cluster.start_component(
        "kubelet",
        binaries["kubelet"],
        f"--kubeconfig={pki / 'kubelet.kubeconfig'}",
        f"--config={root / 'etc/kubelet.yaml'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        f"--root-dir={root / 'kubelet'}",
    )
    cluster.start_component("kube-proxy", binaries["kube-proxy"], f"--config={root / 'etc/kube-proxy.yaml'}")
    cluster.wait_for(
        "node registered", lambda: cluster.kubectl("get", "node", NODE_NAME, check=False).returncode == 0
    )
    cluster.kubectl("wait", "--for=condition=Ready", f"node/{NODE_NAME}", "--timeout=120s", timeout=200)
    cluster.kubectl("apply", "-f", str(root / "etc/coredns.yaml"))
    cluster.kubectl(
        "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=120s", timeout=200
    )


def _make_netns(name: str) -> None:
    """The namespace, its loopback, the node address on one end of a veth pair (some kernels have no
    ``dummy`` link type), forwarding and bridge netfilter, and a route for the Service range so
    processes in the namespace (and the relays) reach ClusterIPs through kube-proxy's rules."""
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "-n", name, "link", "set", "lo", "up"],
        ["ip", "-n", name, "link", "add", "node0", "type", "veth", "peer", "name", "node0p"],
        ["ip", "-n", name, "link", "set", "node0p", "up"],
        ["ip", "-n", name, "addr", "add", f"{NODE_IP}/24", "dev", "node0"],
        ["ip", "-n", name, "link", "set", "node0", "up"],
        [
            "ip",
            "netns",
            "exec",
            name,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
            "net.bridge.bridge-nf-call-iptables=1",
            "net.ipv4.conf.all.route_localnet=1",
        ],
        ["ip", "-n", name, "route", "add", SERVICE_CIDR, "dev", "node0"],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed: {result.stderr.strip()}")


def _make_node_pki(pki: Path) -> None:
    make_ca(pki)
    issue(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        ",".join(
            (
                f"IP:127.0.0.1,IP:{NODE_IP},IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default",
                "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
            )
        ),
    )
    issue(pki, "admin", "/O=system:masters/CN=test-admin")
    issue(pki, "apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client")
    issue(pki, "controller-manager", "/CN=system:kube-controller-manager")
    issue(pki, "scheduler", "/CN=system:kube-scheduler")
    issue(pki, "kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}")
    issue(pki, "kubelet-serving", f"/CN={NODE_NAME}", f"IP:{NODE_IP},IP:127.0.0.1,DNS:{NODE_NAME}")
    issue(pki, "kube-proxy", "/CN=system:kube-proxy")


def _check_machine() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "the node cluster tests need root (network namespaces, containerd, mounts)", pytrace=False
        )
    missing = [command for command in HOST_COMMANDS if shutil.which(command) is None]
    if not (CNI_PLUGINS / "bridge").exists():
        missing.append(f"{CNI_PLUGINS}/bridge")
    if missing:
        pytest.fail(f"the node cluster needs {', '.join(missing)}: run `make system-deps`", pytrace=False)


def _cgroup_hierarchies() -> list[Path]:
    base = Path("/sys/fs/cgroup")
    return [path for path in base.iterdir() if path.is_dir()] + [base] if base.is_dir() else []


def _netns_dir_mounted() -> bool:
    # os.path.ismount cannot see a bind mount of a directory onto itself on the same filesystem.
    return "/run/netns" in mounts_under("/run/netns")


def mounts_under(*prefixes: str) -> list[str]:
    """Mount points at or below any of ``prefixes`` (from /proc/self/mounts)."""
    mounts = []
    with open("/proc/self/mounts") as table:
        for line in table:
            point = line.split()[1].encode().decode("unicode_escape")
            if any(point == prefix or point.startswith(prefix.rstrip("/") + "/") for prefix in prefixes):
                mounts.append(point)
    return mounts


def _processes_mentioning(*needles: str) -> list[tuple[int, str]]:
    """Processes whose command line names any of ``needles`` (containerd's shims name its socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(needle in command for needle in needles):
            found.append((int(entry.name), command.strip()))
    return found
