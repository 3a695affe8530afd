"""The Redis deployment behind the cache: one server, a Sentinel-watched master, a Cluster,
or an in-process server.

* ``REDIS_URL``: one server.
* ``REDIS_URL=memory://``: an in-process Redis (``fakeredis``, Lua by ``lupa``), a server of
  its own per call of :func:`connect`, so two cache stores never share values and every
  region, script, lock and counter runs the same code as on Redis. Nothing survives the
  process; a forked child connects afresh and so starts with an empty server.
* ``REDIS_SENTINELS`` + ``REDIS_SENTINEL_MASTER``: redis-py's ``Sentinel`` finds the master;
  after a failover, connections are made to the new master. Each process subscribes to the
  sentinels' ``+switch-master`` channel (:class:`SwitchWatcher`) and asks who the master is
  as soon as one is announced, and in any case at most ``MASTER_CHECK_INTERVAL`` after the
  last time (a demoted master stays a writable master for seconds, so waiting for a write
  to fail is not enough). Replication is asynchronous, so an invalidation acknowledged by
  the old master may not have reached the promoted replica, and one sent by a process that
  had not yet heard of the switch lands on the old master: when the master changes, the
  call that noticed fails (a miss, served by the databases), every cached read is dropped
  on the new master and the invalidations of the last seconds are delivered again before
  the cache is used again (``on_new_master``, ``guard.owe_flush``).
* ``REDIS_CLUSTER_NODES``: redis-py's ``RedisCluster``. Every key the layer's scripts and
  transactions touch together (a value, its generation, its lock) shares a hash tag built
  from ids (``keys.py``); multi-key reads and deletes are split by slot; pattern deletion
  scans every primary.

Every new connection to a server (not in process) reports the server's ``run_id`` to
``on_connect`` (``store.py``), which tells a restarted or replaced server from the one the
cached values were written to.

Failover and resharding are the servers' business; the layer only follows them.
"""

from __future__ import annotations

import logging
import os
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

logger = logging.getLogger(__name__)

Client = Any  # redis.Redis (a FakeRedis in process), or a LazyCluster for a RedisCluster
IN_PROCESS_SCHEME = "memory://"
MASTER_CHECK_INTERVAL = 1.0
SWITCH_CHANNEL = "+switch-master"
OnConnect = Callable[[Any], None]
"""Called with each new connection, once it is ready for commands; may raise RedisError."""


class FailoverAwarePool(SentinelConnectionPool):
    """A Sentinel pool that reports a change of master (a failover) to ``on_new_master``
    and fails the call that noticed it, so nothing is read before the callback's effect."""

    on_new_master: Callable[[], None] = staticmethod(lambda: None)
    watcher: SwitchWatcher | None = None
    _next_check = 0.0

    def switched(self) -> None:
        """A switch was announced: ask the sentinels on the next connection."""
        self._next_check = 0.0

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.watcher is not None:
            self.watcher.ensure_running()
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


class SwitchWatcher:
    """A daemon thread per process listening to the sentinels' ``+switch-master`` channel
    (one sentinel at a time, the next when it fails), so a process hears of a failover in
    milliseconds instead of at its next periodic check."""

    def __init__(self, sentinels: list[tuple[str, int]], service: str, timeout: float) -> None:
        self._sentinels = sentinels
        self._service = service.encode()
        self._timeout = timeout
        self._pool: FailoverAwarePool | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def watch(self, pool: FailoverAwarePool) -> None:
        self._pool = pool
        pool.watcher = self

    def ensure_running(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="sentinel-switch", daemon=True).start()

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            for host, port in self._sentinels:
                try:
                    self._listen(host, port, pid)
                except (redis.RedisError, OSError) as error:
                    logger.debug("sentinel %s:%s not listened to (%s)", host, port, error)
            time.sleep(MASTER_CHECK_INTERVAL)

    def _listen(self, host: str, port: int, pid: int) -> None:
        client = redis.Redis(host=host, port=port, socket_connect_timeout=self._timeout)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(SWITCH_CHANNEL)
            while self._pid == pid:
                message = pubsub.get_message(timeout=MASTER_CHECK_INTERVAL)
                announced = message and message["data"].split(b" ", 1)[0] == self._service
                if announced and self._pool is not None:
                    self._pool.switched()
        finally:
            pubsub.close()
            client.close()


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


def connect(settings: Settings, on_connect: OnConnect) -> Client:
    """A client for the configured deployment; none of them dials before its first call."""
    if settings.redis_url.startswith(IN_PROCESS_SCHEME):
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    timeout = settings.redis_socket_timeout
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }

    def ready(connection: Any) -> None:  # replaces redis-py's own on_connect
        connection.on_connect()
        on_connect(connection)

    if settings.redis_cluster_nodes:
        nodes = [
            ClusterNode(*host_and_port(node, "REDIS_CLUSTER_NODES"))
            for node in settings.redis_cluster_nodes
        ]
        # the cluster runs its own on_connect, then this one
        return LazyCluster(
            lambda: RedisCluster(startup_nodes=nodes, redis_connect_func=on_connect, **options)
        )
    options["redis_connect_func"] = ready
    if settings.redis_sentinels:
        sentinels = [host_and_port(node, "REDIS_SENTINELS") for node in settings.redis_sentinels]
        plain = {key: value for key, value in options.items() if key != "redis_connect_func"}
        sentinel = Sentinel(sentinels, sentinel_kwargs=plain)
        client = sentinel.master_for(
            settings.redis_sentinel_master, connection_pool_class=FailoverAwarePool, **options
        )
        SwitchWatcher(sentinels, settings.redis_sentinel_master, timeout).watch(
            client.connection_pool
        )
        return client
    if settings.redis_ssl_ca_cert:  # a rediss:// URL: verify the server against this CA
        options["ssl_ca_certs"] = settings.redis_ssl_ca_cert
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
    values: list[Any] = client.mget_nonatomic(keys) if is_cluster(client) else client.mget(keys)
    return values


def close(client: Client) -> None:
    client.close()
    if not is_cluster(client):
        client.connection_pool.disconnect()
