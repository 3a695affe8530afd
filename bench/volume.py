"""Volume: a bulk import through the layer against COPY of the same rows, and a streaming
export with the process's memory sampled while it runs."""

from __future__ import annotations

import csv
import gc
import io
import json
import multiprocessing
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.relational.driver import copy_rows

from .scratch import raw_postgres

PAGE = os.sysconf("SC_PAGE_SIZE")
COLUMNS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "gender",
    "phone",
    "email",
    "allergies",
    "address",
)


EXPORT_SELECT = (
    f"SELECT {', '.join(COLUMNS)} FROM patients"  # noqa: S608 - constant column names
    " WHERE deleted_at IS NULL ORDER BY created_at, id"
)


def patient_rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "first_name": "Asha",
            "last_name": f"Import{n}",
            "date_of_birth": date(1950 + n % 60, 1 + n % 12, 1 + n % 28),
            "gender": ("female", "male", "other")[n % 3],
            "phone": f"+9197{n:08d}",
            "email": f"patient{n}@example.in",
            "allergies": ["latex"] if n % 5 == 0 else [],
            "address": {"city": "Pune", "pin": "411001"},
        }
        for n in range(count)
    ]


def empty_patients(dl: DataLayer) -> None:
    with dl.engine.begin() as connection:
        connection.execute(text("TRUNCATE patients CASCADE"))


def import_through_layer(dl: DataLayer, rows: list[dict[str, Any]], batch_size: int) -> float:
    started = time.perf_counter()
    with dl.unit_of_work(actor="bench-import") as uow:
        result = uow.patients.create_many(rows, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    assert not result.errors
    assert len(result.created) == len(rows)
    return elapsed


def import_by_copy(dl: DataLayer, rows: list[dict[str, Any]]) -> float:
    """psycopg2 COPY of the same rows, with the columns the layer fills given directly."""
    connection = raw_postgres(dl)
    started = time.perf_counter()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    now = datetime.now(UTC).isoformat()
    for row in rows:
        writer.writerow(
            [
                uuid.uuid4(),
                1,
                now,
                now,
                "active",
                row["first_name"],
                row["last_name"],
                row["date_of_birth"].isoformat(),
                row["gender"],
                row["phone"],
                row["email"],
                json.dumps(row["allergies"]),
                json.dumps(row["address"]),
            ]
        )
    buffer.seek(0)
    with connection, connection.cursor() as cursor:
        cursor.copy_expert(
            "COPY patients (id, version, created_at, updated_at, status, first_name, last_name,"
            " date_of_birth, gender, phone, email, allergies, address)"
            " FROM STDIN WITH (FORMAT csv)",
            buffer,
        )
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


@contextmanager
def copies_sent() -> Iterator[list[tuple[str, str]]]:
    """Records each COPY the layer sends (its statement and its text) while open."""
    sent: list[tuple[str, str]] = []
    send = copy_rows.send_copy

    def recorded(connection: Any, statement: str, data: str) -> None:
        sent.append((statement, data))
        send(connection, statement, data)

    copy_rows.send_copy = recorded
    try:
        yield sent
    finally:
        copy_rows.send_copy = send


def copy_floor(dl: DataLayer, sent: list[tuple[str, str]]) -> float:
    """The server's floor under an import: the layer's own COPY text (every table it
    wrote, byte for byte) copied by psycopg2 in one transaction, into new tables made
    ``LIKE`` the real ones (columns, defaults, constraints, indexes; their rows' keys are
    taken in the real ones), dropped after."""
    tables = sorted({statement.split('"')[1] for statement, _ in sent})
    connection = raw_postgres(dl)
    with connection, connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'CREATE TABLE "floor_{table}" (LIKE "{table}" INCLUDING ALL)')
    started = time.perf_counter()
    with connection, connection.cursor() as cursor:
        for statement, data in sent:
            floor = statement.replace('COPY "', 'COPY "floor_', 1)
            cursor.copy_expert(floor, io.StringIO(data), size=copy_rows.COPY_CHUNK)
    elapsed = time.perf_counter() - started
    with connection, connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'DROP TABLE "floor_{table}"')
    connection.close()
    return elapsed


def bulk_import(dl: DataLayer, *, count: int, runs: int, batch_size: int) -> dict[str, Any]:
    rows = patient_rows(count)
    layer_times, copy_times, floor_times = [], [], []
    for _ in range(runs):
        empty_patients(dl)
        copy_times.append(import_by_copy(dl, rows))
        empty_patients(dl)
        with copies_sent() as sent:
            layer_times.append(import_through_layer(dl, rows, batch_size))  # rows kept: export
        floor_times.append(copy_floor(dl, sent))
        sent_bytes = sum(len(data.encode()) for _, data in sent)
    layer, copy = statistics.median(layer_times), statistics.median(copy_times)
    floor = statistics.median(floor_times)
    return {
        "import_rows": count,
        "import_batch_size": batch_size,
        "import_layer_s": layer,
        "import_copy_s": copy,
        "import_floor_s": floor,
        "import_floor_mb": sent_bytes / 2**20,
        "import_layer_rows_per_s": count / layer,
        "import_copy_rows_per_s": count / copy,
        "import_floor_rows_per_s": count / floor,
        "import_vs_copy": copy / layer,
        "import_floor_vs_copy": copy / floor,
        "import_vs_floor": floor / layer,
        "import_python_us_per_row": (layer - floor) / count * 1e6,
    }


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@contextmanager
def peak_rss_growth() -> Iterator[Callable[[], int]]:
    """Samples the resident set every 5 ms; yields a function giving the peak growth."""
    gc.collect()
    baseline, peak = rss(), [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss() - baseline)
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: peak[0]
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], rss() - baseline)


def export(dl: DataLayer, *, expected: int, batch_size: int) -> dict[str, Any]:
    """Every patient written as CSV to a sink that keeps nothing, through ``iterate`` and
    through a raw psycopg2 server-side cursor, each in a fresh process (so memory freed by
    earlier benchmarks cannot hide growth) with its resident set sampled throughout."""
    figures: dict[str, Any] = {"export_rows": expected}
    context = multiprocessing.get_context("spawn")
    for label in ("raw", "layer", "entities"):
        with context.Pool(1) as pool:
            written, elapsed, growth = pool.apply(
                _export_in_child, (label, dl.settings.database_url, batch_size)
            )
        assert written == expected, (label, written)
        figures[f"export_{label}_s"] = elapsed
        figures[f"export_{label}_peak_rss_growth_mb"] = growth / 2**20
    figures["export_vs_raw"] = figures["export_raw_s"] / figures["export_layer_s"]
    figures["export_entities_vs_raw"] = figures["export_raw_s"] / figures["export_entities_s"]
    return figures


def _export_in_child(label: str, database_url: str, batch_size: int) -> tuple[int, float, int]:
    dl = DataLayer(
        Settings(
            database_url=database_url,
            redis_url="memory://",
            mongodb_uri="mongomock://localhost/bench",
        )
    )
    dl.engine.connect().close()  # connected and imported before the baseline
    try:
        with peak_rss_growth() as growth:
            started = time.perf_counter()
            written = EXPORTS[label](dl, batch_size)
            elapsed = time.perf_counter() - started
        return written, elapsed, growth()
    finally:
        dl.close()


def _export_through_layer(dl: DataLayer, batch_size: int) -> int:
    """``export``: the columns, decoded, without entities."""
    sink = csv.writer(Discard())
    written = 0
    with dl.unit_of_work(actor="bench-export") as uow:
        for row in uow.patients.export(COLUMNS, order_by="created_at", batch_size=batch_size):
            sink.writerow(row)
            written += 1
    return written


def export_entities(dl: DataLayer, batch_size: int) -> int:
    """``iterate``: an entity per row."""
    sink = csv.writer(Discard())
    written = 0
    with dl.unit_of_work(actor="bench-export") as uow:
        for patient in uow.patients.iterate(order_by="created_at", batch_size=batch_size):
            sink.writerow([getattr(patient, column) for column in COLUMNS])
            written += 1
    return written


def _export_raw(dl: DataLayer, batch_size: int) -> int:
    sink = csv.writer(Discard())
    written = 0
    connection = raw_postgres(dl)
    with connection, connection.cursor(name="bench_export") as cursor:
        cursor.itersize = batch_size
        cursor.execute(EXPORT_SELECT)
        for row in cursor:
            sink.writerow(row)
            written += 1
    connection.close()
    return written


EXPORTS: dict[str, Callable[[DataLayer, int], int]] = {
    "raw": _export_raw,
    "layer": _export_through_layer,
    "entities": export_entities,
}


class Discard:
    def write(self, data: str) -> int:
        return len(data)
