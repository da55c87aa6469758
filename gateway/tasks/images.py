"""Signed image URLs: ``{public base}/mj/image/{task id}?exp=...&sig=...``.

The signature is the credential (no API key), HMAC-SHA256 over ``"{task id}.{exp}"``. ``exp`` is
rounded up to a whole hour so a task's URL stays the same across fetches for an hour.
"""

from __future__ import annotations

import hashlib
import hmac
import time

_ROUND_S = 3600


class ImageSigner:
    def __init__(self, secret: bytes, public_base_url: str, ttl_s: int = 86_400) -> None:
        self._secret = secret
        self._base = public_base_url.rstrip("/")
        self._ttl_s = ttl_s

    def _signature(self, task_id: int, exp: int) -> str:
        return hmac.new(self._secret, f"{task_id}.{exp}".encode(), hashlib.sha256).hexdigest()

    def url_for(self, task_id: int, now_s: float | None = None) -> str:
        now = int(now_s if now_s is not None else time.time())
        exp = (now + self._ttl_s + _ROUND_S - 1) // _ROUND_S * _ROUND_S
        return f"{self._base}/mj/image/{task_id}?exp={exp}&sig={self._signature(task_id, exp)}"

    def verify(self, task_id: int, exp: int, signature: str, now_s: float | None = None) -> bool:
        """True when the signature is this task's and ``exp`` has not passed; any text is a
        signature that can be checked (compared as bytes, in constant time)."""
        now = now_s if now_s is not None else time.time()
        expected = self._signature(task_id, exp).encode()
        return exp > now and hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
