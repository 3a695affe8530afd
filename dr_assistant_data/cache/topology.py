"""The Redis deployment behind the cache: one server, a Sentinel-watched master, a Cluster,
or an in-process server.

* ``REDIS_URL``: one server.
* ``REDIS_URL=memory://``: an in-process Redis (``fakeredis``, Lua by ``lupa``), a server of
  its own per call of :func:`connect`, so two cache stores never share values and every
  region, script, lock and counter runs the same code as on Redis. Nothing survives the
  process; a forked child connects afresh and so starts with an empty server.
* ``REDIS_SENTINELS`` + ``REDIS_SENTINEL_MASTER``: redis-py's ``Sentinel`` finds the master;
  after a failover, connections are made to the new master. The sentinels are asked who the
  master is at most once per ``MASTER_CHECK_INTERVAL`` (a demoted master keeps answering
  reads on open connections, so waiting for a write to fail is not enough). Replication is
  asynchronous, so an invalidation acknowledged by the old master may not have reached the
  promoted replica: when the master changes, the call that noticed fails (a miss, served by
  the databases) and every cached read is dropped on the new master before the cache is used
  again (``on_new_master``), so no value the lost invalidation covered is served.
* ``REDIS_CLUSTER_NODES``: redis-py's ``RedisCluster``. Every key the layer's scripts and
  transactions touch together (a value, its generation, its lock) shares a hash tag built
  from ids (``keys.py``); multi-key reads and deletes are split by slot; pattern deletion
  scans every primary.

Failover and resharding are the servers' business; the layer only follows them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import fakeredis
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from ..settings import Settings, host_and_port

Client = Any  # redis.Redis (a FakeRedis in process), or a LazyCluster for a RedisCluster
IN_PROCESS_SCHEME = "memory://"
MASTER_CHECK_INTERVAL = 1.0


class FailoverAwarePool(SentinelConnectionPool):
    """A Sentinel pool that reports a change of master (a failover) to ``on_new_master``
    and fails the call that noticed it, so nothing is read before the callback's effect."""

    on_new_master: Callable[[], None] = staticmethod(lambda: None)
    _next_check = 0.0

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + MASTER_CHECK_INTERVAL
            self.get_master_address()
        return super().get_connection(*args, **kwargs)

    def get_master_address(self) -> Any:
        known = self.proxy.master_address
        address = super().get_master_address()
        if known is not None and address != known:
            self.on_new_master()
            raise RedisConnectionError("the Redis master changed")
        return address


class LazyCluster:
    """A ``RedisCluster`` built on first use. Building one dials the nodes, so a cluster
    unreachable when the layer starts would otherwise fail the layer instead of one call
    (which the guard turns into a miss); until built, each use tries again."""

    def __init__(self, build: Callable[[], RedisCluster]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._client: RedisCluster | None = None

    def __getattr__(self, name: str) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
                client = self._client
        return getattr(client, name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def connect(settings: Settings) -> Client:
    """A client for the configured deployment; none of them dials before its first call."""
    if settings.redis_url.startswith(IN_PROCESS_SCHEME):
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    timeout = settings.redis_socket_timeout
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    if settings.redis_cluster_nodes:
        nodes = [
            ClusterNode(*host_and_port(node, "REDIS_CLUSTER_NODES"))
            for node in settings.redis_cluster_nodes
        ]
        return LazyCluster(lambda: RedisCluster(startup_nodes=nodes, **options))
    if settings.redis_sentinels:
        sentinels = [host_and_port(node, "REDIS_SENTINELS") for node in settings.redis_sentinels]
        sentinel = Sentinel(
            sentinels,
            sentinel_kwargs=dict(options),
        )
        return sentinel.master_for(  # type: ignore[no-any-return]
            settings.redis_sentinel_master, connection_pool_class=FailoverAwarePool, **options
        )
    return redis.Redis.from_url(settings.redis_url, **options)


def on_new_master(client: Client, callback: Callable[[], None]) -> None:
    """Have ``callback`` run when a Sentinel failover gives ``client`` a new master."""
    pool = None if is_cluster(client) else client.connection_pool
    if isinstance(pool, FailoverAwarePool):
        pool.on_new_master = callback


def is_cluster(client: Client) -> bool:
    return isinstance(client, LazyCluster)


def transaction(client: Client) -> Any:
    """A MULTI transaction on one server; on a cluster (the keys span slots) a pipeline
    whose commands each reach their node in order, without MULTI."""
    return client.pipeline(transaction=not is_cluster(client))


def mget(client: Client, keys: list[str]) -> list[Any]:
    """MGET, split by slot on a cluster."""
    if is_cluster(client):
        return client.mget_nonatomic(keys)  # type: ignore[no-any-return]
    return client.mget(keys)  # type: ignore[no-any-return]


def close(client: Client) -> None:
    client.close()
    if not is_cluster(client):
        client.connection_pool.disconnect()
