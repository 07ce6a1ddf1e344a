"""Gateway settings: the one place the environment (and ``.env``) is read.

Names and defaults match the gateway this project replaces, so existing ``.env`` files keep working.
Invalid values stop start-up: :func:`load_settings` turns pydantic's report into one line per
variable (``RPS: must be greater than 0 (got '0')``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import phonenumbers
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.asyncio.connection import parse_url as parse_redis_url
from yarl import URL

from llm_gateway.core.breaker import BreakerPolicy
from llm_gateway.core.client_ip import parse_networks
from llm_gateway.core.config_values import parse_listen_addr, parse_tenant_quotas, split_list
from llm_gateway.core.policy.documents import PolicyDocument
from llm_gateway.core.privacy import PrivacyMode
from llm_gateway.core.quota import FailureMode
from llm_gateway.core.redaction import DEFAULT_PHONE_REGIONS, Entity, Mode
from llm_gateway.core.retries import DEFAULT_BREAKER_STATUSES, DEFAULT_RETRY_STATUSES, RetryPolicy
from llm_gateway.policy_files import load_policy_documents
from llm_gateway.routing_config import RoutingConfig, load_routing
from llm_gateway.telemetry.labels import TenantLabelMode

__all__ = ["ConfigError", "Settings", "load_settings"]


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """The environment does not describe a valid gateway; ``str()`` is ready to print."""


class Settings(BaseSettings):
    """Every setting the gateway reads. Field docs are the README's settings table."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # `TIMEOUT_SECS=` in an old .env means "use the default"
        extra="ignore",
        frozen=True,
    )

    listen_addr: str = Field("0.0.0.0:8080", description="Address and port the gateway listens on.")
    openai_api_key: SecretStr = Field(
        description="Upstream API key, sent as `Authorization: Bearer`; never logged or returned.",
    )
    openai_base_url: str = Field(
        "https://api.openai.com",
        description="Upstream base URL, with or without a trailing `/v1`.",
    )
    routing_file: Path | None = Field(
        None,
        description="YAML file declaring more upstreams (OpenAI, Azure OpenAI, Anthropic, OpenAI-compatible) "
        "and the models routed to them; unset: every model goes to `OPENAI_BASE_URL`. See Routing.",
    )
    policy_path: Path | None = Field(
        None,
        description="Cedar policy file, or a directory of `*.cedar` files, applied beside the TenantPolicies "
        "the operator publishes; validated at start-up. See Tenant policies.",
    )
    policy_default: Literal["allow", "deny"] = Field(
        "allow",
        description="The decision when no policy forbids and none permits: `allow` (policies are forbids "
        "on top of today's behaviour) or `deny` (Cedar's default: only what a policy permits).",
    )
    rps: float = Field(5, gt=0, description="Sustained requests per second per rate-limit key.")
    burst: int = Field(10, ge=1, description="Requests a rate-limit key may send at once.")
    redis_url: str | None = Field(
        None, description="Redis for shared quota state; unset means an embedded in-process store."
    )
    redis_cluster: bool = Field(
        False,
        description="`REDIS_URL` names a node of a Redis Cluster (or a managed Redis in cluster mode): "
        "the others are discovered, each tenant's keys go to its slot's master. See Redis Cluster.",
    )
    default_quota: int = Field(120, ge=0, description="Requests per window for tenants without an override.")
    quota_window_secs: int = Field(60, ge=1, description="Length of the fixed quota window, in seconds.")
    tenant_quotas: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict, description="Per-tenant quota overrides: `tenantA=5,tenantB=8`."
    )
    default_token_quota: int | None = Field(
        None,
        ge=0,
        description="Tokens (input + output) per token window for tenants without their own budget; unset: "
        "no token budget. See Token budgets.",
    )
    tenant_token_quotas: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict, description="Per-tenant token budgets: `tenantA=100000,tenantB=20000`."
    )
    token_quota_window_secs: int = Field(
        60, ge=1, description="Length of the fixed token-budget window, in seconds."
    )
    default_max_output_tokens: int = Field(
        4096,
        ge=1,
        description="Output tokens a request that names no output limit reserves from a token budget "
        "(lowered to what the budget could hold beside its input); the gateway sets that limit in the "
        "request it forwards.",
    )
    allow_anonymous: bool = Field(
        True, description="Admit requests without an API key as tenant `anonymous` (else 401)."
    )
    auth_mode: Literal["open", "keys"] = Field(
        "open",
        description="`open`: any API key names its tenant (the replaced gateway's behaviour). `keys`: "
        "only keys in the live key map (`api_keys` in Redis, filled by the operator) are admitted; "
        "others get 401.",
    )
    key_hash_secret: SecretStr | None = Field(
        None,
        description="Key of the HMAC-SHA256 under which the key map stores API keys; required with "
        "`AUTH_MODE=keys`.",
    )
    privacy_mode: PrivacyMode = Field(
        "standard",
        description="`strict`: tenants appear only as keyed pseudonyms (`TENANT_HASH_KEY`, required) in "
        "Redis keys, logs, metrics and spans. `standard`: Redis keys name the tenant (`quota:{tenant}`).",
    )
    access_log: bool = Field(
        True,
        description="One JSON line per proxied request on stderr: request id, tenant pseudonym, model, "
        "status, latency, tokens. Never prompts, completions or keys.",
    )
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(
        default_factory=list,
        description="Proxies (IPs or CIDRs, comma-separated) whose `X-Forwarded-For` names the client.",
    )
    quota_failure_mode: FailureMode = Field(
        "local",
        description="When Redis fails: `local` enforces this replica's share in-process, `open` admits, "
        "`closed` answers 503.",
    )
    gateway_replicas: int = Field(
        1, ge=1, description="Replica count for `local` fallback shares until Redis has reported one."
    )
    redis_timeout_ms: int = Field(250, ge=1, description="Timeout of every Redis call.")
    timeout_secs: float | None = Field(
        None,
        gt=0,
        description="First-byte timeout: 504 when the upstream sends no headers and first chunk in time. "
        "Unset: `NON_STREAM_TIMEOUT_SECS` bounds non-stream requests, `STREAM_IDLE_TIMEOUT_SECS` streams.",
    )
    non_stream_timeout_secs: float = Field(
        600,
        gt=0,
        description="First-byte timeout of a non-stream request when `TIMEOUT_SECS` is unset: a reasoning "
        "model may think for minutes before it answers (600 s is the OpenAI SDKs' own timeout).",
    )
    upstream_max_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="Upstream attempts per request, retries and fallbacks to other deployments included "
        "(1: none). Only before any byte reached the client. See Upstream resilience.",
    )
    upstream_retry_statuses: Annotated[frozenset[int], NoDecode] = Field(
        default_factory=lambda: DEFAULT_RETRY_STATUSES,
        description="Upstream statuses that are retried, comma-separated (connect failures, resets and "
        "first-byte timeouts always are).",
    )
    upstream_retry_backoff_ms: int = Field(
        200,
        ge=0,
        le=60_000,
        description="First backoff before a deployment is retried (full jitter, doubling per retry); the "
        "upstream's `retry-after-ms`/`Retry-After` is waited when longer.",
    )
    upstream_retry_max_backoff_ms: int = Field(
        5000, ge=0, le=600_000, description="Longest backoff between retries."
    )
    upstream_retry_deadline_secs: float = Field(
        30,
        gt=0,
        le=3600,
        description="No attempt starts, and no backoff ends, later than this after the first attempt.",
    )
    upstream_retry_budget_ratio: float = Field(
        0.2,
        ge=0,
        le=10,
        description="Retries per replica may be at most this fraction of its requests (over 10 s), "
        "plus `UPSTREAM_RETRY_BUDGET_MIN_PER_SEC`: a failing upstream is not hammered.",
    )
    upstream_retry_budget_min_per_sec: float = Field(
        3, ge=0, le=10_000, description="Retries per second a replica may always make, whatever its traffic."
    )
    circuit_breaker_failures: int = Field(
        5,
        ge=1,
        le=1_000_000,
        description="Consecutive failed attempts that open a deployment's circuit breaker.",
    )
    circuit_breaker_statuses: Annotated[frozenset[int], NoDecode] = Field(
        default_factory=lambda: DEFAULT_BREAKER_STATUSES,
        description="Upstream statuses that count as a deployment's failure, comma-separated (connect "
        "failures and first-byte timeouts always do). Not 500 by default: one request's content can "
        "cause it, and one client must not open the circuit for every tenant.",
    )
    circuit_breaker_min_tenants: int = Field(
        2,
        ge=1,
        le=8,
        description="Distinct tenants whose failed requests it takes to open a breaker on statuses and "
        "timeouts (which a request may cause); failed connections need none. 1: any tenant alone can.",
    )
    circuit_breaker_failure_ratio: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Failed fraction of a deployment's attempts over `CIRCUIT_BREAKER_WINDOW_SECS` that "
        "opens its breaker (with at least `CIRCUIT_BREAKER_MIN_REQUESTS` attempts).",
    )
    circuit_breaker_window_secs: float = Field(
        30, ge=0.1, le=3600, description="Rolling window of the failure ratio, in seconds."
    )
    circuit_breaker_min_requests: int = Field(
        20,
        ge=1,
        le=1_000_000,
        description="Attempts in the window before the failure ratio may open a breaker.",
    )
    circuit_breaker_cooldown_secs: float = Field(
        30,
        gt=0,
        le=3600,
        description="How long an open breaker stays open (longer when the upstream's `Retry-After` "
        "says so, up to `CIRCUIT_BREAKER_MAX_COOLDOWN_SECS`) before probes are let through.",
    )
    circuit_breaker_max_cooldown_secs: float = Field(
        300, gt=0, le=3600, description="The longest an upstream's `Retry-After` keeps a breaker open."
    )
    circuit_breaker_probes: int = Field(
        1, ge=1, le=1000, description="Probe attempts a half-open breaker lets through at once."
    )
    max_concurrency: int = Field(
        1024, ge=1, description="In-flight proxy requests per replica; beyond it, 503 at once."
    )
    max_body_bytes: int = Field(
        52_428_800,
        ge=1,
        description="Largest accepted request body, as sent and once decoded (413 above). 50 MiB: the "
        "OpenAI API's limit for a request with images.",
    )
    max_response_bytes: int = Field(
        32 * 1024 * 1024,
        ge=64 * 1024,
        description="The largest upstream answer read: a whole non-stream body, or one streamed event "
        "(after decompression). Beyond it the client gets 502 `upstream_response_too_large`.",
    )
    max_buffered_body_bytes: int = Field(
        268_435_456,
        ge=1,
        description="Request-body bytes a replica holds at once, all requests together; a body that "
        "would pass it is refused with 503 (retryable). Bounds memory under many large bodies.",
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (comma-separated, or `*`) whose browser pages may call the API (CORS). "
        "Unset: no CORS headers, preflights refused.",
    )
    max_json_depth: int = Field(
        64, ge=1, le=254, description="Deepest nesting of arrays and objects in a request body (400 above)."
    )
    max_json_elements: int = Field(
        100_000,
        ge=1,
        description="Array items and object members in a request body, all levels together (400 above). "
        "Parsed JSON costs up to ~60 bytes per element however short its text: this bounds that memory.",
    )
    max_header_bytes: int = Field(
        32_768, ge=1024, description="Largest request line plus headers (431 above, connection closed)."
    )
    request_read_timeout_secs: float = Field(
        30, gt=0, description="Time a client has to send a request's headers and body (408 after it)."
    )
    keepalive_timeout_secs: int = Field(
        5, ge=1, description="How long an idle keep-alive connection stays open."
    )
    max_connections: int = Field(
        4096,
        ge=1,
        description="Open client connections per replica; beyond it the longest-idle keep-alive connection "
        "is closed, or the new one refused with 503 when none is idle.",
    )
    stream_idle_timeout_secs: float = Field(
        60, gt=0, description="Longest silence from the upstream before the request is ended."
    )
    stream_keepalive_secs: float = Field(
        15,
        gt=0,
        description="Silence after which an SSE comment keeps the client connection alive.",
    )
    shutdown_grace_secs: float = Field(
        20, ge=0, description="On SIGTERM, how long in-flight requests and streams may run on."
    )
    redaction: bool = Field(
        True, description="PII redaction in requests, responses and streams (`off` disables it)."
    )
    redact_entities: Annotated[list[Entity], NoDecode] = Field(
        default_factory=lambda: list(Entity),
        description="Entities to redact, comma-separated: "
        + ", ".join(e.value for e in Entity)
        + " (default: all).",
    )
    redact_mode: Mode = Field(
        "mask",
        description="`mask` (`j***e@example.com`, `CC_MASKED_LAST4_4242`), `placeholder` (`[EMAIL]`) or "
        "`hash` (`[EMAIL:3f9a0c1d2e4b]`, keyed by `REDACTION_HASH_KEY`).",
    )
    redaction_hash_key: SecretStr | None = Field(
        None, description="Key of the `hash` mode's HMAC; required with `REDACT_MODE=hash`."
    )
    redact_phone_regions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_PHONE_REGIONS),
        description="Regions (ISO 3166 codes, comma-separated) whose national phone formats are redacted "
        "besides international ones.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint for traces, e.g. `http://localhost:4318`."
    )
    otel_service_name: str = Field("secure-llm-gateway", description="Service name on exported spans.")
    upstream_readiness_probe: bool = Field(
        True,
        description="`/readyz` is not ready until the upstream has answered `GET /v1/models` with the "
        "gateway's key (every 2 s from start-up; 401/403 and 5xx do not count), then stays ready through "
        "upstream outages. `off`: ready as soon as the process serves.",
    )
    stream_usage: bool = Field(
        True,
        description="Ask the upstream for token usage on streams (`stream_options.include_usage`) and "
        "strip the usage chunk unless the client asked for it; `off` for upstreams that reject the option.",
    )
    tenant_label: TenantLabelMode = Field(
        "hash",
        description="Tenants in metric labels and span attributes: `hash` (first 12 hex digits of the "
        "key's SHA-256) or `name` (tenant ids from the live map or `TENANT_QUOTAS`; others hashed in "
        "spans, `other` in metrics).",
    )
    tenant_hash_key: SecretStr | None = Field(
        None,
        description="Key of the HMAC that pseudonymises tenants in metrics and spans (set it: without one, "
        "an unkeyed SHA-256 prefix anyone can recompute for a guessed tenant id).",
    )
    metrics_per_tenant: bool = Field(
        True, description="Export the per-tenant series (`gateway_tenant_*`); `off` drops every tenant label."
    )
    metrics_max_tenants: int = Field(
        100, ge=0, description="Distinct tenant label values (`hash` mode) before the rest count as `other`."
    )
    metrics_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Model label allow-list, comma-separated; others count as `other`. Unset: the first "
        "`METRICS_MAX_MODELS` distinct models.",
    )
    metrics_max_models: int = Field(
        50, ge=0, description="Distinct model label values before the rest count as `other`."
    )
    log_level: str = Field(
        "info",
        pattern="^(critical|error|warning|info|debug)$",
        description="Log level of the gateway process.",
    )

    @field_validator("listen_addr")
    @classmethod
    def _check_listen_addr(cls, value: str) -> str:
        parse_listen_addr(value)
        return value

    @field_validator("openai_base_url", "otel_exporter_otlp_endpoint")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        """What redis-py's parser takes, with a numeric database; never echoed (it may hold a password)."""
        if value is None:
            return None
        problem = "expected redis://[[user]:password@]host[:port][/db], rediss://… or unix:///path[?db=N]"
        try:
            options = parse_redis_url(value)
        except ValueError:
            raise ValueError(problem) from None
        port, path = options.get("port", 6379), urlsplit(value).path.strip("/")
        if not 0 < int(port) < 65536 or (not value.startswith("unix:") and path and not path.isdigit()):
            raise ValueError(problem)
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_trusted_proxies(cls, value: Any) -> Any:
        return parse_networks(value) if isinstance(value, str) else value

    @field_validator("upstream_retry_statuses", "circuit_breaker_statuses", mode="before")
    @classmethod
    def _parse_statuses(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        statuses = set()
        for item in split_list(value):
            if not item.isdigit() or not 400 <= int(item) <= 599:
                raise ValueError(f"expected HTTP statuses 400-599, comma-separated; {item!r} is not one")
            statuses.add(int(item))
        return frozenset(statuses)

    @field_validator("metrics_models", mode="before")
    @classmethod
    def _parse_models(cls, value: Any) -> Any:
        return split_list(value) if isinstance(value, str) else value

    @field_validator("redact_phone_regions", mode="before")
    @classmethod
    def _parse_regions(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        hint = "use ISO 3166 codes such as US, GB, DE, ES, MX"
        return _known_names(value, phonenumbers.SUPPORTED_REGIONS, "regions", hint)

    @field_validator("redact_entities", mode="before")
    @classmethod
    def _parse_entities(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        names = _known_names(value, Entity.__members__, "entities", f"known: {', '.join(Entity.__members__)}")
        return [Entity[name] for name in names]

    @model_validator(mode="after")
    def _modes_have_what_they_need(self) -> Settings:
        if self.redaction and self.redact_mode == "hash" and self.redaction_hash_key is None:
            raise ValueError("REDACTION_HASH_KEY: required when REDACT_MODE=hash")
        if self.auth_mode == "keys" and self.key_hash_secret is None:
            raise ValueError("KEY_HASH_SECRET: required when AUTH_MODE=keys")
        if self.auth_mode == "keys" and self.redis_url is None:
            raise ValueError("REDIS_URL: required when AUTH_MODE=keys (the key map lives in Redis)")
        if self.redis_cluster:
            _check_cluster_url(self.redis_url)
        if self.max_buffered_body_bytes < self.max_body_bytes + 64 * self.max_json_elements:
            raise ValueError(
                "MAX_BUFFERED_BODY_BYTES: must be at least MAX_BODY_BYTES + 64 * MAX_JSON_ELEMENTS "
                "(one request at both limits must fit)"
            )
        if self.circuit_breaker_max_cooldown_secs < self.circuit_breaker_cooldown_secs:
            raise ValueError(
                "CIRCUIT_BREAKER_MAX_COOLDOWN_SECS: must be at least CIRCUIT_BREAKER_COOLDOWN_SECS"
            )
        if self.privacy_mode == "strict" and self.tenant_hash_key is None:
            raise ValueError("TENANT_HASH_KEY: required when PRIVACY_MODE=strict")
        if self.privacy_mode == "strict" and self.tenant_label == "name":
            raise ValueError(
                "TENANT_LABEL=name: not allowed when PRIVACY_MODE=strict (tenants are pseudonyms)"
            )
        return self

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        return split_list(value) if isinstance(value, str) else value

    @field_validator("tenant_quotas", "tenant_token_quotas", mode="before")
    @classmethod
    def _parse_tenant_quotas(cls, value: Any) -> Any:
        return parse_tenant_quotas(value) if isinstance(value, str) else value

    _routing: RoutingConfig = PrivateAttr(default_factory=RoutingConfig)
    _policies: tuple[PolicyDocument, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _load_files(self) -> Settings:
        """Read the files settings name (routing, policies); their problems, each line under the
        setting's name."""
        if self.routing_file is not None:
            self._routing = _loaded("ROUTING_FILE", load_routing, self.routing_file)
        if self.policy_path is not None:
            self._policies = _loaded("POLICY_PATH", load_policy_documents, self.policy_path)
        return self

    @property
    def policies(self) -> tuple[PolicyDocument, ...]:
        """The validated documents of ``POLICY_PATH`` (none when it is unset)."""
        return self._policies

    @property
    def routing(self) -> RoutingConfig:
        """The upstreams and model routes of ``ROUTING_FILE`` (none when it is unset)."""
        return self._routing

    @property
    def retry_policy(self) -> RetryPolicy:
        """The ``UPSTREAM_*`` retry settings (in seconds) and ``CIRCUIT_BREAKER_STATUSES``."""
        return RetryPolicy(
            max_attempts=self.upstream_max_attempts,
            deadline=self.upstream_retry_deadline_secs,
            backoff=self.upstream_retry_backoff_ms / 1000,
            max_backoff=self.upstream_retry_max_backoff_ms / 1000,
            statuses=self.upstream_retry_statuses,
            breaker_statuses=self.circuit_breaker_statuses,
        )

    @property
    def breaker_policy(self) -> BreakerPolicy:
        """The ``CIRCUIT_BREAKER_*`` settings."""
        return BreakerPolicy(
            failures=self.circuit_breaker_failures,
            failure_ratio=self.circuit_breaker_failure_ratio,
            window=self.circuit_breaker_window_secs,
            min_requests=self.circuit_breaker_min_requests,
            min_tenants=self.circuit_breaker_min_tenants,
            cooldown=self.circuit_breaker_cooldown_secs,
            max_cooldown=self.circuit_breaker_max_cooldown_secs,
            probes=self.circuit_breaker_probes,
        )

    @property
    def listen(self) -> tuple[str, int]:
        """``(host, port)`` from ``LISTEN_ADDR``."""
        return parse_listen_addr(self.listen_addr)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and ``.env``; raise :class:`ConfigError` when invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


_T = TypeVar("_T")


def _loaded(setting: str, load: Callable[[Path], _T], path: Path) -> _T:
    """``load(path)``; its ``ValueError`` again with each line under ``setting``'s name."""
    try:
        return load(path)
    except ValueError as exc:
        lines = str(exc).splitlines()
        raise ValueError("\n".join(f"{setting}: {line}" for line in lines)) from None


def _check_cluster_url(url: str | None) -> None:
    """A Redis Cluster is reached over TCP and has one database, 0 (the URL is never echoed)."""
    if url is None:
        raise ValueError("REDIS_CLUSTER: needs REDIS_URL (any node of the cluster)")
    if url.startswith("unix:") or int(parse_redis_url(url).get("db", 0)):
        raise ValueError(
            "REDIS_URL: a Redis Cluster is reached over redis:// or rediss:// and has only database 0"
        )


#: Settings whose value is never echoed in an error (``REDIS_URL`` may carry a password).
_SECRET_SETTINGS = frozenset(
    {"OPENAI_API_KEY", "REDACTION_HASH_KEY", "TENANT_HASH_KEY", "KEY_HASH_SECRET", "REDIS_URL"}
)


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings: its message names them; the input is all of them
            lines.append(message)
            continue
        name = str(error["loc"][0]).upper()
        if error["type"] == "missing":
            lines.append(f"{name}: required but not set")
        elif name in _SECRET_SETTINGS:
            lines.append(f"{name}: {message}")
        else:
            lines.append(f"{name}: {message} (got {error.get('input')!r})")
    return "\n".join(lines)


def _known_names(value: str, known: Collection[str], kind: str, hint: str) -> list[str]:
    """Comma-separated names, upper-cased; raises ``ValueError`` naming the unknown ones."""
    names = [name.upper() for name in split_list(value)]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown}; {hint}")
    return names
