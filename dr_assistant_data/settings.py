"""Configuration: one immutable :class:`Settings`, built explicitly or from the environment.

The environment variables keep the names of the layer this package replaces (``DB_HOST``,
``DB_POOL_MAX``, ``REDIS_KEY_PREFIX``...); ``DATABASE_URL`` and ``REDIS_URL`` win when set.
Durations the old layer took in milliseconds are still milliseconds. A value that cannot be
parsed raises :class:`~dr_assistant_data.errors.ConfigurationError` naming the variable, at
start-up rather than on the first request; so does a database URL naming a driver the
layer does not run on (``postgresql+asyncpg://``). A variable that looks like one of the
layer's but is none of them (``DATABSE_URL``, ``MONGO_URI``) is warned about by name, with
the setting it resembles, never its value: otherwise it would be silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, fields
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .environ import (
    AT_LEAST_ONE,
    NOT_NEGATIVE,
    POSITIVE,
    Bound,
    Environ,
    one_of,
    source_of,
    variable,
)
from .errors import ConfigurationError
from .protection.audit_key import AuditKey, audit_key_from
from .protection.keyring import Keyring, keyring_from

DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/dr_assistant"
ENVIRONMENTS = ("development", "test", "production")
DRIVERS = {"postgresql": "psycopg2", "sqlite": "pysqlite"}
"""The one driver the layer runs each database on (the default of each URL scheme)."""
LAYER_LOOKING_PREFIXES = (
    *("DR_", "DATA_LAYER_", "DATABASE_", "DB_", "MONGODB_", "CACHE_TTL_", "MIGRATION_"),
    *("DATA_ENCRYPTION_", "BLIND_INDEX_"),
)
"""Names with these prefixes that are not settings are warned about, as are names within a
small edit of one (``SIMILARITY``)."""
SIMILARITY = 0.85
"""``difflib`` ratio from which a name is taken for a misspelling of a setting's."""
logger = logging.getLogger(__name__)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


KNOWN_ZONE = Bound(_known_zone, "must be a known IANA time zone (Asia/Kolkata)")


def _environment(env: Environ, name: str, default: str) -> str:
    """``APP_ENV``, else the old layer's ``NODE_ENV``."""
    return env.text(name, "") or env.text("NODE_ENV", default)


def _postgres_scheme(url: str) -> str:
    for legacy in ("postgres://", "postgresql://"):
        if url.startswith(legacy):
            return "postgresql+psycopg2://" + url[len(legacy) :]
    return url


def _database_url(env: Environ, name: str, default: str) -> str:
    """``DATABASE_URL``, else one built from ``DB_HOST`` and the other ``DB_*`` variables."""
    if env.has(name):
        return env.text(name, "")
    if not env.has("DB_HOST"):
        if _environment(env, "APP_ENV", "development") == "production":
            raise ConfigurationError(name, "DATABASE_URL or DB_HOST must be set")
        return default
    url = URL.create(
        "postgresql+psycopg2",
        username=env.text("DB_USER", "postgres"),
        password=env.text("DB_PASSWORD", "") or None,
        host=env.text("DB_HOST", "127.0.0.1"),
        port=env.integer("DB_PORT", 5432),
        database=env.text("DB_NAME", "dr_assistant"),
    )
    return url.render_as_string(hide_password=False)


def _redis_url(env: Environ, name: str, default: str) -> str:
    """``REDIS_URL``, else one built from ``REDIS_HOST`` and the other ``REDIS_*`` variables."""
    if env.has(name):
        return env.text(name, "")
    host = env.text("REDIS_HOST", "127.0.0.1")
    port = env.integer("REDIS_PORT", 6379)
    db = env.integer("REDIS_DB", 0)
    password = env.text("REDIS_PASSWORD", "")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the layer needs to reach its three stores.

    Each field names, once, the environment variable it is read from and the range it must
    hold (``variable(...)``, see ``environ.py``); errors name that variable.
    Durations are seconds unless the name ends in ``_ms``; the environment gives
    ``REDIS_SOCKET_TIMEOUT``, ``CACHE_LOCK_TIMEOUT``, ``CACHE_BREAKER_BACKOFF``,
    ``DB_REPLICA_*`` and ``MIGRATION_LOCK_TIMEOUT`` in milliseconds, ``CACHE_TTL_*`` in
    seconds, ``MIGRATION_RETRIES`` as a count; lists
    (``DATABASE_REPLICA_URLS``, ``REDIS_SENTINELS``, ``REDIS_CLUSTER_NODES``) are
    comma-separated. Every field has a default that works against
    local servers with trust authentication (``compose.yaml`` sets a password: use the
    ``DATABASE_URL`` its header gives).
    """

    database_url: str = variable(
        "DATABASE_URL",
        DEFAULT_DATABASE_URL,
        _database_url,
        also=("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"),
        doc="The primary PostgreSQL database (an SQLite URL: the embedded back end, refused "
        "in production); `postgres://` is accepted.",
    )
    mongodb_uri: str = variable(
        "MONGODB_URI",
        "mongodb://127.0.0.1:27017/dr_assistant",
        doc="The document store of clinical notes and recordings; "
        "`mongomock://localhost/NAME` keeps it in memory.",
    )
    redis_url: str = variable(
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        _redis_url,
        also=("REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD"),
        doc="The cache's Redis (`rediss://` for TLS); `memory://` is an in-process cache.",
    )
    cache_prefix: str = variable(
        "REDIS_KEY_PREFIX",
        "dr_assistant:",
        doc="The namespace of every cache key (no braces: they mark a key's hash tag).",
    )
    environment: str = variable(
        "APP_ENV",
        "development",
        _environment,
        also=("NODE_ENV",),
        bound=one_of(ENVIRONMENTS),
        doc="Production refuses embedded databases, built-in keys and a missing checkpoint folder.",
    )
    clinic_timezone: str = variable(
        "CLINIC_TIMEZONE",
        "Asia/Kolkata",
        bound=KNOWN_ZONE,
        doc="The clinic's time zone: what a day is for schedules, and `uow.clinic_time()`.",
    )
    db_pool_size: int = variable(
        "DB_POOL_MAX",
        10,
        Environ.integer,
        bound=AT_LEAST_ONE,
        doc="Pooled connections to the primary, with no overflow beyond them.",
    )
    db_pool_timeout: float = variable(
        "DB_POOL_CONNECTION_TIMEOUT",
        5.0,
        Environ.millis,
        bound=POSITIVE,
        doc="How long to wait for a free pooled connection.",
    )
    db_connect_timeout: float = variable(
        "DB_POOL_CONNECTION_TIMEOUT",
        5.0,
        Environ.millis,
        bound=POSITIVE,
        doc="How long to wait for a new connection to be established.",
    )
    db_pool_recycle: float = variable(
        "DB_POOL_IDLE_TIMEOUT",
        1800.0,
        Environ.millis,
        bound=POSITIVE,
        doc="Age after which a pooled connection is replaced.",
    )
    db_statement_timeout_ms: int = variable(
        "DB_STATEMENT_TIMEOUT",
        30_000,
        Environ.integer,
        bound=NOT_NEGATIVE,
        doc="The server-side statement timeout, in milliseconds (0: none).",
    )
    db_slow_query_ms: int = variable(
        "DB_SLOW_QUERY_MS",
        500,
        Environ.integer,
        bound=NOT_NEGATIVE,
        doc="Statements at least this slow, in milliseconds, are logged (without values).",
    )
    db_ssl: bool = variable(
        "DB_SSL",
        False,
        Environ.flag,
        doc="TLS to PostgreSQL: `require`, or `verify-full` with `DB_SSL_REJECT_UNAUTHORIZED` "
        "(off: libpq's default, TLS if offered, unverified).",
    )
    db_ssl_reject_unauthorized: bool = variable(
        "DB_SSL_REJECT_UNAUTHORIZED",
        True,
        Environ.flag,
        doc="With `DB_SSL`, verify the server's certificate and host name.",
    )
    mongodb_timeout_ms: int = variable(
        "MONGODB_TIMEOUT",
        5_000,
        Environ.integer,
        bound=POSITIVE,
        doc="Milliseconds to select a MongoDB server and to connect to it.",
    )
    mongodb_pool_size: int = variable(
        "MONGODB_POOL_SIZE",
        10,
        Environ.integer,
        bound=AT_LEAST_ONE,
        doc="Pooled connections per MongoDB server.",
    )
    redis_socket_timeout: float = variable(
        "REDIS_SOCKET_TIMEOUT",
        0.25,
        Environ.millis,
        bound=POSITIVE,
        doc="How long a Redis call may take before the databases answer instead.",
    )
    cache_lock_timeout: float = variable(
        "CACHE_LOCK_TIMEOUT",
        5.0,
        Environ.millis,
        bound=POSITIVE,
        doc="After this, a cache fill's lock expires (its holder crashed).",
    )
    cache_breaker_backoff: float = variable(
        "CACHE_BREAKER_BACKOFF",
        2.0,
        Environ.millis,
        bound=POSITIVE,
        doc="How long the layer leaves a failing Redis alone before trying it again.",
    )
    cache_ttl_entity: float = variable(
        "CACHE_TTL_ENTITY",
        300.0,
        Environ.real,
        bound=POSITIVE,
        doc="Seconds a cached patient or user lives.",
    )
    cache_ttl_schedule: float = variable(
        "CACHE_TTL_SCHEDULE",
        60.0,
        Environ.real,
        bound=POSITIVE,
        doc="Seconds a cached doctor's day lives.",
    )
    cache_ttl_timeline: float = variable(
        "CACHE_TTL_TIMELINE",
        120.0,
        Environ.real,
        bound=POSITIVE,
        doc="Seconds a cached patient's encounter timeline lives.",
    )
    cache_ttl_count: float = variable(
        "CACHE_TTL_COUNT",
        30.0,
        Environ.real,
        bound=POSITIVE,
        doc="Seconds a cached unread-alert count lives.",
    )
    database_replica_urls: tuple[str, ...] = variable(
        "DATABASE_REPLICA_URLS",
        (),
        Environ.items,
        doc="Streaming replicas that serve read-only units of work.",
    )
    db_replica_max_lag: float = variable(
        "DB_REPLICA_MAX_LAG",
        5.0,
        Environ.millis,
        bound=POSITIVE,
        doc="Replay lag past which a replica is skipped.",
    )
    db_replica_sticky: float = variable(
        "DB_REPLICA_STICKY",
        5.0,
        Environ.millis_or_zero,
        bound=NOT_NEGATIVE,
        doc="How long an actor reads from the primary after its own write (0: off).",
    )
    db_replica_check_interval: float = variable(
        "DB_REPLICA_CHECK_INTERVAL",
        1.0,
        Environ.millis,
        bound=POSITIVE,
        doc="How long a replica's measured state is trusted before it is measured again.",
    )
    redis_sentinels: tuple[str, ...] = variable(
        "REDIS_SENTINELS",
        (),
        Environ.items,
        doc="`host:port` of each Redis Sentinel, used instead of `REDIS_URL`.",
    )
    redis_sentinel_master: str = variable(
        "REDIS_SENTINEL_MASTER",
        "mymaster",
        doc="The name the sentinels know the master by.",
    )
    redis_cluster_nodes: tuple[str, ...] = variable(
        "REDIS_CLUSTER_NODES",
        (),
        Environ.items,
        doc="`host:port` of Redis Cluster nodes to start from, instead of `REDIS_URL`.",
    )
    db_ssl_root_cert: str | None = variable(
        "DB_SSL_ROOT_CERT",
        None,
        Environ.optional_text,
        doc="The CA certificate file PostgreSQL's certificate is verified with "
        "(default: libpq's `~/.postgresql/root.crt`).",
    )
    redis_ssl_ca_cert: str | None = variable(
        "REDIS_SSL_CA_CERT",
        None,
        Environ.optional_text,
        doc="The CA certificate file a `rediss://` Redis is verified with (default: the system's).",
    )
    audit_reads: bool = variable(
        "AUDIT_READS",
        False,
        Environ.flag,
        doc="Record a `read` audit event for every read of a patient's chart.",
    )
    data_encryption_keys: str = variable(
        "DATA_ENCRYPTION_KEYS",
        "",
        doc="The field-encryption keys, `kid:base64,...`; required in production "
        "(elsewhere a built-in, public key).",
    )
    data_encryption_active_key: str = variable(
        "DATA_ENCRYPTION_ACTIVE_KEY",
        "",
        doc="The id of the key new values are encrypted with.",
    )
    blind_index_key: str = variable(
        "BLIND_INDEX_KEY",
        "",
        doc="Base64 key of the lookup indexes of encrypted fields; required in production.",
    )
    audit_key: str = variable(
        "AUDIT_KEY",
        "",
        doc="Base64 of 32 bytes: the HMAC key of audit events, seals and checkpoints; "
        "required in production.",
    )
    audit_checkpoint_dir: str = variable(
        "AUDIT_CHECKPOINT_DIR",
        "",
        doc="The folder the sealer appends signed checkpoints to; required in production.",
    )
    audit_seal_interval: float = variable(
        "AUDIT_SEAL_INTERVAL",
        0.2,
        Environ.millis,
        bound=POSITIVE,
        doc="Time between two sealing rounds.",
    )
    audit_sealer: bool = variable(
        "AUDIT_SEALER",
        False,
        Environ.flag,
        doc="Run a candidate audit sealer thread in every `DataLayer`.",
    )
    migration_lock_timeout: float = variable(
        "MIGRATION_LOCK_TIMEOUT",
        2.0,
        Environ.millis,
        bound=POSITIVE,
        doc="How long a migration statement waits for a table lock before it gives up and retries.",
    )
    migration_retries: int = variable(
        "MIGRATION_RETRIES",
        5,
        Environ.integer,
        bound=NOT_NEGATIVE,
        doc="How many times a migration statement that timed out on a lock is retried.",
    )
    db_transaction_pooler: bool = variable(
        "DB_TRANSACTION_POOLER",
        False,
        Environ.flag,
        doc="`DATABASE_URL` is a pooler in transaction mode (PgBouncer, a managed pooler).",
    )
    database_direct_url: str | None = variable(
        "DATABASE_DIRECT_URL",
        None,
        Environ.optional_text,
        doc="The server itself, behind the pooler: for migrations and the cache outbox's "
        "`LISTEN`; required with `DB_TRANSACTION_POOLER`.",
    )

    def __post_init__(self) -> None:
        # a URL without a driver means psycopg2, as the old layer's did (not SQLAlchemy's
        # default, which may be a driver the layer does not run on)
        object.__setattr__(self, "database_url", _postgres_scheme(self.database_url))
        if self.database_direct_url is not None:
            direct = _postgres_scheme(self.database_direct_url)
            object.__setattr__(self, "database_direct_url", direct)
        replicas = tuple(_postgres_scheme(url) for url in self.database_replica_urls)
        object.__setattr__(self, "database_replica_urls", replicas)
        for setting in fields(self):
            source = source_of(setting)
            if source.bound is not None:
                source.bound.check(getattr(self, setting.name), source.name)
        _check_database_url(self.database_url, "DATABASE_URL", ("postgresql", "sqlite"))
        if self.environment == "production" and self.is_embedded:
            raise ConfigurationError(
                "DATABASE_URL", "an embedded database is refused in production"
            )
        if self.db_transaction_pooler:
            if self.is_embedded:
                raise ConfigurationError("DB_TRANSACTION_POOLER", "needs a postgresql database")
            if not self.database_direct_url:
                raise ConfigurationError(
                    "DATABASE_DIRECT_URL",
                    "must be set with DB_TRANSACTION_POOLER (migrations and LISTEN need a session)",
                )
        if self.database_direct_url is not None:
            _check_database_url(self.database_direct_url, "DATABASE_DIRECT_URL", ("postgresql",))
        for url in self.database_replica_urls:
            _check_database_url(url, "DATABASE_REPLICA_URLS", ("postgresql",))
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
        """Build settings from ``environ`` (default: ``os.environ``); variables that look
        like settings but are none are warned about (:func:`warn_of_misspelt_settings`)."""
        source = os.environ if environ is None else environ
        warn_of_misspelt_settings(source, "environment variable")
        env = Environ(source)
        return cls(
            **{
                setting.name: source_of(setting).read(env, setting.default)
                for setting in fields(cls)
            }
        )


ENVIRONMENT_VARIABLES = frozenset(
    name for setting in fields(Settings) for name in source_of(setting).names
)
"""Every variable :meth:`Settings.from_env` reads: what the Flask extension takes from
``app.config``."""


def misspelt_settings(
    names: Iterable[str], known: Collection[str] = ENVIRONMENT_VARIABLES
) -> list[tuple[str, str | None]]:
    """``(name, the known name it resembles or None)`` for each of ``names`` that is not in
    ``known`` but looks like one of them: within a small edit of one (case aside), or with
    one of the layer's prefixes (``LAYER_LOOKING_PREFIXES``)."""
    found = []
    for name in sorted(names):
        if name in known:
            continue
        upper = name.upper()
        close = difflib.get_close_matches(upper, known, n=1, cutoff=SIMILARITY)
        prefix = next((p for p in LAYER_LOOKING_PREFIXES if upper.startswith(p)), None)
        if close or prefix is not None:
            # a name with a layer's prefix is likeliest one of the settings of that prefix
            alike = [k for k in known if prefix is None or k.startswith(prefix)] or known
            nearest = close or difflib.get_close_matches(upper, alike, n=1)
            found.append((name, nearest[0] if nearest else None))
    return found


def warn_of_misspelt_settings(
    names: Iterable[str], kind: str, known: Collection[str] = ENVIRONMENT_VARIABLES
) -> None:
    """Log a warning naming each name of :func:`misspelt_settings` and the setting it
    resembles, never its value; ``kind`` says where it was found."""
    for name, nearest in misspelt_settings(names, known):
        hint = f"; did you mean {nearest}?" if nearest else ""
        logger.warning("%s %s is not a data layer setting and is ignored%s", kind, name, hint)


def host_and_port(node: str, variable: str) -> tuple[str, int]:
    """``host:port`` of a Redis node, or ``ConfigurationError`` naming ``variable``."""
    host, _, port = node.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(variable, "must be a comma-separated list of host:port")
    return host, int(port)


def _check_database_url(url: str, variable: str, backends: tuple[str, ...]) -> None:
    """Refuse a URL that is not one of ``backends`` on the driver the layer runs it on
    (``DRIVERS``). An unparsable URL (its error may quote the URL, password included) or
    an unknown driver is a ``ConfigurationError`` chaining nothing."""
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except (ArgumentError, ValueError):
        pass
    else:
        if backend not in backends:
            raise ConfigurationError(variable, f"must be a {' or '.join(backends)} URL")
        driver = parsed.drivername.partition("+")[2] or DRIVERS[backend]
        if driver != DRIVERS[backend]:
            supported = ", ".join(f"{name}+{DRIVERS[name]}://" for name in backends)
            raise ConfigurationError(
                variable, f"driver {driver} is not supported; the layer runs on {supported}"
            )
        return
    raise ConfigurationError(variable, "is not a database URL")


def _mask_password(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return uri
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}"
