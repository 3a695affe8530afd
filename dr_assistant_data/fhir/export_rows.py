"""Records streamed for an export with their items: one query per page, not per record."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from ..session_context import context_of
from .outbound import JSON

PAGE = 500


def with_items(
    uow: Any, parent: InstrumentedAttribute[uuid.UUID], rows: Iterator[Any]
) -> Iterator[tuple[Any, list[Any]]]:
    """Each streamed prescription (order) with its items (whose ``parent`` column names
    it): one query per ``PAGE`` records, not one per record."""
    item_model = parent.class_
    while chunk := list(islice(rows, PAGE)):
        statement = (
            select(item_model)
            .where(parent.in_([row.id for row in chunk]))
            .order_by(parent, item_model.position)
        )
        items: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for item in uow.session.scalars(statement):
            items[getattr(item, parent.key)].append(item)
        for row in chunk:
            yield row, items[row.id]
        # streamed like the records they belong to: the unit of work need not hold them
        context_of(uow.session).let_go(item for group in items.values() for item in group)


def one_resource_each(
    repository: str, outbound: Callable[[Any], JSON]
) -> Callable[[Any, Callable[[Any], bool]], Iterator[list[JSON]]]:
    """A bulk export of ``uow.<repository>``'s records, oldest first, one resource each,
    for the records ``fresh`` accepts, each patient's chart read recorded."""

    def export(uow: Any, fresh: Callable[[Any], bool]) -> Iterator[list[JSON]]:
        records = getattr(uow, repository)
        for row in records.iterate(order_by="created_at"):
            if fresh(row):
                records.record_chart_read(row.patient_id)
                yield [outbound(row)]

    return export
