"""A logging filter that redacts what looks like a patient identifier.

The layer itself never logs values (parameters hidden, driver messages dropped, entity
``repr`` is the id), so this filter is the second line: it catches what the application's
own log lines, a third-party library or a traceback might carry. It rewrites the formatted
message, the formatted exception and the stack of each record it sees: phone numbers
(Indian and international), email addresses, 14-digit ABHA numbers and ``MRN``-tagged
record numbers become ``[redacted:<kind>]``. Free text (names, notes) cannot be recognised
by pattern; keeping it out of logs stays the code's job.

Install it on the handlers that write logs (a filter on a logger does not see records
propagated from its children)::

    logging.basicConfig(level=logging.INFO)
    install_redaction()                  # every handler of the root logger
    handler.addFilter(RedactingFilter()) # a handler added later
"""

from __future__ import annotations

import logging
import re

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("abha", re.compile(r"(?<![\w-])\d{2}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}(?![\w-])")),
    ("phone", re.compile(r"(?<![\w+-])(?:\+|00)?(?:91[ -]?)?0?[6-9]\d{4}[ -]?\d{5}(?!\w)")),
    ("phone", re.compile(r"(?<![\w+])(?:\+|00)[1-9](?:[ -]?\d){7,14}(?!\w)")),
    ("mrn", re.compile(r"\bMRN[\s:#/-]*[A-Za-z0-9][A-Za-z0-9/-]*", re.IGNORECASE)),
)


def redact(text: str) -> str:
    """``text`` with every identifier-looking token replaced by ``[redacted:<kind>]``."""
    for kind, pattern in PATTERNS:
        text = pattern.sub(f"[redacted:{kind}]", text)
    return text


class RedactingFilter(logging.Filter):
    """Redacts each record's message, exception text and stack; never drops a record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format
            message = f"{record.msg} {record.args!r}"
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one :class:`RedactingFilter` to every handler of ``logger`` (default: root)."""
    target = logger if logger is not None else logging.getLogger()
    redacting = RedactingFilter()
    for handler in target.handlers:
        handler.addFilter(redacting)
    return redacting
