"""Login sessions of the auth service, in Redis with sliding expiry.

A session is a random id (``secrets.token_urlsafe``) whose JSON record expires ``ttl``
seconds after its last ``touch``; each user's session ids are kept in a set so they can all
be revoked at once (a password change, a stolen device). Redis is the only store of
sessions: when it is unavailable every method raises ``BackendUnavailableError`` rather than
let a revoked session pass or a valid one look revoked. Records are sealed with the data keys
(``sealing.py``); a record no key of this process opens is an ended session.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from .store import CacheStore, dumps
from .topology import Client, transaction

T = TypeVar("T")
REGION = "sessions"
DEFAULT_TTL = 8 * 3600.0


class SessionStore:
    def __init__(self, store: CacheStore, ttl: float = DEFAULT_TTL) -> None:
        self._store = store
        self.ttl = ttl

    def create(self, user_id: str, data: dict[str, Any] | None = None) -> str:
        """A new session of ``user_id``; returns its id."""
        session_id = secrets.token_urlsafe(32)
        key = self._key(session_id)
        record = self._store.sealer.seal(key, dumps({"user_id": str(user_id), "data": data or {}}))
        ttl_ms = int(self.ttl * 1000)

        def write(client: Client) -> None:
            pipe = transaction(client)
            pipe.sadd(self._user_key(user_id), session_id)  # listed before it can be used
            pipe.set(key, record, px=ttl_ms)
            pipe.execute()

        self._require(write)
        return session_id

    def get(self, session_id: str) -> dict[str, Any] | None:
        """``{"user_id": ..., "data": {...}}``, or ``None`` if expired or revoked."""
        key = self._key(session_id)
        stored = self._require(lambda client: client.get(key))
        raw = None if stored is None else self._store.sealer.open(key, stored)
        return None if raw is None else json.loads(raw)

    def touch(self, session_id: str) -> bool:
        """Restart the session's expiry (sliding); False if it has already ended."""
        ttl_ms = int(self.ttl * 1000)
        return bool(self._require(lambda client: client.pexpire(self._key(session_id), ttl_ms)))

    def revoke(self, session_id: str) -> None:
        """End one session."""
        record = self.get(session_id)

        def drop(client: Client) -> None:
            pipe = transaction(client)
            pipe.delete(self._key(session_id))
            if record is not None:
                pipe.srem(self._user_key(record["user_id"]), session_id)
            pipe.execute()

        self._require(drop)

    def revoke_all(self, user_id: str) -> int:
        """End every session of ``user_id``; returns how many were live."""

        def drop(client: Client) -> int:
            members = client.smembers(self._user_key(user_id))
            pipe = transaction(client)
            for member in members:
                pipe.delete(self._key(member.decode()))
            pipe.delete(self._user_key(user_id))
            return sum(pipe.execute()[:-1])

        return self._require(drop)

    def _key(self, session_id: str) -> str:
        return self._store.keys.session(session_id)

    def _user_key(self, user_id: str) -> str:
        return self._store.keys.user_sessions(str(user_id))

    def _require(self, operation: Callable[[Client], T]) -> T:
        return self._store.require(REGION, operation)
