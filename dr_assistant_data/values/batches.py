"""The size of a batch a caller asks for, one rule for rows and documents alike.

:func:`check_batch_size` refuses, with the contract's ``ValidationError`` naming
``batch_size``, anything but a whole number from 1 to :data:`MAX_BATCH`, before anything is
read or written.
"""

from __future__ import annotations

from ..errors import ValidationError

MAX_BATCH = 10_000


def check_batch_size(batch_size: int) -> None:
    """Refuse a ``batch_size`` that is not a whole number from 1 to ``MAX_BATCH``."""
    whole = isinstance(batch_size, int) and not isinstance(batch_size, bool)
    if not whole or not 1 <= batch_size <= MAX_BATCH:
        raise ValidationError("batch_size", f"must be a whole number from 1 to {MAX_BATCH}")
