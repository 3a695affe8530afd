"""A progress bar on stderr for the long commands, shown only to a person watching.

The bar (tqdm) appears when stderr is a terminal, the command was not asked for ``--json``
and the environment is not a CI run (``CI`` set to anything but ``""``, ``0`` or
``false``). Otherwise the command gets no callback and its output is what it always was.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from ..progress import ProgressCallback


def wanted(*, json_output: bool) -> bool:
    """Whether a bar would be seen by a person, and would disturb nobody's parsing."""
    in_ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false")
    return sys.stderr.isatty() and not json_output and not in_ci


@contextmanager
def progress_bar(label: str, unit: str, *, json_output: bool) -> Iterator[ProgressCallback | None]:
    """A callback that draws ``(done, total)`` as a bar labelled ``label``, or ``None``
    when no bar is wanted; the bar is closed (its last state left on screen) on exit."""
    if not wanted(json_output=json_output):
        yield None
        return
    with tqdm(desc=label, unit=unit, file=sys.stderr, dynamic_ncols=True) as bar:

        def show(done: int, total: int | None) -> None:
            if total != bar.total:
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)

        yield show
