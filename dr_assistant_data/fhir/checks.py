"""The checks of an import's resources (``inbound.draft``: the FHIR models, the layer's
rules), run in a worker process while the importer writes what came before.

``Checks.drafts(raws)`` gives each ``Raw`` back with its ``Draft`` or its ``Refusal``, in
the order the raws came, so the report reads as if every check ran in line. The worker
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

import logging
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from .elements import Draft, scoped
from .inbound import draft
from .outcomes import INVALID, Refusal
from .reading import Raw
from .resource_types import REGISTRY

CHUNK = 256
"""Resources sent to the worker at once."""
AHEAD_BYTES = 64 * 1024 * 1024
"""Resources read ahead of the importer, by what they weigh in memory (``Raw.size``)."""
logger = logging.getLogger(__name__)
Checked = Draft | Refusal
_Chunk = tuple[list[Raw], "Future[list[Any]] | None", int]


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
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Checks:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def drafts(self, raws: Iterable[Raw]) -> Iterator[tuple[Raw, Checked]]:
        """Each raw with its outcome, in order; the worker checks up to ``AHEAD_BYTES``
        ahead of what the caller has taken."""
        pending: deque[_Chunk] = deque()
        ahead = 0
        chunk: list[Raw] = []
        for raw in raws:
            chunk.append(raw)
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

    def _submit(self, chunk: list[Raw], start: bool = True) -> _Chunk:
        """``chunk`` handed to the worker (started if ``start``), or kept to be checked
        in line when there is none."""
        weight = sum(raw.size for raw in chunk)  # held here until its results are taken
        pool = self._worker() if start else self._pool
        if pool is not None:
            try:
                sent = [raw for raw in chunk if _modelled(raw)]
                return chunk, pool.submit(_check_all, sent, self.strict, self.source), weight
            except Exception:  # a pool that cannot take work: in line from here
                self._give_up()
        return chunk, None, weight

    def _results(self, item: _Chunk) -> Iterator[tuple[Raw, Checked]]:
        chunk, future, _ = item
        found: Iterator[Any] = iter(())
        if future is not None:
            try:
                found = iter(future.result())
            except Exception:  # the worker died (killed, out of memory): in line
                self._give_up()
                future = None
        for raw in chunk:
            if future is None or not _modelled(raw):
                yield raw, check(raw, self.strict, self.source)
                continue
            outcome = next(found)
            if isinstance(outcome, Draft):
                outcome.raw = raw
                yield raw, outcome
            else:
                yield raw, Refusal(*outcome)

    def _worker(self) -> ProcessPoolExecutor | None:
        if self._pool is None and self.workers > 0:
            if "fork" not in multiprocessing.get_all_start_methods():
                self.workers = 0
                return None
            try:
                context = multiprocessing.get_context("fork")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            except Exception:
                self._give_up()
        return self._pool

    def _give_up(self) -> None:
        logger.warning("FHIR import checks its resources in line: no worker process")
        self.workers = 0
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _modelled(raw: Raw) -> bool:
    """A resource of a type the import reads: what costs its checks."""
    return raw.resource is not None and raw.resource_type in REGISTRY


def _done(item: _Chunk) -> bool:
    return item[1] is None or item[1].done()


def _check_all(raws: list[Raw], strict: bool, source: str) -> list[Any]:
    """In the worker: each outcome, a ``Draft`` without its ``Raw`` (the importer has it)
    or a refusal as its arguments (an exception's own pickling loses them)."""
    found: list[Any] = []
    for raw in raws:
        outcome = check(raw, strict, source)
        if isinstance(outcome, Draft):
            outcome.raw = Raw(raw.source, raw.position, None)
            found.append(outcome)
        else:
            found.append((outcome.field, outcome.code, outcome.outcome))
    return found
