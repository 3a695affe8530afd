"""MongoDB commands reach the log without their documents.

pymongo (4.8 and later) logs every command it sends, with the command, its reply or its
failure serialised (up to ``MONGOB_LOG_MAX_DOCUMENT_LENGTH`` characters: note text, patient
ids, a duplicate key's value) on the ``pymongo.command`` logger at DEBUG. The document
store installs :class:`CommandBodyFilter` on that logger every time it connects. A logger's
filters run before the record reaches any handler, the logger's own or an ancestor's
(propagation), so no handler or level the application configures can see a body. The
filter keeps only what describes a command (its name, database, ids, server, timing and
status) and drops every other field; a record it cannot read is dropped whole.
"""

from __future__ import annotations

import logging

COMMAND_LOGGER = "pymongo.command"
DESCRIPTIVE = frozenset(
    {
        "message",
        "clientId",
        "commandName",
        "databaseName",
        "requestId",
        "operationId",
        "driverConnectionId",
        "serverConnectionId",
        "serverHost",
        "serverPort",
        "serviceId",
        "durationMS",
    }
)
"""The fields of pymongo's command log records that carry no caller data."""


class CommandBodyFilter(logging.Filter):
    """Strips command, reply and failure documents from pymongo's command log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg  # pymongo's LogMessage: its fields, serialised when formatted
        fields = getattr(message, "_kwargs", None)
        if not isinstance(fields, dict):
            return False
        record.msg = type(message)(**{k: v for k, v in fields.items() if k in DESCRIPTIVE})
        record.args = None
        return True


_FILTER = CommandBodyFilter()


def withhold_command_bodies() -> None:
    """Put the filter on ``pymongo.command`` (again, if the application removed it)."""
    logger = logging.getLogger(COMMAND_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
