"""``skaffold run`` and ``skaffold dev`` with the project's skaffold.yaml (profile ``ci``) against the
one-node cluster: skaffold's docker builder on a private Docker engine, the image imported into the
node's containerd by the profile's hook, both releases deployed by Helm once.

The Docker engine (Debian's docker.io) runs with no network of its own (no bridge, no iptables): the
build uses the host's network (the profile sets it) and its layers live in the cache, so a warm
build of an unchanged tree takes seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chart.helm import helm_binary
from tests.k8s.operator_support import eventually
from tests.node.cluster import NodeCluster, images_script, mounts_under
from tests.node.release import Release, repository_and_tag
from tests.support import ManagedProcess, prepared_tool

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "skaffold"
# dockerd makes these whatever its flags say (its state, its key; /etc/docker itself is docker.io's);
# removed when they were not there.
DOCKER_HOST_PATHS = ("/run/docker", "/etc/docker/key.json")
CACHE = Path(
    os.environ.get("SECURE_LLM_GATEWAY_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "secure-llm-gateway"
)


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private dockerd (layers under the cache, state under a temporary directory); its socket URL."""
    if shutil.which("dockerd") is None:
        pytest.fail("skaffold's docker builder needs dockerd: run `make system-deps`", pytrace=False)
    state = tmp_path_factory.mktemp("docker")
    existed = {path for path in DOCKER_HOST_PATHS if os.path.lexists(path)}
    socket = state / "docker.sock"
    engine = ManagedProcess(
        "dockerd",
        [
            "dockerd", "--data-root", str(CACHE / "docker"), "--exec-root", str(state / "exec"),
            "--pidfile", str(state / "dockerd.pid"), "--host", f"unix://{socket}",
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false",
        ],
        {},
        state,
        0,
    )  # fmt: skip
    url = f"unix://{socket}"
    docker = ["/usr/bin/docker", "--host", url]
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([*docker, "version"], capture_output=True).returncode != 0:
            if engine.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start:\n{engine.output()}")
            time.sleep(0.2)
        base = images_script("ref", "python-bookworm")
        if subprocess.run([*docker, "image", "inspect", base], capture_output=True).returncode != 0:
            subprocess.run(
                [*docker, "load", "--quiet", "--input", images_script("archive", "python-bookworm")],
                check=True,
                capture_output=True,
            )
        yield url
    finally:
        engine.stop(grace=30)
        # dockerd leaves its default network namespace mounted in the exec root.
        for mount in sorted(mounts_under(str(state), str(CACHE / "docker")), reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(state / "exec", ignore_errors=True)
        for path in set(DOCKER_HOST_PATHS) - existed:
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.remove(path)
        assert not mounts_under(str(state), str(CACHE / "docker"))
        assert not [path for path in set(DOCKER_HOST_PATHS) - existed if os.path.lexists(path)]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the working tree (what git would commit), for skaffold dev to watch and edit."""
    copy = tmp_path_factory.mktemp("project")
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = copy / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


def skaffold_env(cluster: NodeCluster, docker_host: str) -> dict[str, str]:
    redis, redis_tag = repository_and_tag("redis")
    path = [
        "/usr/bin",  # Debian's docker CLI (the profile's hook), before any other on PATH
        str(Path(helm_binary()).parent),
        str(Path(sys.executable).parent),  # kubectl
        os.environ.get("PATH", "/usr/local/bin:/bin"),
    ]
    return {
        "PATH": ":".join(path),
        "KUBECONFIG": str(cluster.kubeconfig),
        "DOCKER_HOST": docker_host,
        "CONTAINERD_ADDRESS": str(cluster.socket),
        "SKAFFOLD_BASE_IMAGE": images_script("ref", "python-bookworm"),
        "SKAFFOLD_REDIS_IMAGE": redis,
        "SKAFFOLD_REDIS_TAG": redis_tag,
        # The ci profile imports an image into the node in its after-build hook, which skaffold skips
        # when its artifact cache (~/.skaffold/cache, kept across runs) already knows the tree: the
        # pods of a new cluster would then wait for an image it never got (ErrImageNeverPull).
        "SKAFFOLD_CACHE_ARTIFACTS": "false",
        "SKAFFOLD_UPDATE_CHECK": "false",
        "SKAFFOLD_INTERACTIVE": "false",
    }


def skaffold(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [prepared_tool("skaffold"), *args, "--profile", "ci", "--namespace", NAMESPACE],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def openapi_version(release: Release) -> str | None:
    """The version the Service answers with, or None while a rollout leaves it no ready pod to reach
    (a connection that stalls or resets is a state to wait through, not a failure)."""
    url = "http://" + release.cluster.relay(release.service_ip() + ":8080") + "/openapi.json"
    try:
        return str(httpx.get(url, timeout=10).json()["info"]["version"])
    except httpx.TransportError:
        return None


def dev_diagnostics(cluster: NodeCluster, dev: ManagedProcess) -> str:
    """What a failed ``skaffold dev`` wait needs: its output, the pods and events, and which gateway
    images the node's containerd holds (the after-build hook's import)."""
    images = cluster.ctr("images", "list", "--quiet").stdout.split()
    gateway_images = "\n".join(name for name in images if "secure-llm-gateway" in name)
    return (
        f"--- skaffold dev output (tail):\n{dev.output()[-6000:]}\n"
        f"--- pods and events:\n{cluster.diagnose(NAMESPACE)}\n"
        f"--- gateway images in the node's containerd:\n{gateway_images}"
    )


def namespace(cluster: NodeCluster) -> None:
    """The namespace both tests deploy into, whichever runs first (or alone)."""
    cluster.kubectl(
        "apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n"
    )


def test_skaffold_run_deploys_once_and_serves(
    node_cluster: NodeCluster, docker_host: str, project: Path, tmp_path: Path
) -> None:
    namespace(node_cluster)
    env = skaffold_env(node_cluster, docker_host)
    release = Release(node_cluster, "slg", NAMESPACE, tmp_path)
    try:
        skaffold(project, env, "run", "--port-forward=off")
        releases = release.helm("list", "--output", "json").stdout
        assert '"name":"openaimock"' in releases and '"name":"slg"' in releases, releases
        assert '"revision":"1"' in releases and '"revision":"2"' not in releases, releases  # deployed once
        # Nothing re-applied the rendered chart: the helm test pod exists only when `helm test` runs.
        assert not [p for p in release.get("pods")["items"] if "test-readyz" in p["metadata"]["name"]]
        ready = httpx.get(
            "http://" + node_cluster.relay(release.service_ip() + ":8080") + "/readyz", timeout=10
        )
        # Redis answers the gateway: its password still matches the Secret the gateway read.
        assert ready.json()["checks"] == {"upstream": "ok", "redis": "ok"}, ready.text
        chat = httpx.post(
            "http://" + node_cluster.relay(release.service_ip() + ":8080") + "/v1/chat/completions",
            headers={"Authorization": "Bearer tenant-skaffold"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert chat.status_code == 200, chat.text
    finally:
        skaffold(project, env, "delete")


def test_skaffold_dev_redeploys_a_code_change(
    node_cluster: NodeCluster, docker_host: str, project: Path, tmp_path: Path
) -> None:
    namespace(node_cluster)
    env = skaffold_env(node_cluster, docker_host)
    release = Release(node_cluster, "slg", NAMESPACE, tmp_path)
    dev = ManagedProcess(
        "skaffold-dev",
        [prepared_tool("skaffold"), "dev", "--profile", "ci", "--namespace", NAMESPACE, "--port-forward=off"],
        {**env, "HOME": os.environ.get("HOME", "/root")},
        tmp_path,
        0,
        cwd=project,
    )
    try:
        eventually(lambda: dev.output().count("Watching for changes") >= 1, 480, "skaffold dev deployed")
        eventually(lambda: openapi_version(release) == "0.1.0", 60, "the first deploy served")
        version_file = project / "service" / "llm_gateway" / "__init__.py"
        version_file.write_text(version_file.read_text().replace('"0.1.0"', '"0.1.0+dev-edit"'))
        eventually(lambda: dev.output().count("Watching for changes") >= 2, 480, "skaffold dev redeployed")
        eventually(lambda: openapi_version(release) == "0.1.0+dev-edit", 60, "the edit served")
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{dev_diagnostics(node_cluster, dev)}") from None
    finally:
        dev.terminate()  # Ctrl-C: skaffold dev deletes what it deployed
        dev.stop(grace=120)
        node_cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
