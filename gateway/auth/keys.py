"""API key format, hashing, and where a request carries its key. Pure."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-"
_PLACEHOLDER_AUTHORIZATION = "midjourney-proxy"


def generate_key() -> str:
    """A new key: ``sk-`` and 48 random URL-safe characters (288 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(36)


def hash_key(key: str) -> bytes:
    """What is stored: SHA-256 of the whole key (keys are random, so no salt is needed)."""
    return hashlib.sha256(key.encode()).digest()


def key_hint(key: str) -> str:
    """A recognisable but useless part of the key, for listings."""
    return f"{key[:7]}...{key[-4:]}"


def key_from_headers(authorization: str | None, mj_api_secret: str | None) -> str | None:
    """The key of a request: ``Authorization: Bearer sk-...`` or ``Authorization: sk-...``;
    ``mj-api-secret`` when Authorization is absent, empty or the literal ``midjourney-proxy``."""
    value = (authorization or "").strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    if not value or value == _PLACEHOLDER_AUTHORIZATION:
        value = (mj_api_secret or "").strip()
    return value or None
