"""One process of the deployment under test: ``python -m chaos.worker CONFIG.json``.

It builds its own ``DataLayer`` on the shared servers, then runs its quota of operations
on the shared patients, each in a unit of work of its own as a Flask request would: reads
(``uow.patients.get``, or the doctor's day every patient is booked on, ``schedule_for``:
both cached, read-only) and writes (a new allergy list whose
single value names this process and a counter, so every value written is unique). Each
operation is in the process's history (``chaos/history.py``) with the version it read or
wrote; a write's unit of work carries the operation id as its correlation id, so the audit
trail says which writes committed.

``SIGUSR1`` arms the process: its next operation writes the probe patient (one no other
worker writes) and it dies (SIGKILL) at that write's cache delivery, between its COMMIT and
the delivery, leaving a ``writer_killed`` line with the moment it died; ``SIGUSR2``
disarms it (``processes.Workers.kill_one_after_commit``, ``faults.py``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Collection
from datetime import date
from pathlib import Path
from typing import Any

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.cache.store import CacheStore

from .history import History

WRITE_SHARE = 0.3
CREATE_SHARE = 0.1
"""Of the writes, those that create a patient."""
DAY_SHARE = 0.3
"""Of the reads, those of the doctor's day (one cache entry with every patient of the day)."""
CREATED_SHARE = 0.3
"""Of the reads of one patient, those of a patient this process created (once it has)."""
BORN = date(1980, 1, 1)


def settings_from(config: dict[str, Any]) -> Settings:
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return Settings(**values)


def write(dl: DataLayer, history: History, patient: str, rng: random.Random) -> None:
    value = f"{history.process}-w{rng.getrandbits(32):08x}"
    with history.operation("write", key=patient, value=value) as op:
        with dl.unit_of_work(actor="chaos", correlation_id=op.id) as uow:
            written = uow.patients.update(patient, allergies=[value])
            time.sleep(rng.uniform(0, 0.01))  # a unit of work that takes a little while
            op.committing = True
        op.result["version"] = written.version


def create(dl: DataLayer, history: History, rng: random.Random) -> str | None:
    """Create a patient; its id if the create was acknowledged."""
    value = f"{history.process}-c{rng.getrandbits(32):08x}"
    with (
        history.operation("create", value=value) as op,
        dl.unit_of_work(actor="chaos", correlation_id=op.id) as uow,
    ):
        new = uow.patients.create(
            first_name="Chaos", last_name=value, date_of_birth=BORN, gender="other"
        )
        op.result["key"] = str(new.id)
        history.write(id=op.id, phase="created", key=op.result["key"])  # a SIGKILL's too
        read(dl, history, op.result["key"], uncommitted=op.id)  # another unit: absent
        time.sleep(rng.uniform(0, 0.01))
        op.committing = True
    if op.outcome != "ok":
        return None
    read(dl, history, op.result["key"])  # a fresh unit: found, never a stale absence
    key: str = op.result["key"]
    return key


def read(dl: DataLayer, history: History, patient: str, **fields: str) -> int | None:
    """Read the patient; the version read (``None`` if the read failed or found none).
    ``fields`` go into its history (``uncommitted``: the create of this patient not yet
    committed)."""
    with history.operation("read", key=patient, **fields) as op:
        with dl.unit_of_work(read_only=True) as uow:
            found = uow.patients.get(patient)
        if found is not None:
            op.result["version"] = found.version
            op.result["value"] = (found.allergies or [None])[0]
    version: int | None = op.result.get("version")
    return version


def read_day(dl: DataLayer, history: History, doctor: str, day: str) -> None:
    """Read the doctor's day; the version of each patient it showed."""
    with history.operation("read_day", key=doctor) as op, dl.unit_of_work(read_only=True) as uow:
        booked = uow.appointments.schedule_for(doctor, day)
        op.result["seen"] = {str(a.patient_id): a.patient.version for a in booked}


def die_after_a_commit_when_armed(history: History) -> threading.Event:
    """Install the ``SIGUSR1`` / ``SIGUSR2`` switch of the ``writer_kill_after_commit``
    fault: armed, the next delivery after a COMMIT kills the process instead."""
    armed = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: armed.set())
    signal.signal(signal.SIGUSR2, lambda *_: armed.clear())
    deliver = CacheStore.invalidate

    def invalidate(store: CacheStore, keys: Collection[str], outbox_row: int | None = None) -> bool:
        if armed.is_set() and outbox_row is not None:
            now = time.time()
            history.write(
                id=f"{history.process}-killed", process=history.process, kind="writer_killed",
                start=now, end=now, outcome="ok",
            )  # fmt: skip
            os.kill(os.getpid(), signal.SIGKILL)
        return deliver(store, keys, outbox_row)

    CacheStore.invalidate = invalidate  # type: ignore[method-assign]
    return armed


def run(config: dict[str, Any]) -> None:
    rng = random.Random(config["seed"])
    history = History(Path(config["history"]), config["process"])
    armed = die_after_a_commit_when_armed(history)
    dl = DataLayer(settings_from(config["settings"]))
    created: list[str] = []
    try:
        for _ in range(config["quota"]):
            patient = rng.choice(config["patients"])
            if armed.is_set():
                write(dl, history, config["probe"], rng)
            elif rng.random() < WRITE_SHARE:
                if rng.random() >= CREATE_SHARE:
                    write(dl, history, patient, rng)
                elif new := create(dl, history, rng):
                    created.append(new)
            elif rng.random() < DAY_SHARE:
                read_day(dl, history, config["doctor"], config["day"])
            elif created and rng.random() < CREATED_SHARE:
                read(dl, history, rng.choice(created))
            else:
                read(dl, history, patient)
            time.sleep(rng.expovariate(config["rate"]))
    finally:
        dl.close()
        history.close()


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
