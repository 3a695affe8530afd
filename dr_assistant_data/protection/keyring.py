"""Field-encryption keys: AES-256-GCM with key ids, and a keyed blind index.

A sealed value is ``v1:<key id>:<base64(nonce + ciphertext + tag)>`` (text, for columns) or
``v1:<key id>:<nonce + ciphertext + tag>`` (bytes, for whole cached values). The key id lets
old values be read after the active key changes (``rotate-keys`` re-encrypts them). The
*context* (``"patients.phone"``) is bound as associated data, so a ciphertext copied into
another column does not decrypt. A blind index is HMAC-SHA256 of context and normalized
value under a separate key: equal values give equal indexes, so exact lookups and
uniqueness work on it without decrypting anything.

Failures name the key or the variable, never a value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigurationError, DataLayerError

VERSION = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")

DEVELOPMENT_KEY_ID = "dev"
_DEVELOPMENT_KEY = hashlib.sha256(b"dr-assistant-data public development key").digest()
_DEVELOPMENT_INDEX_KEY = hashlib.sha256(b"dr-assistant-data public blind index key").digest()
"""Public, therefore worthless outside development and test; production refuses them."""


class DecryptionError(DataLayerError):
    """A sealed value could not be opened: unknown key id, wrong key or tampered data."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    active: str
    index_key: bytes

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt ``plaintext`` under the active key, bound to ``context``."""
        sealed = self._encrypt(plaintext.encode(), context.encode())
        return f"{VERSION}:{self.active}:{base64.b64encode(sealed).decode()}"

    def open(self, token: str, context: str) -> str:
        """Decrypt a value :meth:`seal` produced for ``context``."""
        version, _, rest = token.partition(":")
        key_id, _, payload = rest.partition(":")
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raw = b""  # not a token: refused below, as a tampered value is
        return self._decrypt(version, key_id, raw, context).decode()

    def seal_bytes(self, data: bytes, context: str) -> bytes:
        """Encrypt ``data`` under the active key, bound to ``context``, in binary form."""
        return f"{VERSION}:{self.active}:".encode() + self._encrypt(data, context.encode())

    def open_bytes(self, sealed: bytes, context: str) -> bytes:
        """Decrypt a value :meth:`seal_bytes` produced for ``context``; ``DecryptionError``
        for an unknown key id, a wrong context, tampered or unsealed data."""
        version, _, rest = sealed.partition(b":")
        key_id, _, raw = rest.partition(b":")
        return self._decrypt(
            version.decode("ascii", "replace"), key_id.decode("ascii", "replace"), raw, context
        )

    def needs_rotation(self, token: str | bytes) -> bool:
        """True when ``token`` (text or bytes) is not sealed under the active key."""
        prefix = f"{VERSION}:{self.active}:"
        if isinstance(token, bytes):
            return not token.startswith(prefix.encode())
        return not token.startswith(prefix)

    def _encrypt(self, data: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._ciphers[self.active].encrypt(nonce, data, context)

    def _decrypt(self, version: str, key_id: str, raw: bytes, context: str) -> bytes:
        if version != VERSION or key_id not in self.keys:
            # a value that is not a token (stored in clear, say) has no key id to show
            shown = key_id if version == VERSION and _KEY_ID.fullmatch(key_id) else "?"
            raise DecryptionError(f"{context}: sealed with an unknown key ({shown})")
        try:
            return self._ciphers[key_id].decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()
            )
        except (InvalidTag, ValueError):
            raise DecryptionError(f"{context}: cannot be decrypted with key {key_id}") from None

    @functools.cached_property
    def _ciphers(self) -> dict[str, AESGCM]:
        """One cipher per key, built once (building one costs as much as a small seal)."""
        return {key_id: AESGCM(key) for key_id, key in self.keys.items()}

    def blind_index(self, value: str, context: str) -> str:
        """The keyed index of a normalized value: exact lookups without decryption."""
        message = f"{context}\x00{value}".encode()
        return hmac.digest(self.index_key, message, "sha256").hex()


def keyring_from(keys: str, active: str, index_key: str, *, production: bool) -> Keyring:
    """Parse ``DATA_ENCRYPTION_KEYS`` (``kid:base64key,...``), ``DATA_ENCRYPTION_ACTIVE_KEY``
    (optional with a single key) and ``BLIND_INDEX_KEY`` (base64).

    Without keys, development and test use public built-in keys; production raises
    ``ConfigurationError`` naming the missing variable.
    """
    if not keys.strip() or not index_key.strip():
        missing = "DATA_ENCRYPTION_KEYS" if not keys.strip() else "BLIND_INDEX_KEY"
        if production:
            raise ConfigurationError(missing, "must be set in production")
        if not keys.strip() and not index_key.strip():
            return Keyring(
                {DEVELOPMENT_KEY_ID: _DEVELOPMENT_KEY}, DEVELOPMENT_KEY_ID, _DEVELOPMENT_INDEX_KEY
            )
        raise ConfigurationError(missing, "must be set together with the other key variable")
    parsed: dict[str, bytes] = {}
    for entry in keys.split(","):
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise ConfigurationError("DATA_ENCRYPTION_KEYS", "entries must be 'key_id:base64key'")
        parsed[key_id] = key_bytes(encoded, "DATA_ENCRYPTION_KEYS")
    active = active.strip() or (next(iter(parsed)) if len(parsed) == 1 else "")
    if active not in parsed:
        raise ConfigurationError(
            "DATA_ENCRYPTION_ACTIVE_KEY", "must name one of the DATA_ENCRYPTION_KEYS ids"
        )
    return Keyring(parsed, active, key_bytes(index_key, "BLIND_INDEX_KEY"))


def key_bytes(encoded: str, variable: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise ConfigurationError(variable, "keys must be base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigurationError(variable, f"keys must be {KEY_BYTES} bytes (base64 encoded)")
    return key
