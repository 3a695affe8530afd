"""Resources streamed out of FHIR files: Bulk Data NDJSON, or a Bundle.

Neither is read whole: NDJSON line by line (a line longer than ``MAX_RESOURCE_BYTES``
is skipped unread and refused), a Bundle event by event (``ijson``'s parser, without
the paths it would build for every value), and each resource is built from those
events within its limits: at most ``MAX_DEPTH`` levels of nesting, ``MAX_NODES``
values and ``MAX_RESOURCE_BYTES`` of text, checked as it is built, so a hostile
resource costs no more than the limits before it is given up (the rest of it is read
past, counting only its depth). Memory stays bounded by the largest resource allowed
and the longest single string in the file, whatever the size or shape of the file.

Each resource comes out as a ``Raw`` (its JSON object, or the reason it is not one)
with its position in the file. A file that cannot be read (missing, a directory, a
device, a symlink loop, no permission) or whose Bundle breaks off comes out as one
``Raw`` naming the file by its index, never by its name; the other files go on.
Checking a resource's content is ``inbound.py``'s job.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, overload

import ijson

from .outcomes import NOT_A_FILE, NOT_JSON, TOO_DEEP, TOO_LARGE, UNREADABLE, UNSUPPORTED_CODE

MAX_RESOURCE_BYTES = 2 * 1024 * 1024
"""Per resource: the bytes of an NDJSON line, or the text (strings and keys) of a Bundle
entry's resource."""
MAX_DEPTH = 64
"""Per resource: levels of nesting (a FHIR resource this import reads has about ten)."""
MAX_NODES = 50_000
"""Per resource: values (objects, arrays, strings, numbers...)."""
BUNDLE_TYPES = frozenset({"collection", "transaction", "document", "batch"})
FILE = "File"
"""The resource type of an outcome about a whole file."""
_CHUNK = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_OPEN, _CLOSE = frozenset({"start_map", "start_array"}), frozenset({"end_map", "end_array"})
_SCALAR_SIZE = 8
NODE_WEIGHT = 128
"""What one value of a built resource costs in memory beyond its text (a Python object
and its place in a list or object), in bytes: how an import weighs what it buffers."""
_STRING_CAP = MAX_RESOURCE_BYTES + 1
"""Bytes of one JSON string passed to the parser of a Bundle: more is cut
(``_CappedStrings``), and the resource that holds a cut string is refused as too large."""
Events = Iterator[tuple[str, Any]]


@dataclass(frozen=True)
class Raw:
    """One resource as read: ``resource`` (a JSON object) or ``problem`` (a reason code).
    ``full_url`` is its Bundle entry's ``fullUrl``; ``position`` its line (NDJSON, from 1)
    or entry (Bundle, from 0); ``size`` what it weighs in memory (``NODE_WEIGHT``). A problem
    with the file rather than one resource names its ``where``: (type, element)."""

    source: int
    position: int
    resource: dict[str, Any] | None
    full_url: str | None = None
    problem: str | None = None
    where: tuple[str, str] | None = None
    size: int = 0

    @property
    def resource_type(self) -> str:
        if self.where is not None:
            return self.where[0]
        kind = self.resource.get("resourceType") if self.resource else None
        return kind if isinstance(kind, str) and kind.isalpha() and len(kind) < 64 else "unknown"

    @property
    def field(self) -> str:
        """The element a problem is about."""
        return self.where[1] if self.where is not None else "resource"


class _FileProblem(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Line:
    """An NDJSON line read but not parsed yet (``read(..., parse=False)``): ``raw()``
    parses it, within the same limits, wherever that is done (a worker process,
    ``checks.py``)."""

    source: int
    position: int
    text: bytes

    def raw(self) -> Raw:
        return _parsed(self.text).raw(self.source, self.position)


@overload
def read(path: Path, source: int) -> Iterator[Raw]: ...
@overload
def read(path: Path, source: int, *, parse: bool) -> Iterator[Raw | Line]: ...
def read(path: Path, source: int, *, parse: bool = True) -> Iterator[Raw | Line]:
    """The resources of the file at ``path``: a Bundle if it is one JSON object whose
    ``resourceType`` is ``Bundle``, NDJSON otherwise. Never raises for the file's sake:
    what cannot be read is a ``Raw`` with its problem. Without ``parse``, an NDJSON line
    within the size limit comes out as a ``Line``, to be parsed later."""
    try:
        stream = _opened(path)
    except _FileProblem as problem:
        yield Raw(source, 0, None, problem=problem.code, where=(FILE, "file"))
        return
    with stream:
        try:
            start = stream.tell()
            bundle = _is_bundle(stream)
            stream.seek(start)
            if bundle:
                yield from _bundle(stream, start, source)
            else:
                yield from _ndjson(stream, source, parse)
        except OSError:  # a read error in the middle of the file (EIO...)
            yield Raw(source, 0, None, problem=UNREADABLE, where=(FILE, "file"))


def first_type(path: Path) -> str | None:
    """The ``resourceType`` of an NDJSON file's first line (``None`` for a Bundle or an
    unreadable file or first line): files are imported in the order of the types they
    hold."""
    try:
        with _opened(path) as stream:
            start = stream.tell()
            if _is_bundle(stream):
                return None
            stream.seek(start)
            resource = _parsed(stream.readline(MAX_RESOURCE_BYTES)).value
    except (_FileProblem, OSError):
        return None
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    return kind if isinstance(kind, str) and kind != "Bundle" else None


def _opened(path: Path) -> BinaryIO:
    """The file at ``path`` opened for reading, past a UTF-8 byte-order mark; only a
    regular file (a pipe or a device could block or never end). ``_FileProblem``
    otherwise, whose code names no path."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError, TypeError):
        raise _FileProblem(UNREADABLE) from None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        regular = False
    if not regular:
        os.close(fd)
        raise _FileProblem(NOT_A_FILE)
    stream = os.fdopen(fd, "rb")
    try:
        if stream.read(len(_BOM)) != _BOM:
            stream.seek(0)
    except OSError:
        stream.close()
        raise _FileProblem(UNREADABLE) from None
    return stream


def _is_bundle(stream: BinaryIO) -> bool:
    """A Bundle is one JSON object, usually over many lines; NDJSON has an object per
    line: the first object's ``resourceType`` tells, read past without being built."""
    head = stream.read(_CHUNK)
    stream.seek(-len(head), os.SEEK_CUR)
    depth, named = 0, False
    try:
        for kind, value in ijson.basic_parse(_CappedStrings(stream), multiple_values=True):
            if named:
                return bool(kind == "string" and value == "Bundle")
            if kind in _OPEN:
                depth += 1
            elif kind in _CLOSE:
                depth -= 1
            named = depth == 1 and kind == "map_key" and value == "resourceType"
            if depth == 0:
                return False
    except ijson.JSONError:
        return head.lstrip().startswith(b"{") and b'"Bundle"' in head
    return False


def _ndjson(stream: BinaryIO, source: int, parse: bool) -> Iterator[Raw | Line]:
    number = 0
    while True:
        line = stream.readline(MAX_RESOURCE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_RESOURCE_BYTES and not line.endswith(b"\n"):
            _skip_line(stream)
            yield Raw(source, number, None, problem=TOO_LARGE)
            continue
        if not line.strip():
            continue
        yield _parsed(line).raw(source, number) if parse else Line(source, number, line)


def _parsed(line: bytes) -> _Built:
    """One JSON value and nothing after it."""
    events = ijson.basic_parse(line, use_float=True)
    try:
        built = _value(events, next(events))
        if next(events, None) is not None:
            return _Built(None, NOT_JSON)
    except (ijson.JSONError, StopIteration):
        return _Built(None, NOT_JSON)
    return built


def _skip_line(stream: BinaryIO) -> None:
    while chunk := stream.readline(_CHUNK):
        if chunk.endswith(b"\n"):
            return


def _bundle(stream: BinaryIO, start: int, source: int) -> Iterator[Raw]:
    try:
        kind = _bundle_type(ijson.basic_parse(_CappedStrings(stream)))
    except ijson.JSONError:
        yield Raw(source, 0, None, problem=NOT_JSON, where=("Bundle", "Bundle"))
        return
    if kind not in BUNDLE_TYPES:
        yield Raw(source, 0, None, problem=UNSUPPORTED_CODE, where=("Bundle", "Bundle.type"))
        return
    stream.seek(start)
    capped = _CappedStrings(stream)
    entries = _Entries(source, capped)
    try:
        yield from entries.read(ijson.basic_parse(capped, use_float=True))
    except ijson.JSONError:  # nothing after this point can be read: one line for the rest
        yield Raw(source, entries.number, None, problem=NOT_JSON, where=("Bundle", "Bundle.entry"))


def _bundle_type(events: Events) -> Any:
    """The value of the Bundle's top-level ``type`` (read past everything else)."""
    kind, _ = next(events)
    if kind != "start_map":
        return None
    for kind, value in events:
        if kind == "end_map":
            return None
        first = next(events)
        if value == "type":
            return first[1] if first[0] == "string" else None
        _skip(events, first)
    return None


class _Entries:
    """The resources of a Bundle's ``entry`` array, from its events."""

    def __init__(self, source: int, capped: _CappedStrings) -> None:
        self.source = source
        self.capped = capped
        self.number = 0

    def read(self, events: Events) -> Iterator[Raw]:
        next(events)  # the Bundle's start_map, checked by _bundle_type
        for kind, value in events:
            if kind == "end_map":
                return
            first = next(events)
            if value == "entry" and first[0] == "start_array":
                yield from self._entries(events)
            else:
                _skip(events, first)

    def _entries(self, events: Events) -> Iterator[Raw]:
        for kind, _ in events:
            if kind == "end_array":
                return
            if kind != "start_map":
                _skip(events, (kind, None))
                yield Raw(self.source, self.number, None, problem=NOT_JSON)
            else:
                yield self._entry(events)
            self.number += 1

    def _entry(self, events: Events) -> Raw:
        built, url = _Built(None, NOT_JSON), None
        for kind, value in events:
            if kind == "end_map":
                break
            first = next(events)
            if value == "resource":
                built = _value(events, first, self.capped)
            elif value == "fullUrl" and first[0] == "string":
                url = first[1]
            else:
                _skip(events, first)
        return built.raw(self.source, self.number, url)


def _skip(events: Events, first: tuple[str, Any]) -> None:
    """Read past the value that begins with ``first``, holding nothing of it."""
    if first[0] in _OPEN:
        _skip_open(events, 1)


@dataclass(frozen=True)
class _Built:
    """A value read (``value``), or the ``problem`` that stopped it and the element
    (``path``, keys only) where it did."""

    value: Any
    problem: str | None = None
    size: int = 0
    path: str = ""
    resource_type: str | None = None
    nodes: int = 0

    def raw(self, source: int, position: int, url: str | None = None) -> Raw:
        if isinstance(self.value, dict):
            weight = self.size + NODE_WEIGHT * self.nodes
            return Raw(source, position, self.value, url, size=weight)
        if self.resource_type is None:
            return Raw(source, position, None, problem=self.problem or NOT_JSON)
        path = ".".join([self.resource_type, *filter(None, self.path.split("."))])
        return Raw(source, position, None, problem=self.problem, where=(self.resource_type, path))


def _value(events: Events, first: tuple[str, Any], capped: _CappedStrings | None = None) -> _Built:
    """The value that begins with ``first``, built from ``events`` within the limits,
    or, once a limit is passed (or a string of it was cut by ``capped``), its problem
    (the rest of the value read past)."""
    kind, value = first
    cuts = capped.cuts if capped is not None else 0
    if kind not in _OPEN:
        return _Built(value, size=len(value) if isinstance(value, str) else _SCALAR_SIZE)
    root: Any = {} if kind == "start_map" else []
    stack: list[Any] = [root]
    keys: list[str] = [""]
    nodes, size = 1, 2
    for kind, value in events:
        if kind == "map_key":
            keys[-1] = value
            size += len(value) + 3
            continue
        if kind in _CLOSE:
            stack.pop()
            keys.pop()
            if not stack:
                return _Built(root, size=size, nodes=nodes)
            continue
        nodes += 1
        item: Any
        if kind in _OPEN:
            item = {} if kind == "start_map" else []
            size += 2
        else:
            item = value
            size += len(value) + 2 if kind == "string" else _SCALAR_SIZE
        top = stack[-1]
        if type(top) is dict:
            top[keys[-1]] = item
        else:
            top.append(item)
        if kind in _OPEN:
            stack.append(item)
            keys.append("")
        problem = (
            TOO_DEEP
            if len(stack) > MAX_DEPTH
            else TOO_LARGE
            if nodes > MAX_NODES
            or size > MAX_RESOURCE_BYTES
            or (capped is not None and capped.cuts != cuts)
            else None
        )
        if problem is not None:
            _skip_open(events, len(stack))
            declared = root.get("resourceType") if type(root) is dict else None
            named = (
                declared
                if isinstance(declared, str) and declared.isalpha() and len(declared) < 64
                else None
            )
            return _Built(None, problem, size, ".".join(keys), named)
    raise ijson.IncompleteJSONError("incomplete JSON value")


def _skip_open(events: Events, depth: int) -> None:
    """Read past the rest of a value ``depth`` containers deep."""
    for kind, _ in events:
        if kind in _OPEN:
            depth += 1
        elif kind in _CLOSE:
            depth -= 1
            if depth == 0:
                return


class _CappedStrings:
    """A binary stream as the JSON parser reads it, each string cut after ``_STRING_CAP``
    bytes, so that a string of hundreds of megabytes costs the parser no more than the
    cap (its lexer copies a string that spans chunks again for each chunk: time
    quadratic in its length). Strings that end within a chunk pass in one regular
    expression match; a string open at the end of a chunk is followed across chunks,
    and cut only where a chunk's part of it begins (never inside an escape or a UTF-8
    character, which are carried whole to the next chunk)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.in_string = False
        self.cutting = False
        self.length = 0
        self.carry = b""
        self.cuts = 0
        """Strings cut so far: the parser is inside the last one when it is counted (its
        first ``_STRING_CAP`` bytes are far more than the parser reads ahead)."""

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # how the parser tells bytes from text
        while True:
            chunk = self.stream.read(_CHUNK)
            if not chunk:
                rest, self.carry = self.carry, b""
                return rest
            if kept := self._kept(self.carry + chunk):
                return kept

    def _kept(self, data: bytes) -> bytes:
        self.carry = b""
        out: list[bytes] = []
        i, n = 0, len(data)
        while i < n:
            if not self.in_string:
                end = _OUTSIDE_STRINGS.match(data, i).end()  # type: ignore[union-attr]
                out.append(data[i : end + 1])  # with the quote that opens a string, if any
                self.in_string, self.cutting, self.length = end < n, False, 0
                i = end + 1
                continue
            end = _STRING_CONTENT.match(data, i).end()  # type: ignore[union-attr]
            if end < n and data[end] == ord('"'):
                out += [self._content(data[i:end]), b'"']
                self.in_string = False
                i = end + 1
                continue
            if end < n and (data[end] != ord("\\") or n - end >= 6):
                out.append(data[i:])  # not JSON: the parser will say so
                self.in_string = False
                break
            tail = end if end < n else n - _partial_character(data[i:n])
            out.append(self._content(data[i:tail]))
            self.carry = data[tail:]  # an escape or a character the next chunk finishes
            break
        return b"".join(out)

    def _content(self, part: bytes) -> bytes:
        """A chunk's part of a string, unless the string has reached the cap."""
        if not self.cutting and self.length + len(part) > _STRING_CAP:
            self.cutting = True
            self.cuts += 1
        self.length += len(part)
        return b"" if self.cutting else part


_OUTSIDE_STRINGS = re.compile(rb'(?:[^"]++|"(?:[^"\\]++|\\u[0-9A-Fa-f]{4}|\\[^u])*+")*+')
"""Text outside strings and whole strings: it ends where a string opens and does not close."""
_STRING_CONTENT = re.compile(rb'(?:[^"\\]++|\\u[0-9A-Fa-f]{4}|\\[^u])*+')
"""A string's content, up to its closing quote (or an escape that breaks off)."""


def _partial_character(data: bytes) -> int:
    """How many bytes at the end of ``data`` begin a UTF-8 character they do not end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the first byte of a character
            length = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return back if length > back else 0
    return 0
