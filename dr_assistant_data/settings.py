"""Configuration: one immutable :class:`Settings`, built explicitly or from the environment.

The environment variables keep the names of the layer this package replaces (``DB_HOST``,
``DB_POOL_MAX``, ``REDIS_KEY_PREFIX``...); ``DATABASE_URL`` and ``REDIS_URL`` win when set.
Durations the old layer took in milliseconds are still milliseconds. A value that cannot be
parsed raises :class:`~dr_assistant_data.errors.ConfigurationError` naming the variable, at
start-up rather than on the first request.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigurationError
from .protection.audit_key import AuditKey, audit_key_from
from .protection.keyring import Keyring, keyring_from

DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/dr_assistant"
ENVIRONMENTS = ("development", "test", "production")
_T = TypeVar("_T")

VARIABLES = {
    "db_pool_size": "DB_POOL_MAX",
    "mongodb_pool_size": "MONGODB_POOL_SIZE",
    "db_pool_timeout": "DB_POOL_CONNECTION_TIMEOUT",
    "db_connect_timeout": "DB_POOL_CONNECTION_TIMEOUT",
    "db_pool_recycle": "DB_POOL_IDLE_TIMEOUT",
    "db_statement_timeout_ms": "DB_STATEMENT_TIMEOUT",
    "db_slow_query_ms": "DB_SLOW_QUERY_MS",
    "redis_socket_timeout": "REDIS_SOCKET_TIMEOUT",
    "cache_lock_timeout": "CACHE_LOCK_TIMEOUT",
    "cache_breaker_backoff": "CACHE_BREAKER_BACKOFF",
    "cache_ttl_entity": "CACHE_TTL_ENTITY",
    "cache_ttl_schedule": "CACHE_TTL_SCHEDULE",
    "cache_ttl_timeline": "CACHE_TTL_TIMELINE",
    "cache_ttl_count": "CACHE_TTL_COUNT",
    "db_replica_max_lag": "DB_REPLICA_MAX_LAG",
    "db_replica_sticky": "DB_REPLICA_STICKY",
    "db_replica_check_interval": "DB_REPLICA_CHECK_INTERVAL",
    "migration_lock_timeout": "MIGRATION_LOCK_TIMEOUT",
    "migration_retries": "MIGRATION_RETRIES",
    "audit_seal_interval": "AUDIT_SEAL_INTERVAL",
}
"""The environment variable behind each range-checked field, for error messages."""

ENVIRONMENT_VARIABLES = frozenset(
    {
        *("APP_ENV", "NODE_ENV", "DATABASE_URL", "DATABASE_REPLICA_URLS", "CLINIC_TIMEZONE"),
        *("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_SSL"),
        *("DB_SSL_REJECT_UNAUTHORIZED", "DB_SSL_ROOT_CERT", "DB_POOL_IDLE_TIMEOUT"),
        *("MONGODB_URI", "MONGODB_TIMEOUT", "REDIS_URL", "REDIS_HOST", "REDIS_PORT"),
        *("REDIS_DB", "REDIS_PASSWORD", "REDIS_KEY_PREFIX", "REDIS_SENTINELS"),
        *("REDIS_SENTINEL_MASTER", "REDIS_CLUSTER_NODES", "AUDIT_READS"),
        *("DATA_ENCRYPTION_KEYS", "DATA_ENCRYPTION_ACTIVE_KEY", "BLIND_INDEX_KEY"),
        *("DB_TRANSACTION_POOLER", "DATABASE_DIRECT_URL", "REDIS_SSL_CA_CERT"),
        *("AUDIT_KEY", "AUDIT_CHECKPOINT_DIR", "AUDIT_SEALER"),
        *VARIABLES.values(),
    }
)
"""Every variable :meth:`Settings.from_env` reads: what the Flask extension takes from
``app.config``."""

CACHE_TTLS = ("cache_ttl_entity", "cache_ttl_schedule", "cache_ttl_timeline", "cache_ttl_count")
"""Seconds each cache region keeps a value (``CACHE_TTL_*``, seconds)."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the layer needs to reach its three stores.

    Durations are seconds unless the name ends in ``_ms``; the environment gives
    ``REDIS_SOCKET_TIMEOUT``, ``CACHE_LOCK_TIMEOUT``, ``CACHE_BREAKER_BACKOFF``,
    ``DB_REPLICA_*`` and ``MIGRATION_LOCK_TIMEOUT`` in milliseconds, ``CACHE_TTL_*`` in
    seconds, ``MIGRATION_RETRIES`` as a count; lists
    (``DATABASE_REPLICA_URLS``, ``REDIS_SENTINELS``, ``REDIS_CLUSTER_NODES``) are
    comma-separated. Every field has a default that works against
    local servers with trust authentication (``compose.yaml`` sets a password: use the
    ``DATABASE_URL`` its header gives).
    """

    database_url: str = DEFAULT_DATABASE_URL
    mongodb_uri: str = "mongodb://127.0.0.1:27017/dr_assistant"
    redis_url: str = "redis://127.0.0.1:6379/0"
    cache_prefix: str = "dr_assistant:"
    environment: str = "development"
    clinic_timezone: str = "Asia/Kolkata"
    db_pool_size: int = 10
    db_pool_timeout: float = 5.0
    db_connect_timeout: float = 5.0
    db_pool_recycle: float = 1800.0
    db_statement_timeout_ms: int = 30_000
    db_slow_query_ms: int = 500
    db_ssl: bool = False
    db_ssl_reject_unauthorized: bool = True
    mongodb_timeout_ms: int = 5_000
    mongodb_pool_size: int = 10
    redis_socket_timeout: float = 0.25
    cache_lock_timeout: float = 5.0
    cache_breaker_backoff: float = 2.0
    cache_ttl_entity: float = 300.0
    cache_ttl_schedule: float = 60.0
    cache_ttl_timeline: float = 120.0
    cache_ttl_count: float = 30.0
    database_replica_urls: tuple[str, ...] = ()
    db_replica_max_lag: float = 5.0
    db_replica_sticky: float = 5.0
    db_replica_check_interval: float = 1.0
    redis_sentinels: tuple[str, ...] = ()
    redis_sentinel_master: str = "mymaster"
    redis_cluster_nodes: tuple[str, ...] = ()
    db_ssl_root_cert: str | None = None
    redis_ssl_ca_cert: str | None = None
    audit_reads: bool = False
    data_encryption_keys: str = ""
    data_encryption_active_key: str = ""
    blind_index_key: str = ""
    audit_key: str = ""
    audit_checkpoint_dir: str = ""
    audit_seal_interval: float = 0.2
    audit_sealer: bool = False
    migration_lock_timeout: float = 2.0
    migration_retries: int = 5
    db_transaction_pooler: bool = False
    database_direct_url: str | None = None

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ConfigurationError("APP_ENV", f"must be one of {', '.join(ENVIRONMENTS)}")
        if _backend(self.database_url, "DATABASE_URL") not in ("postgresql", "sqlite"):
            raise ConfigurationError("DATABASE_URL", "must be a postgresql or sqlite URL")
        if self.environment == "production" and self.is_embedded:
            raise ConfigurationError(
                "DATABASE_URL", "an embedded database is refused in production"
            )
        if not _known_zone(self.clinic_timezone):
            raise ConfigurationError("CLINIC_TIMEZONE", "is not a known time zone")
        for name in ("db_pool_size", "mongodb_pool_size"):
            if getattr(self, name) < 1:
                raise ConfigurationError(VARIABLES[name], "must be at least 1")
        for name in (
            "db_pool_timeout",
            "db_connect_timeout",
            "db_pool_recycle",
            "redis_socket_timeout",
            "cache_lock_timeout",
            "cache_breaker_backoff",
            "cache_ttl_entity",
            "cache_ttl_schedule",
            "cache_ttl_timeline",
            "cache_ttl_count",
            "db_replica_max_lag",
            "db_replica_check_interval",
            "migration_lock_timeout",
            "audit_seal_interval",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(VARIABLES[name], "must be positive")
        for name in (
            "db_statement_timeout_ms",
            "db_slow_query_ms",
            "db_replica_sticky",
            "migration_retries",
        ):
            if getattr(self, name) < 0:
                raise ConfigurationError(VARIABLES[name], "must not be negative")
        if self.db_transaction_pooler:
            if self.is_embedded:
                raise ConfigurationError("DB_TRANSACTION_POOLER", "needs a postgresql database")
            if not self.database_direct_url:
                raise ConfigurationError(
                    "DATABASE_DIRECT_URL",
                    "must be set with DB_TRANSACTION_POOLER (migrations and LISTEN need a session)",
                )
        direct = self.database_direct_url
        if direct is not None and _backend(direct, "DATABASE_DIRECT_URL") != "postgresql":
            raise ConfigurationError("DATABASE_DIRECT_URL", "must be a postgresql URL")
        for url in self.database_replica_urls:
            if _backend(url, "DATABASE_REPLICA_URLS") != "postgresql":
                raise ConfigurationError("DATABASE_REPLICA_URLS", "must be postgresql URLs")
        if "{" in self.cache_prefix or "}" in self.cache_prefix:
            raise ConfigurationError("REDIS_KEY_PREFIX", "must not contain braces")
        if self.redis_ssl_ca_cert and not self.redis_url.startswith("rediss://"):
            raise ConfigurationError("REDIS_SSL_CA_CERT", "needs a rediss:// REDIS_URL")
        if self.redis_sentinels and self.redis_cluster_nodes:
            raise ConfigurationError(
                "REDIS_CLUSTER_NODES", "cannot be combined with REDIS_SENTINELS"
            )
        for name, nodes in (
            ("REDIS_SENTINELS", self.redis_sentinels),
            ("REDIS_CLUSTER_NODES", self.redis_cluster_nodes),
        ):
            for node in nodes:
                host_and_port(node, name)
        self.keyring  # noqa: B018 - refuses missing or malformed keys at start-up
        self.audit_signing_key  # noqa: B018 - likewise
        if self.environment == "production" and not self.audit_checkpoint_dir:
            raise ConfigurationError("AUDIT_CHECKPOINT_DIR", "must be set in production")

    @functools.cached_property
    def keyring(self) -> Keyring:
        """The field-encryption keys (``protection/keyring.py``); development and test get
        a fixed, public key when none is configured, production refuses to start."""
        return keyring_from(
            self.data_encryption_keys,
            self.data_encryption_active_key,
            self.blind_index_key,
            production=self.environment == "production",
        )

    @functools.cached_property
    def audit_signing_key(self) -> AuditKey:
        """The key of the audit trail's MACs (``protection/audit_key.py``); development and
        test get a public key when none is configured, production refuses to start."""
        return audit_key_from(self.audit_key, production=self.environment == "production")

    @property
    def is_embedded(self) -> bool:
        """True when the relational store is an SQLite file or memory database."""
        return make_url(self.database_url).get_backend_name() == "sqlite"

    @property
    def direct(self) -> Settings:
        """These settings on ``database_direct_url``, the server itself rather than the
        transaction pooler in front of it: for what needs a session of its own (the
        migration lock, ``LISTEN``). ``self`` when no pooler is configured."""
        if not self.db_transaction_pooler or self.database_direct_url is None:
            return self
        return dataclasses.replace(
            self,
            database_url=self.database_direct_url,
            db_transaction_pooler=False,
            database_direct_url=None,
        )

    @property
    def database_url_safe(self) -> str:
        """The database URL with its password masked, fit for logs and messages."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["database_url"] = self.database_url_safe
        if self.database_direct_url:
            direct = make_url(self.database_direct_url)
            shown["database_direct_url"] = direct.render_as_string(hide_password=True)
        for name in ("data_encryption_keys", "blind_index_key", "audit_key"):
            shown[name] = "***" if shown[name] else ""
        for name in ("mongodb_uri", "redis_url"):
            shown[name] = _mask_password(shown[name])
        shown["database_replica_urls"] = tuple(
            make_url(url).render_as_string(hide_password=True) for url in self.database_replica_urls
        )
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``)."""
        env = _Env(os.environ if environ is None else environ)
        environment = env.text("APP_ENV", "") or env.text("NODE_ENV", "development")
        overrides: dict[str, Any] = {
            "environment": environment,
            "database_url": _database_url(env, environment),
            "redis_url": _redis_url(env),
            "mongodb_uri": env.text("MONGODB_URI", cls.mongodb_uri),
            "cache_prefix": env.text("REDIS_KEY_PREFIX", cls.cache_prefix),
            "clinic_timezone": env.text("CLINIC_TIMEZONE", cls.clinic_timezone),
            "db_pool_size": env.number("DB_POOL_MAX", int, cls.db_pool_size),
            "db_pool_recycle": env.millis("DB_POOL_IDLE_TIMEOUT", cls.db_pool_recycle),
            "db_pool_timeout": env.millis("DB_POOL_CONNECTION_TIMEOUT", cls.db_pool_timeout),
            "db_connect_timeout": env.millis("DB_POOL_CONNECTION_TIMEOUT", cls.db_connect_timeout),
            "db_statement_timeout_ms": env.number(
                "DB_STATEMENT_TIMEOUT", int, cls.db_statement_timeout_ms
            ),
            "db_slow_query_ms": env.number("DB_SLOW_QUERY_MS", int, cls.db_slow_query_ms),
            "db_ssl": env.flag("DB_SSL", cls.db_ssl),
            "db_ssl_reject_unauthorized": env.flag(
                "DB_SSL_REJECT_UNAUTHORIZED", cls.db_ssl_reject_unauthorized
            ),
            "mongodb_timeout_ms": env.number("MONGODB_TIMEOUT", int, cls.mongodb_timeout_ms),
            "mongodb_pool_size": env.number("MONGODB_POOL_SIZE", int, cls.mongodb_pool_size),
            "redis_socket_timeout": env.millis("REDIS_SOCKET_TIMEOUT", cls.redis_socket_timeout),
            "cache_lock_timeout": env.millis("CACHE_LOCK_TIMEOUT", cls.cache_lock_timeout),
            "cache_breaker_backoff": env.millis("CACHE_BREAKER_BACKOFF", cls.cache_breaker_backoff),
            **{name: env.number(VARIABLES[name], float, getattr(cls, name)) for name in CACHE_TTLS},
            "database_replica_urls": tuple(
                _postgres_scheme(url) for url in env.items("DATABASE_REPLICA_URLS")
            ),
            "db_replica_max_lag": env.millis("DB_REPLICA_MAX_LAG", cls.db_replica_max_lag),
            "db_replica_sticky": env.millis("DB_REPLICA_STICKY", cls.db_replica_sticky, zero=True),
            "db_replica_check_interval": env.millis(
                "DB_REPLICA_CHECK_INTERVAL", cls.db_replica_check_interval
            ),
            "redis_sentinels": env.items("REDIS_SENTINELS"),
            "redis_sentinel_master": env.text("REDIS_SENTINEL_MASTER", cls.redis_sentinel_master),
            "redis_cluster_nodes": env.items("REDIS_CLUSTER_NODES"),
            "db_ssl_root_cert": env.text("DB_SSL_ROOT_CERT", "") or None,
            "redis_ssl_ca_cert": env.text("REDIS_SSL_CA_CERT", "") or None,
            "audit_reads": env.flag("AUDIT_READS", cls.audit_reads),
            "data_encryption_keys": env.text("DATA_ENCRYPTION_KEYS", ""),
            "data_encryption_active_key": env.text("DATA_ENCRYPTION_ACTIVE_KEY", ""),
            "blind_index_key": env.text("BLIND_INDEX_KEY", ""),
            "audit_key": env.text("AUDIT_KEY", ""),
            "audit_checkpoint_dir": env.text("AUDIT_CHECKPOINT_DIR", ""),
            "audit_seal_interval": env.millis("AUDIT_SEAL_INTERVAL", cls.audit_seal_interval),
            "audit_sealer": env.flag("AUDIT_SEALER", cls.audit_sealer),
            "migration_lock_timeout": env.millis(
                "MIGRATION_LOCK_TIMEOUT", cls.migration_lock_timeout
            ),
            "migration_retries": env.number("MIGRATION_RETRIES", int, cls.migration_retries),
            "db_transaction_pooler": env.flag("DB_TRANSACTION_POOLER", cls.db_transaction_pooler),
            "database_direct_url": _postgres_scheme(env.text("DATABASE_DIRECT_URL", "")) or None,
        }
        return cls(**overrides)


class _Env:
    """Typed reads of environment variables; every failure names the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        value = self._environ.get(name, "").strip()
        return value or default

    def has(self, name: str) -> bool:
        return bool(self._environ.get(name, "").strip())

    def number(self, name: str, kind: Callable[[str], _T], default: _T) -> _T:
        if not self.has(name):
            return default
        try:
            return kind(self._environ[name].strip())
        except ValueError:
            pass  # its message quotes the value: never chained to the error below
        raise ConfigurationError(name, "must be a number")

    def millis(self, name: str, default_seconds: float, *, zero: bool = False) -> float:
        if not self.has(name):
            return default_seconds
        millis = self.number(name, int, 0)
        if millis < 0 or (millis == 0 and not zero):
            raise ConfigurationError(name, "must be a positive number of milliseconds")
        return millis / 1000

    def items(self, name: str) -> tuple[str, ...]:
        """A comma-separated list (empty entries ignored)."""
        return tuple(
            item.strip() for item in self._environ.get(name, "").split(",") if item.strip()
        )

    def flag(self, name: str, default: bool) -> bool:
        if not self.has(name):
            return default
        value = self._environ[name].strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(name, "must be true or false")


def host_and_port(node: str, variable: str) -> tuple[str, int]:
    """``host:port`` of a Redis node, or ``ConfigurationError`` naming ``variable``."""
    host, _, port = node.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(variable, "must be a comma-separated list of host:port")
    return host, int(port)


def _backend(url: str, variable: str) -> str:
    """The URL's back end; an unparsable URL (its error may quote the URL, password
    included) is a ``ConfigurationError`` chaining nothing."""
    try:
        return make_url(url).get_backend_name()
    except (ArgumentError, ValueError):
        pass
    raise ConfigurationError(variable, "is not a database URL")


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _postgres_scheme(url: str) -> str:
    for legacy in ("postgres://", "postgresql://"):
        if url.startswith(legacy):
            return "postgresql+psycopg2://" + url[len(legacy) :]
    return url


def _database_url(env: _Env, environment: str) -> str:
    if env.has("DATABASE_URL"):
        return _postgres_scheme(env.text("DATABASE_URL", ""))
    if not env.has("DB_HOST"):
        if environment == "production":
            raise ConfigurationError("DATABASE_URL", "DATABASE_URL or DB_HOST must be set")
        return DEFAULT_DATABASE_URL
    url = URL.create(
        "postgresql+psycopg2",
        username=env.text("DB_USER", "postgres"),
        password=env.text("DB_PASSWORD", "") or None,
        host=env.text("DB_HOST", "127.0.0.1"),
        port=env.number("DB_PORT", int, 5432),
        database=env.text("DB_NAME", "dr_assistant"),
    )
    return url.render_as_string(hide_password=False)


def _redis_url(env: _Env) -> str:
    if env.has("REDIS_URL"):
        return env.text("REDIS_URL", "")
    host = env.text("REDIS_HOST", "127.0.0.1")
    port = env.number("REDIS_PORT", int, 6379)
    db = env.number("REDIS_DB", int, 0)
    password = env.text("REDIS_PASSWORD", "")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def _mask_password(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return uri
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}"
