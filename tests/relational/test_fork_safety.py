"""A layer built before ``os.fork()`` gives the child fresh connections of its own, and the
parent's pooled connection survives the child."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text

from dr_assistant_data import DataLayer
from dr_assistant_data.relational.connection.fork_safety import release_inherited_pools
from tests.helpers.layers import settings_for


@pytest.fixture
def layer(migrated_layer: DataLayer) -> Iterator[DataLayer]:
    with DataLayer(settings_for(migrated_layer.settings.database_url, db_pool_size=1)) as layer:
        yield layer


def backend_pid(layer: DataLayer) -> int:
    """The server process behind the connection a unit of work gets from the pool."""
    with layer.unit_of_work(actor="test") as uow:
        uow.patients.count()
        return int(uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def in_child(work: Callable[[], int]) -> int:
    """Fork; the child runs ``work`` and reports its result (or -1 on any error)."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        try:
            result = work()
        except BaseException:
            result = -1
        os.write(write_end, str(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        reported = reader.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return int(reported)


def test_a_forked_child_gets_its_own_connection_and_the_parent_keeps_its_own(layer):
    parent_before = backend_pid(layer)

    child = in_child(lambda: backend_pid(layer))

    assert child not in (-1, parent_before)
    assert backend_pid(layer) == parent_before  # same connection, still alive


def test_the_explicit_post_fork_hook_finds_nothing_left_to_release_after_os_fork(layer):
    backend_pid(layer)

    assert in_child(release_inherited_pools) == 0
