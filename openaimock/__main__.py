"""``openaimock``: serve the mock on ``HOST``:``PORT`` (defaults 127.0.0.1:4000).

With ``TLS_CERT_FILE`` and ``TLS_KEY_FILE`` (PEM) it serves HTTPS instead (an upstream behind TLS).
"""

from __future__ import annotations

import os
import ssl

import uvloop
from aiohttp import web

from openaimock.server import MockConfig, create_app


def main() -> None:
    """Console entry point."""
    uvloop.install()
    tls: ssl.SSLContext | None = None
    if cert := os.environ.get("TLS_CERT_FILE"):
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, os.environ["TLS_KEY_FILE"])
    web.run_app(
        create_app(MockConfig.from_env()),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "4000")),
        ssl_context=tls,
        access_log=None,
        shutdown_timeout=2,  # a mock has nothing worth draining for long
        print=lambda *_: None,
    )


if __name__ == "__main__":
    main()
