"""The candidate sealer processes of the campaign (``chaos/sealer.py``): two run at once, one
of them holds the role; ``kill_leader`` SIGKILLs (or stops with SIGTERM) the holder, most
likely mid-round, and starts a replacement, so the role moves between processes."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from .spawn import spawned


class Sealers:
    def __init__(self, folder: Path, settings: dict[str, Any]) -> None:
        self.folder = folder
        self.leader_file = folder / "sealer-leader"
        self.settings = settings
        self._running: list[subprocess.Popen[bytes]] = []
        self._started = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._started += 1
            name = f"sealer{self._started}"
        config = {"settings": self.settings, "leader_file": str(self.leader_file)}
        process = spawned("sealer", self.folder, name, config)
        with self._lock:
            self._running.append(process)

    def kill_leader(self, *, graceful: bool) -> bool:
        """Stop the process holding the role (SIGTERM if ``graceful``, else SIGKILL) and
        start another candidate; False when no process holds it yet."""
        try:
            pid = int(self.leader_file.read_text())
        except (FileNotFoundError, ValueError):
            return False
        with self._lock:
            victims = [p for p in self._running if p.pid == pid and p.poll() is None]
            if not victims:
                return False
            victim = victims[0]
            victim.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            victim.wait()
            self._running.remove(victim)
            self.leader_file.unlink(missing_ok=True)
        self.start()
        return True

    def stop(self) -> None:
        with self._lock:
            for process in self._running:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            self._running.clear()
