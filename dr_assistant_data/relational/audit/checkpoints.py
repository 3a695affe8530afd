"""Signed checkpoints of the sealed audit log, kept where the database cannot rewrite them.

A checkpoint names the last sealed batch, its head and the number of events sealed up to
it, under the audit key's HMAC. The sealer appends one after every batch it seals
(``seal.py``); :func:`~.verify.verify` checks the database against the latest,
so removing sealed events, seals, or everything at once is found even by someone who holds
the whole database (they cannot reach the store, and cannot sign without the key).

Stores are pluggable (:class:`CheckpointStore`: ``append`` and ``latest``); the built-in
:class:`FileCheckpointStore` appends JSON lines to ``audit-checkpoints.jsonl`` in
``AUDIT_CHECKPOINT_DIR``. Point it at storage the database's host and owners cannot write
(another machine's mount, a write-once bucket synced from it).

The store fails loudly, never silently. An append is one ``write`` of a whole line, then
``fsync`` (and of the directory when the file is new); a write the disk cut short raises.
A torn last line (a crash or a full disk mid-append) is skipped by ``latest``, and the
next append starts on a fresh line, so it never swallows the checkpoint after it. Any
other line that is not a checkpoint (not UTF-8, not JSON, a field of the wrong type), and
a store that cannot be read, raise :class:`CheckpointStoreError`, whose message names the
problem and the kind of error, never the file's path.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ...errors import DataLayerError
from ...protection.audit_key import AuditKey
from ...values.clock import utcnow

FILE_NAME = "audit-checkpoints.jsonl"


class CheckpointStoreError(DataLayerError):
    """The checkpoint store could not be read or written, or holds a line that is not a
    checkpoint; the message says which, and names no file."""


def described(error: OSError) -> str:
    """An ``OSError`` as its kind and code (``PermissionError EACCES``), without the path
    its text carries."""
    code = errno.errorcode.get(error.errno or 0)
    return f"{type(error).__name__} {code}" if code else type(error).__name__


@dataclass(frozen=True)
class Checkpoint:
    batch: int
    head: str
    total: int
    written_at: str
    mac: str

    @classmethod
    def sign(cls, key: AuditKey, batch: int, head: str, total: int) -> Checkpoint:
        content: dict[str, Any] = {
            "batch": batch,
            "head": head,
            "total": total,
            "written_at": _now(),
        }
        return cls(**content, mac=key.mac("checkpoint", content))

    @classmethod
    def parsed(cls, content: object) -> Checkpoint | None:
        """The checkpoint ``content`` (decoded JSON) holds, ``None`` if it is not one."""
        if not isinstance(content, dict) or set(content) != _FIELD_TYPES.keys():
            return None
        for name, kind in _FIELD_TYPES.items():
            value = content[name]
            if isinstance(value, bool) or not isinstance(value, kind):
                return None
        return cls(**content)

    def signed_by(self, key: AuditKey) -> bool:
        """Whether the audit key made this checkpoint (it was not forged or edited)."""
        content = {k: v for k, v in asdict(self).items() if k != "mac"}
        return key.verifies("checkpoint", content, self.mac)


class CheckpointStore(Protocol):
    def append(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` durably before returning; raise ``OSError`` if it could not."""

    def latest(self) -> Checkpoint | None:
        """The checkpoint of the highest batch stored, ``None`` when there is none; raise
        :class:`CheckpointStoreError` if the store cannot be read or holds something that
        is not a checkpoint."""


class FileCheckpointStore:
    """Append-only JSON lines in one file, each appended whole and fsynced."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / FILE_NAME

    def append(self, checkpoint: Checkpoint) -> None:
        """Raises ``OSError`` when the checkpoint is not durably stored (a full or
        read-only disk, a missing mount)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(asdict(checkpoint), sort_keys=True) + "\n").encode()
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            size = os.fstat(descriptor).st_size
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                line = b"\n" + line  # ends the torn line: this checkpoint stays whole
            # one write: lines of several sealers never mix
            if os.write(descriptor, line) != len(line):
                raise OSError(errno.ENOSPC, "the checkpoint was written in part")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if not size:  # a new file: its name must be durable too
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def latest(self) -> Checkpoint | None:
        """Raises :class:`CheckpointStoreError` when the file cannot be read or holds a
        line that is neither a checkpoint nor a torn one."""
        best: Checkpoint | None = None
        try:
            for checkpoint in self._checkpoints():
                if best is None or checkpoint.batch > best.batch:
                    best = checkpoint
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CheckpointStoreError(
                f"the checkpoint store cannot be read ({described(error)})"
            ) from None
        return best

    def _checkpoints(self) -> Iterator[Checkpoint]:
        with self.path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                checkpoint = _parsed(raw, number)
                if checkpoint is not None:
                    yield checkpoint


def checkpoint_store(directory: str) -> CheckpointStore | None:
    """The file store of ``AUDIT_CHECKPOINT_DIR``, ``None`` when it is not set."""
    return FileCheckpointStore(directory) if directory else None


def _parsed(raw: bytes, number: int) -> Checkpoint | None:
    """The checkpoint of line ``number``; ``None`` for a blank or torn line (an append cut
    short: what a checkpoint starts with, not a whole JSON object)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointStoreError(
            f"line {number} of the checkpoint store is not UTF-8 text"
        ) from None
    if not text.strip():
        return None
    try:
        content = json.loads(text)
    except ValueError:
        if text.startswith("{"):
            return None
        raise CheckpointStoreError(
            f"line {number} of the checkpoint store is not a checkpoint"
        ) from None
    checkpoint = Checkpoint.parsed(content)
    if checkpoint is None:
        raise CheckpointStoreError(
            f"line {number} of the checkpoint store is not a well-formed checkpoint"
        )
    return checkpoint


_FIELD_TYPES: dict[str, type] = {
    "batch": int,
    "head": str,
    "total": int,
    "written_at": str,
    "mac": str,
}
"""The fields of a stored checkpoint, with their JSON type."""


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")
