"""Counting the statements a block sends, for tests (and benchmarks) that pin how many
queries a read costs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, event


@dataclass
class QueryLog:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def counting_queries(engine: Engine) -> Iterator[QueryLog]:
    """Record every statement the engine sends while the block runs."""
    log = QueryLog()

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        log.statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", record)
