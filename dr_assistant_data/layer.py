"""The facade application code holds: one ``DataLayer`` per process (or per fork)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from .errors import DataLayerError
from .migrations import relational as relational_migrations
from .relational import audit_trail, encryption
from .relational.audit_trail import ChainReport
from .relational.engine import build_engine
from .relational.pool import pool_state
from .relational.session import build_session_factory
from .relational.translate import translated
from .relational.unit_of_work import UnitOfWork
from .settings import Settings

HealthReport = dict[str, dict[str, Any]]


class DataLayer:
    """Wires settings to engines and units of work. Cheap to build: nothing connects until
    the first unit of work (or ``engine``) needs it."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self._clinic_timezone = ZoneInfo(self.settings.clinic_timezone)
        # re-entrant: close() from a signal handler may interrupt this thread holding it
        self._lock = threading.RLock()
        self._engine: Engine | None = None
        self._session_factory: sessionmaker[Session] | None = None
        self._closed = False

    @property
    def engine(self) -> Engine:
        """The pooled SQLAlchemy engine of the primary database."""
        with self._lock:
            if self._closed:
                raise DataLayerError("this DataLayer is closed")
            if self._engine is None:
                engine = build_engine(self.settings)
                if self._closed:  # a signal handler closed the layer while it was built
                    engine.dispose()
                    raise DataLayerError("this DataLayer is closed")
                self._engine = engine
                self._session_factory = build_session_factory(engine)
            return self._engine

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """Sessions carrying the layer's validation, audit and soft-delete rules."""
        self.engine  # noqa: B018 - builds the factory with the engine
        assert self._session_factory is not None
        return self._session_factory

    def unit_of_work(
        self, actor: str | None = None, *, correlation_id: str | None = None
    ) -> UnitOfWork:
        """A new unit of work; use it as a context manager.

        ``actor`` (a user id or a system name) is recorded on every audit event of the
        writes it makes; ``correlation_id`` ties them to a request (one is generated when
        omitted). In production a write without an actor is refused
        (``ValidationError("actor")``); elsewhere it is recorded as ``"unknown"``.
        """
        return UnitOfWork(
            self.session_factory,
            actor=(actor or "").strip() or None,
            correlation_id=correlation_id,
            clinic_timezone=self._clinic_timezone,
            actor_required=self.settings.environment == "production",
            audit_reads=self.settings.audit_reads,
        )

    def verify_audit_chain(self) -> ChainReport:
        """Check every link of the audit trail; the report names the first broken one."""
        with self.engine.connect() as connection:
            return translated(audit_trail.verify)(connection)

    def rotate_keys(self, batch_size: int = 500) -> int:
        """Re-encrypt identifiers sealed under an older key with the active one (and
        recompute blind indexes); returns the rows rewritten. Safe to rerun."""
        return translated(encryption.rotate)(self.engine, batch_size)

    def migrate(self) -> None:
        """Bring the relational schema to the newest revision. Idempotent; concurrent
        callers wait for each other (advisory lock) and each revision runs once."""
        relational_migrations.upgrade(self.engine)

    def downgrade(self, revision: str) -> None:
        """Take the relational schema back to ``revision`` (``"base"``: empty)."""
        relational_migrations.downgrade(self.engine, revision)

    def migration_status(self) -> relational_migrations.Status:
        """The applied, newest and pending revisions of the relational schema."""
        return relational_migrations.status(self.engine)

    def schema_drift(self) -> list[Any]:
        """Differences between the models and the live schema; empty when in step."""
        return relational_migrations.drift(self.engine)

    def health(self) -> HealthReport:
        """Reachability and latency of each store, and the pool's state. Never raises;
        ``health.failing_required`` judges the report."""
        return {
            "postgres": _probe(translated(self._ping_database)),
            "mongodb": _probe(self._ping_mongodb),
            "redis": _probe(self._ping_redis),
        }

    def close(self) -> None:
        """Release every pooled connection. Idempotent, and safe in a signal handler."""
        with self._lock:
            engine, self._engine, self._session_factory = self._engine, None, None
            self._closed = True
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> DataLayer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _ping_database(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {
            "backend": self.engine.dialect.name,
            "embedded": self.settings.is_embedded,
            "pool": pool_state(self.engine.pool),
        }

    def _ping_mongodb(self) -> dict[str, Any]:
        uri = self.settings.mongodb_uri
        if uri.startswith("mongomock://"):
            return {"embedded": True}
        from pymongo import MongoClient

        client: MongoClient[Any] = MongoClient(
            uri, serverSelectionTimeoutMS=self.settings.mongodb_timeout_ms, connect=True
        )
        try:
            client.admin.command("ping")
        finally:
            client.close()
        return {"embedded": False}

    def _ping_redis(self) -> dict[str, Any]:
        if self.settings.redis_url.startswith("memory://"):
            return {"embedded": True}
        import redis

        timeout = self.settings.db_connect_timeout
        client = redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:
            client.ping()
        finally:
            client.close()
        return {"embedded": False}


def _probe(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as error:
        failure = {"ok": False, "error": type(error).__name__, "latency_ms": _since(started)}
        if isinstance(error, DataLayerError):  # the layer's own messages carry no data
            failure["detail"] = str(error)
        return failure
    return {"ok": True, "latency_ms": _since(started), **detail}


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
