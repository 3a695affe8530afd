"""Worker processes for CPU-bound steps of long operations (a bulk import's encoding, a
FHIR import's checks), with the same outcomes in line where there can be none.

The workers are forked: they inherit what the caller has built (keys, engines' dialects,
settings) instead of receiving it through a pipe, so no key is ever sent to them; only
the work and its results cross. They open no connection (an engine's inherited pool is
replaced in the child and never used, ``relational/connection/fork_safety.py``), ignore
Ctrl-C (the caller stops them), and end when the caller's ``with`` block does, however it
ends.

Where no worker can be started (no ``fork`` on the platform, a daemonic process such as
a prefork task worker) or one dies, the work runs in line from that point:
:func:`in_order` computes a failed item again in the caller, so only the speed differs.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")
logger = logging.getLogger(__name__)


class Workers:
    """Up to ``count`` forked processes (0: everything in line), started on first use,
    each running ``initializer`` first. Close it (a ``with`` block) to stop them."""

    def __init__(self, count: int, *, initializer: Callable[[], None] | None = None) -> None:
        self.count = count
        self._initializer = initializer
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @property
    def started(self) -> bool:
        return self._pool is not None

    def submit(self, function: Callable[..., _R], *args: Any) -> Future[_R] | None:
        """``function(*args)`` handed to a worker, or ``None``: there is none, run it in
        line."""
        pool = self._started()
        if pool is None:
            return None
        try:
            return pool.submit(function, *args)
        except Exception:  # a pool that cannot take work (broken, not allowed to fork)
            self.give_up()
            return None

    def give_up(self) -> None:
        """Run everything in line from now on (a worker died or cannot be started)."""
        logger.warning("worker processes unavailable: the work runs in line")
        self.count = 0
        if self._pool is not None:  # the others end before the work goes on in line
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _started(self) -> ProcessPoolExecutor | None:
        if self._pool is None and self.count > 0:
            if "fork" not in multiprocessing.get_all_start_methods():
                self.count = 0
                return None
            try:
                self._pool = ProcessPoolExecutor(
                    self.count,
                    mp_context=multiprocessing.get_context("fork"),
                    initializer=_started_worker,
                    initargs=(self._initializer,),  # inherited by the fork, never pickled
                )
            except Exception:
                self.give_up()
        return self._pool


def in_order(
    workers: Workers,
    items: Iterable[_T],
    *,
    work: Callable[[_T], _R],
    in_line: Callable[[_T], _R],
    ahead: int,
) -> Iterator[tuple[_T, _R]]:
    """Each item with its result, in the items' order: ``work(item)`` in a worker (a
    module-level function: it is sent by name), at most ``ahead`` items ahead of what the
    caller has taken (the items are read as far), or ``in_line(item)``, the same
    computation in the caller, where there is no worker. An item whose worker failed is
    computed in line, as is everything after it."""
    pending: deque[tuple[_T, Future[_R] | None]] = deque()
    for item in items:
        pending.append((item, workers.submit(work, item)))
        if len(pending) > ahead:
            yield _result(workers, in_line, *pending.popleft())
    while pending:
        yield _result(workers, in_line, *pending.popleft())


def _result(
    workers: Workers, in_line: Callable[[_T], _R], item: _T, future: Future[_R] | None
) -> tuple[_T, _R]:
    if future is not None:
        try:
            return item, future.result()
        except Exception:  # the worker died, or the work failed there: in line, as it would
            workers.give_up()
    return item, in_line(item)


def _started_worker(initializer: Callable[[], None] | None) -> None:
    # what the fork inherited is never garbage: collections in the worker skip it
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    if initializer is not None:
        initializer()
