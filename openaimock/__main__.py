"""``openaimock``: serve the mock on ``HOST``:``PORT`` (defaults 127.0.0.1:4000)."""

from __future__ import annotations

import os

import uvloop
from aiohttp import web

from openaimock.server import MockConfig, create_app


def main() -> None:
    """Console entry point."""
    uvloop.install()
    web.run_app(
        create_app(MockConfig.from_env()),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "4000")),
        access_log=None,
        shutdown_timeout=2,  # a mock has nothing worth draining for long
        print=lambda *_: None,
    )


if __name__ == "__main__":
    main()
