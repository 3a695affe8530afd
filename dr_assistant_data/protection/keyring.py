"""Field-encryption keys: AES-256-GCM with key ids, and a keyed blind index.

A sealed value is ``v1:<key id>:<base64(nonce + ciphertext + tag)>``. The key id lets old
values be read after the active key changes (``rotate-keys`` re-encrypts them). The
*context* (``"patients.phone"``) is bound as associated data, so a ciphertext copied into
another column does not decrypt. A blind index is HMAC-SHA256 of context and normalized
value under a separate key: equal values give equal indexes, so exact lookups and
uniqueness work on it without decrypting anything.

Failures name the key or the variable, never a value.
"""

from __future__ import annotations

import base64
import binascii
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
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}:{self.active}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str, context: str) -> str:
        """Decrypt a value :meth:`seal` produced for ``context``."""
        version, _, rest = token.partition(":")
        key_id, _, payload = rest.partition(":")
        if version != VERSION or key_id not in self.keys:
            # a value that is not a token (stored in clear, say) has no key id to show
            shown = key_id if version == VERSION and _KEY_ID.fullmatch(key_id) else "?"
            raise DecryptionError(f"{context}: sealed with an unknown key ({shown})")
        try:
            raw = base64.b64decode(payload, validate=True)
            opened = AESGCM(self.keys[key_id]).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()
            )
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptionError(f"{context}: cannot be decrypted with key {key_id}") from None
        return opened.decode()

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` is not sealed under the active key."""
        return not token.startswith(f"{VERSION}:{self.active}:")

    def blind_index(self, value: str, context: str) -> str:
        """The keyed index of a normalized value: exact lookups without decryption."""
        message = f"{context}\x00{value}".encode()
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()


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
