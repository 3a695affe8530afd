"""Fixtures of the audit log's tests."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dr_assistant_data import DataLayer
from tests.helpers.layers import settings_for


@pytest.fixture
def audited(dl: DataLayer, database_url: str, tmp_path: Path) -> Iterator[DataLayer]:
    """A layer with a secret audit key, exporting checkpoints to a directory of its own."""
    secret = base64.b64encode(os.urandom(32)).decode()
    layer = DataLayer(
        settings_for(database_url, audit_checkpoint_dir=str(tmp_path), audit_key=secret)
    )
    yield layer
    layer.close()
