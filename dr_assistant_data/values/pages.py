"""Pages of a listing, in either store: checked before any query is built."""

from __future__ import annotations

from ..errors import ValidationError

MAX_LIMIT = 500
MAX_OFFSET = 100_000
"""Deeper than this, page with ``list_page``: an offset re-reads every row before it."""


def check_page(limit: int, offset: int) -> None:
    """Refuse a page size or offset that is not a small whole number, before any SQL: an
    offset beyond PostgreSQL's 64 bits would fail in the database and spend the unit of work.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ValidationError("offset", f"must be a whole number from 0 to {MAX_OFFSET}")
