"""``dl.close()`` releases the pool, is harmless twice, and works from a signal handler,
even one that interrupts the layer while it holds its own lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from dr_assistant_data import DataLayer, DataLayerError
from tests.helpers.layers import settings_for


def test_close_from_a_signal_handler_releases_the_pool_and_may_run_twice(migrated_layer):
    layer = DataLayer(settings_for(migrated_layer.settings.database_url))
    with layer.unit_of_work(actor="test") as uow:
        uow.patients.count()
    pool = layer.engine.pool
    assert pool.checkedin() == 1

    def shut_down(_signum: int, _frame: object) -> None:
        layer.close()
        layer.close()

    previous = signal.signal(signal.SIGUSR1, shut_down)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)

    assert pool.checkedin() == 0
    with pytest.raises(DataLayerError, match="closed"):
        layer.unit_of_work(actor="test")


SIGNAL_DURING_ENGINE_BUILD = """
import os, signal
from dr_assistant_data import DataLayer, DataLayerError, Settings, layer as layer_module

dl = DataLayer(Settings(database_url={url!r}, environment="test"))
signal.signal(signal.SIGTERM, lambda *_: dl.close())
build = layer_module.build_engine

def build_then_get_signalled(settings):
    engine = build(settings)
    os.kill(os.getpid(), signal.SIGTERM)  # arrives while the layer holds its lock
    return engine

layer_module.build_engine = build_then_get_signalled
try:
    dl.engine
except DataLayerError as error:
    print(error)
assert dl._engine is None, "an engine was left on the closed layer"
"""


def test_a_signal_arriving_while_the_layer_builds_its_engine_closes_it_without_deadlock(
    database_url,
):
    script = textwrap.dedent(SIGNAL_DURING_ENGINE_BUILD.format(url=database_url))

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "this DataLayer is closed" in result.stdout
