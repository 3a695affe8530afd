"""MongoEngine fields that hold the layer's rules: clean text, UUID references, plain dicts.

Each field's ``expectation`` is what a ``ValidationError`` says about it: what was
expected, never the value received.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mongoengine import fields as me

from ..errors import ValidationError
from ..values.fields import JSONObject, check_text

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class TextField(me.StringField):
    """Text without NUL bytes or lone surrogates, of bounded length."""

    def __init__(self, max_length: int = 20_000, **kwargs: Any) -> None:
        super().__init__(max_length=max_length, **kwargs)

    def validate(self, value: Any) -> None:
        super().validate(value)
        try:
            check_text(value, self.name)
        except ValidationError as error:
            self.error(error.reason)


class FiniteFloatField(me.FloatField):
    """A float that is a number: NaN and infinities are refused, as JSON and the relational
    side refuse them (NaN passes every range check, comparing false to both bounds)."""

    def validate(self, value: Any) -> None:
        super().validate(value)
        if not math.isfinite(value):
            self.error("must be a finite number")


class UUIDText(me.StringField):
    """A UUID in its canonical lower-case text form: the id of a relational row."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(regex=UUID_TEXT.pattern, max_length=36, **kwargs)


class PlainDictField(me.DictField):
    """A JSON object of bounded size and depth whose keys are plain names at every level:
    no ``$`` operators or dotted paths can ride into a query or an update."""

    def __init__(self, max_bytes: int = 16_384, **kwargs: Any) -> None:
        self.check = JSONObject(max_bytes=max_bytes)
        super().__init__(**kwargs)

    def validate(self, value: Any) -> None:
        try:
            self.check.clean(value, self.name)
        except ValidationError as error:
            self.error(error.reason)
        super().validate(value)


def text_list(max_items: int = 50, max_length: int = 500) -> me.ListField:
    return me.ListField(TextField(max_length=max_length), max_length=max_items)


def expectation(field: me.BaseField | None) -> str:
    """What ``field`` accepts, in words."""
    if field is None:
        return "is not a valid value"
    if field.choices:
        return "must be one of " + ", ".join(field.choices)
    if isinstance(field, UUIDText):
        return "must be a UUID"
    if isinstance(field, me.IntField | me.FloatField):
        kind = "a whole number" if isinstance(field, me.IntField) else "a number"
        return f"must be {kind} from {field.min_value} to {field.max_value}"
    if isinstance(field, me.StringField):
        return f"must be text of at most {field.max_length} characters, without NUL bytes"
    if isinstance(field, me.BooleanField):
        return "must be true or false"
    if isinstance(field, me.DateTimeField):
        return "must be a timestamp"
    if isinstance(field, PlainDictField):
        return (
            f"must be an object of at most {field.check.max_bytes} bytes whose keys are plain "
            "names (no '$' or '.')"
        )
    if isinstance(field, me.ListField):
        return f"must be a list of at most {field.max_length} entries"
    return "must be an object"
