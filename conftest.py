"""Every ```` ```python ```` block of ``README.md`` and ``docs/`` runs, page by page in order,
as a reader would paste it (Sybil collects them; a ```` ```python skip ```` block is not
collected: the page says why just before it).

Each page runs in one namespace, in an environment of its own: ``DATABASE_URL`` names a
scratch PostgreSQL database cloned from a migrated template (on the server of
``TEST_DATABASE_ADMIN_URL``), ``MONGODB_URI`` an in-memory document store
(``mongomock://``) and ``REDIS_URL`` the in-process cache (``memory://``). After the page,
the layers it left open are closed, its database dropped and the environment put back.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.testing.databases import TemplateDatabase
from tests.helpers.layers import ADMIN_URL

PAGES = ("README.md", "docs/*.md", "docs/*/*.md")
"""The pages whose examples run (``Path.match`` patterns; a test holds every page of
``docs/`` to them)."""
PAGE_ENVIRONMENT = ("DATABASE_URL", "MONGODB_URI", "REDIS_URL", "APP_ENV")
_template: TemplateDatabase | None = None
_run = ExitStack()
"""Holds this run's template until the session finishes (then it is dropped)."""


def _migrated_template() -> TemplateDatabase:
    """This run's migrated template, made on first use (a name of its own: runs of the
    suite on one server do not share it)."""
    global _template
    if _template is None:
        name = f"dr_assistant_docs_{uuid.uuid4().hex[:10]}"
        settings = Settings(
            database_url=make_url(ADMIN_URL).set(database=name).render_as_string(False),
            mongodb_uri="mongomock://localhost/docs_template",
            redis_url="memory://",
            environment="test",
        )
        template = TemplateDatabase(settings, name, Path(tempfile.gettempdir()))  # PostgreSQL
        _template = _run.enter_context(template.prepared(reuse=False))
    return _template


def _page_setup(namespace: dict[str, Any]) -> None:
    run = ExitStack()
    url = run.enter_context(_migrated_template().clone())
    saved = {name: os.environ.get(name) for name in PAGE_ENVIRONMENT}
    run.callback(_restore, saved)
    os.environ.update(
        DATABASE_URL=url,
        MONGODB_URI=f"mongomock://localhost/docs_{uuid.uuid4().hex[:10]}",
        REDIS_URL="memory://",
        APP_ENV="development",
    )
    namespace["__name__"] = "__main__"  # as in a script a reader pastes the page into
    namespace["__page_run__"] = run


def _page_teardown(namespace: dict[str, Any]) -> None:
    for value in list(namespace.values()):
        if isinstance(value, DataLayer):
            value.close()
    namespace["__page_run__"].close()


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_sessionfinish(session: pytest.Session) -> None:
    _run.close()


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser()],
    patterns=PAGES,
    setup=_page_setup,
    teardown=_page_teardown,
).pytest()
