"""Field checks: each cleans one value or raises ``ValidationError`` naming the field.

Messages describe what was expected, never the value received (it may be patient data).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from idna import valid_contextj

from ..errors import ValidationError
from .clock import utcnow
from .input_size import fits

_P = TypeVar("_P")

CLOCK_SKEW = timedelta(minutes=5)
EARLIEST_BIRTH = date(1900, 1, 1)
TEXT_MAX = 20_000
JSON_MAX_BYTES = 16_384
JSON_MAX_DEPTH = 5


def check_text(value: str, field: str) -> None:
    """Refuse what PostgreSQL cannot store or what is not text: NUL bytes, lone surrogates."""
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL bytes")
    if not _encodable(value):
        raise ValidationError(field, "must be valid Unicode text")


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # its text quotes the value: never chained to our error
        return False
    return True


@dataclass(frozen=True)
class Field:
    """Type check shared by every field; subclasses add ``convert``."""

    nullable: bool = True

    def clean(self, value: Any, field: str) -> Any:
        if value is None:
            if not self.nullable:
                raise ValidationError(field, "must not be empty")
            return None
        return self.convert(value, field)

    def convert(self, value: Any, field: str) -> Any:
        return value


@dataclass(frozen=True)
class Text(Field):
    max_length: int = TEXT_MAX
    pattern: re.Pattern[str] | None = None
    expected: str = "text"
    strip: bool = False
    normalize: Callable[[str], str] | None = None

    def convert(self, value: object, field: str) -> str:
        if not isinstance(value, str):
            raise ValidationError(field, f"must be {self.expected}")
        check_text(value, field)
        if self.strip:
            value = value.strip()
            if not value:
                raise ValidationError(field, "must not be blank")
        if self.normalize is not None:
            value = self.normalize(value)
        if len(value) > self.max_length:
            raise ValidationError(field, f"must be at most {self.max_length} characters")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise ValidationError(field, f"must be {self.expected}")
        return value


JOINERS = frozenset("\u200c\u200d")
"""Zero-width non-joiner and joiner: part of the spelling in some scripts (see
:class:`PersonName`)."""
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Controls, format characters (bidirectional controls, zero-width characters, the byte
order mark...) and line or paragraph separators: nothing a reader of a name can see."""


def without_invisible(name: str) -> str:
    """``name`` without the characters :class:`PersonName` refuses: every control, format
    character or line separator, except a joiner where RFC 5892 allows it."""
    return "".join(
        character
        for position, character in enumerate(name)
        if unicodedata.category(character) not in INVISIBLE_CATEGORIES
        or (character in JOINERS and _joins(name, position))
    )


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _joins(name: str, position: int) -> bool:
    try:
        return valid_contextj(name, position)
    except ValueError:  # an unassigned character before it: no script rule applies
        return False


@dataclass(frozen=True)
class PersonName(Text):
    """A person's name, in one Unicode form, with nothing hidden in it.

    Names are stored and searched in NFC, so a name typed on any keyboard (precomposed
    "é", or "e" with a combining accent, as macOS and some Indic input methods send it) is
    the same characters as the stored one and is found by it. Refused with
    ``ValidationError`` naming the field: controls, line or paragraph separators and
    format characters (Unicode categories Cc, Zl, Zp, Cf), among them the bidirectional
    controls (U+200E, U+200F, U+061C, U+202A-U+202E, U+2066-U+2069), which can make a
    name display as another, and the zero-width space, word joiner and byte order mark
    (U+200B, U+2060, U+FEFF), which make two names that look alike differ.

    The zero-width non-joiner and joiner (U+200C, U+200D) are kept where they are part of
    the spelling, by RFC 5892's CONTEXTJ rule (as IDNA applies it to domain names): either
    one right after a virama, which chooses between a conjunct and its half forms in Indic
    scripts (Devanagari eyelash ra "र्‍य", Sinhala "ශ්‍රී", Malayalam chillus in older
    text); the non-joiner also between letters that join in Arabic script (Persian and Urdu
    names). Anywhere else they change nothing a reader sees, and are refused. The Mongolian
    vowel separator (U+180E, a format character) is refused with the rest.
    """

    strip: bool = True
    expected: str = "a name"
    normalize: Callable[[str], str] | None = _nfc

    def convert(self, value: object, field: str) -> str:
        name = super().convert(value, field)
        if without_invisible(name) != name:
            raise ValidationError(
                field,
                "must not contain invisible characters (direction controls, zero-width "
                "or other format characters)",
            )
        return name


@dataclass(frozen=True)
class Choice(Field):
    values: tuple[str, ...] = ()

    def convert(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise ValidationError(field, "must be one of " + ", ".join(self.values))
        return value


@dataclass(frozen=True)
class Integer(Field):
    minimum: int | None = None
    maximum: int | None = 2**31 - 1

    def convert(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(field, "must be a whole number")
        if self.minimum is not None and value < self.minimum:
            raise ValidationError(field, f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValidationError(field, f"must be at most {self.maximum}")
        return value


@dataclass(frozen=True)
class Boolean(Field):
    def convert(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise ValidationError(field, "must be true or false")
        return value


@dataclass(frozen=True)
class UUIDField(Field):
    def convert(self, value: Any, field: str) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        parsed = _parsed(uuid.UUID, value) if isinstance(value, str) else None
        if parsed is None:
            raise ValidationError(field, "must be a UUID")
        return parsed


def as_uuid(value: Any, field: str = "id") -> uuid.UUID:
    """``value`` as a UUID (a ``UUID`` or its text), or ``ValidationError(field)``."""
    parsed: uuid.UUID = _ID.clean(value, field)
    return parsed


_ID = UUIDField(nullable=False)
"""The field of :func:`as_uuid` (frozen: built once, not per call)."""


@dataclass(frozen=True)
class Day(Field):
    not_future: bool = False
    earliest: date | None = None

    def convert(self, value: Any, field: str) -> date:
        if isinstance(value, str):
            value = _parsed(date.fromisoformat, value)
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValidationError(field, "must be a date (YYYY-MM-DD)")
        if self.not_future and value > utcnow().date() + timedelta(days=1):
            raise ValidationError(field, "must not be in the future")
        if self.earliest is not None and value < self.earliest:
            raise ValidationError(field, f"must not be before {self.earliest.isoformat()}")
        return value


@dataclass(frozen=True)
class Timestamp(Field):
    not_future: bool = False

    def convert(self, value: Any, field: str) -> datetime:
        if isinstance(value, str):
            value = _parsed(datetime.fromisoformat, value)
            if value is None:
                raise ValidationError(field, "must be an ISO 8601 timestamp")
        if not isinstance(value, datetime):
            raise ValidationError(field, "must be a timestamp")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(field, "must carry a time zone")
        if self.not_future and value > utcnow() + CLOCK_SKEW:
            raise ValidationError(field, "must not be in the future")
        return value


@dataclass(frozen=True)
class JSONObject(Field):
    """A JSON object of bounded size and depth, with plain keys and valid text throughout."""

    max_bytes: int = JSON_MAX_BYTES

    def convert(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError(field, "must be an object")
        if not fits(value, self.max_bytes):  # before walking it whole
            raise self.too_large(field)
        _check_json(value, field, depth=0)
        if len(json.dumps(value)) > self.max_bytes:
            raise self.too_large(field)
        return value

    def too_large(self, field: str) -> ValidationError:
        return ValidationError(field, f"must be at most {self.max_bytes} bytes as JSON")


@dataclass(frozen=True)
class TextList(Field):
    """A list of short, distinct, non-blank strings (allergies, tags)."""

    max_items: int = 100
    item: Text = Text(max_length=200, strip=True)

    def convert(self, value: Any, field: str) -> list[str]:
        if not isinstance(value, list | tuple):
            raise ValidationError(field, "must be a list of text")
        if len(value) > self.max_items:
            raise ValidationError(field, f"must have at most {self.max_items} entries")
        cleaned = [self.item.convert(entry, field) for entry in value]
        return list(dict.fromkeys(cleaned))


def _parsed(parse: Callable[[str], _P], text: str) -> _P | None:
    """``parse(text)``, or ``None`` when it cannot be parsed. The parser's error (which
    quotes the text) is dropped here, so the ``ValidationError`` raised instead carries
    no ``__context__`` holding the caller's value."""
    try:
        return parse(text)
    except ValueError:
        return None


def _check_json(value: Any, field: str, depth: int) -> None:
    if depth > JSON_MAX_DEPTH:
        raise ValidationError(field, f"must not nest deeper than {JSON_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key or key.startswith("$") or "." in key:
                raise ValidationError(field, "keys must be plain names (no '$' or '.')")
            check_text(key, field)
            _check_json(item, field, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, field, depth + 1)
    elif isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(field, "must hold only finite numbers")  # JSON has no NaN
    elif value is not None and not isinstance(value, bool | int | float):
        raise ValidationError(field, "must hold only JSON values")


def _normalize_phone(value: str) -> str:
    digits = re.sub(r"[\s()-]", "", value)
    if re.fullmatch(r"[6-9]\d{9}", digits):
        return "+91" + digits
    if re.fullmatch(r"0[6-9]\d{9}", digits):
        return "+91" + digits[1:]
    return digits


def _normalize_abha(value: str) -> str:
    digits = value.replace("-", "").replace(" ", "")
    if re.fullmatch(r"\d{14}", digits):
        return f"{digits[:2]}-{digits[2:6]}-{digits[6:10]}-{digits[10:]}"
    return value


PHONE = Text(
    max_length=16,
    pattern=re.compile(r"\+[1-9]\d{7,14}"),
    expected="a phone number in international format (+91...)",
    strip=True,
    normalize=_normalize_phone,
)
EMAIL = Text(
    max_length=254,
    pattern=re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"),
    expected="an email address",
    strip=True,
    normalize=str.lower,
)
ABHA_NUMBER = Text(
    max_length=17,
    pattern=re.compile(r"\d{2}-\d{4}-\d{4}-\d{4}"),
    expected="a 14-digit ABHA number",
    strip=True,
    normalize=_normalize_abha,
)
MRN = Text(
    max_length=32,
    pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9/-]*"),
    expected="a medical record number (letters, digits, '-' or '/')",
    strip=True,
)
USERNAME = Text(
    max_length=50,
    pattern=re.compile(r"[A-Za-z0-9_.-]{3,50}"),
    expected="3-50 letters, digits, '_', '.' or '-'",
    strip=True,
)
WEB_URL = Text(max_length=2048, pattern=re.compile(r"https?://\S+"), expected="an http(s) URL")
APP_LINK = Text(
    max_length=2048, pattern=re.compile(r"(/|https?://)\S*"), expected="a path or http(s) URL"
)
