"""``secure-llm-gateway``: read settings, then serve the app with uvicorn (uvloop + httptools, guarded).

``secure-llm-gateway policy ...`` checks tenant policies instead (see :mod:`llm_gateway.policy_cli`).
"""

from __future__ import annotations

import math
import sys

import uvicorn

from llm_gateway import policy_cli
from llm_gateway.api.connection_guard import ConnectionLimits, guarded_protocol
from llm_gateway.app import create_app
from llm_gateway.settings import ConfigError, load_settings
from llm_gateway.telemetry.logs import configure_logging


def main() -> None:
    """Console entry point. Invalid configuration exits with status 2 and one line per problem."""
    if sys.argv[1:2] == ["policy"]:
        sys.exit(policy_cli.main(sys.argv[2:]))
    try:
        settings = load_settings()
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"secure-llm-gateway: invalid configuration: {line}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.log_level)
    host, port = settings.listen
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http=guarded_protocol(
            ConnectionLimits(
                read_timeout_secs=settings.request_read_timeout_secs,
                max_header_bytes=settings.max_header_bytes,
                max_connections=settings.max_connections,
            )
        ),
        lifespan="on",
        access_log=False,  # access logging belongs to the gateway, which keeps prompts and keys out
        server_header=False,
        proxy_headers=False,  # client addresses are resolved by the gateway against TRUSTED_PROXIES
        log_level=settings.log_level,
        log_config=None,  # uvicorn's records go through the gateway's JSON handler
        timeout_keep_alive=settings.keepalive_timeout_secs,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_secs),
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
