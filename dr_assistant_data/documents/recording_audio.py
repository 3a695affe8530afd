"""Audio on its way into and out of GridFS."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO, Any, Self

from gridfs import GridFS
from gridfs.grid_file import GridOut
from pymongo.errors import PyMongoError

from ..errors import ValidationError
from .translate import translated

CHUNK_BYTES = 255 * 1024  # GridFS's default chunk size


class BoundedReader:
    """Reads ``source`` and counts the bytes; refuses to go past ``limit``."""

    def __init__(self, source: IO[bytes], *, limit: int) -> None:
        self._source = source
        self._limit = limit
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if not isinstance(data, bytes | bytearray):
            raise ValidationError("audio", "must be bytes or a binary file")
        self.count += len(data)
        if self.count > self._limit:
            raise ValidationError("audio", f"must be at most {self._limit // 2**20} MiB")
        return bytes(data)


def upload(bucket: GridFS, source: BoundedReader, **file: Any) -> None:
    """Stream ``source`` into ``bucket`` as one file described by ``file``.

    The driver writes chunks as the stream goes and the file document last. If anything
    fails on the way (the source raises — a client gone, the size limit — or MongoDB), the
    chunks written so far are deleted before the error propagates; if even that fails, the
    sweep removes them once its grace period has passed (``orphaned_audio.py``).
    """
    grid_in = bucket.new_file(**file)
    try:
        grid_in.write(source)
        grid_in.close()
    except BaseException:
        with contextlib.suppress(PyMongoError):  # the sweep's turn; the first error matters
            grid_in.abort()
        raise


class AudioStream:
    """Read-only audio of one recording, fetched from GridFS a chunk at a time."""

    def __init__(self, grid_out: GridOut) -> None:
        self._grid_out = grid_out
        self.length: int = grid_out.length

    @translated
    def read(self, size: int = -1) -> bytes:
        return self._grid_out.read(size)

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_BYTES):
            yield chunk

    def close(self) -> None:
        self._grid_out.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()
