"""``secure-llm-gateway``: read settings, then serve the app with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import logging
import math
import sys

import uvicorn

from llm_gateway.app import create_app
from llm_gateway.settings import ConfigError, load_settings


def main() -> None:
    """Console entry point. Invalid configuration exits with status 2 and one line per problem."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"secure-llm-gateway: invalid configuration: {line}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    host, port = settings.listen
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,  # access logging belongs to the gateway, which keeps prompts and keys out
        server_header=False,
        proxy_headers=False,  # client addresses are resolved by the gateway against TRUSTED_PROXIES
        log_level=settings.log_level,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_secs),
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
