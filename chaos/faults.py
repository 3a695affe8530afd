"""The fault scheduler: a thread that, every ``interval`` seconds on average, picks a fault
kind at random (seeded; every chosen kind once per round, so a short run covers them all),
injects it, and records it in the history with
its start and end times. Between faults it takes Redis snapshots (``SAVE``) at random, so
a later restart can go back to one of them.

A fault that cannot happen at that moment (no snapshot yet, no client backend open, no
COMMIT that wrote within the arming window) is not counted.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dr_assistant_data import DataLayer

from .editors import Editors
from .history import History
from .processes import Workers
from .sealers import Sealers
from .servers import Postgres, PostgresProxy, SentinelRedis, SingleRedis, pause
from .worker import read

SINGLE_KINDS = (
    "redis_pause",
    "redis_kill",
    "redis_old_snapshot",
    "pg_terminate",
    "pg_restart",
    "commit_reply_drop",
    "commit_drop",
    "worker_kill",
    "writer_kill_after_commit",
    "editor_kill",
    "sealer_kill",
    "sealer_restart",
)
SENTINEL_KINDS = (
    "redis_pause",
    "pg_terminate",
    "pg_restart",
    "commit_reply_drop",
    "commit_drop",
    "worker_kill",
    "writer_kill_after_commit",
    "editor_kill",
    "sentinel_failover",
    "sentinel_master_kill",
)
ARMING_WINDOW = 3.0
PROBE_SECONDS = 5.0
PROBE_PAUSE = 0.01


@dataclass
class Targets:
    postgres: Postgres
    redis: SingleRedis | SentinelRedis
    proxy: PostgresProxy
    workers: Workers
    editors: Editors
    sealers: Sealers
    dl: DataLayer
    probe: str
    """The patient only ``writer_kill_after_commit`` writes (workers write the others)."""


class FaultScheduler(threading.Thread):
    def __init__(
        self,
        targets: Targets,
        kinds: list[str],
        history: History,
        *,
        interval: float,
        seed: int,
    ) -> None:
        super().__init__(name="faults", daemon=True)
        self.targets = targets
        self.kinds = kinds
        self.history = history
        self.interval = interval
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self._inject: dict[str, Callable[[], bool]] = {
            "redis_pause": self._redis_pause,
            "redis_kill": lambda: self._redis_restart(from_snapshot=False),
            "redis_old_snapshot": lambda: self._redis_restart(from_snapshot=True),
            "pg_terminate": lambda: targets.postgres.terminate_backend(self.rng),
            "pg_restart": self._pg_restart,
            "commit_reply_drop": lambda: self._commit(targets.proxy.arm_drop_commit_reply),
            "commit_drop": lambda: self._commit(targets.proxy.arm_drop_commit),
            "worker_kill": lambda: targets.workers.kill_one(self.rng),
            "writer_kill_after_commit": self._writer_kill_after_commit,
            "editor_kill": lambda: targets.editors.kill_one(self.rng),
            "sealer_kill": lambda: targets.sealers.kill_leader(graceful=False),
            "sealer_restart": lambda: targets.sealers.kill_leader(graceful=True),
            "sentinel_failover": self._sentinel(SentinelRedis.failover),
            "sentinel_master_kill": self._sentinel(SentinelRedis.kill_master),
        }

    def run(self) -> None:
        if not self.kinds:
            return
        deck: list[str] = []  # each kind once per round, in a random order
        while not self.stopping.wait(self.rng.expovariate(1 / self.interval)):
            if isinstance(self.targets.redis, SingleRedis) and self.rng.random() < 0.3:
                with contextlib.suppress(Exception):
                    self.targets.redis.snapshot()
            if not deck:
                deck = self.rng.sample(self.kinds, len(self.kinds))
            kind = deck.pop()
            start = time.time()
            try:
                happened = self._inject[kind]()
            except Exception as error:  # a fault that failed is reported
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")
                happened = False
            if not happened:
                deck.insert(0, kind)  # it could not happen now: again at the round's end
            else:
                self.history.write(
                    id=f"fault-{kind}-{start}",
                    process="faults",
                    kind=f"fault:{kind}",
                    start=start,
                    end=time.time(),
                    outcome="ok",
                )

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.targets.proxy.disarm()

    def _redis_pause(self) -> bool:
        pause(self.targets.redis.master, self.rng)
        return True

    def _redis_restart(self, *, from_snapshot: bool) -> bool:
        redis = self.targets.redis
        assert isinstance(redis, SingleRedis)
        return redis.restart(self.rng, from_snapshot=from_snapshot)

    def _writer_kill_after_commit(self) -> bool:
        """A worker writes the probe patient and dies between its COMMIT and its cache
        delivery; then the probe is read every ``PROBE_PAUSE`` until its new version is
        seen (the reads are in the history: the checker measures the window from them)."""
        before = read(self.targets.dl, self.history, self.targets.probe)  # cached now
        if before is None or not self.targets.workers.kill_one_after_commit(
            self.rng, ARMING_WINDOW
        ):
            return False
        deadline = time.monotonic() + PROBE_SECONDS
        while time.monotonic() < deadline:
            seen = read(self.targets.dl, self.history, self.targets.probe)
            if seen is not None and seen > before:
                break
            time.sleep(PROBE_PAUSE)
        return True

    def _pg_restart(self) -> bool:
        self.targets.postgres.restart()
        return True

    def _commit(self, arm: Callable[[], None]) -> bool:
        proxy = self.targets.proxy
        arm()
        fired = proxy.fired.wait(ARMING_WINDOW)
        proxy.disarm()  # disarmed if no COMMIT came in time
        return fired

    def _sentinel(self, action: Callable[[SentinelRedis], None]) -> Callable[[], bool]:
        def inject() -> bool:
            redis = self.targets.redis
            assert isinstance(redis, SentinelRedis)
            action(redis)
            return True

        return inject
