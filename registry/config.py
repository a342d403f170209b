"""Settings, read once from `REGISTRY_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable; defaults make `registry serve --demo` work on a fresh machine."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".registry")
    database_url: str | None = None
    # The service works as this role: it may only insert and read audit events. Migrations
    # and retention run as the connecting (owner) user. Empty: no SET ROLE.
    database_role: str | None = "registry_service"
    db_pool_size: int = 10
    statement_timeout_ms: int = 15_000

    # Failing safe (README "Reliability"). The database must accept a connection, or answer a
    # health ping, within `database_timeout_seconds`; otherwise requests get UNAVAILABLE (503).
    database_timeout_seconds: float = 1.0
    # No request takes longer than this end to end (above the statement timeout, which ends a
    # long read first with QUERY_TOO_COMPLEX).
    request_deadline_seconds: float = 20.0
    # Per worker: requests running at once (None: the pool size) and waiting for a turn (None:
    # eight times the pool size); beyond them, or after waiting `queue_timeout_seconds`, OVERLOADED.
    max_running_requests: int | None = None
    max_waiting_requests: int | None = None
    queue_timeout_seconds: float = 5.0
    retry_after_seconds: int = 2
    # HTTP hygiene: request headers (count and total bytes, 431 beyond), and how long a client
    # may take to send them and its body (the connection is closed, or 408 for a body).
    max_header_count: int = 64
    max_header_bytes: int = 16 * 1024
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    # An idle connection is closed after this: longer than clients keep theirs (httpx: 5 s), or a
    # request sent on a connection the server is closing at that instant is reset unanswered.
    keep_alive_seconds: float = 15.0

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None  # base URL clients use; defaults to http://host:port
    # /metrics on this port of its own (every worker shares it). None: on the service's port.
    metrics_port: int | None = None
    # Browser origins allowed to call the API (comma-separated, e.g. https://app.example.org). Empty: no CORS.
    cors_origins: str = ""

    # Identity (DESIGN section 4). No issuer: the development issuer signs tokens itself.
    oidc_issuer: str | None = None
    oidc_audience: str = "registry"
    oidc_algorithms: list[str] = ["RS256", "PS256", "ES256", "EdDSA"]
    oidc_leeway_seconds: int = 30
    jwks_refresh_interval_seconds: int = 60
    max_token_lifetime_seconds: int = 12 * 3600  # exp - iat (exp - now without iat) above it: refused
    claim_subject: str = "sub"
    claim_name: str = "name"
    claim_agency: str = "agency"
    claim_roles: str = "roles"
    claim_unit: str = "unit"

    audit_seal_interval_seconds: float = 1.0
    # Signed checkpoints of the chain head (audit.checkpoint): the Ed25519 key file, kept where
    # the database owner cannot read it, and where the sealer writes one every interval (unset: never).
    audit_checkpoint_key: Path | None = None
    audit_checkpoint_dir: Path | None = None
    audit_checkpoint_interval_seconds: float = 3600.0
    # Read queries run as one compiled SQL statement once the resolvers have run them once.
    compile_queries: bool = True
    # Access policy (DESIGN section 5); the default is auth/policy.toml in the source tree.
    policy_path: Path | None = None
    lookups_per_minute: int = 30  # hit/no-hit lookups per principal, so the registry cannot be enumerated
    log_level: str = "INFO"

    # The GraphQL contract (DESIGN section 7); limits are checked before execution (api.limits).
    # Trusted documents: only graphql/operations/*.graphql run. None: on in production only.
    trusted_documents: bool | None = None
    operations_dir: Path | None = None  # default: graphql/operations in the source tree
    # Introspection (and GraphiQL). None: on in development only.
    introspection: bool | None = None
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2000
    max_page_size: int = 100
    max_cost: int = 10_000
    max_batch: int = 10
    max_body_bytes: int = 256 * 1024

    # Subscriptions over WebSocket (DESIGN section 9).
    events_keep_days: float = 7.0  # the outbox keeps events this long; older `after` cursors are refused
    subscriptions_per_connection: int = 20
    subscriptions_per_principal: int = 50  # per service process
    subscriber_queue_size: int = 1000  # events waiting for one subscriber; more closes it (4499), resumable
    connection_init_timeout_seconds: float = 10.0
    delivery_retry_seconds: float = 15.0  # an event that cannot be read or audited: tried again, then 4499

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def trusted_documents_only(self) -> bool:
        return self.production if self.trusted_documents is None else self.trusted_documents

    @property
    def introspection_allowed(self) -> bool:
        return not self.production if self.introspection is None else self.introspection

    @property
    def running_requests(self) -> int:
        return self.max_running_requests or self.db_pool_size

    @property
    def waiting_requests(self) -> int:
        return self.db_pool_size * 8 if self.max_waiting_requests is None else self.max_waiting_requests

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip().rstrip("/") for origin in self.cors_origins.split(",") if origin.strip()]

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache
def get_settings() -> Settings:
    return Settings()
