"""The campaign's history: every operation and fault, as JSON lines, one file per process.

An operation writes a line when it is invoked and another when it completes, each flushed
at once, so a process killed with SIGKILL leaves its history whole up to its last line; an
operation invoked and never completed has the outcome ``unknown``. Times are
``time.time()`` (every process runs on one machine, so clocks agree).

Outcomes: ``ok`` (it returned: committed), ``fail`` (it raised before it could commit, or
the database refused it), ``unknown`` (it raised while committing, or its process died).
``error`` is the class of the exception: its bare name for the contract's errors, its
module-qualified name for any other (which the checker reports).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dr_assistant_data.errors import (
    ConflictError,
    DataLayerError,
    NotFoundError,
    ValidationError,
)

REFUSALS = (ConflictError, NotFoundError, ValidationError)
"""Errors that say the write was refused: nothing committed, even at commit time."""


@dataclass
class Operation:
    """One invocation; ``result`` receives what it read or wrote, for the completion."""

    id: str
    kind: str
    start: float
    result: dict[str, Any] = field(default_factory=dict)
    committing: bool = False
    """Set once the unit of work's body is done: an error after it is ``unknown``."""
    outcome: str = "unknown"


class History:
    """Appends to one process's history file; safe to share between threads."""

    def __init__(self, path: Path, process: str) -> None:
        self.process = process
        self._file = path.open("a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()
        self._count = 0

    def write(self, **record: Any) -> None:
        with self._lock:
            self._file.write(json.dumps(record, default=str) + "\n")
            self._file.flush()

    @contextmanager
    def operation(self, kind: str, **fields: Any) -> Iterator[Operation]:
        """Record the invocation, then the completion: ``ok`` if the block returns,
        ``fail``/``unknown`` if it raises an exception, which is swallowed (an operation
        that fails is part of the history, not an error of the campaign)."""
        with self._lock:
            self._count += 1
            op_id = f"{self.process}-{self._count}"
        op = Operation(op_id, kind, time.time())
        self.write(
            id=op_id, phase="invoke", process=self.process, kind=kind, start=op.start, **fields
        )
        outcome, error = "ok", None
        try:
            yield op
        except Exception as exc:  # every failure is an outcome to record
            unknown = op.committing and not isinstance(exc, REFUSALS)
            outcome, error = ("unknown" if unknown else "fail"), _name(type(exc))
        op.outcome = outcome
        self.write(
            id=op_id, phase="complete", end=time.time(), outcome=outcome, error=error, **op.result
        )

    def close(self) -> None:
        self._file.close()


def _name(kind: type[BaseException]) -> str:
    return (
        kind.__name__
        if issubclass(kind, DataLayerError)
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def load(folder: Path) -> list[dict[str, Any]]:
    """Every operation and fault of the run, invocation and completion merged."""
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the half-written last line of a killed process
            op = merged.setdefault(record["id"], {"outcome": "unknown", "end": None})
            op.update({k: v for k, v in record.items() if k != "phase"})
    return list(merged.values())
