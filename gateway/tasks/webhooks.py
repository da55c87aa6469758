"""Client webhooks: the task object, signed, POSTed to the task's notifyHook on every change of
status or progress, in order, at least once.

Events come from the outbox (``gateway.storage.webhooks``), written with each change. Every
process runs a deliverer; each takes due events under a lease, so a process that dies mid-send
leaves its events to be sent again when the lease ends. A failed attempt (no 2xx, a timeout, a
refused connection) is retried after ``backoff_s``, doubling per attempt up to ten minutes,
until ``retry_for_s`` has passed since the change; then the event is given up.

Signature: ``X-Gateway-Timestamp: <unix seconds>`` and ``X-Gateway-Signature: sha256=<hex
HMAC-SHA256 of "<timestamp>.<body>" with the user's webhook secret>``.

SSRF guard (``gateway.public_addresses``): a hook must be http(s) and every address its host
resolves to must be public, when the submit arrives and again at each delivery; redirects are
not followed. The operator may allow private, loopback and link-local targets.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import msgspec
import structlog

from gateway import metrics, public_addresses
from gateway.errors import BadRequest, PrivateAddressError
from gateway.public_addresses import PublicResolver
from gateway.storage import webhooks as outbox
from gateway.storage.webhooks import WebhookEvent
from gateway.tasks.images import ImageSigner
from gateway.tasks.views import task_view

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 600.0
LEASE_MARGIN_S = 30.0
BATCH = 100
KEEP_FINISHED_S = 7 * 86_400.0
PURGE_EVERY_S = 600.0


class HookGuard:
    """Refuses URLs from clients that the gateway, or an upstream on its behalf, must not call
    (400/21): notifyHook, and the images a video or an edit starts from."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def check(self, url: str, field: str = "notifyHook") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequest(f"{field} must be an http or https URL")
        if self._allow_private:
            return
        try:
            await public_addresses.check_url(url)
        except PrivateAddressError:
            raise BadRequest(
                f"{field} must not point at a private, loopback or local address"
            ) from None
        except OSError:
            raise BadRequest(f"{field}'s host does not resolve") from None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class WebhookDeliverer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        images: ImageSigner,
        *,
        allow_private: bool,
        timeout_s: float,
        retry_for_s: float,
        backoff_s: float,
        poll_s: float,
    ) -> None:
        self._pool = pool
        self._images = images
        self._allow_private = allow_private
        self._timeout_s = timeout_s
        self._retry_for_s = retry_for_s
        self._backoff_s = backoff_s
        self._poll_s = poll_s
        self._session: aiohttp.ClientSession | None = None
        self._purged_at = float("-inf")

    async def start(self) -> None:
        resolver = None if self._allow_private else PublicResolver()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=BATCH, resolver=resolver),
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def run(self) -> None:
        """Until cancelled: deliver what is due, and look again every ``poll_s`` when idle."""
        while True:
            try:
                sent = await self.run_once()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("webhook_round_failed", error=str(exc))
                sent = 0
            except Exception:  # a bug must not stop deliveries for good: log it, go on
                log.exception("webhook_round_broken")
                sent = 0
            if sent == 0:
                await asyncio.sleep(self._poll_s)

    async def run_once(self) -> int:
        """Claim the due events and attempt each once, concurrently; how many were attempted."""
        if time.monotonic() - self._purged_at > PURGE_EVERY_S:
            await outbox.purge_finished(self._pool, KEEP_FINISHED_S)
            self._purged_at = time.monotonic()
        events = await outbox.claim_due(self._pool, BATCH, self._timeout_s + LEASE_MARGIN_S)
        await asyncio.gather(*(self._attempt(event) for event in events))
        return len(events)

    async def _attempt(self, event: WebhookEvent) -> None:
        try:
            error = await self._send(event)
        except Exception as exc:  # an event that cannot even be sent is given up, not retried
            log.exception("webhook_unsendable", event_id=event.id)
            error = f"refused: {type(exc).__name__}"
        if error is None:
            metrics.WEBHOOK_ATTEMPTS.labels("delivered").inc()
            await outbox.delivered(self._pool, event.id)
            return
        age_s = time.time() - event.created_at.timestamp()
        delay_s = min(MAX_BACKOFF_S, self._backoff_s * 2 ** (event.attempts - 1))
        if error.startswith("refused") or age_s + delay_s > self._retry_for_s:
            metrics.WEBHOOK_ATTEMPTS.labels("given_up").inc()
            await outbox.give_up(self._pool, event.id, error)
            log.warning("webhook_given_up", event_id=event.id, task_id=event.task.id, error=error)
            return
        metrics.WEBHOOK_ATTEMPTS.labels("failed").inc()
        await outbox.retry_later(self._pool, event.id, delay_s, error)

    async def _send(self, event: WebhookEvent) -> str | None:
        """None when the hook answered 2xx; else what went wrong."""
        assert self._session is not None, "start() first"
        if not self._allow_private:
            try:
                public_addresses.refuse_private_literal(event.url)
            except PrivateAddressError:
                return "refused: not a public address"
        body = msgspec.json.encode(task_view(event.task, self._images))
        timestamp = str(int(time.time()))
        headers: dict[str, Any] = {
            "Content-Type": "application/json",
            "X-Gateway-Timestamp": timestamp,
            "X-Gateway-Signature": sign(event.secret, timestamp, body),
        }
        try:
            async with self._session.post(
                event.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if isinstance(getattr(exc, "os_error", None), PrivateAddressError):
                return "refused: resolves to no public address"
            return f"{type(exc).__name__}: {exc}"[:500]
        return None if 200 <= response.status < 300 else f"HTTP {response.status}"
