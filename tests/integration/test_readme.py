"""The README's runnable shell blocks, run as written against gateways started the way `make run` starts them.

A block is runnable when the line before its opening fence is a marker::

    <!-- test [session=NAME] [redis] [SETTING=value ...] [expect="python regex"] -->

``SETTING=value`` pairs are the settings the README tells the reader to start ``make run`` with for
that block; ``redis`` adds a fresh redis-server and ``REDIS_URL``. Blocks with the same ``session``
share one gateway and run in README order (the first block's settings start it); so do all blocks
with neither settings nor ``redis``, against one plain ``make run``. A block passes when
bash exits 0 and, with ``expect``, its output matches the regex. The only edits made to a block are
the addresses: ``localhost:8080`` (the gateway), ``6379`` and bare ``redis-cli`` (the test's Redis),
``4318`` (a free port for a collector) and ``.venv/bin/python`` (this interpreter).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import ROOT, ManagedProcess, RedisServer, free_port, start_local

MARKED_BLOCK = re.compile(r"(?ms)^([ \t]*)<!-- test([^\n]*?)-->\n\1```bash\n(.*?)\n\1```")


@dataclass
class Block:
    line: int
    code: str
    settings: dict[str, str] = field(default_factory=dict)
    redis: bool = False
    expect: str | None = None


def marked_blocks() -> dict[str, list[Block]]:
    """Runnable blocks by session (a block without one is its own session)."""
    text = (ROOT / "README.md").read_text()
    sessions: dict[str, list[Block]] = {}
    for match in MARKED_BLOCK.finditer(text):
        indent, marker, code = match.groups()
        line = text.count("\n", 0, match.start()) + 1
        block = Block(line, "\n".join(row.removeprefix(indent) for row in code.splitlines()))
        session = None
        for word in shlex.split(marker):
            name, _, value = word.partition("=")
            if word == "redis":
                block.redis = True
            elif name == "session":
                session = value
            elif name == "expect":
                block.expect = value
            else:
                block.settings[name] = value
        if session is None:  # blocks for `make run` as it comes share one gateway; others get their own
            session = "defaults" if not block.settings and not block.redis else f"line {line}"
        sessions.setdefault(session, []).append(block)
    return sessions


SESSIONS = marked_blocks()


def test_the_readme_has_runnable_blocks_for_every_feature() -> None:
    code = "\n".join(block.code for blocks in SESSIONS.values() for block in blocks)
    features = [
        "stream\":true", "X-Api-Key: tenantA", "xargs", "timeout-test", "mock:echo", "/metrics",
        "otlp_receiver", "redis-cli", "api_keys", "smoke_test_quota.sh", "smoke_test_timeout.sh",
    ]  # fmt: skip
    assert [feature for feature in features if feature not in code] == []


@pytest.fixture
def processes(workdir: Path) -> Iterator[list[ManagedProcess | RedisServer]]:
    started: list[ManagedProcess | RedisServer] = []
    yield started
    for process in started:
        if isinstance(process, RedisServer):
            process.kill()
        else:
            process.stop()


@pytest.mark.parametrize("session", SESSIONS, ids=lambda name: name.replace(" ", "-"))
def test_readme_block(session: str, workdir: Path, processes: list[ManagedProcess | RedisServer]) -> None:
    blocks = SESSIONS[session]
    first = blocks[0]
    settings = dict(first.settings)
    collector = str(free_port())
    settings = {name: value.replace("4318", collector) for name, value in settings.items()}
    redis_port = None
    if first.redis:
        redis = RedisServer(workdir)
        processes.append(redis)
        redis_port = redis.port
        settings["REDIS_URL"] = redis.url
    gateway = start_local(workdir, **settings)
    processes.append(gateway)
    for block in blocks:
        code = block.code.replace("localhost:8080", f"127.0.0.1:{gateway.port}").replace("4318", collector)
        code = code.replace(".venv/bin/python", sys.executable)
        if redis_port is not None:
            code = re.sub(
                r"redis-cli(?! -p)", f"redis-cli -p {redis_port}", code.replace("6379", str(redis_port))
            )
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
        )
        where = f"README.md line {block.line}:\n{code}\n--- output:\n{result.stdout}{result.stderr}"
        assert result.returncode == 0, where
        if block.expect is not None:
            assert re.search(block.expect, result.stdout), where
