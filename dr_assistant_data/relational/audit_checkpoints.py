"""Signed checkpoints of the sealed audit log, kept where the database cannot rewrite them.

A checkpoint names the last sealed batch, its head and the number of events sealed up to
it, under the audit key's HMAC. The sealer appends one after every batch it seals
(``audit_seal.py``); :func:`~.audit_verify.verify` checks the database against the latest,
so removing sealed events, seals, or everything at once is found even by someone who holds
the whole database (they cannot reach the store, and cannot sign without the key).

Stores are pluggable (:class:`CheckpointStore`: ``append`` and ``latest``); the built-in
:class:`FileCheckpointStore` appends JSON lines to ``audit-checkpoints.jsonl`` in
``AUDIT_CHECKPOINT_DIR`` and fsyncs each. Point it at storage the database's host and
owners cannot write (another machine's mount, a write-once bucket synced from it).
A torn last line (a crash mid-append) is skipped; the checkpoint before it still holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ..protection.audit_key import AuditKey
from ..values.clock import utcnow

FILE_NAME = "audit-checkpoints.jsonl"


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

    def signed_by(self, key: AuditKey) -> bool:
        """Whether the audit key made this checkpoint (it was not forged or edited)."""
        content = {k: v for k, v in asdict(self).items() if k != "mac"}
        return key.verifies("checkpoint", content, self.mac)


class CheckpointStore(Protocol):
    def append(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` durably before returning; raise ``OSError`` if it could not."""

    def latest(self) -> Checkpoint | None:
        """The checkpoint of the highest batch stored, ``None`` when there is none."""


class FileCheckpointStore:
    """Append-only JSON lines in one file, fsynced after each line."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / FILE_NAME

    def append(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(checkpoint), sort_keys=True) + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(descriptor, line.encode())  # one write: lines of several sealers never mix
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def latest(self) -> Checkpoint | None:
        best: Checkpoint | None = None
        try:
            with self.path.open(encoding="utf-8") as lines:
                for line in lines:
                    checkpoint = _parsed(line)
                    if checkpoint is not None and (best is None or checkpoint.batch > best.batch):
                        best = checkpoint
        except FileNotFoundError:
            return None
        return best


def checkpoint_store(directory: str) -> CheckpointStore | None:
    """The file store of ``AUDIT_CHECKPOINT_DIR``, ``None`` when it is not set."""
    return FileCheckpointStore(directory) if directory else None


def _parsed(line: str) -> Checkpoint | None:
    try:
        return Checkpoint(**json.loads(line))
    except (ValueError, TypeError):
        return None  # a torn line


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")
