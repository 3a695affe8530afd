"""The front desk's patient lookup by name: bounded, indexed, hostile input refused.

Every word of the query must match the first or the last name: as a prefix
(case-insensitive, ``%`` and ``_`` taken literally), or on PostgreSQL also by trigram
similarity (``pg_trgm``'s ``%`` operator, default threshold 0.3: "Kumr" finds "Kumar").
Both are served by the GIN trigram indexes of revision 0010. Results come best match
first (summed similarity), then by name. On SQLite (the embedded back end) prefixes only.
Names are stored in NFC and the query is brought to it too, so a name typed with combining
marks finds the same name typed precomposed, and the reverse (``fields.PersonName``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select

from ...errors import ValidationError
from ...values.fields import PersonName
from ..models import Patient

QUERY = PersonName(max_length=100, expected="a name or the start of one", nullable=False)
MAX_WORDS = 4
MAX_RESULTS = 50
NAMES = (Patient.first_name, Patient.last_name)


def name_search(query: Any, limit: Any, dialect: str) -> Select[Any]:
    """The statement finding at most ``limit`` patients for ``query``; refuses a query that
    is not short text of at most ``MAX_WORDS`` words, or a limit outside 1..``MAX_RESULTS``,
    with ``ValidationError`` before any SQL."""
    words = QUERY.clean(query, "query").split()
    if len(words) > MAX_WORDS:
        raise ValidationError("query", f"must have at most {MAX_WORDS} words")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise ValidationError("limit", f"must be a whole number from 1 to {MAX_RESULTS}")
    similar = dialect == "postgresql"
    score: ColumnElement[Any] = literal(0.0)
    if similar:
        score = sum((func.similarity(name, word) for word in words for name in NAMES), score)
    return (
        select(Patient)
        .where(and_(*(_matches(word, similar) for word in words)))
        .order_by(score.desc(), Patient.last_name, Patient.first_name, Patient.id)
        .limit(limit)
    )


def _matches(word: str, similar: bool) -> ColumnElement[bool]:
    pattern = _escaped(word) + "%"
    terms = [name.ilike(pattern, escape="\\") for name in NAMES]
    if similar:
        terms += [name.op("%")(word) for name in NAMES]
    return or_(*terms)


def _escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
