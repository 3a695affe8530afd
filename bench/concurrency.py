"""Many request threads on one pool: mixed reads and writes, each a unit of work; and
many threads missing one cached patient at once (one database load expected)."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import event

from dr_assistant_data import DataLayer

from .reads import DAY, uncached_units
from .scratch import raw_postgres

MIX = ("get",) * 6 + ("day",) * 2 + ("update",) * 2
"""Out of ten operations: six patient reads, two doctor's days, two patient edits."""


def mixed(dl: DataLayer, *, threads: int, operations: int, doctor_id: uuid.UUID) -> dict[str, Any]:
    with dl.unit_of_work(actor="bench") as uow:
        readable = [p.id for p in uow.patients.list(limit=200)]
        own = uow.patients.create_many(
            {
                "first_name": "Own",
                "last_name": f"Row{n}",
                "date_of_birth": date(1990, 1, 1),
                "gender": "male",
            }
            for n in range(threads)
        ).created
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def work(index: int) -> None:
        mine: list[float] = []
        start.wait()
        for n in range(operations):
            kind = MIX[(n + index) % len(MIX)]
            began = time.perf_counter()
            try:
                with dl.unit_of_work(actor="bench") as uow:
                    if kind == "get":
                        uow.patients.get(readable[(n * 7 + index) % len(readable)])
                    elif kind == "day":
                        uow.appointments.schedule_for(doctor_id, DAY)
                    else:
                        patient = uow.patients.get(own[index])
                        patient.allergies = ["latex"] if not patient.allergies else []
            except Exception as error:  # every failure is a figure
                with lock:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "concurrency_threads": threads,
        "concurrency_pool": dl.settings.db_pool_size,
        "concurrency_operations": len(ordered),
        "concurrency_ops_per_s": len(ordered) / elapsed,
        "concurrency_p50_ms": statistics.median(ordered) * 1e3,
        "concurrency_p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
        "concurrency_errors": sum(errors.values()),
        "concurrency_error_kinds": errors,
    }


def stampede(dl: DataLayer, *, threads: int) -> dict[str, Any]:
    with dl.unit_of_work(actor="bench") as uow:
        patient = uow.patients.create(
            first_name="Ravi", last_name="Kumar", date_of_birth=date(1980, 5, 1), gender="male"
        )
    loads = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("SELECT") and "FROM patients" in statement:
            loads.append(statement)

    start = threading.Barrier(threads)

    def read() -> None:
        start.wait()
        with dl.unit_of_work(actor="bench") as uow:
            uow.patients.get(patient.id)

    event.listen(dl.engine, "after_cursor_execute", count)
    workers = [threading.Thread(target=read) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    event.remove(dl.engine, "after_cursor_execute", count)
    return {"stampede_threads": threads, "stampede_loads": len(loads)}


def scaling(dl: DataLayer, *, threads: int, operations: int, runs: int = 3) -> dict[str, Any]:
    """Uncached gets per second on ``threads`` threads over one thread, each get a fresh
    unit of work (as many threads as the pool has connections, at most ``threads``); the
    raw driver's SELECT by primary key on a connection per thread alike, alternated with
    it in the same loop. With the thread count, a process gains only what its calls spend
    outside the interpreter lock: the ceiling is one thread's wall time per call over its
    CPU time per call (``scaling_ceiling``)."""
    threads = min(threads, dl.settings.db_pool_size)
    units = uncached_units(dl)
    with dl.unit_of_work(actor="bench") as uow:
        patient = uow.patients.create(
            first_name="Uma", last_name="Scale", date_of_birth=date(1970, 2, 1), gender="female"
        )

    def layer_gets() -> None:
        for _ in range(operations):
            with units() as uow:
                uow.patients.get(patient.id)

    def raw_gets() -> None:
        connection = raw_postgres(dl)
        connection.autocommit = True
        cursor = connection.cursor()
        for _ in range(operations):
            cursor.execute("SELECT * FROM patients WHERE id = %s", (str(patient.id),))
            cursor.fetchone()
        connection.close()

    def rate(gets: Callable[[], None], count: int) -> tuple[float, float]:
        """Gets per second on ``count`` threads, and the CPU seconds per get."""
        workers = [threading.Thread(target=gets) for _ in range(count)]
        began, cpu = time.perf_counter(), time.process_time()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - began
        return count * operations / wall, (time.process_time() - cpu) / (count * operations)

    ratios: dict[str, list[float]] = {"layer": [], "raw": []}
    ceilings = []
    for _ in range(runs):
        for name, gets in (("layer", layer_gets), ("raw", raw_gets)):
            one, cpu_per_get = rate(gets, 1)
            ratios[name].append(rate(gets, threads)[0] / one)
            if name == "layer":
                ceilings.append((1 / one) / cpu_per_get)
    return {
        "scaling_threads": threads,
        "scaling_vs_one_thread": statistics.median(ratios["layer"]),
        "raw_scaling_vs_one_thread": statistics.median(ratios["raw"]),
        "scaling_ceiling": statistics.median(ceilings),
    }
