"""Result rows never reach a log: the layer's engines refuse SQLAlchemy's row logging.

SQLAlchemy logs every fetched row — decrypted, so names, phones, ABHA numbers, allergies,
password hashes — when its engine logger is at DEBUG (``echo="debug"``, or the
``sqlalchemy.engine`` logger set to DEBUG by any logging configuration). Whether it does is
asked of one method, ``Engine._should_log_debug()``, consulted only for rows, column names
and rewound results. The layer's engines, and the option engines derived from them by
``execution_options``, answer no whatever the echo flag, logger level or handlers; a
filter or level set on a logger could be undone by the application's own logging
configuration, this cannot. Statement logging at INFO (``echo=True``) is unaffected: the
SQL text, with its parameters hidden (``hide_parameters``).
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine.base import OptionEngine


def _never() -> bool:
    return False


class _RowlessOptionEngine(OptionEngine):
    """An option engine of a rowless engine: rowless too, as are its own option engines."""

    def _should_log_debug(self) -> bool:
        return False


_RowlessOptionEngine._option_cls = _RowlessOptionEngine


def never_log_rows(engine: Engine) -> Engine:
    """Make ``engine`` (and every engine derived from it) never log result rows; returns it."""
    # SQLAlchemy offers no hook: this engine's own answer replaces its class's method
    engine._should_log_debug = _never  # type: ignore[method-assign]
    engine._option_cls = _RowlessOptionEngine
    return engine
