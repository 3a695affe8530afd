"""pytest-alembic's built-in tests, on a fresh PostgreSQL database each.

They hand ``alembic/env.py`` an Engine (not a Connection) and check: one head; every
revision upgrades from base; the models match the DDL at head (triggers, functions and
grants included, ``migrations/database_objects.py``); every revision downgrades; and a
downgrade leaves nothing an upgrade would not recreate.

The plugin itself is off (``-p no:pytest_alembic`` in ``setup.cfg``: its automatic
collection fails on pytest 9): its tests and its ``alembic_runner`` fixture are imported
here, next to the fixtures they need.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_alembic.plugin.fixtures import alembic_runner
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from pytest_alembic.tests.experimental import test_downgrade_leaves_no_trace
from sqlalchemy import Engine

from dr_assistant_data.migrations.relational import script_location
from dr_assistant_data.relational.connection.engine import build_engine
from tests.helpers.layers import scratch_database, settings_for

__all__ = [
    "alembic_runner",
    "test_downgrade_leaves_no_trace",
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_config() -> dict[str, str]:
    return {"script_location": script_location()}


@pytest.fixture
def alembic_engine() -> Iterator[Engine]:
    """An engine built by the layer, so it carries the keyring revision 0003 seals with."""
    with scratch_database("dr_assistant_alembic_kit") as url:
        engine = build_engine(settings_for(url))
        try:
            yield engine
        finally:
            engine.dispose()
