"""The audit key: HMAC-SHA256 over audit events, seals and checkpoints.

The key lives outside PostgreSQL (``AUDIT_KEY``, base64 of 32 bytes): whoever holds the
database alone (its application role, its owner, a superuser) cannot produce a MAC that
verifies, so every event, seal or checkpoint they forge or rewrite is found. Development and
test fall back to a public built-in key (worthless: anyone can forge); production refuses to
start without one (``ConfigurationError("AUDIT_KEY")``). Failures never show the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ..errors import ConfigurationError
from .keyring import key_bytes

_DEVELOPMENT_AUDIT_KEY = hashlib.sha256(b"dr-assistant-data public audit key").digest()


@dataclass(frozen=True, repr=False)
class AuditKey:
    secret: bytes

    def mac(self, purpose: str, content: Mapping[str, object]) -> str:
        """The hex MAC of ``content`` (canonical JSON) for ``purpose`` (``"event"``,
        ``"seal"``, ``"checkpoint"``): a MAC made for one purpose never verifies another."""
        message = purpose.encode() + b"\x00" + canonical(content)
        return hmac.digest(self.secret, message, "sha256").hex()

    def verifies(self, purpose: str, content: Mapping[str, object], mac: object) -> bool:
        """Whether ``mac`` is the MAC of ``content`` for ``purpose`` (constant time)."""
        return isinstance(mac, str) and hmac.compare_digest(self.mac(purpose, content), mac)

    def __repr__(self) -> str:
        return "AuditKey(***)"


def canonical(content: Mapping[str, object]) -> bytes:
    """Sorted-key, compact JSON; datetimes in ISO form with microseconds."""
    return _CANONICAL.encode(content).encode()


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)


_CANONICAL = json.JSONEncoder(sort_keys=True, default=_text, separators=(",", ":"))


def audit_key_from(encoded: str, *, production: bool) -> AuditKey:
    """Parse ``AUDIT_KEY`` (base64 of 32 bytes); the public development key when unset
    outside production."""
    if not encoded.strip():
        if production:
            raise ConfigurationError("AUDIT_KEY", "must be set in production")
        return AuditKey(_DEVELOPMENT_AUDIT_KEY)
    return AuditKey(key_bytes(encoded, "AUDIT_KEY"))
