"""The connection to the document store, owned by one ``DataLayer``.

Each store builds its own client from ``Settings`` on first use and never shares it: two
layers in one process (two tenants, a test beside the app) cannot reach each other's
database or close each other's pool. MongoEngine's connection registry is not used for
that reason: it hands one client to every alias with equal settings, and its
``disconnect`` closes sockets, which a forked child must never do to its parent's client.
Documents are bound to this store's database explicitly (:meth:`DocumentStore.objects`),
never through a class-level alias, so concurrent threads cannot redirect each other.

Fork safety: the store remembers the pid that connected. In a forked child the inherited
client is dropped unused and unclosed, and a new one is built.

An embedded store is one process's memory: a second process using a store of the same
name (a forked worker, another worker of a pre-fork server) is warned about
(``in_process.py``).

Replica sets (a ``replicaSet=`` URI): writes are retried once on a new primary
(``retryWrites``); the writes that make a note medico-legal (sign, amend) wait for a majority
of members and their journals (``durable=True``), so an acknowledged signature survives a
failover; listings and searches of read-only units of work may be served by a secondary
(``from_secondary=True``: ``secondaryPreferred``, at most ``MAX_STALENESS_S`` behind).

Command logging: pymongo's ``pymongo.command`` records lose their command, reply and
failure documents (``command_log.py``), whatever level or handlers the application sets.

``mongomock://localhost/NAME`` selects the in-memory back end (the demo and the tests).
"""

from __future__ import annotations

import os
import threading
from typing import Any, TypeVar
from urllib.parse import urlsplit

import gridfs
from mongoengine import Document
from mongoengine.queryset import QuerySet
from pymongo import MongoClient, WriteConcern
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.read_preferences import SecondaryPreferred
from pymongo.uri_parser import parse_uri

from ..errors import ConfigurationError, DataLayerError
from ..settings import Settings
from . import in_process
from .command_log import withhold_command_bodies
from .translate import translated

D = TypeVar("D", bound=Document)

EMBEDDED_SCHEME = "mongomock://"
AUDIO_BUCKET = "voice_audio"
DEFAULT_DATABASE = "dr_assistant"
MAX_STALENESS_S = 90
"""The least staleness MongoDB accepts for ``maxStalenessSeconds``."""


class DocumentStore:
    """Lazily connected client and database of the document store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = settings.mongodb_uri.startswith(EMBEDDED_SCHEME)
        self.database_name = _database_name(settings.mongodb_uri)
        # re-entrant: close() from a signal handler may interrupt this thread holding it
        self._lock = threading.RLock()
        self._client: MongoClient[dict[str, Any]] | None = None
        self._pid: int | None = None
        self._closed = False

    @property
    def db(self) -> Database[dict[str, Any]]:
        """The database, connecting on first use (and afresh after a fork)."""
        with self._lock:
            if self._closed:
                raise DataLayerError("this document store is closed")
            if self._client is not None and self._pid != os.getpid():
                self._client = None  # the parent's sockets: neither used nor closed here
            if self._client is None:
                client = self._connect()
                if self._closed:  # a signal handler closed the store while it connected
                    client.close()
                    raise DataLayerError("this document store is closed")
                self._client, self._pid = client, os.getpid()
                if self.embedded:
                    in_process.claim(self.settings.mongodb_uri)
            return self._client[self.database_name]

    def collection(
        self, document: type[Document], *, durable: bool = False, from_secondary: bool = False
    ) -> Collection[dict[str, Any]]:
        """``document``'s collection; ``durable``: writes acknowledged by a majority of the
        replica set, journaled; ``from_secondary``: reads may come from a secondary."""
        collection = self.db[document._get_collection_name()]
        if durable:
            concern = WriteConcern("majority", j=True, wtimeout=self.settings.mongodb_timeout_ms)
            collection = collection.with_options(write_concern=concern)
        if from_secondary:
            preference = SecondaryPreferred(max_staleness=MAX_STALENESS_S)
            collection = collection.with_options(read_preference=preference)
        return collection

    def objects(self, document: type[D], *, from_secondary: bool = False) -> QuerySet:
        """A MongoEngine query set of ``document`` on this store's database only."""
        return QuerySet(document, self.collection(document, from_secondary=from_secondary))

    def audio(self) -> gridfs.GridFS:
        """The GridFS bucket holding the audio of voice recordings."""
        return gridfs.GridFS(self.db, collection=AUDIO_BUCKET)

    @translated
    def health(self) -> dict[str, Any]:
        """Ping the server; raises ``BackendUnavailableError`` when it cannot be reached."""
        self.db.command("ping")
        return {"embedded": self.embedded, "database": self.database_name}

    def close(self) -> None:
        """Close this process's client. Idempotent and safe in a signal handler; a client
        inherited over a fork is dropped without touching its sockets."""
        with self._lock:
            client, self._client = self._client, None
            self._closed = True
            inherited = self._pid != os.getpid()
        if client is not None and not inherited:
            client.close()
            if self.embedded:
                in_process.release(self.settings.mongodb_uri)

    def _connect(self) -> MongoClient[dict[str, Any]]:
        withhold_command_bodies()
        options: dict[str, Any] = {
            "tz_aware": True,
            "uuidRepresentation": "standard",
            "serverSelectionTimeoutMS": self.settings.mongodb_timeout_ms,
            "connectTimeoutMS": self.settings.mongodb_timeout_ms,
            "maxPoolSize": self.settings.mongodb_pool_size,
            "retryWrites": True,
            "retryReads": True,
        }
        if self.embedded:
            import mongomock
            import mongomock.gridfs

            mongomock.gridfs.enable_gridfs_integration()
            return mongomock.MongoClient(tz_aware=True)
        return MongoClient(self.settings.mongodb_uri, connect=False, **options)


def _database_name(uri: str) -> str:
    if uri.startswith(EMBEDDED_SCHEME):
        name = urlsplit(uri).path.lstrip("/")
        return name or DEFAULT_DATABASE
    try:
        parsed = parse_uri(uri)
    except Exception:  # its message may quote the URI, password included: never chained
        parsed = None
    if parsed is None:
        raise ConfigurationError("MONGODB_URI", "is not a MongoDB URI")
    return parsed.get("database") or DEFAULT_DATABASE
