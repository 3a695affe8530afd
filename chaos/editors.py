"""The note-editing threads (``chaos/notes.py``): started, killed mid-unit at random by the
fault scheduler (a thread that stops for good, as a SIGKILLed process would) and replaced
by a new thread that finishes the dead one's quota."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from dr_assistant_data import DataLayer

from .history import History
from .notes import Clinic, Editor

DEATH_WAIT = 5.0


class Editors:
    def __init__(
        self, dl: DataLayer, clinic: Clinic, folder: Path, *, rate: float, seed: int
    ) -> None:
        self.dl = dl
        self.clinic = clinic
        self.folder = folder
        self.rate = rate
        self.seed = seed
        self._editors: list[tuple[Editor, threading.Thread]] = []
        self._lock = threading.RLock()

    def start(self, name: str, quota: int) -> None:
        with self._lock:
            rng = random.Random(self.seed * 1000 + 500 + len(self._editors))
            history = History(self.folder / f"{name}.jsonl", name)
            editor = Editor(self.dl, self.clinic, history, rng, quota, self.rate)
            thread = threading.Thread(target=editor.run, name=name, daemon=True)
            self._editors.append((editor, thread))
            thread.start()

    def kill_one(self, rng: random.Random) -> bool:
        """Doom a running editor: it dies inside its next unit of work, before the commit;
        a replacement takes the operations it had not begun. False if none died."""
        with self._lock:
            alive = [e for e, t in self._editors if t.is_alive() and not e.doomed.is_set()]
            if not alive:
                return False
            victim = rng.choice(alive)
            victim.doomed.set()
            if not victim.dead.wait(DEATH_WAIT):
                victim.doomed.clear()
                if not victim.dead.is_set():
                    return False
            if victim.begun < victim.quota:
                name = victim.history.process.split(".")[0]
                self.start(f"{name}.{len(self._editors)}", victim.quota - victim.begun)
            return True

    def wait(self) -> None:
        """Wait until every editor has finished its quota or died."""
        while True:
            with self._lock:
                running = [t for e, t in self._editors if t.is_alive() and not e.dead.is_set()]
            if not running:
                return
            running[0].join(0.2)
