"""A real Redis Cluster for tests: six Debian ``redis-server`` processes on loopback, three masters with
a replica each, started the way :class:`~tests.support.RedisServer` starts one.

The cluster is formed through redis-py with the commands ``redis-cli --cluster create`` sends
(``CLUSTER SET-CONFIG-EPOCH``, ``ADDSLOTSRANGE``, ``MEET``, ``REPLICATE``), so the tests need no
``redis-cli`` and know the layout: master ``i`` holds the ``i``-th third of the slots and node ``i + 3``
is its replica. Each node has its own directory (its ``nodes.conf``), no persistence, its own free
cluster-bus port (the default, port + 10000, can lie past 65535) and a ``cluster-node-timeout`` of
1000 ms, so that a failover takes seconds, not the default's half minute.

With ``full_coverage=False`` (``cluster-require-full-coverage no``) the nodes keep serving their own
slots while some slots have no master, between a master's failure and its replica's promotion; by
default, as Redis ships, every node answers ``CLUSTERDOWN`` meanwhile.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
from redis.cluster import key_slot

from tests.support import RedisServer, free_port

__all__ = ["MASTERS", "LocalCluster"]

MASTERS = 3
NODE_TIMEOUT_MS = 1000
SLOTS = 16384
FORM_TIMEOUT_S = 30.0


def _node_config(bus_port: int, full_coverage: bool) -> list[str]:
    return [
        "--cluster-enabled", "yes",
        "--cluster-require-full-coverage", "yes" if full_coverage else "no",
        "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
        "--cluster-port", str(bus_port),
        "--repl-diskless-sync-delay", "0",  # replicas in sync at once, not after 5 s
    ]  # fmt: skip


class LocalCluster:
    """Three masters (``nodes[:3]``) and their replicas (``nodes[3:]``); ``url`` names the first master."""

    def __init__(self, workdir: Path, *, full_coverage: bool = True) -> None:
        self.nodes: list[RedisServer] = []
        self._bus_ports: list[int] = []
        try:
            for _ in range(2 * MASTERS):
                self._bus_ports.append(free_port())
                config = _node_config(self._bus_ports[-1], full_coverage)
                node_dir = Path(tempfile.mkdtemp(prefix="cluster-node-", dir=workdir))
                self.nodes.append(RedisServer(node_dir, config=config))
            self._form()
        except BaseException:
            self.stop()
            raise
        self.url = self.nodes[0].url

    @property
    def masters(self) -> list[RedisServer]:
        return self.nodes[:MASTERS]

    def replica_of(self, master: RedisServer) -> RedisServer:
        """The node made ``master``'s replica when the cluster was formed."""
        return self.nodes[self.nodes.index(master) + MASTERS]

    @staticmethod
    def first_slot(index: int) -> int:
        return index * SLOTS // MASTERS

    def master_index(self, slot: int) -> int:
        """Which of the first masters was given ``slot``."""
        return next(i for i in reversed(range(MASTERS)) if slot >= self.first_slot(i))

    def tenants_one_per_master(self, prefix: str) -> list[str]:
        """Tenant ids ``{prefix}{n}`` whose keys (hash tag ``{tenant}``) land on masters 0, 1 and 2."""
        found: dict[int, str] = {}
        n = 0
        while len(found) < MASTERS:
            tenant = f"{prefix}{n}"
            found.setdefault(self.master_index(key_slot(tenant.encode())), tenant)
            n += 1
        return [found[i] for i in range(MASTERS)]

    def owner(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now, as the answering nodes' map says."""
        slot = key_slot(key.encode())
        for start, end, (_, port, *_), *_ in self._live()[0].client().execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(node for node in self.nodes if node.port == port)
        raise AssertionError(f"slot {slot} is not served")

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self.owner(key).client().get(key)
        return value

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = FORM_TIMEOUT_S) -> float:
        """Seconds until ``check()`` held (it is tried every 20 ms); fails after ``timeout`` s."""
        started = time.monotonic()
        while True:
            try:
                if check():
                    return time.monotonic() - started
            except redis.RedisError:
                pass
            if time.monotonic() - started > timeout:
                raise AssertionError(f"Redis Cluster: {what} within {timeout} s")
            time.sleep(0.02)

    def state_ok(self) -> bool:
        """Every answering node sees the cluster ``ok``."""
        states = [node.client().execute_command("CLUSTER INFO")["cluster_state"] for node in self._live()]
        return set(states) == {"ok"}

    def healthy(self) -> bool:
        """The cluster is ``ok``, and each master has a replica linked to it."""
        if not self.state_ok():
            return False
        live = self._live()
        replicas = [node for node in live if node.client().info("replication")["role"] == "slave"]
        return len(live) - len(replicas) == MASTERS and all(
            node.client().info("replication")["master_link_status"] == "up" for node in replicas
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def _live(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.answering]

    def _form(self) -> None:
        for i, master in enumerate(self.masters):
            client = master.client()
            client.execute_command("CLUSTER SET-CONFIG-EPOCH", i + 1)
            client.execute_command("CLUSTER ADDSLOTSRANGE", self.first_slot(i), self.first_slot(i + 1) - 1)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.client().execute_command("CLUSTER MEET", "127.0.0.1", first.port, self._bus_ports[0])
        self.wait_until(self._all_known, "every node knows the others")
        for master in self.masters:
            master_id = master.client().execute_command("CLUSTER MYID").decode()
            self.replica_of(master).client().execute_command("CLUSTER REPLICATE", master_id)
        self.wait_until(self.healthy, "cluster_state:ok with every replica linked")

    def _all_known(self) -> bool:
        for node in self.nodes:
            known = node.client().execute_command("CLUSTER NODES").values()
            if len(known) != len(self.nodes) or any("handshake" in peer["flags"] for peer in known):
                return False
        return True
