"""Every value the layer puts in Redis is sealed whole: a dump or ``MONITOR`` shows none.

A stored value is ``v1:<key id>:<nonce + AES-256-GCM ciphertext + tag>`` under the active
data key (``protection/keyring.py``), bound to the Redis key it is stored under: a value
copied to another key does not open. Opening is rotation-aware: a value sealed under any
key of the keyring opens; one whose key id this process does not hold (removed after a
rotation, or added by a process with newer keys), or that is tampered or unsealed (written
before sealing existed), opens as ``None`` — a miss for the caller, never an error.

Counters (``dl.cache.incr``) are the one exception: Redis adds to plain integers, so they
are stored as such (a count carries no patient data; callers must not make one that does).
"""

from __future__ import annotations

import re

from ..protection.keyring import DecryptionError, Keyring

_COUNTER = re.compile(rb"-?[0-9]{1,20}")


class CacheSealer:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def seal(self, key: str, payload: bytes) -> bytes:
        """``payload`` sealed under the active key, for the Redis key ``key``."""
        return self.keyring.seal_bytes(payload, key)

    def open(self, key: str, stored: bytes) -> bytes | None:
        """The payload :meth:`seal` stored under ``key``; ``None`` if it cannot be opened."""
        try:
            return self.keyring.open_bytes(stored, key)
        except DecryptionError:
            return None

    def open_or_count(self, key: str, stored: bytes) -> bytes | None:
        """As :meth:`open`, but a counter (a plain integer) is returned as it is."""
        return stored if is_counter(stored) else self.open(key, stored)


def is_counter(stored: bytes) -> bool:
    """True for what ``INCRBY`` stores: a plain integer, never sealed."""
    return _COUNTER.fullmatch(stored) is not None
