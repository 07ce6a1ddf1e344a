"""A TCP relay from the host's loopback into a network namespace: ``python -m tests.node.relay``.

The one-node cluster lives in a network namespace of its own (nothing of it is on the host's
interfaces). Tests, kubectl, helm and skaffold run on the host; this process gives them a
``127.0.0.1`` port for one address inside the namespace (the API server, a Service's ClusterIP):

    python -m tests.node.relay --netns /run/netns/NAME --listen-port 0 --target 10.0.0.7:8080

It binds the listening socket in the host's namespace first, then moves itself into the target
namespace (``setns(2)``), so every connection it opens afterwards starts there; a socket keeps the
namespace it was made in. It prints the bound port on its first line, then relays until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import socket

CLONE_NEWNET = 0x40000000
_CHUNK = 65536


def enter_netns(path: str) -> None:
    """Move this (single-threaded) process into the network namespace at ``path``; OSError if refused."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


async def _relay(
    host: str, port: int, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
) -> None:
    try:
        target_r, target_w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except (OSError, TimeoutError):
        client_w.close()
        return
    await asyncio.gather(_pipe(client_r, target_w), _pipe(target_r, client_w))
    for writer in (client_w, target_w):
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def serve(listener: socket.socket, host: str, port: int) -> None:
    server = await asyncio.start_server(lambda r, w: _relay(host, port, r, w), sock=listener)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True, help="path of the namespace, e.g. /run/netns/NAME")
    parser.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--target", required=True, help="HOST:PORT inside the namespace")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    listener = socket.create_server(("127.0.0.1", args.listen_port))
    enter_netns(args.netns)
    print(listener.getsockname()[1], flush=True)
    asyncio.run(serve(listener, host, int(port)))


if __name__ == "__main__":
    main()
