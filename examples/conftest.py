"""The examples' tests as part of this repository's suite.

Their test databases are made by the package's pytest plugin, from a template whose name
derives from the database URL. Unless ``--dr-database-url`` or ``TEST_DATABASE_URL``
says otherwise, that URL is here the server of ``TEST_DATABASE_ADMIN_URL`` (the rest of
the suite's) with a database name of this run's own, so concurrent runs of the suite on
one server never share, drop or rebuild each other's template.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy.engine import make_url

from tests.helpers.layers import ADMIN_URL


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("dr_database_url") or os.environ.get("TEST_DATABASE_URL"):
        return
    own = make_url(ADMIN_URL).set(database=f"dr_examples_{uuid.uuid4().hex[:8]}")
    config.option.dr_database_url = own.render_as_string(hide_password=False)
