"""The campaign's own servers, built on ``dr_assistant_data.testing.servers``: a throwaway
PostgreSQL, and a Redis that can be paused, killed, restarted empty or from an older RDB
snapshot, or a Sentinel set (master, replica, three sentinels) that can fail over or lose
its master.

Every server started is stopped, and its files removed, when the ``with`` block ends,
also on an exception or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis
from sqlalchemy import create_engine, text

from dr_assistant_data.testing.servers.ports import eventually, listening
from dr_assistant_data.testing.servers.redis_servers import (
    NO_PERSISTENCE,
    redis_processes,
    start_sentinel_set,
)
from dr_assistant_data.testing.servers.tcp_proxy import (
    PostgresProxy as PostgresProxy,  # (the COMMIT faults)
)
from dr_assistant_data.testing.servers.throwaway_postgres import (
    ThrowawayPostgres,
    postgres_server,
)

DATABASE = "chaos"
MASTER_NAME = "clinic"
SNAPSHOTS_KEPT = 5


class Postgres:
    """A throwaway server with a ``chaos`` database; backends can be killed, the server
    restarted."""

    def __init__(self, server: ThrowawayPostgres) -> None:
        self.server = server
        self.port = server.port
        self.url = server.url.rsplit("/", 1)[0] + f"/{DATABASE}"

    def terminate_backend(self, rng: random.Random) -> bool:
        """Kill one client backend of the campaign's database; False if none was open."""
        admin = create_engine(self.server.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                pids = connection.scalars(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = :name "
                        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                    ),
                    {"name": DATABASE},
                ).all()
                if not pids:
                    return False
                connection.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": rng.choice(pids)}
                )
                return True
        finally:
            admin.dispose()

    def restart(self) -> None:
        self.server.restart()


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
        admin.dispose()
        yield Postgres(server)


def _kill(port: int) -> None:
    """SIGKILL the Redis on ``port`` and wait until the port is closed."""
    pid = redis.Redis(port=port, socket_timeout=2).info("server")["process_id"]
    os.kill(int(pid), signal.SIGKILL)
    eventually(lambda: not listening(port), f"redis on port {port} to die")


def pause(port: int, rng: random.Random) -> int:
    """``CLIENT PAUSE ALL`` for 100 to 600 ms; returns the duration."""
    milliseconds = rng.randint(100, 600)
    client = redis.Redis(port=port, socket_timeout=2)
    client.client_pause(milliseconds, all=True)
    client.close()
    return milliseconds


class SingleRedis:
    """One Redis with RDB files in a folder of its own: snapshots are ``SAVE``d and kept,
    so the server can be restarted from an older one (a restart that loses recent data)."""

    mode = "single"

    def __init__(self, start: Callable[..., int], folder: Path) -> None:
        self._start = start
        self._folder = folder
        self._snapshots: list[Path] = []
        self.port = self._launch()

    def _launch(self, port: int | None = None) -> int:
        return self._start(
            *NO_PERSISTENCE,
            *("--dir", str(self._folder), "--dbfilename", "dump.rdb"),
            port=port,
        )

    def settings(self) -> dict[str, object]:
        return {"redis_url": f"redis://127.0.0.1:{self.port}/0"}

    @property
    def master(self) -> int:
        return self.port

    def snapshot(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=5)
        client.save()
        client.close()
        kept = self._folder / f"snapshot-{time.monotonic_ns()}.rdb"
        shutil.copy(self._folder / "dump.rdb", kept)
        self._snapshots.append(kept)
        if len(self._snapshots) > SNAPSHOTS_KEPT:
            self._snapshots.pop(0).unlink()

    def restart(self, rng: random.Random, *, from_snapshot: bool) -> bool:
        """Kill -9 and start again on the same port: empty, or from a random older
        snapshot (False when there is none yet: nothing done)."""
        if from_snapshot and not self._snapshots:
            return False
        _kill(self.port)
        dump = self._folder / "dump.rdb"
        dump.unlink(missing_ok=True)
        if from_snapshot:
            shutil.copy(rng.choice(self._snapshots), dump)
        self._launch(self.port)
        return True


class SentinelRedis:
    """A master, a replica and three sentinels; a failover swaps the two."""

    mode = "sentinel"

    def __init__(self, start: Callable[..., int], folder: Path) -> None:
        self._start = start
        self._folder = folder
        _, _, self.sentinels = start_sentinel_set(start, folder, MASTER_NAME)
        self._sentinel = redis.Redis(port=self.sentinels[0], socket_timeout=2)

    def settings(self) -> dict[str, object]:
        return {
            "redis_sentinels": tuple(f"127.0.0.1:{port}" for port in self.sentinels),
            "redis_sentinel_master": MASTER_NAME,
        }

    @property
    def master(self) -> int:
        return int(self._sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)[1])

    def _replica_in_sync(self) -> bool:
        replicas = self._sentinel.sentinel_slaves(MASTER_NAME)
        return any(r["flags"] == "slave" and r["master-link-status"] == "ok" for r in replicas)

    def failover(self) -> None:
        """``SENTINEL FAILOVER``, then wait for the new master and a replica in sync."""
        eventually(self._replica_in_sync, "a replica in sync", timeout=60)
        before = self.master
        self._sentinel.execute_command("SENTINEL FAILOVER", MASTER_NAME)
        eventually(lambda: self.master != before, "the failover", timeout=60)
        eventually(self._replica_in_sync, "the old master to follow", timeout=60)

    def kill_master(self) -> None:
        """SIGKILL the master; once the sentinels promote the replica, bring the old
        master back as a replica of the new one."""
        eventually(self._replica_in_sync, "a replica in sync", timeout=60)
        before = self.master
        _kill(before)
        eventually(lambda: self.master != before, "the sentinels to promote", timeout=60)
        self._start(
            *NO_PERSISTENCE,
            *("--repl-diskless-sync-delay", "0", "--dir", str(self._folder)),
            *("--replicaof", "127.0.0.1", str(self.master)),
            port=before,
        )
        eventually(self._replica_in_sync, "the old master to follow", timeout=60)

    def close(self) -> None:
        self._sentinel.close()


@contextlib.contextmanager
def redis_deployment(mode: str) -> Iterator[SingleRedis | SentinelRedis]:
    with tempfile.TemporaryDirectory(prefix="chaos-redis-") as folder, redis_processes() as start:
        if mode == "sentinel":
            deployment = SentinelRedis(start, Path(folder))
            try:
                yield deployment
            finally:
                deployment.close()
        else:
            yield SingleRedis(start, Path(folder))
