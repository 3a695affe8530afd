"""Steps run in other OS processes (``multiprocessing`` spawn), each with a layer of its own,
as the web and task workers of a deployment would."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

from dr_assistant_data import DataLayer
from dr_assistant_data.cache.store import CacheStore
from tests.helpers.layers import patient_fields, settings_for


def in_process(step: Callable[..., Any], *arguments: Any, timeout: float = 60.0) -> Any:
    """Run ``step(*arguments)`` in a new process; its result, or its exit code if it died."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        outcome = pool.apply_async(step, arguments)
        try:
            return outcome.get(timeout)
        except multiprocessing.TimeoutError:
            raise AssertionError("the step did not finish") from None


def spawned(step: Callable[..., Any], *arguments: Any) -> multiprocessing.process.BaseProcess:
    """Start ``step(*arguments)`` in a new process and return it (for steps that die)."""
    process = multiprocessing.get_context("spawn").Process(target=step, args=arguments)
    process.start()
    return process


def rename(database_url: str, settings: dict[str, Any], patient_id: uuid.UUID, name: str) -> float:
    """Rename the patient; the time the commit returned."""
    with DataLayer(settings_for(database_url, **settings)) as layer:
        with layer.unit_of_work(actor="test") as uow:
            uow.patients.update(patient_id, last_name=name)
        return time.time()


def new_patient_in(database_url: str, settings: dict[str, Any]) -> uuid.UUID:
    """Create a patient (its invalidation delivered, its outbox row marked delivered)."""
    with DataLayer(settings_for(database_url, **settings)) as layer:
        with layer.unit_of_work(actor="test") as uow:
            patient_id: uuid.UUID = uow.patients.create(**patient_fields()).id
        return patient_id


def rename_and_die_after_commit(
    database_url: str, settings: dict[str, Any], patient_id: uuid.UUID, name: str
) -> None:
    """Rename the patient and be killed between the COMMIT and the cache delivery."""

    def killed(*_arguments: object) -> bool:
        os.kill(os.getpid(), signal.SIGKILL)
        return False

    CacheStore.invalidate = killed  # type: ignore[method-assign]
    rename(database_url, settings, patient_id, name)


def listening(layer: DataLayer) -> DataLayer:
    """The layer once it hears other processes' invalidations (until then it reads past
    the shared cache)."""
    layer.engine  # noqa: B018 - starts the outbox listener
    assert layer._outbox is not None
    assert layer._outbox.ready()
    return layer


def last_name(database_url: str, settings: dict[str, Any], patient_id: uuid.UUID) -> str | None:
    """The patient's last name read through the shared cache; ``None``: no such patient."""
    layer = listening(DataLayer(settings_for(database_url, **settings)))
    with layer, layer.unit_of_work(actor="test", read_only=True) as uow:
        patient = uow.patients.get(patient_id)
        return None if patient is None else patient.last_name


def read_every_10_ms(
    database_url: str, settings: dict[str, Any], patient_id: uuid.UUID, seconds: float, out: Any
) -> None:
    """Read the patient every 10 ms for ``seconds``; send ``(start, end, last_name)`` each."""
    with listening(DataLayer(settings_for(database_url, **settings))) as layer:
        deadline = time.time() + seconds
        reads = []
        while time.time() < deadline:
            started = time.time()
            with layer.unit_of_work(actor="test", read_only=True) as uow:
                patient = uow.patients.get(patient_id)
                name = patient.last_name if patient is not None else ""
            reads.append((started, time.time(), name))
            time.sleep(0.01)
        out.send(reads)
