"""Merkle tree hashes of RFC 6962 (Certificate Transparency), built in one pass.

``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || left || right)``; a tree of ``n``
leaves splits at the largest power of two below ``n``. :class:`RootBuilder` takes leaves one
at a time and keeps one hash per level (memory grows with log2 of the leaf count), so a
batch of any size is hashed while streamed; it also takes whole subtrees another builder
hashed (:attr:`RootBuilder.subtrees`), so a batch's leaves can be hashed in parts, in
parallel, each part starting at a multiple of a power of two and holding that many.
:func:`audit_path` and :func:`root_from_path` prove that one leaf is in a tree of a given
root without the other leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class RootBuilder:
    """The root of a tree whose leaves are added in order, in O(log n) memory."""

    def __init__(self) -> None:
        self.size = 0
        self._levels: list[tuple[int, bytes]] = []  # (subtree size, hash), largest first

    def add(self, leaf: bytes) -> None:
        self.add_subtree(1, leaf)

    def add_subtree(self, size: int, digest: bytes) -> None:
        """The next ``size`` leaves, already hashed into ``digest``: a complete subtree
        (``size`` a power of two) whose first leaf is at a multiple of ``size``, as each
        of another builder's :attr:`subtrees` is when that builder's first leaf is at a
        multiple of a power of two at least its size."""
        self.size += size
        self._levels.append((size, digest))
        while len(self._levels) > 1 and self._levels[-1][0] == self._levels[-2][0]:
            (size, right), (_, left) = self._levels.pop(), self._levels.pop()
            self._levels.append((2 * size, node_hash(left, right)))

    @property
    def subtrees(self) -> list[tuple[int, bytes]]:
        """The complete subtrees the leaves so far form, largest (leftmost) first, as
        ``(leaf count, hash)``: what :meth:`add_subtree` takes."""
        return list(self._levels)

    def root(self) -> str:
        """The hex root (``EMPTY_ROOT`` without leaves); the smaller subtrees on the right
        fold into the larger ones on their left, as RFC 6962 splits."""
        if not self._levels:
            return EMPTY_ROOT
        accumulated = self._levels[-1][1]
        for _, left in reversed(self._levels[:-1]):
            accumulated = node_hash(left, accumulated)
        return accumulated.hex()


def audit_path(leaves: Sequence[bytes], index: int) -> list[str]:
    """The sibling hashes (hex, bottom up) proving leaf ``index`` (RFC 6962 ``PATH``)."""
    if len(leaves) <= 1:
        return []
    split = _split(len(leaves))
    if index < split:
        return [*audit_path(leaves[:split], index), _root(leaves[split:]).hex()]
    return [*audit_path(leaves[split:], index - split), _root(leaves[:split]).hex()]


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[str]) -> str:
    """The root a leaf at ``index`` of a ``size``-leaf tree has with this ``path``."""
    return _fold(leaf, index, size, [bytes.fromhex(h) for h in path]).hex()


def _fold(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    if size <= 1:
        return leaf
    split = _split(size)
    sibling = path[-1]
    if index < split:
        return node_hash(_fold(leaf, index, split, path[:-1]), sibling)
    return node_hash(sibling, _fold(leaf, index - split, size - split, path[:-1]))


def _root(leaves: Sequence[bytes]) -> bytes:
    builder = RootBuilder()
    for leaf in leaves:
        builder.add(leaf)
    return bytes.fromhex(builder.root())


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)
