"""Progress of long operations, told to whoever asked for it; the library never prints.

A long operation (key rotation, audit verification, the document sweep) takes an optional
``progress`` callback and calls it as work gets done with ``(done, total)``: the units
done so far, never decreasing, and the units expected when they are cheap to count
(``None`` otherwise). When the operation ends normally, the last call has ``done ==
total``. A callback that raises stops the operation with its exception. (Bulk creation
reports its own, richer ``relational.bulk.Progress`` records.)
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[int, int | None], None]


class Tally:
    """Counts units done and tells ``progress`` (if any) once at least ``every`` more are
    done, so an operation may advance it per row at little cost. Units added while the
    operation runs (rows inserted meanwhile) raise the total, so ``done`` never passes it.
    """

    def __init__(
        self, progress: ProgressCallback | None, total: int | None = None, every: int = 1
    ) -> None:
        self.progress, self.total, self.every = progress, total, every
        self.done = self.told = 0

    def advance(self, units: int = 1) -> None:
        self.done += units
        if self.total is not None and self.done > self.total:
            self.total = self.done
        if self.done - self.told >= self.every:
            self._tell()

    def finish(self) -> None:
        """The operation is over: what was done since the last call is told, and a total
        that was not reached (rows deleted meanwhile) becomes what was done."""
        if self.done != self.total or self.done != self.told:
            self.total = self.done
            self._tell()

    def _tell(self) -> None:
        self.told = self.done
        if self.progress is not None:
            self.progress(self.done, self.total)
