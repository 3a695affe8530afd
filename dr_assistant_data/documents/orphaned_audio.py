"""Audio chunks that no file owns, left by an upload that stopped half-way.

GridFS writes a file's chunks as the stream goes and its file document last, so an upload
whose process was killed mid-stream (or whose ``abort`` could not reach MongoDB) leaves
chunks that no file document names: patient audio outside every retention rule. Chunks
carry no time of their own, but their ``_id`` is an ObjectId made by the driver when it
wrote them: once a file's newest chunk is older than the cutoff, its upload is over (the
sweep's grace period must exceed the longest upload, as it must the longest unit of work)
and its chunks are deleted.

Cost: one pass over the distinct ``files_id`` of the chunks (GridFS's ``files_id, n``
index), one lookup of file documents per ``BATCH`` of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from bson import ObjectId
from pymongo.collection import Collection
from pymongo.database import Database

BATCH = 500


def remove_orphaned_chunks(db: Database[dict[str, Any]], bucket: str, cutoff: datetime) -> int:
    """Delete the chunks of ``bucket`` whose file document does not exist and whose newest
    chunk was written before ``cutoff``; returns how many chunks were deleted."""
    chunks, files = db[f"{bucket}.chunks"], db[f"{bucket}.files"]
    removed = 0
    for batch in _batches(_files_ids(chunks)):
        owned = {raw["_id"] for raw in files.find({"_id": {"$in": batch}}, {"_id": 1})}
        for files_id in batch:
            if files_id not in owned and _written_before(chunks, files_id, cutoff):
                removed += chunks.delete_many({"files_id": files_id}).deleted_count
    return removed


def _files_ids(chunks: Collection[dict[str, Any]]) -> Iterator[Any]:
    pipeline: list[dict[str, Any]] = [{"$sort": {"files_id": 1}}, {"$group": {"_id": "$files_id"}}]
    return (group["_id"] for group in chunks.aggregate(pipeline))


def _batches(ids: Iterator[Any]) -> Iterator[list[Any]]:
    while batch := list(islice(ids, BATCH)):
        yield batch


def _written_before(chunks: Collection[dict[str, Any]], files_id: Any, cutoff: datetime) -> bool:
    """Whether the file's newest chunk was written before ``cutoff`` (False when its id
    carries no time: not written by a GridFS driver, so not this sweep's to judge)."""
    newest = chunks.find_one({"files_id": files_id}, {"_id": 1}, sort=[("n", -1)])
    chunk_id = None if newest is None else newest["_id"]
    return isinstance(chunk_id, ObjectId) and chunk_id.generation_time < cutoff
