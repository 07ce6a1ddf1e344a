"""The one-node cluster tier: one cluster per session, with the project's images imported.

Every test here carries the ``node`` marker (``pytest -m node`` selects the tier, ``-m "not node"``
leaves it out). The cluster and its images come from ``make tools`` and ``make images``; a missing
piece fails the tests with one line naming the step.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.cluster import NodeCluster, start_node_cluster

HERE = Path(__file__).resolve().parent
# The project's images every test of the tier runs (the system ones are imported at start).
PROJECT_IMAGES = ("secure-llm-gateway", "redis")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.node)
            # The first test also waits for the cluster and its images; helm, skaffold and pod
            # restarts are minutes, not the suite's 120 s.
            item.add_marker(pytest.mark.timeout(1200))


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    """A running one-node cluster; its teardown fails the session if anything is left behind."""
    cluster = start_node_cluster(tmp_path_factory.mktemp("node"))
    try:
        cluster.import_images(*PROJECT_IMAGES)
        yield cluster
    finally:
        cluster.stop()
