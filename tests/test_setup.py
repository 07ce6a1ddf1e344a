"""`make test` and `make tools` on a machine that lacks things: one clear line, never a half-made tool."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "scripts" / "tools.sh"


def _bin_with(tmp_path: Path, **scripts: str) -> Path:
    """A PATH directory holding only ``id`` and the given fake commands (name -> bash body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("id", "awk", "dirname", "mkdir", "mv", "rm", "sleep", "cat"):
        (bin_dir / name).symlink_to(f"/usr/bin/{name}")
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def test_system_deps_without_root_names_the_one_sudo_command() -> None:
    with tempfile.TemporaryDirectory() as shared:  # pytest's tmp_path is root-only; nobody must read it
        Path(shared).chmod(0o755)
        bin_dir = _bin_with(Path(shared))  # none of the packages' commands on this PATH
        result = _make_system_deps_as_nobody(bin_dir)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make: ")]
    # libc6-dev is found by its headers, not on PATH: missing only where they are.
    libc = " libc6-dev" if not Path("/usr/include/stdio.h").exists() else ""
    assert ours == [
        "make test needs Debian packages that are missing; install them, then run make test again: "
        "sudo apt-get install -y redis-server prometheus containerd runc iptables conntrack buildah "
        f"debootstrap gcc git iproute2 util-linux{libc} containernetworking-plugins docker.io"
    ]
    assert result.stdout == ""  # apt-get was never tried


def _make_system_deps_as_nobody(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "/usr/sbin/runuser",
            "-u",
            "nobody",
            "--",
            "/usr/bin/make",
            "--no-print-directory",
            "-C",
            str(ROOT),
            "system-deps",
            "CNI_PLUGINS=/nonexistent",
        ],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_missing_tool_is_one_line_naming_make_tools(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SECURE_LLM_GATEWAY_CACHE": str(tmp_path)}
    result = subprocess.run([str(TOOLS), "path", "kube-apiserver"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("kube-apiserver (kubernetes v1.")
    assert line.endswith("is not prepared: run `make tools` first")


def test_a_killed_build_leaves_nothing_that_looks_prepared(tmp_path: Path) -> None:
    # A `go build` that has written half its output when it is killed.
    fake_go = 'while (($#)); do [[ $1 == -o ]] && out=$2; shift; done; echo half > "$out"; sleep 60'
    env = {
        "PATH": f"{_bin_with(tmp_path, go=fake_go)}:/usr/bin:/bin",
        "SECURE_LLM_GATEWAY_CACHE": str(tmp_path),
    }
    build = subprocess.Popen(
        [str(TOOLS), "prepare", "etcd"], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert build.stdout is not None
    assert build.stdout.readline().startswith("tools: building etcd v3.")
    partials: list[Path] = []
    deadline = time.monotonic() + 10
    while not partials and time.monotonic() < deadline:
        partials = list(tmp_path.glob("etcd-*.partial.*/etcd"))
        time.sleep(0.05)
    assert partials, "the fake build never started writing"
    os.killpg(build.pid, signal.SIGKILL)  # no trap runs: the hardest case
    build.wait()
    build.stdout.close()
    result = subprocess.run([str(TOOLS), "path", "etcd"], env=env, capture_output=True, text=True)
    assert result.returncode == 1 and "is not prepared" in result.stderr
    # Only the partial directory and the build log are there, nothing named like a prepared tool.
    assert [p.name for p in tmp_path.glob("etcd-*") if ".partial." not in p.name] == [
        partials[0].parent.name.split(".partial.")[0] + ".log"
    ]
