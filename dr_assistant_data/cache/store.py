"""The cache component of the layer: dogpile.cache regions on Redis, one per kind of read.

Built from :class:`~dr_assistant_data.settings.Settings` and connected lazily. Regions:
``entities`` (rows by id), ``schedules``, ``timelines`` (lists of rows), ``counts``; each
expires after its ``CACHE_TTL_*``. What is cached in which region is the caller's policy
(``relational/caching/policy.py``), which names each kind of key's region. Values are JSON, never
pickle, sealed whole with the data keys (``sealing.py``): Redis never holds a cached value,
a caller's value or a login session in clear. ``memory://`` is an in-process Redis of this
store's own (see ``topology.py``) running the same code.

Every key is named under the database's tag (``namespace.py``), read once per store from
the ``identity`` it is given; a namespace another database has claimed is refused, and one
last emptied under an older timeline of the database is emptied (under a newer one:
refused) before it is used.

A Redis server that restarted (from an older snapshot, possibly: values and generations from
before a write come back together) or was replaced by a failover is recognised by its
``run_id`` on the first connection to it: the namespace remembers, in one key, the server it
was last emptied on, and a connection to any other server empties the namespace before its
first command. On a Cluster each node is recognised the same way, by a key of its own (one
whose hash tag falls in the first slot the node serves), and empties its own part of the
namespace.

Fork safe: a child process drops the inherited client without touching its sockets and
connects afresh (on ``memory://``, to a new, empty server).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from dogpile.cache import make_region, register_backend
from dogpile.cache.region import CacheRegion
from redis.crc import key_slot

from .. import telemetry
from ..errors import ConfigurationError, DataLayerError
from ..settings import Settings
from .backends import Generations, GuardedRedisBackend, invalidate_in_redis
from .breaker import CircuitBreaker
from .guard import RedisGuard
from .keys import CacheKeys
from .metrics import CacheStats
from .namespace import CLAIM, OLD_TIMELINE, REFUSAL, tag
from .sealing import CacheSealer, is_counter
from .topology import IN_PROCESS_SCHEME, Client, connect, is_cluster, mget, on_new_master
from .topology import close as close_client

register_backend(
    "dr_assistant.redis", __name__.rsplit(".", 1)[0] + ".backends", "GuardedRedisBackend"
)

REGION_TTLS = {
    "entities": "cache_ttl_entity",
    "schedules": "cache_ttl_schedule",
    "timelines": "cache_ttl_timeline",
    "counts": "cache_ttl_count",
}
T = TypeVar("T")
BREAKER_FAILURES = 3
SCAN_BATCH = 500


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class CacheStore:
    """Regions, the Redis client, the guard that keeps Redis trouble from the clinic."""

    def __init__(
        self,
        settings: Settings,
        identity: Callable[[], str],
        kind_regions: Mapping[str, str] | None = None,
        timeline: Callable[[], int | None] = lambda: None,
    ) -> None:
        """``identity``: the database's (``namespace.DatabaseIdentity``), asked once, when
        a key is first named; ``timeline``: its timeline as last seen (``None``: unknown),
        asked before each call. ``kind_regions``: the region of each kind of key (for the
        per-region counts of invalidations; a key of a kind not named counts as
        ``general``)."""
        self.settings = settings
        self.kind_regions = dict(kind_regions or {})
        self._identity = identity
        self._timeline = timeline
        self._claimed = False
        self._timeline_checked: int | None = None
        self._keys: CacheKeys | None = None
        self._keys_lock = threading.Lock()
        self.sealer = CacheSealer(settings.keyring)
        self.stats = CacheStats()
        self.embedded = settings.redis_url.startswith(IN_PROCESS_SCHEME)  # reported only
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._client: Client | None = None
        self._regions: dict[str, CacheRegion] = {}
        self._guard: RedisGuard | None = None
        self._closed = False
        self._servers: set[bytes] = set()
        self._server_lock = threading.Lock()
        self._prepare_lock = threading.Lock()
        self.trusted: Callable[[], bool] = lambda: True
        """False while cached reads could miss another process's invalidation."""

    # -- wiring ---------------------------------------------------------------------

    @property
    def keys(self) -> CacheKeys:
        """The names of this database's keys; reads its identity the first time
        (``BackendUnavailableError`` if the database cannot say)."""
        if self._keys is None:
            with self._keys_lock:
                if self._keys is None:
                    self._keys = CacheKeys(self.settings.cache_prefix, tag(self._identity()))
        return self._keys

    def _connect(self) -> None:
        """(Re)build client, guard and regions; in a forked child the parent's are dropped
        unused (closing them would close sockets the parent still owns)."""
        if self._pid == os.getpid():  # the hot path: connected in this process
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            if self._closed:
                raise DataLayerError("this cache store is closed")
            self.keys  # noqa: B018 - named before any connection: ``_check_server`` uses them
            breaker = CircuitBreaker(BREAKER_FAILURES, self.settings.cache_breaker_backoff)
            self._client = connect(self.settings, self._check_server)
            self._claimed, self._timeline_checked = False, None
            guard = RedisGuard(breaker, self.stats, self._deliver, self._flush, self._prepare)
            self._guard = guard
            on_new_master(self._client, guard.owe_flush)  # a failover may lose some
            self._regions = self._build_regions(guard)
            self._pid = os.getpid()

    def _build_regions(self, guard: RedisGuard) -> dict[str, CacheRegion]:
        regions = {}
        for name, ttl_setting in REGION_TTLS.items():
            ttl = getattr(self.settings, ttl_setting)
            arguments = {
                "guard": guard,
                "region": name,
                "client": self._client,
                "sealer": self.sealer,
                "redis_expiration_time": ttl,
                "distributed_lock": True,
                "thread_local_lock": False,
                "lock_timeout": self.settings.cache_lock_timeout,
            }
            region = make_region(name=name, serializer=dumps, deserializer=json.loads)
            regions[name] = region.configure(
                "dr_assistant.redis", expiration_time=ttl, arguments=arguments
            )
        return regions

    @property
    def guard(self) -> RedisGuard:
        self._connect()
        assert self._guard is not None
        return self._guard

    @property
    def client(self) -> Client:
        """The Redis client (the in-process one on ``memory://``)."""
        self._connect()
        assert self._client is not None
        return self._client

    def region(self, name: str) -> CacheRegion:
        self._connect()
        return self._regions[name]

    def backend(self, region: str) -> GuardedRedisBackend:
        """The backend of ``region``: cached reads go through it (``reads.py``)."""
        backend: GuardedRedisBackend = self.region(region).backend
        return backend

    def guard_state(self) -> dict[str, int]:
        """``breaker_open`` (0 or 1) and ``owed`` invalidations, read without connecting:
        empty before this process first used Redis."""
        guard = self._guard if self._pid == os.getpid() else None
        if guard is None:
            return {}
        return {"breaker_open": int(guard.breaker.is_open), "owed": guard.owed}

    def call(self, region: str, operation: Callable[[Client], T], fallback: T) -> T:
        """``operation(client)`` through the guard; ``fallback`` when Redis fails."""
        client = self.client
        return self.guard.call(region, lambda: operation(client), fallback)

    def require(self, region: str, operation: Callable[[Client], T]) -> T:
        """``operation(client)`` through the guard; raises ``BackendUnavailableError``
        when Redis cannot answer."""
        client = self.client
        return self.guard.require(region, lambda: operation(client))

    # -- invalidation ---------------------------------------------------------------

    def invalidate(self, keys: Collection[str], outbox_row: int | None = None) -> bool:
        """Drop ``keys`` and bump their generations, and mark ``outbox_row`` delivered
        with them. Never raises: undelivered keys are owed and delivered before Redis is
        used again. True if delivered now."""
        if not keys:
            return True
        regions = [self.region_of(key) for key in keys]
        for region in regions:
            self.stats.count(region, "invalidation")
        mark = None if outbox_row is None else self.keys.delivered(outbox_row)
        attributes: dict[str, telemetry.Attribute] = {
            "cache.region": ",".join(sorted(set(regions))),
            "cache.keys": len(keys),
        }
        with telemetry.Span("cache", operation="invalidate", **attributes) as span:
            delivered = self.guard.invalidate("invalidation", keys, mark)
            span.outcome = "delivered" if delivered else "owed"
        return delivered

    def deliver(self, keys: Collection[str]) -> bool:
        """Drop ``keys`` and bump their generations now, owing nothing: False if Redis did
        not take them (the caller keeps them)."""

        def deliver() -> bool:
            self._deliver(keys)
            return True

        return self.guard.call("invalidation", deliver, False)

    def undelivered(self, rows: Sequence[int]) -> list[int]:
        """The outbox rows whose delivery mark Redis lacks (all of them if it cannot say)."""
        marks = self.call(
            "invalidation",
            lambda client: mget(client, [self.keys.delivered(row) for row in rows]),
            [None] * len(rows),
        )
        return [row for row, mark in zip(rows, marks, strict=True) if mark is None]

    def region_of(self, key: str) -> str:
        kind = key[len(self.keys.namespace) :].split(":", 1)[0]
        return self.kind_regions.get(kind, "general")

    def generations(self, region: str, keys: Sequence[str]) -> Generations:
        return self.backend(region).generations(keys)

    def _deliver(self, keys: Collection[str]) -> None:
        assert self._client is not None
        invalidate_in_redis(self._client, keys, self.keys.namespace)

    def _flush(self) -> None:
        """Too many invalidations were owed to remember: drop every cached read."""
        assert self._client is not None
        delete_matching(self._client, self.keys.namespace + "*")

    def reseal(self) -> int:
        """After a key rotation: drop every cached read (whatever key sealed it), and
        re-seal under the active key every value of the general service and every login
        session sealed under another one (a value no key opens is deleted: it was a miss
        already). Returns the values re-sealed; raises ``BackendUnavailableError`` when
        Redis cannot answer (nothing is known to be done: run it again)."""
        self.guard.owe_flush()
        return self.require("invalidation", self._reseal_values)

    def _reseal_values(self, client: Client) -> int:
        resealed = 0
        for pattern in (self.keys.general("*"), self.keys.session("*")):
            for name in client.scan_iter(match=pattern, count=SCAN_BATCH):
                key = name.decode()
                stored = client.get(key)
                if stored is None or is_counter(stored):
                    continue
                if self.sealer.keyring.needs_rotation(stored):
                    payload = self.sealer.open(key, stored)
                    sealed = None if payload is None else self.sealer.seal(key, payload)
                    resealed += replace_value(client, key, stored, sealed)
        return resealed

    def _prepare(self) -> str | None:
        """Before each call (two comparisons once done): claim the namespace for this
        database, and empty it when the database is first met on a newer timeline than the
        namespace was emptied under; why the namespace must not be used, if so. One thread
        prepares while the others wait: concurrent first calls must not each empty the
        namespace and move the epoch (the loads of a stampede would then store nothing and
        load again)."""
        timeline = self._timeline()
        if self._claimed and (timeline is None or timeline == self._timeline_checked):
            return None
        with self._prepare_lock:
            return self._prepare_locked()

    def _prepare_locked(self) -> str | None:
        assert self._client is not None
        if not self._claimed:
            if not self._owns(self._client.eval):
                return REFUSAL
            self._claimed = True
        timeline = self._timeline()
        if timeline is not None and timeline != self._timeline_checked:
            marked = self._client.get(self.keys.timeline)
            if marked is not None and int(marked) > timeline:
                return OLD_TIMELINE
            if marked is None:
                # every value in the namespace was written after its timeline was marked
                # (this runs before every call): nothing to empty, and emptying would take
                # the server marks with it, so every other process would empty it again
                self._client.set(self.keys.timeline, timeline, nx=True)
            elif int(marked) < timeline:
                self._flush()
                self._client.set(self.keys.timeline, timeline)
                self.guard.new_epoch()
            self._timeline_checked = timeline
        return None

    def _owns(self, evaluate: Callable[..., Any]) -> bool:
        """Whether the namespace is this database's (claimed now if no database's),
        ``evaluate`` running the claim script."""
        identity = self._identity().encode()
        return bool(evaluate(CLAIM, 1, self.keys.claim, identity) == identity)

    def _check_server(self, connection: Any) -> None:
        """A new connection, before its first use: a server this process has not used
        before moves the guard's epoch (loads in flight store nothing); a server the
        namespace was not last emptied on is emptied now, through this connection (unless
        the namespace belongs to another database: then it is left as it is). On a
        Cluster, each node keeps its own mark and empties only its own keys."""
        with self._server_lock:
            run_id = _run_id(_command(connection, "INFO", "server"))
            if run_id not in self._servers:
                self._servers.add(run_id)
                self.guard.new_epoch()
            cluster = is_cluster(self._client)
            if cluster:
                slot = _first_slot(connection)
                if slot is None:  # a replica: nothing is written or read there
                    return
                server = self.keys.server(slot_tag(slot))
            else:
                if not self._owns(functools.partial(_command, connection, "EVAL")):
                    return
                server = self.keys.server()
            if _command(connection, "GET", server) != run_id:
                delete_matching(_OneConnection(connection, cluster), self.keys.namespace + "*")
                _command(connection, "SET", server, run_id)
                self.guard.new_epoch()

    # -- component convention -------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Pings Redis (raises on failure, and ``ConfigurationError`` if the namespace
        belongs to another database), delivers owed invalidations, and reports this
        database's namespace (the prefix of its keys), the breaker, what is still owed, and
        the per-region counts."""
        guard = self.guard
        self.client.ping()
        guard.call("invalidation", lambda: None, None)
        if guard.refusal is not None:
            raise ConfigurationError("REDIS_KEY_PREFIX", guard.refusal)
        return {
            "embedded": self.embedded,
            "namespace": self.keys.prefix,
            "breaker": "open" if guard.breaker.is_open else "closed",
            "owed_invalidations": guard.owed,
            "regions": self.stats.snapshot(),
        }

    def close(self) -> None:
        """Release the Redis connections. Idempotent."""
        with self._lock:
            client, self._client = self._client, None
            owned = self._pid == os.getpid()
            self._pid, self._regions, self._closed = None, {}, True
        if client is not None and owned:
            close_client(client)


def _command(connection: Any, *arguments: Any) -> Any:
    connection.send_command(*arguments)
    return connection.read_response()


class _OneConnection:
    """The two commands ``delete_matching`` needs, on a connection being set up (to a
    Cluster node: one UNLINK per slot, as a node refuses keys of several slots)."""

    def __init__(self, connection: Any, cluster: bool) -> None:
        self._connection = connection
        self._cluster = cluster

    def scan_iter(self, match: str, count: int) -> Iterator[bytes]:
        cursor = b"0"
        while True:
            cursor, keys = _command(
                self._connection, "SCAN", cursor, "MATCH", match, "COUNT", count
            )
            yield from keys
            if int(cursor) == 0:
                return

    def unlink(self, *keys: bytes) -> int:
        if not self._cluster:
            return int(_command(self._connection, "UNLINK", *keys))
        slots: dict[int, list[bytes]] = {}
        for key in keys:
            slots.setdefault(key_slot(key), []).append(key)
        commands = [("UNLINK", *same) for same in slots.values()]
        self._connection.send_packed_command(self._connection.pack_commands(commands))
        return sum(int(self._connection.read_response()) for _ in commands)


def _first_slot(connection: Any) -> int | None:
    """The first slot the node at the other end of ``connection`` serves, if any."""
    nodes = _command(connection, "CLUSTER", "NODES")
    text = nodes.decode() if isinstance(nodes, bytes) else nodes
    for line in text.splitlines():
        fields = line.split()
        if "myself" in fields[2].split(","):
            ranges = [field for field in fields[8:] if not field.startswith("[")]
            return int(ranges[0].split("-")[0]) if ranges else None
    return None


@functools.cache
def slot_tag(slot: int) -> str:
    """A hash tag whose key slot is ``slot``."""
    return next(str(n) for n in itertools.count() if key_slot(str(n).encode()) == slot)


def _run_id(info: bytes | str) -> bytes:
    text = info.decode() if isinstance(info, bytes) else info
    for line in text.splitlines():
        if line.startswith("run_id:"):
            return line.split(":", 1)[1].strip().encode()
    return b""


REPLACE_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""


def replace_value(client: Client, key: str, stored: bytes, replacement: bytes | None) -> int:
    """Replace ``key``'s value ``stored`` by ``replacement`` (delete it for ``None``),
    keeping its expiry, unless someone wrote it meanwhile; 1 if replaced."""
    return int(client.eval(REPLACE_IF_UNCHANGED, 1, key, stored, replacement or b""))


def delete_matching(client: Client, pattern: str) -> int:
    """Delete keys matching ``pattern`` with SCAN in batches (never ``KEYS``); on a cluster
    the SCAN runs on every primary and each batch's UNLINK is split by slot."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=SCAN_BATCH):
        batch.append(key)
        if len(batch) >= SCAN_BATCH:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return deleted
