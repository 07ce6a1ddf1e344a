"""Who a request is: its tenant, and the key its rate limit counts under (``AUTH_MODE``).

``open``: the API key is the tenant (see :func:`llm_gateway.core.tenant.tenant_of`) and the rate
limit counts per key. ``keys``: the key must be in the live key map, which names the tenant; the
rate limit counts per key, under a digest prefix. A request without a key (anonymous, open mode
only) is rate-limited per client address and path.
"""

from __future__ import annotations

from llm_gateway.api.asgi_io import Scope
from llm_gateway.core.api_keys import KeyRing
from llm_gateway.core.client_ip import Networks, client_ip
from llm_gateway.core.headers import header
from llm_gateway.core.tenant import api_key_of, tenant_of

__all__ = ["Identify"]


class Identify:
    """``identify(scope) -> (tenant, rate-limit key)``; raises the 401/400/503 errors of the checks."""

    __slots__ = ("_allow_anonymous", "_key_ring", "_trusted_proxies")

    def __init__(self, key_ring: KeyRing | None, *, allow_anonymous: bool, trusted_proxies: Networks) -> None:
        self._key_ring = key_ring
        self._allow_anonymous = allow_anonymous
        self._trusted_proxies = trusted_proxies

    @property
    def requires_key(self) -> bool:
        """True in the ``keys`` mode: every endpoint that reaches the upstream checks the key."""
        return self._key_ring is not None

    def __call__(self, scope: Scope) -> tuple[str, str]:
        api_key = api_key_of(header(scope, b"x-api-key"), header(scope, b"authorization"))
        if self._key_ring is not None:
            return self._key_ring.identify(api_key)
        tenant = tenant_of(api_key, allow_anonymous=self._allow_anonymous)
        if api_key:
            return tenant, tenant
        return tenant, f"{self.client_address(scope)}:{scope['path']}"

    def client_address(self, scope: Scope) -> str | None:
        """The client's address: the peer, or what ``X-Forwarded-For`` says when the peer is a
        trusted proxy (see :func:`llm_gateway.core.client_ip.client_ip`)."""
        peer = scope["client"][0] if scope.get("client") else None
        forwarded = header(scope, b"x-forwarded-for")
        return client_ip(peer, forwarded.decode("latin-1") if forwarded else None, self._trusted_proxies)
