"""dogpile.cache backends whose writes cannot put a stale value back (the "stale set").

Every cached key ``K`` has a generation counter ``K:gen``. Invalidation increments it and
deletes ``K`` in one transaction. A reader captures the generation *before* its SELECT
(:func:`expecting`); its write of ``K`` is a Lua script that stores the value only if the
generation is still the captured one. A reader that loaded a row before a writer committed
therefore cannot store that row after the writer's invalidation. Nor can one whose process
learnt, between its capture and its store, that generations may have been lost (a Redis
restart or failover: the guard's ``epoch`` moved). Writes nobody captured a
generation for (the general cache service) are plain ``SET``s.

A miss costs two round trips beyond its GET: :meth:`GuardedRedisBackend.claim` takes the
key's lock (``K:lock``, expiring after ``lock_timeout``) and reads its generation in one
script, and the guarded write releases the lock in the same script that stores. ``K``,
``K:gen`` and ``K:lock`` share ``K``'s hash tag, so each script runs on one Cluster node.

Every Redis call passes through the :class:`~.guard.RedisGuard`: on failure a read is a
miss, a write is skipped, a claim loads without storing, and the general service's lock
falls back to a process-local one. Every value is sealed on its way to Redis and opened on
its way back (``sealing.py``); one that cannot be opened (its key was removed after a
rotation) is a miss.

Cached reads are stored as their JSON alone (:meth:`GuardedRedisBackend.get_value`,
:meth:`~GuardedRedisBackend.set_values`), not in dogpile's region envelope (a JSON header
of creation time and format version before the payload): Redis expires them (``PX``), and
the read-through does its own locking, so a hit is one GET, one AES-GCM open and one JSON
parse (``orjson``). A stored value that does not parse as JSON (one written in dogpile's
envelope, say) is a miss.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson
from dogpile.cache.api import NO_VALUE, CacheMutex
from dogpile.cache.backends.redis import RedisBackend

from .guard import FAILURES, RedisGuard
from .keys import DELIVERED_KIND, DELIVERED_TTL_MS, GENERATION_SUFFIX, LOCK_SUFFIX
from .sealing import CacheSealer
from .topology import Client, is_cluster, mget, transaction

GENERATION_TTL_MS = 24 * 3600 * 1000
"""Generation counters outlive every value and every load (statement timeout) by far."""

UNKNOWN = b"?unknown"
"""The generation of a key whose counter could not be read: no write can match it."""
FAILED: Any = object()


class Generations(dict[str, bytes]):
    """Generations captured before a load, with the guard's epoch when they were read,
    and the lock token of each key whose lock the load holds (released by its write)."""

    epoch: int | None = None
    locks: dict[str, bytes] | None = None


FILLED = "filled"
"""A claim that found the value stored meanwhile: read it."""
TAKEN = "taken"
"""A claim that found another reader loading the key: wait for its value."""


_expected: ContextVar[Generations | None] = ContextVar("cache_expected", default=None)

SET_IF_GENERATION = """
if ARGV[4] ~= '' and redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
local current = redis.call('GET', KEYS[2]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
"""KEYS: the value, its generation, its lock; ARGV: the captured generation, the sealed
value, its TTL in ms, the lock token held (``''``: none). Releases the lock if held, then
stores only if the generation is unchanged."""

CLAIM = """
if ARGV[3] == '0' and redis.call('EXISTS', KEYS[1]) == 1 then return false end
local generation = redis.call('GET', KEYS[2]) or ''
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, generation} end
return {0, generation}
"""
"""KEYS: the value, its generation, its lock; ARGV: a lock token, the lock's TTL in ms,
``1`` if a stored value is to be replaced. Nothing if a value is there (unless replaced);
else ``{1, generation}`` with the lock taken, or ``{0,
generation}`` if another reader holds it."""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@contextmanager
def expecting(generations: Generations) -> Iterator[None]:
    """Writes of these keys in the block succeed only if their generation is unchanged."""
    token = _expected.set(generations)
    try:
        yield
    finally:
        _expected.reset(token)


class GuardedRedisBackend(RedisBackend):
    """``dogpile.cache.redis`` with generation-guarded writes, fail-safe calls and locks
    named under the layer's prefix, values sealed. Arguments beyond dogpile's: ``guard``,
    ``region``, ``client``, ``sealer``."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        arguments = dict(arguments)
        self.guard: RedisGuard = arguments.pop("guard")
        self.region_name: str = arguments.pop("region")
        self.client: Client = arguments.pop("client")
        self.sealer: CacheSealer = arguments.pop("sealer")
        self.cluster = is_cluster(self.client)
        pool = None if self.cluster else self.client.connection_pool  # a cluster: one per node
        super().__init__({**arguments, "connection_pool": pool})
        self.writer_client = self.reader_client = self.client
        self._ttl_ms = int(self.redis_expiration_time * 1000)

    @functools.cached_property
    def _set_if_generation(self) -> Any:
        """The guarded-set script (registered on first write: a cluster dials its nodes)."""
        return self.client.register_script(SET_IF_GENERATION)

    @functools.cached_property
    def _claim(self) -> Any:
        return self.client.register_script(CLAIM)

    @functools.cached_property
    def _release(self) -> Any:
        return self.client.register_script(RELEASE)

    def claim(self, key: str, *, replace: bool = False) -> Generations | str:
        """Before loading ``key``: ``FILLED`` if a value is stored (unless ``replace``: one
        that was read and could not be used), ``TAKEN`` if another reader holds its lock,
        else its generation with its lock taken for this reader (to be released by the
        write, or by :meth:`release`). If Redis cannot answer, an ``UNKNOWN`` generation
        and no lock: the load goes on and stores nothing."""
        token = os.urandom(12).hex().encode()
        arguments = [token, int(self.lock_timeout * 1000), int(replace)]
        keys = [key, key + GENERATION_SUFFIX, key + LOCK_SUFFIX]
        answer = self.guard.call(
            self.region_name, lambda: self._claim(keys=keys, args=arguments), FAILED
        )
        if answer is None:
            return FILLED
        captured = Generations()
        captured.epoch = self.guard.epoch  # after the read, as in ``generations``
        if answer is FAILED:
            captured[key] = UNKNOWN
            return captured
        held, generation = answer
        if not held:
            return TAKEN
        captured[key] = generation
        captured.locks = {key: token}
        return captured

    def release(self, claimed: Generations) -> None:
        """Release the locks ``claimed`` holds (a load that failed stores nothing)."""
        for key, token in (claimed.locks or {}).items():
            self.guard.call(
                self.region_name,
                functools.partial(self._release, keys=[key + LOCK_SUFFIX], args=[token]),
                None,
            )

    def get_serialized(self, key: str) -> Any:
        parent = super().get_serialized
        return self._open(key, self.guard.call(self.region_name, lambda: parent(key), NO_VALUE))

    def get_serialized_multi(self, keys: Iterable[str]) -> Any:
        wanted = list(keys)
        if not wanted:
            return []

        def read() -> list[Any]:
            return [NO_VALUE if value is None else value for value in mget(self.client, wanted)]

        stored = self.guard.call(self.region_name, read, [NO_VALUE] * len(wanted))
        return [self._open(key, value) for key, value in zip(wanted, stored, strict=True)]

    def _open(self, key: str, stored: Any) -> Any:
        if stored is NO_VALUE:
            return NO_VALUE
        opened = self.sealer.open(key, stored)
        return NO_VALUE if opened is None else opened

    def get_value(self, key: str) -> Any:
        """The value stored under ``key`` by :meth:`set_values`, or ``NO_VALUE``."""
        return decode(self.get_serialized(key))

    def get_values(self, keys: Sequence[str]) -> list[Any]:
        """As :meth:`get_value`, for each of ``keys``, in one multi-get."""
        return [decode(payload) for payload in self.get_serialized_multi(keys)]

    def set_values(self, mapping: Mapping[str, Any]) -> None:
        """Store each value as JSON (sealed, guarded as :meth:`set_serialized_multi`); a
        value JSON cannot carry exactly (an integer beyond 64 bits) is not stored, its lock
        released."""
        encoded: dict[str, bytes | None] = {}
        for key, value in mapping.items():
            try:
                encoded[key] = orjson.dumps(value)
            except orjson.JSONEncodeError:
                encoded[key] = None
        self.set_serialized_multi(encoded)

    def set_serialized(self, key: str, value: bytes) -> None:
        self.set_serialized_multi({key: value})

    def set_serialized_multi(self, mapping: Mapping[str, bytes | None]) -> None:
        """Store each payload (``None``: nothing, the key's lock released)."""
        expected = _expected.get() or Generations()
        lost = expected.epoch is not None and expected.epoch != self.guard.epoch
        locks = expected.locks or {}
        plain = {
            key: payload
            for key, payload in mapping.items()
            if key not in expected and payload is not None
        }
        guarded = [
            # a lost generation (or no payload) never matches: the script then only
            # releases the lock
            (key, payload, UNKNOWN if lost or payload is None else expected[key], locks.get(key))
            for key, payload in mapping.items()
            if key in expected and ((expected[key] != UNKNOWN and not lost) or key in locks)
        ]
        if not plain and not guarded:
            return  # nothing to send: not a call that could tell the breaker Redis is back

        def write() -> None:
            single = len(plain) + len(guarded) == 1  # one miss: one call, no pipeline
            pipe = None if single else self.client.pipeline(transaction=False)
            for key, payload in plain.items():
                (pipe or self.client).set(key, self.sealer.seal(key, payload), px=self._ttl_ms)
            for key, stored, generation, token in guarded:
                sealed = b"" if stored is None else self.sealer.seal(key, stored)
                self._set_if_generation(
                    keys=[key, key + GENERATION_SUFFIX, key + LOCK_SUFFIX],
                    args=[generation, sealed, self._ttl_ms, token or b""],
                    # a cluster pipeline takes no scripts: one call each, to its node
                    client=self.client if self.cluster or pipe is None else pipe,
                )
            if pipe is not None:
                pipe.execute()

        self.guard.call(self.region_name, write, None)

    def delete(self, key: str) -> None:
        self.guard.call(self.region_name, lambda: self.client.delete(key), None)

    def delete_multi(self, keys: Iterable[str]) -> None:
        self.guard.call(self.region_name, lambda: self.client.delete(*keys), None)

    def generations(self, keys: Sequence[str]) -> Generations:
        """The current generation of each key (``b""`` if never invalidated), read before
        a load; ``UNKNOWN`` if Redis cannot say. The epoch is taken after the read: a
        server met while reading (a new connection moves the epoch) is the one the counters
        come from, and only a server met later can have lost them."""
        counters = self.guard.call(
            self.region_name,
            lambda: mget(self.client, [key + GENERATION_SUFFIX for key in keys]),
            [UNKNOWN] * len(keys),
        )
        captured = Generations(zip(keys, (value or b"" for value in counters), strict=True))
        captured.epoch = self.guard.epoch
        return captured

    def get_mutex(self, key: str) -> FailSafeLock:
        try:  # no network on one server; a cluster not yet reached is dialled here
            lock = self.client.lock(
                key + LOCK_SUFFIX, timeout=self.lock_timeout, sleep=0.01, thread_local=False
            )
        except FAILURES:
            lock = None
        return FailSafeLock(lock, self.guard, self.region_name)


def decode(payload: Any) -> Any:
    """A stored payload's value: ``NO_VALUE`` for none, or one that is not JSON."""
    if payload is NO_VALUE:
        return NO_VALUE
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return NO_VALUE


def invalidate_in_redis(client: Client, keys: Collection[str], namespace: str) -> None:
    """Delete the keys, atomically, bumping the generation of those under ``namespace``
    (the cached reads; the general service's keys have no generation), and set the
    delivery marks among them (``CacheKeys.delivered``): one script on one server (a
    transaction's commands cost the client several times more to send and read back). On a
    cluster the keys span slots: each key's commands reach its node in order, without
    MULTI."""
    delivered = f"{namespace}{DELIVERED_KIND}:"
    if is_cluster(client):
        pipe = transaction(client)
        for key in keys:
            if key.startswith(delivered):
                pipe.set(key, b"1", px=DELIVERED_TTL_MS)
                continue
            if key.startswith(namespace):
                pipe.incr(key + GENERATION_SUFFIX)
                pipe.pexpire(key + GENERATION_SUFFIX, GENERATION_TTL_MS)
            pipe.delete(key)
        pipe.execute()
        return
    names: list[str] = []
    steps: list[str | int] = []
    for key in keys:
        if key.startswith(delivered):
            names.append(key)
            steps.append("mark")
            continue
        if key.startswith(namespace):
            names.append(key + GENERATION_SUFFIX)
            steps.append("bump")
        names.append(key)
        steps.append("delete")
    client.register_script(INVALIDATE)(
        keys=names, args=[*steps, GENERATION_TTL_MS, DELIVERED_TTL_MS]
    )


INVALIDATE = """
local generation_ttl, mark_ttl = ARGV[#KEYS + 1], ARGV[#KEYS + 2]
for i, key in ipairs(KEYS) do
  if ARGV[i] == 'bump' then
    redis.call('INCR', key)
    redis.call('PEXPIRE', key, generation_ttl)
  elseif ARGV[i] == 'mark' then
    redis.call('SET', key, '1', 'PX', mark_ttl)
  else
    redis.call('DEL', key)
  end
end
return 1
"""
"""KEYS: the keys to change, in order; ARGV: each one's step (``bump`` its generation,
``mark`` a delivery, ``delete`` a value), then the generation's and the mark's TTLs in ms."""


class FailSafeLock(CacheMutex):
    """dogpile's mutex: the Redis lock (expires after ``lock_timeout``, so a crashed
    holder cannot block others for longer), or a process-local lock when Redis fails (or
    ``lock`` is ``None``: Redis could not make one)."""

    def __init__(self, lock: Any, guard: RedisGuard, region: str) -> None:
        self._redis_lock = lock
        self._local_lock = threading.Lock()
        self._guard = guard
        self._region = region
        self._held = threading.local()

    def acquire(self, wait: bool = True) -> bool:
        acquired = None
        if self._redis_lock is not None:  # None: Redis could not even make the lock
            acquired = self._guard.call(
                self._region, lambda: self._redis_lock.acquire(blocking=wait), None
            )
        if acquired is None:
            held = self._local_lock.acquire(wait)
            self._held.local = held
            return held
        self._held.local = False
        return bool(acquired)

    def release(self) -> None:
        if getattr(self._held, "local", False):
            self._held.local = False
            self._local_lock.release()
        else:
            self._guard.call(self._region, self._redis_lock.release, None)

    def locked(self) -> bool:
        if self._redis_lock is None:
            return self._local_lock.locked()
        return bool(self._guard.call(self._region, self._redis_lock.locked, False))
