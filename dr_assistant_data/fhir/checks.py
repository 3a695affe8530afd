"""The checks of an import's resources (``inbound.draft``: the FHIR models, the layer's
rules), run in a worker process while the importer writes what came before.

``Checks.drafts(raws)`` gives each ``Raw`` back with its ``Draft`` or its ``Refusal``, in
the order the raws came, so the report reads as if every check ran in line. NDJSON lines
(``reading.Line``) are parsed there too, within the same limits. The worker
only computes: it reads no file and opens no connection (the layer's engines get a
fresh pool in a forked child, ``relational/connection/fork_safety.py``, and it never uses them).
At most ``AHEAD_BYTES`` of resources (``Raw.size``), and the chunk that crosses it, are
read ahead of what the importer has taken, so memory stays bounded by that and the
importer's own batch.

A small import is checked in line: the worker is started once ``CHUNK`` resources are
waiting. Where no worker can be started (no ``fork`` on the platform, a daemonic process
such as a prefork task worker) or the worker dies, the checks run in line from that
point: the outcomes are the same, only slower.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from ..processes import Workers
from .elements import Draft, scoped
from .inbound import draft
from .outcomes import INVALID, Refusal
from .reading import Line, Raw
from .resource_types import REGISTRY

CHUNK = 256
"""Resources sent to the worker at once."""
AHEAD_BYTES = 64 * 1024 * 1024
"""Resources read ahead of the importer, by what they weigh in memory (``Raw.size``; an
NDJSON line not parsed yet, ``LINE_WEIGHT`` times its length)."""
LINE_WEIGHT = 4
"""What a resource weighs once built, per byte of its NDJSON line (about; ``Raw.size``)."""
Checked = Draft | Refusal
Read = Raw | Line
"""What the checks take: a resource read, or an NDJSON line they parse first."""
_Chunk = tuple[list[Read], "Future[list[Any]] | None", int]


def check(raw: Raw, strict: bool, source: str) -> Checked:
    """The ``Draft`` of ``raw`` given to ``source``, or the ``Refusal`` saying why not;
    whatever a resource does, it is its own outcome."""
    try:
        return scoped(draft(raw, strict=strict), source)
    except Refusal as refusal:
        return refusal
    except Exception:
        return Refusal(raw.resource_type, INVALID)


class Checks:
    """The checks of one import run (``strict`` and ``source`` as ``FhirImport``'s);
    ``workers`` processes (0: in line). Close it (a ``with`` block) to stop the worker."""

    def __init__(self, *, strict: bool, source: str, workers: int = 1) -> None:
        self.strict = strict
        self.source = source
        self.workers = Workers(workers)

    def __enter__(self) -> Checks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.workers.__exit__(*exc)

    def drafts(self, items: Iterable[Read]) -> Iterator[tuple[Raw, Checked]]:
        """Each resource with its outcome, in order (a ``Line`` parsed first); the worker
        checks up to ``AHEAD_BYTES`` ahead of what the caller has taken."""
        pending: deque[_Chunk] = deque()
        ahead = 0
        chunk: list[Read] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= CHUNK:
                pending.append(self._submit(chunk))
                ahead += pending[-1][2]
                chunk = []
                while pending and (ahead >= AHEAD_BYTES or _done(pending[0])):
                    ahead -= pending[0][2]
                    yield from self._results(pending.popleft())
        if chunk:
            pending.append(self._submit(chunk, start=False))
        while pending:
            yield from self._results(pending.popleft())

    def _submit(self, chunk: list[Read], start: bool = True) -> _Chunk:
        """``chunk`` handed to the worker (started if ``start``), or kept to be checked
        in line when there is none."""
        weight = sum(_weight(item) for item in chunk)  # held here until its results are taken
        future = None
        if start or self.workers.started:
            sent = [item for item in chunk if _sent(item)]
            future = self.workers.submit(_check_all, sent, self.strict, self.source)
        return chunk, future, weight

    def _results(self, pending: _Chunk) -> Iterator[tuple[Raw, Checked]]:
        chunk, future, _ = pending
        found: Iterator[Any] = iter(())
        if future is not None:
            try:
                found = iter(future.result())
            except Exception:  # the worker died (killed, out of memory): in line
                self.workers.give_up()
                future = None
        for item in chunk:
            if future is None or not _sent(item):
                raw = item.raw() if isinstance(item, Line) else item
                yield raw, check(raw, self.strict, self.source)
                continue
            raw, outcome = next(found)
            if isinstance(item, Raw):  # sent without its resource: the importer has it
                raw = item
            if isinstance(outcome, Draft):
                outcome.raw = raw
                yield raw, outcome
            else:
                yield raw, Refusal(*outcome)


def _sent(item: Read) -> bool:
    """Sent to the worker: a line to parse, or a resource of a type the import reads
    (what costs its checks)."""
    return isinstance(item, Line) or (item.resource is not None and item.resource_type in REGISTRY)


def _weight(item: Read) -> int:
    return item.size if isinstance(item, Raw) else LINE_WEIGHT * len(item.text)


def _done(item: _Chunk) -> bool:
    return item[1] is None or item[1].done()


def _check_all(items: list[Read], strict: bool, source: str) -> list[Any]:
    """In the worker: each item parsed if it is a line, then checked; its outcome, a
    ``Draft`` without its ``Raw`` or a refusal as its arguments (an exception's own
    pickling loses them), beside the ``Raw`` parsed here (a resource sent goes back
    without its resource: the importer has it)."""
    found: list[Any] = []
    for item in items:
        raw = item.raw() if isinstance(item, Line) else item
        outcome = check(raw, strict, source)
        back = raw if isinstance(item, Line) else None
        if isinstance(outcome, Draft):
            outcome.raw = Raw(raw.source, raw.position, None)
            found.append((back, outcome))
        else:
            found.append((back, (outcome.field, outcome.code, outcome.outcome)))
    return found
