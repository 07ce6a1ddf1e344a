"""The gateway's error tree and its one rendering: OpenAI-style JSON.

Every error the gateway itself produces is a :class:`GatewayError`; adapters translate library
exceptions into it and the edge renders it once with :func:`error_body`::

    GatewayError                      status  type                   code
    ├── InvalidRequest                400     invalid_request_error  (per case)
    ├── Unauthorized                  401     authentication_error   (per case)
    ├── Forbidden                     403     permission_error       (per case: tenant_suspended,
    │   │                                                             model_not_allowed)
    │   └── PolicyDenied              403     permission_error       policy_denied
    ├── NotFound                      404     invalid_request_error  not_found
    ├── MethodNotAllowed              405     invalid_request_error  method_not_allowed
    ├── RequestTimeout                408     invalid_request_error  request_timeout
    ├── PayloadTooLarge               413     invalid_request_error  request_too_large
    ├── HeadersTooLarge               431     invalid_request_error  request_header_fields_too_large
    ├── RateLimited                   429     requests               rate_limit_exceeded
    ├── QuotaExceeded                 429     insufficient_quota     quota_exceeded
    ├── TokenBudgetExceeded           429     tokens                 rate_limit_exceeded
    ├── TokenBudgetExhausted          429     tokens                 budget_exhausted (mid-stream)
    ├── UnsupportedMediaType          415     invalid_request_error  unsupported_media_type
    ├── Overloaded                    503     server_error           server_overloaded
    ├── QuotaBackendUnavailable       503     server_error           quota_backend_unavailable
    ├── UpstreamUnavailable           503     server_error           upstream_circuit_open
    ├── UpstreamError                 502     upstream_error         (per case)
    │   └── UpstreamUnreachable       502     upstream_error         upstream_unavailable
    └── UpstreamTimeout               504     timeout_error          upstream_timeout

Messages never contain request bodies or credentials. ``headers`` go out with the error
(``Allow`` on a 405, ``Retry-After`` and the rate-limit headers on a 429).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

__all__ = [
    "Forbidden",
    "GatewayError",
    "HeadersTooLarge",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PolicyDenied",
    "QuotaBackendUnavailable",
    "QuotaExceeded",
    "RateLimited",
    "RequestTimeout",
    "TokenBudgetExceeded",
    "TokenBudgetExhausted",
    "Unauthorized",
    "UnsupportedMediaType",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "UpstreamUnreachable",
]


class GatewayError(Exception):
    """An error answered to the client with ``status`` and an OpenAI-style body."""

    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers
        if code is not None:
            self.code = code

    def body(self) -> bytes:
        """``{"error": {"message", "type", "code"}}`` as JSON bytes."""
        return orjson.dumps({"error": {"message": self.message, "type": self.type, "code": self.code}})


class InvalidRequest(GatewayError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class Unauthorized(GatewayError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class Forbidden(GatewayError):
    status, type, code = 403, "permission_error", "forbidden"


class PolicyDenied(Forbidden):
    """A tenant policy (Cedar) denied the request; the message names the policies, never their text."""

    code = "policy_denied"


class NotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "not_found"


class MethodNotAllowed(GatewayError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"


class RequestTimeout(GatewayError):
    status, type, code = 408, "invalid_request_error", "request_timeout"


class PayloadTooLarge(GatewayError):
    status, type, code = 413, "invalid_request_error", "request_too_large"


class HeadersTooLarge(GatewayError):
    status, type, code = 431, "invalid_request_error", "request_header_fields_too_large"


class RateLimited(GatewayError):
    status, type, code = 429, "requests", "rate_limit_exceeded"


class QuotaExceeded(GatewayError):
    status, type, code = 429, "insufficient_quota", "quota_exceeded"


class TokenBudgetExceeded(GatewayError):
    """The request's token reservation does not fit in what its tenant's budget has left (OpenAI
    answers its tokens-per-minute limit with this type and code)."""

    status, type, code = 429, "tokens", "rate_limit_exceeded"


class TokenBudgetExhausted(GatewayError):
    """A stream reached the output its tenant's budget reserved for it; it ends with this error."""

    status, type, code = 429, "tokens", "budget_exhausted"


class QuotaBackendUnavailable(GatewayError):
    status, type, code = 503, "server_error", "quota_backend_unavailable"


class UnsupportedMediaType(GatewayError):
    status, type, code = 415, "invalid_request_error", "unsupported_media_type"


class Overloaded(GatewayError):
    status, type, code = 503, "server_error", "server_overloaded"


class UpstreamUnavailable(GatewayError):
    """Every deployment of the model is known to be failing (their circuit breakers are open)."""

    status, type, code = 503, "server_error", "upstream_circuit_open"


class UpstreamError(GatewayError):
    status, type, code = 502, "upstream_error", "upstream_error"


class UpstreamUnreachable(UpstreamError):
    """No connection to the upstream could be made: nothing a request contains can cause it."""

    code = "upstream_unavailable"


class UpstreamTimeout(GatewayError):
    status, type, code = 504, "timeout_error", "upstream_timeout"
