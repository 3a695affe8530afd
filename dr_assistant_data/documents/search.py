"""Text search over the note fields named in ``SEARCHABLE``.

On a MongoDB server this is ``$text`` against the text index (migration m0002), ranked by
text score: stemmed words, any of them matching. The embedded back end (mongomock) has no
``$text``; there each word is matched case-insensitively, as a literal (escaped), in the
same fields, any word matching, newest first. Only the matching operator differs.
"""

from __future__ import annotations

import re
from typing import Any

from mongoengine.queryset import QuerySet

from ..errors import ValidationError
from ..values.fields import Text
from .clinical_note import SEARCHABLE

QUERY = Text(max_length=200, strip=True, nullable=False)
MAX_TERMS = 20


def matching(notes: QuerySet, text: Any, *, embedded: bool) -> QuerySet:
    """``notes`` narrowed to those matching ``text`` and put in relevance order."""
    query = QUERY.clean(text, "text")
    terms = query.split()
    if len(terms) > MAX_TERMS:
        raise ValidationError("text", f"must have at most {MAX_TERMS} words")
    if not embedded:
        return notes.search_text(query).order_by("$text_score")
    any_term = [
        {field: {"$regex": re.escape(term), "$options": "i"}}
        for term in terms
        for field in SEARCHABLE
    ]
    return notes.filter(__raw__={"$or": any_term}).order_by("-created_at")
