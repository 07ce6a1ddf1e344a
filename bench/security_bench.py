"""What the security pieces cost per request, in-process (no network, no noise from other processes).

- the JSON depth check on a small body (fast path) and on a 72 KB, 200-message body (full scan),
  next to parsing the same bodies with orjson;
- looking up a registered key (``AUTH_MODE=keys``: one HMAC-SHA256 and a dict lookup);
- the two Redis-key pseudonyms of ``PRIVACY_MODE=strict`` (two HMACs);
- writing one JSON access line to a file: through ``logging`` (as before issue 17) and through
  :class:`~llm_gateway.telemetry.logs.AccessLog` (one write per event-loop turn; here per 64 lines).

    python bench/security_bench.py [--number 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import timeit
from collections.abc import Callable

import orjson

from llm_gateway.core.api_keys import KeyRing, key_digest
from llm_gateway.core.json_bounds import nested_deeper_than
from llm_gateway.core.privacy import storage_id
from llm_gateway.core.usage import Usage
from llm_gateway.telemetry.exchange import Exchange
from llm_gateway.telemetry.logs import AccessLog, JsonFormatter, access_record


def chat_body(messages: int) -> bytes:
    text = 'hello there, some text with "quotes", [brackets] and {braces} ' * 5
    return orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}] * messages})


def per_call_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


async def _send(_: object) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=20_000)
    number = parser.parse_args().number

    small, large = chat_body(3), chat_body(200)
    ring = KeyRing(b"secret")
    ring.replace({key_digest(b"secret", f"sk-{i}".encode()): f"tenant-{i}" for i in range(10_000)})
    pseudonym = storage_id("strict", b"tenant-hash-key")

    with tempfile.NamedTemporaryFile("w") as sink:
        handler = logging.StreamHandler(sink)
        handler.setFormatter(JsonFormatter())
        access = logging.getLogger("bench.access")
        access.addHandler(handler)
        access.propagate = False
        access.setLevel(logging.INFO)
        exchange = Exchange("/v1/chat/completions", "POST", _send)
        exchange.status, exchange.model, exchange.usage = 200, "gpt-4o-mini", Usage(9, 12)

        def access_line() -> None:
            access.info("access", extra={"access": access_record(exchange, "2a97516c354b")})

        rows = [
            (f"depth check, {len(small)} B body (fast path)", lambda: nested_deeper_than(small, 64), number),
            (f"orjson.loads, {len(small)} B body", lambda: orjson.loads(small), number),
            (f"depth check, {len(large)} B body (full scan)", lambda: nested_deeper_than(large, 64), 200),
            (f"orjson.loads, {len(large)} B body", lambda: orjson.loads(large), 200),
            ("key lookup (HMAC + dict, 10k keys)", lambda: ring.identify(b"sk-4242"), number),
            ("strict pseudonyms (quota + rate key)", lambda: (pseudonym("a"), pseudonym("b")), number),
            ("access line through logging (record + JSON + file write)", access_line, number),
        ]
        print("| what | µs per call |\n|---|---|")
        for name, fn, calls in rows:
            print(f"| {name} | {per_call_us(fn, calls):.2f} |")
        cost = asyncio.run(_access_log_us(AccessLog(sink), exchange, number))
        print(f"| access line through AccessLog (JSON, one write per 64 lines) | {cost:.2f} |")


async def _access_log_us(access_log: AccessLog, exchange: Exchange, number: int) -> float:
    """Inside a running loop, which :class:`AccessLog` schedules its writes on (flushed here every 64)."""
    written = 0

    def line() -> None:
        nonlocal written
        access_log.write(access_record(exchange, "2a97516c354b"))
        written += 1
        if written % 64 == 0:
            access_log.flush()

    return per_call_us(line, number)


if __name__ == "__main__":
    main()
