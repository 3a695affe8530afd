"""The facade application code holds: one ``DataLayer`` per process (or per fork)."""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from . import commit, metrics, telemetry
from .cache import CacheService, CacheStore, SessionStore
from .cache.namespace import DatabaseIdentity
from .cache.outbox import OutboxListener
from .documents.store import DocumentStore
from .documents.sweep import DEFAULT_GRACE, SweepReport, sweep
from .errors import DataLayerError, ValidationError
from .health import store_addresses
from .migrations import documents as document_migrations
from .migrations import relational as relational_migrations
from .progress import ProgressCallback
from .relational import encryption
from .relational.audit import verify as audit_verify
from .relational.audit.checkpoints import CheckpointStore, CheckpointStoreError, checkpoint_store
from .relational.audit.seal import Sealed, Sealer
from .relational.audit.verify import AuditReport, InclusionProof
from .relational.caching.outbox import Outbox
from .relational.caching.policy import regions_by_kind
from .relational.connection import replicas
from .relational.connection.engine import build_engine
from .relational.connection.pool import pool_state
from .relational.driver.translate import translated
from .settings import Settings
from .unit_of_work import UnitOfWork

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
        self._documents: DocumentStore | None = None
        self._cache_store: CacheStore | None = None
        self._replicas: replicas.ReplicaRouter | None = None
        self._outbox: OutboxListener | None = None
        self._identity: DatabaseIdentity | None = None
        self._sealer: Sealer | None = None
        self._direct_engine: Engine | None = None
        self.last_sealed: Sealed | None = None
        """The last audit batch a sealer of this layer sealed (for metrics)."""
        self._closed = False
        metrics.observe(self)

    @property
    def engine(self) -> Engine:
        """The pooled SQLAlchemy engine of the primary database."""
        with self._lock:
            self._refuse_if_closed()
            if self._engine is None:
                engine = build_engine(self.settings)
                if self._closed:  # a signal handler closed the layer while it was built
                    engine.dispose()
                self._refuse_if_closed()
                self._engine = engine
                self._identity = DatabaseIdentity(engine)
                outbox = None
                if engine.dialect.name == "postgresql" and not self._cache().embedded:
                    outbox = Outbox(engine, self._cache(), self.settings)
                    self._outbox = outbox.listener
                if self.settings.database_replica_urls:
                    self._replicas = replicas.ReplicaRouter(self.settings, build_engine)
                participants = commit.Participants(self._cache(), outbox, self._replicas)
                self._session_factory = commit.session_factory(engine, participants)
                if self.settings.audit_sealer and engine.dialect.name == "postgresql":
                    self._sealer = self.audit_sealer()
                    self._sealer.start()
            return self._engine

    @property
    def documents(self) -> DocumentStore:
        """The document store (MongoDB); connects on first use."""
        with self._lock:
            self._refuse_if_closed()
            if self._documents is None:
                self._documents = DocumentStore(self.settings)
            return self._documents

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """Sessions carrying the layer's validation, audit and soft-delete rules."""
        self.engine  # noqa: B018 - builds the factory with the engine
        assert self._session_factory is not None
        return self._session_factory

    @property
    def cache_store(self) -> CacheStore:
        """The Redis (or ``memory://``) cache component; connects on first use."""
        with self._lock:
            self._refuse_if_closed()
            return self._cache()

    @property
    def cache(self) -> CacheService:
        """The general cache service (see ``cache/service.py``)."""
        return CacheService(self.cache_store)

    @property
    def sessions(self) -> SessionStore:
        """The auth service's login sessions (see ``cache/sessions.py``)."""
        return SessionStore(self.cache_store)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    @property
    def database_name(self) -> str:
        """The primary database's name (an SQLite file's path), fit for logs and metrics."""
        return make_url(self.settings.database_url).database or ""

    def pool_state(self) -> dict[str, Any]:
        """The primary pool's size, checked-out, idle and overflow connections; empty
        before the layer first needed the database (nothing is connected to report it)."""
        engine = self._engine
        return pool_state(engine.pool) if engine is not None else {}

    def cache_guard_state(self) -> dict[str, int]:
        """The cache's circuit breaker (``breaker_open``: 0 or 1) and ``owed``
        invalidations; empty before this process used Redis. Never connects."""
        store = self._cache_store
        return store.guard_state() if store is not None else {}

    def replica_lags(self) -> list[float | None]:
        """Each replica's replay lag in seconds at its last check (``None``: unknown or
        unreachable), in ``DATABASE_REPLICA_URLS`` order. Never queries."""
        router = self._replicas
        return router.lags() if router is not None else []

    def cache_stats(self) -> dict[str, dict[str, int]]:
        """Hits, misses, loads, invalidations and errors per cache region."""
        return self.cache_store.stats.snapshot()

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise DataLayerError("this DataLayer is closed")

    def _cache(self) -> CacheStore:
        if self._cache_store is None:
            self._cache_store = CacheStore(
                self.settings, self._database_identity, regions_by_kind(), self._timeline
            )
        return self._cache_store

    def _database_identity(self) -> str:
        """What names this database's cache (``cache/namespace.py``), read once."""
        self.engine  # noqa: B018 - builds the engine and its identity
        assert self._identity is not None
        return self._identity()

    def _timeline(self) -> int | None:
        """The primary's timeline as of the newest connection (``None`` before one)."""
        return self._identity.timeline if self._identity is not None else None

    def unit_of_work(
        self,
        actor: str | None = None,
        *,
        correlation_id: str | None = None,
        read_only: bool = False,
        after_lsn: str | None = None,
    ) -> UnitOfWork:
        """A new unit of work; use it as a context manager.

        ``actor`` (a user id or a system name) is recorded on every audit event of the
        writes it makes; ``correlation_id`` ties them to a request (one is generated when
        omitted). In production a write without an actor is refused
        (``ValidationError("actor")``); elsewhere it is recorded as ``"unknown"``.
        ``read_only`` lets its reads go to a read replica (see
        ``relational/connection/replicas.py``): it may see data a little behind the primary,
        never behind ``after_lsn`` (a writer's ``uow.commit_lsn``).
        """
        return UnitOfWork(
            self.session_factory,
            self.documents,
            self.engine,
            actor=(actor or "").strip() or None,
            correlation_id=correlation_id,
            clinic_timezone=self._clinic_timezone,
            read_only=read_only,
            after_lsn=after_lsn,
            actor_required=self.settings.environment == "production",
            audit_reads=self.settings.audit_reads,
            audit_key=self.settings.audit_signing_key,
        )

    @property
    def audit_checkpoints(self) -> CheckpointStore | None:
        """Where the sealer exports checkpoints (``AUDIT_CHECKPOINT_DIR``), if anywhere."""
        return checkpoint_store(self.settings.audit_checkpoint_dir)

    def verify_audit_chain(self, progress: ProgressCallback | None = None) -> AuditReport:
        """Check every event and sealed batch of the audit log against the latest exported
        checkpoint; the report names the first problem (``relational/audit/verify.py``), a
        checkpoint store that cannot be read or holds what is not a checkpoint among them.
        ``progress`` hears of the events checked (``progress.py``). On PostgreSQL a log of
        more than one chunk is checked in a worker process per CPU, each with an engine of
        its own."""
        store = self.audit_checkpoints
        try:
            latest = store.latest() if store is not None else None
        except CheckpointStoreError as error:
            return AuditReport(ok=False, rows_checked=0, problem=str(error))
        with self.engine.connect() as connection:
            return translated(audit_verify.verify)(
                connection,
                self.settings.audit_signing_key,
                latest,
                anchored_store=store is not None,
                progress=progress,
                parallel=self._audit_workers(),
            )

    def _audit_workers(self) -> audit_verify.Parallel | None:
        if self.engine.dialect.name != "postgresql":  # an embedded file: one process
            return None
        processes = len(os.sched_getaffinity(0))
        settings = dataclasses.replace(self.settings)  # without its keys built: they do not pickle
        return audit_verify.Parallel(processes, functools.partial(build_engine, settings))

    def prove_audit_event(self, event_id: object) -> InclusionProof:
        """Proof that one audit event is in the log, intact, under the latest checkpoint
        (``audit_verify.check_proof`` checks it with the key alone). ``NotFoundError`` when
        the event does not exist or is not sealed yet."""
        store = self.audit_checkpoints
        latest = store.latest() if store is not None else None
        with self.engine.connect() as connection:
            return translated(audit_verify.prove)(
                connection, self.settings.audit_signing_key, event_id, latest
            )

    def seal_audit(self) -> Sealed | None:
        """One sealing round, if no other process holds the sealer's role (``None`` then,
        or when nothing was left to seal). PostgreSQL only."""
        sealer = self.audit_sealer()
        try:
            return translated(sealer.run_once)()
        finally:
            sealer.resign()

    def audit_sealer(self) -> Sealer:
        """A sealer of this layer's database (its rounds: ``run_once``, or ``start`` a
        thread of them); ``AUDIT_SEALER=true`` runs one in every layer."""
        settings = self.settings
        return Sealer(
            self._session_engine(),
            settings.audit_signing_key,
            self.audit_checkpoints,
            settings.audit_seal_interval,
            on_sealed=self._sealed,
        )

    def _sealed(self, sealed: Sealed) -> None:
        self.last_sealed = sealed

    def audit_sealer_health(self) -> dict[str, Any] | None:
        """The health of the sealer this layer runs (``AUDIT_SEALER``), ``None`` without
        one: ``ok`` is false while the checkpoint store refuses its checkpoints."""
        sealer = self._sealer
        return None if sealer is None else sealer.health()

    def rotate_keys(self, batch_size: int = 500, progress: ProgressCallback | None = None) -> int:
        """Re-encrypt identifiers sealed under an older key with the active one (and
        recompute blind indexes), then drop every cached read and re-seal the cache
        service's values and the login sessions under the active key (``CacheStore.reseal``);
        returns the rows rewritten. ``progress`` hears of the rows examined (``progress.py``).
        Safe to rerun; when Redis cannot answer, the rows are done and
        ``BackendUnavailableError`` says the cache is not: run it again before removing the
        old key."""
        rewritten = translated(encryption.rotate)(self.engine, batch_size, progress)
        self.cache_store.reseal()
        return rewritten

    def migrate(self, progress: ProgressCallback | None = None) -> None:
        """Bring the relational schema, then the document store, to the newest revision.
        Idempotent; concurrent callers wait for each other (an advisory lock, a lock
        document) and each revision runs once. ``progress`` hears of the relational
        revisions applied (``progress.py``)."""
        activity = telemetry.start("migrate")
        try:
            relational_migrations.upgrade(
                self._session_engine(), policy=self._migration_policy, progress=progress
            )
            document_migrations.upgrade(self.documents)
        except BaseException as error:
            activity.end("failed", error)
            raise
        activity.end("migrated")

    def document_migration_status(self) -> list[document_migrations.Applied]:
        """Every document-store migration, with when it was applied (``None``: pending)."""
        return document_migrations.status(self.documents)

    def sweep_documents(
        self, grace: timedelta = DEFAULT_GRACE, progress: ProgressCallback | None = None
    ) -> SweepReport:
        """Settle documents of units of work that died between the two stores (older than
        ``grace``) and remove expired audio. Run it periodically (a worker, cron).
        ``progress`` hears of the stale documents settled (``progress.py``)."""
        return sweep(self.documents, self.engine, grace, progress)

    def downgrade(self, revision: str, *, confirm: bool = False) -> None:
        """Take the relational schema back to ``revision`` (``"base"``: empty). In
        production this refuses (``ValidationError("confirm")``, nothing run) unless
        ``confirm`` is given: a downgrade drops data and guarantees."""
        if self.settings.environment == "production" and not confirm:
            raise ValidationError("confirm", "a production downgrade must be confirmed explicitly")
        relational_migrations.downgrade(self._session_engine(), revision, self._migration_policy)

    def _session_engine(self) -> Engine:
        """The primary's engine; behind a transaction pooler, one of the layer's own on
        ``database_direct_url``, for what a session holds across transactions: the
        migration lock (across the commits of ``autocommit_block``s) and the audit
        sealer's role (a pooler would leave either on a server connection it hands to
        other clients)."""
        if not self.settings.db_transaction_pooler:
            return self.engine
        with self._lock:
            self._refuse_if_closed()
            if self._direct_engine is None:
                self._direct_engine = build_engine(self.settings.direct)
            return self._direct_engine

    @property
    def _migration_policy(self) -> relational_migrations.LockPolicy:
        return relational_migrations.LockPolicy.of(self.settings)

    def migration_status(self) -> relational_migrations.Status:
        """The applied, newest and pending revisions of the relational schema."""
        return relational_migrations.status(self.engine)

    def schema_drift(self) -> list[Any]:
        """Differences between the models and the live schema; empty when in step."""
        return relational_migrations.drift(self.engine)

    def health(self) -> HealthReport:
        """Reachability and latency of each store, where it is (``address``: never a
        credential), its migrations (``revision``, ``pending``) and the pool's state; the
        audit sealer's checkpoint writes when this layer runs one. A store with migrations
        pending is not ok (an embedded document store, new in each process, aside). Never
        raises; ``health.failing_required`` judges the report."""
        address = store_addresses(self.settings)
        report = {
            "postgres": _probe(address["postgres"], translated(self._ping_database)),
            "mongodb": _probe(address["mongodb"], self._document_health),
            "redis": _probe(address["redis"], lambda: self.cache_store.health()),
        }
        sealer = self.audit_sealer_health()
        if sealer is not None:
            report["audit_sealer"] = sealer
        return report

    def close(self) -> None:
        """Release every pooled connection. Idempotent, and safe in a signal handler."""
        with self._lock:
            engine, self._engine, self._session_factory = self._engine, None, None
            documents, self._documents = self._documents, None
            cache_store, self._cache_store = self._cache_store, None
            router, self._replicas = self._replicas, None
            outbox, self._outbox = self._outbox, None
            sealer, self._sealer = self._sealer, None
            direct_engine, self._direct_engine = self._direct_engine, None
            self._closed = True
        if sealer is not None:
            sealer.stop()
        if direct_engine is not None:
            direct_engine.dispose()
        if outbox is not None:
            outbox.close()
        if engine is not None:
            engine.dispose()
        if router is not None:
            router.close()
        if documents is not None:
            documents.close()
        if cache_store is not None:
            cache_store.close()

    def __enter__(self) -> DataLayer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _ping_database(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        detail = {
            "backend": self.engine.dialect.name,
            "embedded": self.settings.is_embedded,
            "pool": pool_state(self.engine.pool),
        }
        if self._replicas is not None:  # a replica down is reported, not a failure
            detail["replicas"] = self._replicas.health()
        status = self.migration_status()
        detail.update(revision=status.current[0] if status.current else None, head=status.head)
        return {**detail, **_pending(list(status.pending))}

    def _document_health(self) -> dict[str, Any]:
        detail = self.documents.health()
        pending = [m.name for m in self.document_migration_status() if m.applied_at is None]
        if self.documents.embedded:
            return {**detail, "pending": pending}
        return {**detail, **_pending(pending)}


def _pending(migrations: list[str]) -> dict[str, Any]:
    """The ``pending`` part of a store's health: not ok while migrations are pending."""
    if not migrations:
        return {"pending": []}
    return {
        "ok": False,
        "pending": migrations,
        "detail": f"migrations pending ({', '.join(migrations)}); run `dr-assistant-data migrate`",
    }


def _probe(address: str, check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as error:
        failure = {
            "ok": False,
            "address": address,
            "error": type(error).__name__,
            "latency_ms": _since(started),
        }
        if isinstance(error, DataLayerError):  # the layer's own messages carry no data
            failure["detail"] = str(error)
        return failure
    return {"ok": True, "address": address, "latency_ms": _since(started), **detail}


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
