"""The size of caller input, measured while walking it, so oversized input is cheap to refuse.

:func:`fits` walks nested mappings, lists and text without recursion and stops at the first
byte over the limit: an object with two million keys is refused after reading at most
``max_bytes / 2`` of its entries, with nothing built from it. What it counts is a lower
bound of the input's size as JSON and as BSON (each mapping entry its key and two bytes,
each list item one byte, each text its characters), so input it accepts may still be over
the limit; the exact check on the built value follows, and is then cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def fits(value: Any, max_bytes: int) -> bool:
    """Whether ``value`` may be at most ``max_bytes`` (``False`` means it surely is not)."""
    budget = max_bytes
    pending = [value]
    while pending and budget >= 0:
        item = pending.pop()
        if isinstance(item, str):
            budget -= len(item)
        elif isinstance(item, Mapping):
            budget -= 2
            for key, child in item.items():
                budget -= 2 + (len(key) if isinstance(key, str) else 0)
                if budget < 0:
                    break
                pending.append(child)
        elif isinstance(item, list | tuple):
            budget -= 2
            for child in item:
                budget -= 1
                if budget < 0:
                    break
                pending.append(child)
    return budget >= 0
