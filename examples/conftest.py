"""The examples' tests as part of this repository's suite: on the suite's PostgreSQL server.

Their test databases are made by the package's pytest plugin, which takes its server from
``--dr-database-url``, else ``TEST_DATABASE_URL``, else ``DATABASE_URL``, else the local
default. Unless one of the first two is given, this points it at the server of
``TEST_DATABASE_ADMIN_URL``, where the rest of the suite makes its databases, rather than
at whatever ``DATABASE_URL`` names. The plugin names each run's template database itself,
so concurrent runs on one server never meet.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy.engine import make_url

from tests.helpers.layers import ADMIN_URL


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("dr_database_url") or os.environ.get("TEST_DATABASE_URL"):
        return
    server = make_url(ADMIN_URL).set(database="dr_examples")
    config.option.dr_database_url = server.render_as_string(hide_password=False)
