"""Signed media URLs: ``{public base}/mj/image/{task id}?exp=...&sig=...`` for a task's image, and
``{public base}/mj/image/{task id}/{part}?...`` for the rest of its result: ``image-<n>`` (the
n-th single image of a grid), ``video-<n>``; ``&size=thumb`` on any of them asks for its
thumbnail.

The signature is the credential (no API key), HMAC-SHA256 over ``"{task id}.{exp}"`` (or
``"{task id}/{part}.{exp}"``). ``exp`` is rounded up to a whole hour so a task's URLs stay the
same across fetches for an hour.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

_ROUND_S = 3600


class ImageSigner:
    def __init__(
        self,
        secret: bytes,
        public_base_url: str,
        ttl_s: int = 86_400,
        media_link: Callable[[str], str] | None = None,
    ) -> None:
        """``media_link``: where a client gets a stored object by its key, other than here (a
        CDN, a presigned object-store URL), if anywhere."""
        self._secret = secret
        self._base = public_base_url.rstrip("/")
        self._ttl_s = ttl_s
        self.media_link = media_link

    def _signature(self, task_id: int, exp: int, part: str | None) -> str:
        signed = f"{task_id}.{exp}" if part is None else f"{task_id}/{part}.{exp}"
        return hmac.new(self._secret, signed.encode(), hashlib.sha256).hexdigest()

    def _expiry(self, now: int) -> int:
        return (now + self._ttl_s + _ROUND_S - 1) // _ROUND_S * _ROUND_S

    def same_urls_until(self, now_s: float) -> float:
        """The last moment at which ``url_for`` still gives the URLs it gives at ``now_s``."""
        return float(self._expiry(int(now_s)) - self._ttl_s)

    def url_for(self, task_id: int, now_s: float | None = None, part: str | None = None) -> str:
        now = int(now_s if now_s is not None else time.time())
        exp = self._expiry(now)
        path = f"{task_id}" if part is None else f"{task_id}/{part}"
        return f"{self._base}/mj/image/{path}?exp={exp}&sig={self._signature(task_id, exp, part)}"

    def verify(
        self,
        task_id: int,
        exp: int,
        signature: str,
        now_s: float | None = None,
        part: str | None = None,
    ) -> bool:
        """True when the signature is this task's (and part's) and ``exp`` has not passed; any
        text is a signature that can be checked (compared as bytes, in constant time)."""
        now = now_s if now_s is not None else time.time()
        expected = self._signature(task_id, exp, part).encode()
        return exp > now and hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
