"""MkDocs hook: the reference pages' tables, generated from the code at every build.

A page holds a marker such as ``<!-- reference: settings -->``; :func:`on_page_markdown`
replaces it with what the generator of that name returns, so a page can never drift from
the code it describes:

- ``entities``: every field of every mapped table (the SQLAlchemy mappers, the checks of
  ``relational/rules/validation.py``, the encrypted columns, the caching policy of
  ``relational/caching/policy.py``) and of every document (the MongoEngine classes);
- ``settings``: every ``Settings`` field, from the metadata ``environ.variable`` keeps;
- ``cli``: every command and flag, from the argument parser;
- ``errors``: every error a caller can meet, from the classes and their docstrings.

An unknown marker name, a validation check or document field this module cannot describe
fails the build rather than leave a gap.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import itertools
import pkgutil
import re
import textwrap
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import Any

from mongoengine import fields as me
from sqlalchemy import JSON, Boolean, Date, Double, Enum, Integer, String, Table, Uuid
from sqlalchemy.orm import Mapper

import dr_assistant_data
from dr_assistant_data import errors
from dr_assistant_data.cache.store import REGION_TTLS
from dr_assistant_data.cli import main as cli_main
from dr_assistant_data.documents.fields import PlainDictField, UUIDText, expectation
from dr_assistant_data.environ import Environ, source_of
from dr_assistant_data.relational.base import SECRET, Base
from dr_assistant_data.relational.caching import policy as caching
from dr_assistant_data.relational.encryption import (
    EncryptedText,
    blind_indexes,
    encrypted_columns,
)
from dr_assistant_data.relational.rules import chart_values
from dr_assistant_data.relational.rules import validation as rules
from dr_assistant_data.relational.types import MutableJSONDict, MutableJSONList, UTCDateTime
from dr_assistant_data.settings import Settings
from dr_assistant_data.unit_of_work import UnitOfWork
from dr_assistant_data.values import fields as f

MARKER = re.compile(r"<!--\s*reference:\s*([a-z]+)\s*-->")
SET_BY_LAYER = "set by the layer"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each ``<!-- reference: NAME -->`` marker with the generated Markdown."""
    return MARKER.sub(lambda marker: generator(marker.group(1))(), markdown)


def generator(name: str) -> Callable[[], str]:
    """The generator a marker names; an unknown name fails the build."""
    if name not in GENERATORS:
        raise ValueError(f"no reference generator named {name!r}: {', '.join(GENERATORS)}")
    return GENERATORS[name]


# -- text helpers ----------------------------------------------------------------------


def _markdown(docstring: str | None) -> str:
    """A docstring as Markdown: dedented, reST ``literals`` as `code`, roles dropped."""
    text = inspect.cleandoc(docstring or "")
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    """Text fit for one table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _own_doc(cls: type) -> str:
    """The class's own docstring (``inspect.getdoc`` would inherit its base's)."""
    return _markdown(cls.__dict__.get("__doc__"))


@cache
def _attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings written under the attributes of ``cls`` (``x: int`` then
    ``\"\"\"...\"\"\"``), which Python keeps nowhere at run time."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for statement, following in itertools.pairwise(body):
        target: ast.expr | None = None
        if isinstance(statement, ast.AnnAssign):
            target = statement.target
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        if (
            isinstance(target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[target.id] = _markdown(following.value.value)
    return docs


def _declaring(cls: type, name: str) -> type:
    """The class of ``cls``'s hierarchy whose body declares attribute ``name``."""
    for klass in cls.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            return klass
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def _declared_doc(cls: type, name: str) -> str:
    """The docstring under attribute ``name`` where ``cls`` or a base declares it."""
    return _attribute_docs(_declaring(cls, name)).get(name, "")


# -- entities ---------------------------------------------------------------------------


def entities() -> str:
    """The tables callers write, in the unit of work's order (items after their parent),
    then every document, then the tables the layer keeps for itself."""
    repositories = _repositories()
    mappers = {mapper.class_: mapper for mapper in Base.registry.mappers}
    written = [
        repository.model for repository in repositories.values() if hasattr(repository, "model")
    ]
    for child in rules.PREFIXES:
        parent = _parent(child)
        written.insert(written.index(parent) + 1, child)
    sections = ["## Records (PostgreSQL)"]
    sections += [_table_section(mappers[model], repositories) for model in written]
    sections.append("## Documents (MongoDB)")
    sections += [
        _document_section(name, repository.document)
        for name, repository in repositories.items()
        if hasattr(repository, "document")
    ]
    sections += [
        "## Tables kept by the layer",
        "Written by the layer itself, never by callers: listed so that a database holds "
        "no table this reference does not name.",
    ]
    by_table = {mapper.local_table: mapper for mapper in mappers.values()}
    sections += [
        _internal_section(by_table[table])
        for table in Base.metadata.sorted_tables
        if table in by_table and by_table[table].class_ not in written
    ]
    return "\n\n".join(sections)


def _parent(child: Any) -> type:
    """The record a row written through its parent (an item) belongs to."""
    parent: type = next(iter(child.__mapper__.relationships)).mapper.class_
    return parent


def _repositories() -> dict[str, Any]:
    """``uow.<name>``: the repository class of each of the unit of work's attributes."""
    hints = inspect.get_annotations(UnitOfWork, eval_str=True)
    for base in UnitOfWork.__mro__[1:]:
        if base.__module__.startswith(dr_assistant_data.__name__):
            hints = {**inspect.get_annotations(base, eval_str=True), **hints}
    return {name: kind for name, kind in hints.items() if isinstance(kind, type)}


def _heading(mapper: Mapper[Any]) -> list[str]:
    model = mapper.class_
    table: Table = model.__table__
    parts = [f"### `{table.name}`", f"`{model.__module__}.{model.__name__}`"]
    return [*parts, _own_doc(model)] if _own_doc(model) else parts


def _table_section(mapper: Mapper[Any], repositories: dict[str, Any]) -> str:
    model = mapper.class_
    parts = [*_heading(mapper), _written_through(model, repositories), _caching(model)]
    parts.append(
        _table(
            ("field", "type", "required", "allowed values", "encrypted", "cached", "notes"),
            [_column_row(mapper, attribute.key) for attribute in mapper.column_attrs],
        )
    )
    return "\n\n".join(parts)


def _internal_section(mapper: Mapper[Any]) -> str:
    rows = [
        (f"`{key}`", _column_type(attribute.columns[0]), _column_notes(mapper.class_, key))
        for key, attribute in mapper.column_attrs.items()
    ]
    return "\n\n".join([*_heading(mapper), _table(("field", "type", "notes"), rows)])


def _written_through(model: Any, repositories: dict[str, Any]) -> str:
    for name, repository in repositories.items():
        if getattr(repository, "model", None) is model:
            return f"Read and written through `uow.{name}`."
    parent = _parent(model)
    owner = next(
        name for name, repo in repositories.items() if getattr(repo, "model", None) is parent
    )
    return (
        f"Written through its parent: `uow.{owner}.create(..., items=[{{...}}])`; a refused "
        f"item names its field `{rules.PREFIXES[model]}<field>`."
    )


def _caching(model: Any) -> str:
    reads = [read for read in caching.POLICY if read.model is model]
    if not reads:
        return "Not cached."
    described = [
        f"`{read.kind}` (keyed by {', '.join(_key_part(part) for part in read.key)}; "
        f"expires after `{source_of(_settings_field(REGION_TTLS[read.region])).name}`)"
        + ("" if _stores_rows(read) else ": a number, not the rows")
        for read in reads
    ]
    return "Cached reads: " + "; ".join(described) + "."


def _key_part(part: caching.KeyPart) -> str:
    if isinstance(part, caching.LocalDay):
        return f"the clinic's day of `{part.attribute}`"
    return f"`{part}`"


def _stores_rows(read: caching.CachedRead) -> bool:
    return isinstance(read, caching.CachedEntity | caching.CachedList)


def _column_row(mapper: Mapper[Any], key: str) -> tuple[str, ...]:
    model: Any = mapper.class_
    column: Any = mapper.column_attrs[key].columns[0]
    writable = rules.columns_of(model).get(key)
    if writable is None:
        required, allowed = SET_BY_LAYER, ""
    else:
        required = "yes" if writable.required else "no"
        allowed = _allowed(writable.check)
    encrypted = encrypted_columns(model)
    rows_cached = any(_stores_rows(read) for read in caching.reads_written_by(model))
    cached = "yes" if rows_cached else "no"
    if column.info.get(SECRET):
        cached = "never (a credential)"
    return (
        f"`{key}`",
        _column_type(column),
        required,
        allowed,
        "yes" if key in encrypted else "no",
        cached,
        _column_notes(model, key),
    )


def _column_type(column: Any) -> str:
    kind = column.type
    if kind is MutableJSONList:
        return "JSON list"
    if kind is MutableJSONDict:
        return "JSON object"
    kinds: tuple[tuple[type, str], ...] = (
        (UTCDateTime, "timestamp (UTC)"),
        (Date, "date"),
        (Uuid, "UUID"),
        (Enum, "text (choice)"),
        (JSON, "JSON"),
        (EncryptedText, "text"),
        (String, "text"),
        (Boolean, "boolean"),
        (Integer, "integer"),
        (Double, "number"),
    )
    for sql_type, name in kinds:
        if isinstance(kind, sql_type):
            return name
    raise TypeError(f"the entities reference cannot describe a {type(kind).__name__} column")


def _column_notes(model: Any, key: str) -> str:
    column: Any = model.__mapper__.column_attrs[key].columns[0]
    notes = []
    index_of = column.info.get("blind_index_of")
    if index_of:
        notes.append(f"blind index (keyed HMAC) of `{index_of}`, for exact-match lookups")
    if key in blind_indexes(model):
        notes.append(f"found through `{blind_indexes(model)[key]}`")
    notes += [f"references `{fk.target_fullname}`" for fk in column.foreign_keys]
    if column.unique:
        notes.append("unique")
    if key in rules.PROTECTED:
        notes.append(_protected_note(model, key))
    doc = _declared_doc(model, key)
    if doc:
        notes.append(doc)
    return "; ".join(notes)


def _protected_note(model: Any, key: str) -> str:
    """What the mixin declaring a layer-maintained column says it is for."""
    declaring = _declaring(model, key)
    return "" if declaring is model else _own_doc(declaring).split("\n\n")[0]


def _allowed(check: f.Field) -> str:
    """What a relational field's check accepts, in words; an unknown check fails the build."""
    if isinstance(check, f.Choice):
        return ", ".join(f"`{value}`" for value in check.values)
    if isinstance(check, f.Text):
        kind = check.expected if check.pattern is not None else "text"
        return f"{kind}, at most {check.max_length} characters"
    if isinstance(check, f.Integer):
        return _between("a whole number", check.minimum, check.maximum)
    if isinstance(check, f.Day):
        limits = [" not in the future"] if check.not_future else []
        if check.earliest is not None:
            limits.append(f" not before {check.earliest.isoformat()}")
        return "a date (YYYY-MM-DD)" + ",".join(limits)
    if isinstance(check, f.Timestamp):
        return "a timestamp with a time zone" + (", not in the future" if check.not_future else "")
    if isinstance(check, f.JSONObject):
        return f"an object of at most {check.max_bytes} bytes as JSON, with plain keys"
    if isinstance(check, f.TextList):
        return (
            f"a list of at most {check.max_items} distinct texts of at most "
            f"{check.item.max_length} characters"
        )
    if isinstance(check, f.UUIDField):
        return "a UUID"
    if isinstance(check, f.Boolean):
        return "`true` or `false`"
    if isinstance(check, chart_values.Reactions):
        return (
            f"a list of at most {chart_values.MAX_REACTIONS} reactions, each naming 1 to "
            f"{chart_values.MAX_MANIFESTATIONS} manifestations (`code`, `system`, `display`: "
            "a code or a display text) and optionally `severity`, `description`, `onset_at`"
        )
    if isinstance(check, chart_values.Measurement):
        return f"a finite number between -{check.limit:g} and {check.limit:g}"
    raise TypeError(f"the entities reference cannot describe a {type(check).__name__} check")


def _between(kind: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    if low is not None:
        return f"{kind}, at least {low}"
    return kind if high is None else f"{kind}, at most {high}"


def _document_section(name: str, document: Any) -> str:
    collection = document._meta["collection"]
    parts = [f"### `{collection}`", f"`{document.__module__}.{document.__name__}`"]
    if _own_doc(document):
        parts.append(_own_doc(document))
    parts.append(f"Read and written through `uow.{name}`. Not encrypted by the layer, not cached.")
    writable, optional = _document_writable(name)
    rows = [
        _document_row(path, field, required)
        for path, field, required in _document_fields(document, "", writable, optional)
    ]
    parts.append(_table(("field", "type", "required", "allowed values", "notes"), rows))
    return "\n\n".join(parts)


def _document_writable(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """The top-level fields a caller gives the repository's create (or store) call, and
    those of them the repository fills when left out."""
    repository = _repositories()[name]
    create = getattr(repository, "create", None) or repository.store
    module = inspect.getmodule(repository)
    given = [
        parameter.name
        for parameter in inspect.signature(create).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for constant in ("REFERENCES", "EDITABLE", "OPTIONAL"):
        given += getattr(module, constant, ())
    return frozenset(given), frozenset(getattr(module, "OPTIONAL", ()))


def _document_fields(
    document: Any, prefix: str, writable: frozenset[str] | None, optional: frozenset[str]
) -> Iterator[tuple[str, me.BaseField, str]]:
    """``(dotted path, field, required)`` of every field, the embedded documents of the
    caller's fields expanded. ``writable`` is ``None`` inside a field the caller writes."""
    for name in document._fields_ordered:
        field = document._fields[name]
        path = prefix + name
        if writable is not None and name not in writable:
            yield path, field, SET_BY_LAYER
            continue
        needed = field.required and field.default is None and name not in optional
        yield path, field, "yes" if needed else "no"
        inner = field.field if isinstance(field, me.ListField) else field
        if isinstance(inner, me.EmbeddedDocumentField):
            suffix = "[]." if inner is not field else "."
            yield from _document_fields(inner.document_type, path + suffix, None, frozenset())


def _document_row(path: str, field: me.BaseField, required: str) -> tuple[str, ...]:
    allowed = "" if required == SET_BY_LAYER else _document_allowed(field)
    notes = []
    if field.default is not None and not callable(field.default):
        notes.append(f"default `{field.default}`")
    doc = _declared_doc(field.owner_document, field.name) if field.owner_document else ""
    if doc:
        notes.append(doc)
    return (f"`{path}`", _document_type(field), required, allowed, "; ".join(notes))


def _document_allowed(field: me.BaseField) -> str:
    if isinstance(field, me.EmbeddedDocumentField):
        return "an object of the fields below"
    if isinstance(field, me.ListField) and isinstance(field.field, me.EmbeddedDocumentField):
        return "a list of objects of the fields below"
    if isinstance(field, me.ListField) and field.field is not None:
        item = expectation(field.field).removeprefix("must be ")
        return f"a list of at most {field.max_length} entries, each {item}"
    return expectation(field).removeprefix("must be ")


def _document_type(field: me.BaseField) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (UUIDText, "UUID (text)"),
        (me.StringField, "text"),
        (me.IntField, "integer"),
        (me.FloatField, "number"),
        (me.BooleanField, "boolean"),
        (me.DateTimeField, "timestamp (UTC)"),
        (me.EmbeddedDocumentField, "object"),
        (me.ListField, "list"),
        (PlainDictField, "JSON object"),
        (me.DictField, "object"),
    )
    for kind, name in kinds:
        if isinstance(field, kind):
            return name
    raise TypeError(f"the entities reference cannot describe a {type(field).__name__}")


# -- settings ---------------------------------------------------------------------------

READERS: dict[Callable[..., Any], str] = {
    Environ.text: "",
    Environ.optional_text: "",
    Environ.integer: "",
    Environ.real: "",
    Environ.flag: "the variable: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`",
    Environ.items: "the variable: comma-separated",
    Environ.millis: "seconds; the variable: milliseconds",
    Environ.millis_or_zero: "seconds; the variable: milliseconds",
}
"""How each reader's variable is written, where it differs from the field's type."""


def settings() -> str:
    """One row per ``Settings`` field, in declaration order."""
    rows = [_setting_row(field) for field in dataclasses.fields(Settings)]
    header = ("variable", "`Settings` field", "type", "range", "default", "meaning")
    return _table(header, rows)


def _settings_field(name: str) -> dataclasses.Field[Any]:
    return next(field for field in dataclasses.fields(Settings) if field.name == name)


def _setting_row(field: dataclasses.Field[Any]) -> tuple[str, ...]:
    source = source_of(field)
    variable = f"`{source.name}`"
    if source.also:
        variable += " (else from " + ", ".join(f"`{name}`" for name in source.also) + ")"
    kind = f"`{field.type}`"
    written = READERS.get(source.reader)
    if written is None:  # a reader of its own (settings.py): its docstring says how
        written = _markdown(source.reader.__doc__)
    if written:
        kind += f"; {written}"
    bound = source.bound.message if source.bound is not None else ""
    return (variable, f"`{field.name}`", kind, bound, _default(field, source.reader), source.doc)


def _default(field: dataclasses.Field[Any], reader: Callable[..., Any]) -> str:
    value: Any = field.default
    if value in (None, "", ()):
        return "none"
    if reader in (Environ.millis, Environ.millis_or_zero):
        return f"`{value}` ({round(value * 1000)} ms)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


# -- command line -----------------------------------------------------------------------

USAGE_WIDTH = 88


def cli() -> str:
    """Every command and sub-command: usage, description and a table of its arguments."""
    return "\n\n".join(_command_section(name, parser) for name, parser in commands())


def commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(full command, parser)`` of the program and every sub-command, depth first."""
    root = cli_main._parser()
    yield root.prog, root
    yield from _subcommands(root)


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub.prog, sub
                yield from _subcommands(sub)


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's own arguments: not ``--help``, not the sub-command choice."""
    return [
        action
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
    ]


def _command_section(name: str, parser: argparse.ArgumentParser) -> str:
    level = "##" if " " not in name else "###"
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=USAGE_WIDTH)
    parts = [f"{level} `{name}`"]
    if level == "##":
        parts.append(_markdown(cli_main.__doc__))
    elif parser.description:
        parts.append(parser.description)
    parts.append(f"```text\n{parser.format_usage().strip()}\n```")
    rows = [_argument_row(action) for action in arguments(parser)]
    if rows:
        parts.append(_table(("argument", "default", "meaning"), rows))
    return "\n\n".join(parts)


def _argument_row(action: argparse.Action) -> tuple[str, ...]:
    if action.option_strings:
        names = ", ".join(f"`{option}`" for option in action.option_strings)
        if action.nargs != 0:
            names += f" `{action.metavar or action.dest.upper()}`"
    else:
        names = f"`{action.metavar or action.dest}`"
        if action.nargs in ("+", "*"):
            names += " (one or more)" if action.nargs == "+" else " (any number)"
    default = action.default
    shown = "" if default in (None, False, "", argparse.SUPPRESS) else f"`{default}`"
    return (names, shown, action.help or "")


# -- errors -----------------------------------------------------------------------------


def errors_reference() -> str:
    """The contract's errors (``errors.py``) in declaration order, then the package's other
    ``DataLayerError`` subclasses."""
    contract = [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    ]
    parts = [
        f"## The contract's errors (`{errors.__name__}`)",
        _markdown(errors.__doc__),
        _error_tree(contract),
        *(_error_section(error) for error in contract),
    ]
    others = [error for error in _package_errors() if error not in contract]
    if others:
        parts.append("## Raised by particular operations")
        parts += [_error_section(error) for error in others]
    return "\n\n".join(parts)


def _error_tree(contract: list[type]) -> str:
    lines = ["```text"]

    def walk(error: type, depth: int) -> None:
        lines.append("    " * depth + error.__name__)
        for sub in contract:
            if sub.__bases__[0] is error:
                walk(sub, depth + 1)

    walk(errors.DataLayerError, 0)
    return "\n".join([*lines, "```"])


def _error_section(error: type) -> str:
    bases = " and ".join(f"`{base.__name__}`" for base in error.__bases__ if base is not Exception)
    heading = f"### `{error.__name__}`"
    where = f"`{error.__module__}.{error.__name__}`" + (f": a {bases}" if bases else "")
    return "\n\n".join([heading, where, _own_doc(error)])


def _package_errors() -> list[type]:
    """Every subclass of ``DataLayerError`` the package defines, once all of it is imported."""
    for module in pkgutil.walk_packages(dr_assistant_data.__path__, "dr_assistant_data."):
        importlib.import_module(module.name)
    found: list[type] = []

    def walk(error: type[Exception]) -> None:
        for sub in error.__subclasses__():
            if sub.__module__.startswith(dr_assistant_data.__name__) and sub not in found:
                found.append(sub)
                walk(sub)

    walk(errors.DataLayerError)
    return found


GENERATORS: dict[str, Callable[[], str]] = {
    "entities": entities,
    "settings": settings,
    "cli": cli,
    "errors": errors_reference,
}
