"""Which admitted requests give their quota unit back, and why (pure).

A request is counted when it is admitted. It gives the unit back, exactly once, when it failed
before the client received anything of an answer, for a reason that is not the client's:

========================  =====================================================================
``upstream_unavailable``  the upstream could not be reached (connect failure, reset), or every
                          deployment of the model was known to be failing (breakers open)
``upstream_timeout``      no first byte within the first-byte timeout
``upstream_error``        the upstream answered 5xx, or refused the gateway's own key (401)
``upstream_rate_limited`` the upstream answered 429 (its limits, not the tenant's)
``stream_failed``         a stream ended in an error before its first event reached the client
``gateway_error``         any other error of the gateway's own after admission
========================  =====================================================================

Everything else counts: answers the upstream gave (2xx, and 4xx other than 401 and 429, which
are about the request), streams that failed after delivering something, and requests whose client
left first (the upstream may have done the work).
"""

from __future__ import annotations

from typing import Literal, get_args

from llm_gateway.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable

__all__ = ["REFUND_REASONS", "RefundReason", "refund_for_error", "refund_for_status"]

RefundReason = Literal[
    "upstream_unavailable",
    "upstream_timeout",
    "upstream_error",
    "upstream_rate_limited",
    "stream_failed",
    "gateway_error",
]
REFUND_REASONS: tuple[RefundReason, ...] = get_args(RefundReason)


def refund_for_status(status: int) -> RefundReason | None:
    """The reason an upstream answer with ``status`` is refunded, or None when it counts."""
    if status == 429:
        return "upstream_rate_limited"
    if status >= 500 or status == 401:
        return "upstream_error"
    return None


def refund_for_error(error: GatewayError) -> RefundReason:
    """The reason a request that failed with ``error`` before its response began is refunded."""
    if isinstance(error, UpstreamUnavailable):
        return "upstream_unavailable"
    if isinstance(error, UpstreamTimeout):
        return "upstream_timeout"
    if isinstance(error, UpstreamError):
        return "upstream_unavailable" if error.code == "upstream_unavailable" else "upstream_error"
    return "gateway_error"
