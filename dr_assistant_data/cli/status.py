"""What ``status`` reports: each store's migrations, each half judged on its own.

The relational and the document half are read separately: a store that cannot be reached
gives its section an ``error`` (the layer's message: host and port, never a password)
while the other section is still reported, rather than the command dying half-way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import DataLayerError
from ..layer import DataLayer

Section = dict[str, Any]


def status_report(dl: DataLayer) -> dict[str, Section]:
    """``{"relational": {...}, "documents": {...}}``, JSON-ready; a section that could not
    be read holds ``error`` instead of its revisions."""
    documents = dl.documents
    return {
        "relational": {
            "database": dl.settings.database_url_safe,
            **_guarded(lambda: _relational(dl)),
        },
        "documents": {
            "database": documents.database_name,
            "embedded": documents.embedded,
            **_guarded(lambda: _documents(dl)),
        },
    }


def failed_sections(report: dict[str, Section]) -> list[str]:
    """The sections of ``report`` that hold an error."""
    return [name for name, section in report.items() if "error" in section]


def migration_outcome(report: dict[str, Section]) -> str:
    """Which stores ``report`` shows migrated (nothing pending) and which not, in one
    line: what a failed ``migrate`` left."""
    relational, documents = report["relational"], report["documents"]
    done = {
        "relational schema": "error" not in relational and not relational["pending"],
        "document store": "error" not in documents and None not in documents["migrations"].values(),
    }
    migrated = ", ".join(store for store, ok in done.items() if ok) or "none"
    not_migrated = ", ".join(store for store, ok in done.items() if not ok) or "none"
    return f"migrated: {migrated}; not migrated: {not_migrated}"


def status_lines(report: dict[str, Section]) -> list[str]:
    """The report as people read it: one block per store, one row per revision."""
    relational, documents = report["relational"], report["documents"]
    rows = {"database": relational["database"]}
    if "error" in relational:
        rows["error"] = relational["error"]
    else:
        rows["current"] = ", ".join(relational["current"]) or "none (empty schema)"
        rows["head"] = relational["head"] or "none"
        rows["pending"] = ", ".join(relational["pending"]) or "none"
    lines = _section("relational", rows)
    rows = {"database": documents["database"] + (" (in memory)" if documents["embedded"] else "")}
    if "error" in documents:
        rows["error"] = documents["error"]
    else:
        for name, applied_at in documents["migrations"].items():
            rows[name] = f"applied {applied_at[:19].replace('T', ' ')}" if applied_at else "pending"
    return lines + _section("documents", rows)


def _relational(dl: DataLayer) -> Section:
    status = dl.migration_status()
    return {"current": list(status.current), "head": status.head, "pending": list(status.pending)}


def _documents(dl: DataLayer) -> Section:
    return {
        "migrations": {
            migration.name: migration.applied_at.isoformat() if migration.applied_at else None
            for migration in dl.document_migration_status()
        }
    }


def _guarded(read: Callable[[], Section]) -> Section:
    try:
        return read()
    except DataLayerError as error:
        return {"error": str(error)}


def _section(title: str, rows: dict[str, str]) -> list[str]:
    return [f"{title}:", *(f"  {name + ':':<9} {value}" for name, value in rows.items())]
