"""The worker processes (``python -m chaos.worker``): started, SIGKILLed at random by the
fault scheduler and replaced by a new process that finishes the dead one's quota, and all
stopped when the campaign ends, however it ends."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spawn import spawned


@dataclass
class Worker:
    name: str
    quota: int
    process: subprocess.Popen[bytes]
    history: Path


class Workers:
    def __init__(self, folder: Path, config: dict[str, Any], *, seed: int) -> None:
        self.folder = folder
        self.config = config
        self.seed = seed
        self.replaced = 0
        self._running: list[Worker] = []
        self._started = 0
        self._lock = threading.RLock()

    def start(self, name: str, quota: int) -> None:
        history = self.folder / f"{name}.jsonl"
        with self._lock:
            self._started += 1
            seed = self.seed * 1000 + self._started
        own = {"process": name, "quota": quota, "seed": seed, "history": str(history)}
        process = spawned("worker", self.folder, name, {**self.config, **own})
        with self._lock:
            self._running.append(Worker(name, quota, process, history))

    def kill_one(self, rng: random.Random) -> bool:
        """SIGKILL a running worker that has begun its operations (most likely inside a
        unit of work) and start a replacement for those it had not begun; False if none
        was at work yet."""
        with self._lock:
            alive = [w for w in self._running if w.process.poll() is None and _invoked(w.history)]
            if not alive:
                return False
            victim = rng.choice(alive)
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
            self._replace(victim)
        return True

    def kill_one_after_commit(self, rng: random.Random, window: float) -> bool:
        """Arm a running worker to SIGKILL itself between its next write's COMMIT and
        its cache delivery, and replace it once dead; False if none was at work or it
        wrote nothing within ``window`` seconds (it is disarmed)."""
        with self._lock:
            alive = [w for w in self._running if w.process.poll() is None and _invoked(w.history)]
        if not alive:
            return False
        victim = rng.choice(alive)
        victim.process.send_signal(signal.SIGUSR1)
        if not _killed(victim.process, window):
            victim.process.send_signal(signal.SIGUSR2)
            if not _killed(victim.process, DISARMING):  # it died as the signal came
                return False
        self._replace(victim)
        return True

    def _replace(self, victim: Worker) -> None:
        """Start a process for the operations a dead worker had not begun."""
        with self._lock:
            self._running.remove(victim)
            begun = _invoked(victim.history)
            if begun < victim.quota:
                self.replaced += 1
                self.start(f"{victim.name.split('.')[0]}.{self.replaced}", victim.quota - begun)

    def wait(self) -> list[str]:
        """Wait until every worker has finished; the names of those that failed."""
        while True:
            with self._lock:
                running = [w for w in self._running if w.process.poll() is None]
                if not running:
                    return [w.name for w in self._running if w.process.returncode != 0]
            time.sleep(0.2)

    def stop(self) -> None:
        with self._lock:
            for worker in self._running:
                if worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait()


DISARMING = 1.0


def _killed(process: subprocess.Popen[bytes], within: float) -> bool:
    """Whether ``process`` is SIGKILLed within ``within`` seconds (not if it exits)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(within)
    return process.returncode == -signal.SIGKILL


def _invoked(history: Path) -> int:
    if not history.exists():
        return 0
    return history.read_text(encoding="utf-8").count('"phase": "invoke"')
