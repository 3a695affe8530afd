"""Settle documents left marked by a unit of work whose process died, purge expired audio,
and remove audio chunks no file owns (``orphaned_audio.py``).

A marker older than ``grace`` belongs to a unit of work that should long have ended. If
its unit has a ``document_commits`` row, the relational side committed: the documents are
finalized. If not, PostgreSQL is asked as a unit whose COMMIT's answer was lost asks it
(``relational/commit_outcome.py``), which waits for a transaction still holding the row: not
committed → the documents are undone from their before-images; no answer → they are left for
a later sweep (``SweepReport.undecided``). ``grace`` must exceed the longest unit of work (a longer
one would be undone under its feet) and the longest audio upload (its chunks would be
removed under its feet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, delete, select

from ..progress import ProgressCallback, Tally
from ..relational.commit_outcome import Outcome, unit_outcome
from ..relational.models import DocumentCommit
from ..values.clock import utcnow
from .journal import UNDO_INSERT, finalize, undo
from .orphaned_audio import remove_orphaned_chunks
from .store import AUDIO_BUCKET, DocumentStore
from .translate import translated

DEFAULT_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class SweepReport:
    finalized: int
    """Documents of committed units whose markers were removed."""
    undone: int
    """Documents of units that never committed, put back as they were."""
    undecided: int
    """Documents of units whose outcome PostgreSQL could not give, left for a later sweep."""
    expired_audio: int
    """Audio files past their retention, removed."""
    orphaned_chunks: int
    """Audio chunks of uploads that stopped half-way (no file document), removed."""


@translated
def sweep(
    store: DocumentStore,
    engine: Engine,
    grace: timedelta = DEFAULT_GRACE,
    progress: ProgressCallback | None = None,
) -> SweepReport:
    """Settle the stale documents unit by unit (``progress`` hears of the documents settled
    or left undecided, out of every stale one found), then remove orphaned and expired
    audio."""
    db = store.db
    cutoff = utcnow() - grace
    stale: dict[str, list[tuple[str, Any]]] = {}
    for collection in UNDO_INSERT:
        for raw in db[collection].find({"pending.at": {"$lt": cutoff}}, {"pending.unit": 1}):
            stale.setdefault(raw["pending"]["unit"], []).append((collection, raw["_id"]))
    with engine.begin() as connection:
        committed = set(
            connection.scalars(
                select(DocumentCommit.unit_id).where(DocumentCommit.unit_id.in_(list(stale)))
            )
        )
        finalized = undone = undecided = 0
        tally = Tally(progress, sum(len(written) for written in stale.values()))
        for unit, written in stale.items():
            outcome = Outcome.COMMITTED if unit in committed else unit_outcome(engine, unit)
            if outcome is Outcome.COMMITTED:
                finalize(db, unit, written)
                finalized += len(written)
            elif outcome is Outcome.NOT_COMMITTED:
                undo(db, unit, written)
                undone += len(written)
            else:
                undecided += len(written)
            tally.advance(len(written))
        tally.finish()
        # Every document of a unit committed before the cutoff is final by now.
        connection.execute(delete(DocumentCommit).where(DocumentCommit.committed_at < cutoff))
    orphaned = remove_orphaned_chunks(db, AUDIO_BUCKET, cutoff)
    return SweepReport(finalized, undone, undecided, _purge_expired_audio(store), orphaned)


def _purge_expired_audio(store: DocumentStore) -> int:
    files = store.db[f"{AUDIO_BUCKET}.files"]
    expired = [raw["_id"] for raw in files.find({"expires_at": {"$lt": utcnow()}}, {"_id": 1})]
    bucket = store.audio()
    for file_id in expired:
        bucket.delete(file_id)
    return len(expired)
