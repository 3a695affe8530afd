"""Caller input to documents, checked before anything is written.

:func:`check_size` refuses oversized input while walking it, before anything is built;
:func:`embed` turns a caller's nested dict into embedded documents, refusing any key the
schema does not name (so ``$``-operators and dotted paths never reach the store; the error
names the object holding the key, never the key, which may be patient data);
:func:`validate` runs MongoEngine's field checks and reports the first failure as the
contract's ``ValidationError`` with the dotted path of the field
(``content.objective.vital_signs.heart_rate``), never with the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import bson
from mongoengine import EmbeddedDocument
from mongoengine import ValidationError as MongoEngineValidationError
from mongoengine import fields as me
from mongoengine.base import NON_FIELD_ERRORS, BaseDocument

from ..errors import ValidationError
from ..values.input_size import fits
from .fields import expectation

E = TypeVar("E", bound=EmbeddedDocument)


def check_size(data: Any, *, max_bytes: int, name: str) -> None:
    """Refuse caller input surely over ``max_bytes``, counted while walking it: an oversized
    object costs at most ``max_bytes`` steps to refuse, before anything is built from it."""
    if not fits(data, max_bytes):
        raise _too_large(name, max_bytes)


def embed(document: type[E], data: Any, path: str) -> E:
    """``data`` as an instance of ``document``; unknown keys are a ``ValidationError``."""
    if isinstance(data, document):
        return data
    if not isinstance(data, Mapping):
        raise ValidationError(path, "must be an object")
    values: dict[str, Any] = {}
    for key, value in data.items():
        field = document._fields.get(key) if isinstance(key, str) else None
        if field is None or key.startswith("_"):
            raise ValidationError(path, "holds a key that is not a field of this record")
        if isinstance(field, me.EmbeddedDocumentField) and value is not None:
            value = embed(field.document_type, value, f"{path}.{key}")
        values[key] = value
    return document(**values)


def validate(document: BaseDocument, *, max_bytes: int, name: str) -> None:
    """MongoEngine's checks, reported at the first failing field; then the size limit.

    MongoEngine's own error (its messages may quote the value) is never chained to ours.
    """
    refused = _refusal(document)
    if refused is not None:
        raise refused
    if len(bson.encode(document.to_mongo())) > max_bytes:
        raise _too_large(name, max_bytes)


def _too_large(name: str, max_bytes: int) -> ValidationError:
    return ValidationError(name, f"must be at most {max_bytes // 1024} KiB in all")


def _refusal(document: BaseDocument) -> ValidationError | None:
    try:
        document.validate()
    except MongoEngineValidationError as error:
        errors = error.to_dict()
    else:
        return None
    parts = _first_path(errors)
    leaf = _leaf(errors, parts)
    if parts[-1] == NON_FIELD_ERRORS:  # a rule across fields, raised by our clean()
        parts, message = parts[:-1], str(leaf)
    elif leaf == "Field is required":
        message = "is required"
    else:
        message = expectation(_field_at(type(document), parts))
    return ValidationError(".".join(parts), message)


def _first_path(errors: Any) -> list[str]:
    parts: list[str] = []
    while isinstance(errors, dict) and errors:
        key = next(iter(errors))
        parts.append(str(key))
        errors = errors[key]
    return parts


def _leaf(errors: Any, parts: list[str]) -> Any:
    for part in parts:
        errors = errors[part] if part in errors else errors[int(part)]
    return errors


def _field_at(document: type[BaseDocument], parts: list[str]) -> me.BaseField | None:
    field: Any = None
    owner: Any = document
    for part in parts:
        if part.isdigit() and isinstance(field, me.ListField):
            field = field.field
        else:
            field = owner._fields.get(part) if owner is not None else None
        owner = field.document_type if isinstance(field, me.EmbeddedDocumentField) else None
    return field
