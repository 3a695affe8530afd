"""Issue 19's figures: audited writes by many processes, seal latency, and verification of
a million events.

* ``writer_processes`` processes create patients in a loop for ``seconds`` each, three
  times in one run: with the audit write removed, with the audit written as before
  revision 0008 (a transaction-scoped advisory lock, the last link read, then the insert),
  and with the lock-free trail and a sealer (in this process, exporting checkpoints).
  Meanwhile ``pg_stat_activity`` is sampled every 20 ms: active backends, and those waiting
  on an advisory lock.
* Seal latency: for every event of the lock-free run (its actor says so), the time from
  its ``occurred_at`` (taken before its commit, so the figure errs long) to the checkpoint
  covering its batch.
* Verification: a quarter of ``events`` events, then all of them (HMACs computed here,
  written by COPY in several transactions, sealed) in a scratch database, each time
  verified in a child process as the layer does (worker processes), timed, with that
  process's peak RSS and its largest worker's: memory flat in the number of events shows
  as a ratio near 1 between the two sizes. At full size, also verified in one process.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.relational.audit import trail as audit_trail
from dr_assistant_data.relational.audit.checkpoints import FileCheckpointStore
from dr_assistant_data.relational.audit.seal import Sealer
from dr_assistant_data.relational.models import AuditEvent, AuditSeal

from .scratch import raw_postgres, scratch_layer

MODES = ("unaudited", "locked", "lock_free")
OLD_CHAIN_LOCK = 0x6472_6173_6175_6474
"""The advisory lock every audited commit took before revision 0008."""
SAMPLE = text(
    "SELECT count(*) FILTER (WHERE state = 'active'), "
    "count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'advisory') "
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def writes(dl: DataLayer, *, processes: int, seconds: float, checkpoints: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {"audit_writer_processes": processes}
    for mode in MODES:
        sealer = _sealer(dl, checkpoints) if mode == "lock_free" else None
        if sealer is not None:
            sealer.start()
        before = _event_count(dl)
        done, active, waiting = _run(dl.settings.database_url, mode, processes, seconds)
        if sealer is not None:
            _wait_sealed(dl)
            sealer.stop()
        figures[f"audit_{mode}_writes_per_s"] = done / seconds
        figures[f"audit_{mode}_advisory_wait_share"] = waiting / active if active else 0.0
        figures[f"audit_{mode}_events"] = _event_count(dl) - before
    figures["audit_lock_free_vs_unaudited"] = (
        figures["audit_lock_free_writes_per_s"] / figures["audit_unaudited_writes_per_s"]
    )
    figures["audit_locked_vs_unaudited"] = (
        figures["audit_locked_writes_per_s"] / figures["audit_unaudited_writes_per_s"]
    )
    figures |= _seal_latency(dl, checkpoints)
    return figures


def _run(url: str, mode: str, processes: int, seconds: float) -> tuple[int, int, int]:
    context = multiprocessing.get_context("spawn")
    counts = context.Queue()
    ready = context.Barrier(processes + 1)
    workers = [
        context.Process(target=_writer, args=(url, mode, seconds, ready, counts))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    ready.wait()
    active = waiting = 0
    sampler = DataLayer(Settings(database_url=url, mongodb_uri="mongomock://localhost/s"))
    deadline = time.monotonic() + seconds
    with sampler.engine.connect() as connection:
        while time.monotonic() < deadline:
            now_active, now_waiting = connection.execute(SAMPLE).one()
            connection.rollback()
            active, waiting = active + now_active, waiting + now_waiting
            time.sleep(0.02)
    sampler.close()
    done = sum(counts.get(timeout=seconds + 60) for _ in workers)
    for worker in workers:
        worker.join()
    return done, active, waiting


def _writer(url: str, mode: str, seconds: float, ready: Any, counts: Any) -> None:
    if mode == "unaudited":
        audit_trail.AuditTrail.write = lambda self, session: self.changes.clear()  # type: ignore[method-assign]
    elif mode == "locked":
        _write = audit_trail.AuditTrail.write

        def locked(self: audit_trail.AuditTrail, session: Any) -> None:
            if self.changes:
                session.execute(select(func.pg_advisory_xact_lock(OLD_CHAIN_LOCK)))
                session.execute(
                    select(AuditEvent.seq, AuditEvent.row_hash)
                    .order_by(AuditEvent.seq.desc())
                    .limit(1)
                )
            _write(self, session)

        audit_trail.AuditTrail.write = locked  # type: ignore[method-assign]
    dl = DataLayer(
        Settings(database_url=url, redis_url="memory://", mongodb_uri="mongomock://localhost/w")
    )
    done = 0
    with dl.unit_of_work(actor="bench") as uow:  # connect before the clock starts
        uow.patients.count()
    ready.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with dl.unit_of_work(actor=f"bench-{mode}") as uow:
            uow.patients.create(
                first_name="Audit",
                last_name="Bench",
                date_of_birth=datetime(1990, 1, 1).date(),
                gender="female",
            )
        done += 1
    dl.close()
    counts.put(done)


def _sealer(dl: DataLayer, checkpoints: Path) -> Sealer:
    """A sealer exporting to the bench's own checkpoint directory."""
    settings = dl.settings
    store = FileCheckpointStore(checkpoints)
    return Sealer(dl.engine, settings.audit_signing_key, store, settings.audit_seal_interval)


def _event_count(dl: DataLayer) -> int:
    with dl.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(AuditEvent)))


def _wait_sealed(dl: DataLayer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with dl.engine.connect() as connection:
            total = connection.scalar(select(func.max(AuditSeal.total))) or 0
        if total >= _event_count(dl):
            return
        time.sleep(0.1)


def _seal_latency(dl: DataLayer, checkpoints: Path) -> dict[str, Any]:
    """Seconds from each event's ``occurred_at`` to the first checkpoint covering it."""
    written = {}
    for line in (checkpoints / "audit-checkpoints.jsonl").read_text().splitlines():
        entry = json.loads(line)
        written.setdefault(entry["batch"], datetime.fromisoformat(entry["written_at"]))
    with dl.engine.connect() as connection:
        rows = connection.execute(
            select(AuditSeal.batch, AuditEvent.occurred_at)
            .join(
                AuditSeal,
                (AuditEvent.xid >= AuditSeal.xid_low) & (AuditEvent.xid < AuditSeal.xid_high),
            )
            .where(AuditEvent.actor == "bench-lock_free")
        ).all()
    latencies = sorted(
        (written[batch] - occurred).total_seconds() for batch, occurred in rows if batch in written
    )
    if not latencies:
        return {"audit_seal_p50_s": 0.0, "audit_seal_p99_s": 0.0, "audit_sealed_events": 0}
    return {
        "audit_seal_p50_s": latencies[len(latencies) // 2],
        "audit_seal_p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "audit_sealed_events": len(latencies),
    }


# --- verification of many events --------------------------------------------------------


def verification(events: int, chunk: int = 100_000) -> dict[str, Any]:
    """A quarter of ``events`` events in a scratch database, sealed and verified, then the
    rest, sealed and the whole log verified: as the layer verifies (chunks in worker
    processes), and at full size also in one process, each verification in a child process
    of its own (its peak RSS, and its largest worker's)."""
    figures: dict[str, Any] = {"audit_generate_s": 0.0, "audit_seal_all_s": 0.0}
    with scratch_layer(pool_size=2) as dl, tempfile.TemporaryDirectory() as folder:
        key, written = dl.settings.audit_signing_key, 0
        for size, name in ((max(events // 4, 1), "audit_verify_small"), (events, "audit_verify")):
            started = time.perf_counter()
            for first in range(written, size, chunk):
                _copy_events(dl, key, min(chunk, size - first))
            figures["audit_generate_s"] += time.perf_counter() - started
            written = size
            sealer = _sealer(dl, Path(folder))
            began = time.perf_counter()
            while sealer.run_once() is not None or _unsealed(dl):
                time.sleep(0.01)
            figures["audit_seal_all_s"] += time.perf_counter() - began
            sealer.resign()
            measured = _verified(dl, folder)
            figures |= {
                f"{name}_events": measured["rows_checked"],
                f"{name}_ok": measured["ok"],
                f"{name}_s": measured["seconds"],
                f"{name}_events_per_s": measured["rows_checked"] / measured["seconds"],
                f"{name}_peak_rss_mb": measured["peak_rss_mb"],
                f"{name}_workers_peak_rss_mb": measured["workers_peak_rss_mb"],
            }
        figures["audit_verify_processes"] = measured["processes"]
        alone = _verified(dl, folder, "--one-process")
    figures["audit_verify_one_process_s"] = alone["seconds"]
    figures["audit_verify_vs_one_process"] = alone["seconds"] / figures["audit_verify_s"]
    figures["audit_verify_rss_growth"] = (
        figures["audit_verify_peak_rss_mb"] + figures["audit_verify_workers_peak_rss_mb"]
    ) / (
        figures["audit_verify_small_peak_rss_mb"]
        + figures["audit_verify_small_workers_peak_rss_mb"]
    )
    figures["audit_generate_events_per_s"] = events / figures["audit_generate_s"]
    return figures


def _verified(dl: DataLayer, checkpoints: str, *options: str) -> dict[str, Any]:
    child = subprocess.run(  # noqa: S603 - this interpreter, the bench's own module
        [sys.executable, "-m", "bench.audit_verify", checkpoints, *options],
        env={**os.environ, "BENCH_VERIFY_DATABASE_URL": dl.settings.database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(child.stdout))


def _unsealed(dl: DataLayer) -> bool:
    with dl.engine.connect() as connection:
        total = connection.scalar(select(func.max(AuditSeal.total))) or 0
        return total < connection.scalar(select(func.count()).select_from(AuditEvent))


def _copy_events(dl: DataLayer, key: Any, count: int) -> None:
    """``count`` signed events in one transaction (so one ``xid``), by COPY."""
    buffer = io.StringIO()
    now = datetime.now(UTC)
    for _ in range(count):
        row = {
            "id": uuid.uuid4(),
            "occurred_at": now,
            "actor": "bench",
            "action": "read",
            "entity_type": "patients",
            "entity_id": str(uuid.uuid4()),
            "changed_fields": ["demographics"],
            "correlation_id": "bench",
            "reason": None,
        }
        row_hash = key.mac("event", row)
        buffer.write(
            f"{row['id']}\t{now.isoformat()}\tbench\tread\tpatients\t{row['entity_id']}\t"
            f'["demographics"]\tbench\t{row_hash}\n'
        )
    buffer.seek(0)
    connection = raw_postgres(dl)
    try:
        with connection, connection.cursor() as cursor:
            cursor.copy_expert(
                "COPY audit_events (id, occurred_at, actor, action, entity_type, entity_id, "
                "changed_fields, correlation_id, row_hash) FROM STDIN",
                buffer,
            )
    finally:
        connection.close()


def run_all(dl: DataLayer, *, processes: int, seconds: float, events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        figures = writes(dl, processes=processes, seconds=seconds, checkpoints=Path(folder))
    figures |= verification(events)
    return figures
