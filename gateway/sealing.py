"""Secrets kept at rest, sealed: AES-256-GCM under a key from the settings.

The gateway must send each channel's ``mj-api-secret`` upstream, so it cannot keep only a hash:
it keeps the secret sealed, and opens it in memory when it reads the channel list. A sealed
value is ``version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)``; the
associated data names what the value is, so a sealed secret copied into another kind of column
does not open. The 256-bit key is the SHA-256 of the configured key material, so any
high-entropy string will do (``GATEWAY_RELAY__SEALING_KEY``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from gateway.config import Settings
from gateway.errors import SealingError, StartupError

_VERSION = b"\x01"
_NONCE_BYTES = 12


class SecretBox:
    """Seals with the first key; opens with any of them, so that values sealed under a previous
    key still open while ``gateway admin sealing-key-rotate`` seals them again."""

    def __init__(self, *key_materials: bytes) -> None:
        if not key_materials or any(len(k) < 16 for k in key_materials):
            raise StartupError("a sealing key must be at least 16 bytes")
        self._aeads = [
            AESGCM(hashlib.sha256(b"mj-gateway sealing key\x00" + k).digest())
            for k in key_materials
        ]

    def seal(self, plaintext: str, purpose: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[0].encrypt(nonce, plaintext.encode(), purpose.encode())
        return _VERSION + nonce + sealed

    def open(self, sealed: bytes, purpose: str) -> str:
        """The plaintext; SealingError when the value was sealed under none of the keys (or was
        tampered with)."""
        if sealed[:1] != _VERSION:
            raise SealingError("a sealed secret has an unknown format")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        for aead in self._aeads:
            with contextlib.suppress(InvalidTag):
                return aead.decrypt(nonce, body, purpose.encode()).decode()
        raise SealingError(
            "a sealed secret does not open with the sealing keys"
            " (GATEWAY_RELAY__SEALING_KEY, GATEWAY_RELAY__SEALING_OLD_KEYS)"
        )


def key_material(configured: SecretStr | None, path: Path) -> bytes:
    """The configured key, or one generated once and kept (mode 0600) at ``path``."""
    if configured is not None:
        return configured.get_secret_value().encode()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError), path.open("x") as handle:
            handle.write(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def secret_box(settings: Settings) -> SecretBox:
    """The box of channel secrets: ``relay.sealing_key`` (then ``relay.sealing_old_keys``), or,
    with the embedded database only, ``sealing.key`` kept in the data dir. With an external
    database the key must be configured: a key generated on one host would seal secrets that
    no other host could open."""
    relay = settings.relay
    configured = (
        relay.sealing_key if relay.sealing_key and relay.sealing_key.get_secret_value() else None
    )
    if configured is None and settings.database.url is not None:
        raise StartupError("set GATEWAY_RELAY__SEALING_KEY (the same everywhere) to use a database")
    primary = key_material(configured, settings.data_dir / "sealing.key")
    return SecretBox(primary, *(k.get_secret_value().encode() for k in relay.sealing_old_keys))
