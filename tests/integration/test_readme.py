"""The README's shell blocks, run as a reader runs them: the start commands too.

A block is runnable when the line before its opening fence is a marker::

    <!-- test [start] [session=NAME] [redis] [expect="python regex"] -->

Blocks with the same ``session`` run in README order against one gateway; blocks without one belong
to the session ``quick-start``. A session's ``start`` block is the command the README tells the
reader to start the gateway with (``... make run``, maybe after ``redis-server --daemonize yes``):
it runs in the background, as typed, and the session's other blocks run once the gateway answers.
``redis`` marks a session that uses the Redis an earlier section started: the test gives it a fresh
redis-server. A block passes when bash exits 0 and, with ``expect``, its output matches the regex.

The only edits made to a block are addresses: ``localhost:8080`` (the gateway, on a free port, which
the start command gets as ``LISTEN_ADDR``; the mock gets ``MOCK_PORT``), ``6379`` and bare
``redis-cli`` (the session's Redis), ``4318`` (a free port for a collector) and ``.venv/bin/python``
(this interpreter). Blocks the suite cannot run say why next to them in the README.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import ROOT, ManagedProcess, RedisServer, free_port

MARKED_BLOCK = re.compile(r"(?ms)^([ \t]*)<!-- test([^\n]*?)-->\n\1```bash\n(.*?)\n\1```")
ANY_BASH_BLOCK = re.compile(r"(?ms)^([ \t]*)```bash\n(.*?)\n\1```")
DEFAULT_SESSION = "quick-start"


@dataclass
class Block:
    line: int
    code: str
    start: bool = False
    redis: bool = False
    expect: str | None = None


@dataclass
class Session:
    blocks: list[Block] = field(default_factory=list)

    @property
    def start(self) -> Block:
        starts = [block for block in self.blocks if block.start]
        assert len(starts) == 1 and starts[0] is self.blocks[0], (
            "a session opens with exactly one start block"
        )
        return starts[0]


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def marked_blocks() -> dict[str, Session]:
    """Runnable blocks by session, in README order."""
    text = (ROOT / "README.md").read_text()
    sessions: dict[str, Session] = {}
    for match in MARKED_BLOCK.finditer(text):
        indent, marker, code = match.groups()
        block = Block(
            _line(text, match.start()), "\n".join(row.removeprefix(indent) for row in code.splitlines())
        )
        session = DEFAULT_SESSION
        for word in shlex.split(marker):
            name, _, value = word.partition("=")
            if word in ("start", "redis"):
                setattr(block, word, True)
            elif name == "session":
                session = value
            elif name == "expect":
                block.expect = value
            else:
                raise ValueError(f"README.md line {block.line}: unknown marker word {word!r}")
        sessions.setdefault(session, Session()).blocks.append(block)
    return sessions


SESSIONS = marked_blocks()


def test_every_session_opens_with_the_command_that_starts_it() -> None:
    for name, session in SESSIONS.items():
        last_line = session.start.code.rstrip().splitlines()[-1]
        assert re.search(r"(^|\s)make run( +#.*)?$", last_line), name


def test_every_bash_block_runs_or_says_why_not() -> None:
    """A bash block a newcomer might type is either run here or has a `not run by the tests` note."""
    text = (ROOT / "README.md").read_text()
    marked = {match.start(3) for match in MARKED_BLOCK.finditer(text)}
    unexplained = []
    for match in ANY_BASH_BLOCK.finditer(text):
        if match.start(2) in marked:
            continue
        before = text[: match.start()].rstrip().rsplit("\n\n", 1)[-1]
        if "not run by the tests" not in before.lower():
            unexplained.append(_line(text, match.start()))
    assert unexplained == []


def test_the_readme_has_runnable_blocks_for_every_feature() -> None:
    code = "\n".join(block.code for session in SESSIONS.values() for block in session.blocks)
    features = [
        "stream\":true", "X-Api-Key: tenantA", "xargs", "timeout-test", "mock:echo", "/metrics",
        "otlp_receiver", "redis-cli", "api_keys", "smoke_test_quota.sh", "smoke_test_timeout.sh",
        "PRIVACY_MODE=strict", "AUTH_MODE=keys", "redis-server", "redis-cli -p 6379 shutdown",
    ]  # fmt: skip
    assert [feature for feature in features if feature not in code] == []


@dataclass
class Addresses:
    gateway: int = field(default_factory=free_port)
    mock: int = field(default_factory=free_port)
    collector: int = field(default_factory=free_port)
    redis: int | None = None

    def apply(self, code: str) -> str:
        code = code.replace("localhost:8080", f"127.0.0.1:{self.gateway}").replace(
            "4318", str(self.collector)
        )
        code = code.replace(".venv/bin/python", sys.executable)
        if self.redis is not None:
            code = re.sub(
                r"redis-cli(?! -p)", f"redis-cli -p {self.redis}", code.replace("6379", str(self.redis))
            )
        return code


@pytest.fixture
def cleanups() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


def _start(session: Session, addresses: Addresses, workdir: Path, cleanups: contextlib.ExitStack) -> None:
    """Run the session's start block in the background, as typed, and wait for the gateway."""
    code = addresses.apply(session.start.code)
    if "redis-server" in code:  # the block daemonizes its own Redis (its own session): shut it down
        cleanups.callback(
            subprocess.run,
            ["redis-cli", "-p", str(addresses.redis), "shutdown", "nosave"],
            capture_output=True,
        )
    env = {
        "VENV": sys.prefix,
        "MOCK_PORT": str(addresses.mock),
        "LISTEN_ADDR": f"127.0.0.1:{addresses.gateway}",
    }
    process = ManagedProcess("readme-start", ["bash", "-c", code], env, workdir, addresses.gateway, cwd=ROOT)
    cleanups.callback(process.stop)
    process.wait_ready("/healthz")


@pytest.mark.parametrize("name", SESSIONS)
def test_readme_session(name: str, workdir: Path, cleanups: contextlib.ExitStack) -> None:
    session = SESSIONS[name]
    addresses = Addresses()
    if any("6379" in block.code or "redis-cli" in block.code for block in session.blocks):
        addresses.redis = free_port()
    if session.start.redis:
        cleanups.callback(RedisServer(workdir, port=addresses.redis).kill)
    _start(session, addresses, workdir, cleanups)
    for block in session.blocks[1:]:
        code = addresses.apply(block.code)
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=90
        )
        where = f"README.md line {block.line}:\n{code}\n--- output:\n{result.stdout}{result.stderr}"
        assert result.returncode == 0, where
        if block.expect is not None:
            assert re.search(block.expect, result.stdout), where
