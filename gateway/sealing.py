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
from gateway.errors import StartupError

_VERSION = b"\x01"
_NONCE_BYTES = 12


class SecretBox:
    def __init__(self, key_material: bytes) -> None:
        if len(key_material) < 16:
            raise StartupError("the sealing key must be at least 16 bytes")
        self._aead = AESGCM(hashlib.sha256(b"mj-gateway sealing key\x00" + key_material).digest())

    def seal(self, plaintext: str, purpose: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return _VERSION + nonce + sealed

    def open(self, sealed: bytes, purpose: str) -> str:
        """The plaintext; StartupError when the value was sealed under another key (or
        tampered with): the gateway cannot talk to that channel until the key is right."""
        if sealed[:1] != _VERSION:
            raise StartupError("a sealed secret has an unknown format")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, purpose.encode()).decode()
        except InvalidTag:
            raise StartupError(
                "a sealed secret does not open with this sealing key (GATEWAY_RELAY__SEALING_KEY)"
            ) from None


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
    """The box of channel secrets: ``relay.sealing_key``, or ``sealing.key`` in the data dir."""
    return SecretBox(key_material(settings.relay.sealing_key, settings.data_dir / "sealing.key"))
