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


@contextmanager
def at_most_queries(engine: Engine, limit: int) -> Iterator[QueryLog]:
    """Fail with ``AssertionError`` when the block sends more than ``limit`` statements;
    the message lists them (SQL with placeholders: never the bound values)."""
    with counting_queries(engine) as log:
        yield log
    if log.count > limit:
        listed = "\n".join(f"  {statement}" for statement in log.statements)
        raise AssertionError(f"{log.count} queries, at most {limit} expected:\n{listed}")
