"""A cluster that fails half-way up leaves nothing behind: processes, mounts, netns, host paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.node import cluster as node
from tests.support import ManagedProcess


def test_a_start_that_fails_half_way_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[node.NodeCluster] = []
    real_start = node.NodeCluster.start_component

    def failing(self: node.NodeCluster, name: str, *argv: str) -> ManagedProcess:
        started.append(self)
        # containerd, etcd, the API server and the controller manager run by now; not a kubelet,
        # which would share the cgroup hierarchy with the session's cluster.
        if name == "kube-scheduler":
            raise RuntimeError("injected failure")
        return real_start(self, name, *argv)

    monkeypatch.setattr(node.NodeCluster, "start_component", failing)
    with pytest.raises(RuntimeError, match="injected failure"):
        node.start_node_cluster(tmp_path / "failed")
    cluster = started[0]
    assert cluster.leftovers() == []
    assert not os.path.exists(cluster.netns)
    assert not (tmp_path / "failed" / "containerd").exists()
