"""The demo's cache walk-through: a cold read, a warm read that runs no SQL, an edit, and
the fresh read after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import event

from ..layer import DataLayer
from .clinic import Clinic


@contextmanager
def _counting(dl: DataLayer) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(dl.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(dl.engine, "before_cursor_execute", record)


def describe_caching(dl: DataLayer, clinic: Clinic, today: date) -> list[str]:
    """Lines showing what each read of the doctor's day cost."""
    lines = [f"Cache ({dl.settings.redis_url}): the doctor's day, read four times"]

    def read(label: str, change: Callable[[Any], None] | None = None) -> None:
        with _counting(dl) as statements, dl.unit_of_work(actor="demo") as uow:
            schedule = uow.appointments.schedule_for(clinic.doctor_id, today)
            first = schedule[0]
            shown = f"{first.patient.full_name}: {first.reason}"
            if change is not None:
                change(first)
        lines.append(f"  {label:<28} {len(statements)} SQL statement(s)   first: {shown}")

    read("cold (from the database)")
    read("warm (from the cache)")
    read("edit the reason (saved)", lambda first: setattr(first, "reason", "Review of lab results"))
    read("fresh after the commit")
    stats = dl.cache_stats()["schedules"]
    lines.append(
        "  schedules region: "
        + ", ".join(f"{event} {count}" for event, count in stats.items() if count)
    )
    return lines
