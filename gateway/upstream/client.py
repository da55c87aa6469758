"""The one HTTP client for upstream channels, on aiohttp.

Every transport fault is translated in one place (``_map_transport_errors``) into the
``UpstreamError`` tree; callers never see an aiohttp or asyncio exception:

    UpstreamError
    ├── UpstreamUnreachable   no connection was made: nothing reached the upstream
    ├── UpstreamTimedOut      sent, but no answer in time: the upstream may have acted
    ├── UpstreamDisconnected  the connection dropped before a full answer
    ├── UpstreamHttpError     an HTTP status that is not 2xx (``status``)
    └── UpstreamBadBody       an answer that is not the JSON it should be
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

from gateway.config import UpstreamSettings
from gateway.domain import Channel
from gateway.metrics import upstream_call

IMAGE_CHUNK_BYTES = 64 * 1024
_STREAMED_BODY_BYTES = 1024 * 1024  # larger bodies are sent from a buffer, in chunks
SECRET_HEADER = "mj-api-secret"  # noqa: S105 - a header name, not a secret


class UpstreamError(Exception):
    kind = "error"


class UpstreamUnreachable(UpstreamError):
    kind = "unreachable"


class UpstreamTimedOut(UpstreamError):
    kind = "timeout"


class UpstreamDisconnected(UpstreamError):
    kind = "disconnected"


class UpstreamHttpError(UpstreamError):
    kind = "http_status"

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class UpstreamBadBody(UpstreamError):
    kind = "bad_body"


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    """A submit-style answer: ``{code, description, result, properties}``."""

    code: int
    description: str
    result: Any
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe found: ``ok`` when the channel took the secret and answered its JSON."""

    ok: bool
    detail: str
    seconds: float


PROBE_PATH = "/mj/task/list-by-condition"
_PROBE_BODY = b'{"ids":[]}'


def encode_body(body: dict[str, Any]) -> bytes:
    """A request body as JSON bytes (msgspec: fast enough for 32 MiB of images)."""
    return msgspec.json.encode(body)


@contextmanager
def _map_transport_errors(url: str) -> Iterator[None]:
    try:
        yield
    except (
        aiohttp.ClientConnectorError,
        aiohttp.ConnectionTimeoutError,
        aiohttp.InvalidURL,
    ) as exc:
        raise UpstreamUnreachable(f"{url}: {exc}") from exc
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimedOut(f"{url}: no answer in time") from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise UpstreamDisconnected(f"{url}: {exc}") from exc
    except aiohttp.ClientResponseError as exc:
        raise UpstreamHttpError(exc.status, f"{url}: HTTP {exc.status}") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamDisconnected(f"{url}: {exc}") from exc
    except ValueError as exc:  # a header aiohttp refuses to send (a control character in it)
        raise UpstreamUnreachable(f"{url}: the request cannot be sent: {exc}") from exc


def _decode(url: str, status: int, body: bytes) -> Any:
    if status >= 300:
        raise UpstreamHttpError(status, f"{url}: HTTP {status}")
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise UpstreamBadBody(f"{url}: answer is not JSON") from exc


def _as_answer(url: str, payload: Any) -> UpstreamAnswer:
    if not isinstance(payload, dict) or not isinstance(payload.get("code"), int):
        raise UpstreamBadBody(f"{url}: answer has no integer code")
    properties = payload.get("properties")
    return UpstreamAnswer(
        code=payload["code"],
        description=str(payload.get("description") or ""),
        result=payload.get("result"),
        properties=properties if isinstance(properties, dict) else {},
    )


class UpstreamClient:
    """Pooled connections to every channel; ``start`` before use and ``close`` after."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._settings.max_connections, ttl_dns_cache=60, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=self._settings.fetch_timeout_s, connect=self._settings.connect_timeout_s
            ),
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not awaited")
        return self._session

    async def _request(
        self,
        method: str,
        channel: Channel,
        path: str,
        body: bytes | None,
        timeout_s: float,
        call: str,
        action: str = "none",
    ) -> Any:
        url = f"{channel.base_url.rstrip('/')}{path}"
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if channel.secret:
            headers[SECRET_HEADER] = channel.secret
        data: bytes | io.BytesIO | None = body
        if body is not None and len(body) > _STREAMED_BODY_BYTES:
            data = io.BytesIO(body)
        with upstream_call(channel.name, call, action), _map_transport_errors(url):
            async with self.session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(
                    total=timeout_s, connect=self._settings.connect_timeout_s
                ),
            ) as response:
                raw = await response.read()
                return _decode(url, response.status, raw)

    async def submit(
        self, channel: Channel, path: str, body: bytes, price_action: str
    ) -> UpstreamAnswer:
        """POST a submit (``/mj/submit/imagine`` ...) and return its answer, whatever its code.

        ``body`` is the JSON already encoded (``encode_body``), so failover re-sends the same bytes;
        ``price_action`` labels its metrics.
        """
        timeout_s = self._settings.submit_timeout_s
        payload = await self._request(
            "POST", channel, path, body, timeout_s, "submit", price_action
        )
        return _as_answer(path, payload)

    async def image_seed(self, channel: Channel, upstream_task_id: str) -> UpstreamAnswer:
        path = f"/mj/task/{upstream_task_id}/image-seed"
        timeout_s = self._settings.fetch_timeout_s
        payload = await self._request("GET", channel, path, None, timeout_s, "image-seed")
        return _as_answer(path, payload)

    async def cancel(self, channel: Channel, upstream_task_id: str) -> UpstreamAnswer:
        path = f"/mj/task/{upstream_task_id}/cancel"
        timeout_s = self._settings.fetch_timeout_s
        payload = await self._request("POST", channel, path, b"{}", timeout_s, "cancel")
        return _as_answer(path, payload)

    async def list_by_condition(self, channel: Channel, ids: list[str]) -> list[dict[str, Any]]:
        """The upstream task objects it still knows among ``ids`` (any order)."""
        payload = await self._request(
            "POST",
            channel,
            "/mj/task/list-by-condition",
            encode_body({"ids": ids}),
            self._settings.fetch_timeout_s,
            "list",
        )
        if payload is None:
            return []
        if not isinstance(payload, list):
            raise UpstreamBadBody(f"{channel.name}: list-by-condition did not answer a list")
        return [item for item in payload if isinstance(item, dict) and item.get("id")]

    async def probe(self, channel: Channel) -> ProbeResult:
        """Ask the channel for no task at all (list-by-condition, ``{"ids": []}``), as every
        midjourney-proxy answers: ok when it takes the secret and answers a JSON list. Never
        raises an ``UpstreamError``; works on any channel, enabled or not. It cannot tell
        whether the channel has a usable account."""
        started = time.perf_counter()
        ok, detail = False, "answered"
        try:
            payload = await self._request(
                "POST", channel, PROBE_PATH, _PROBE_BODY, self._settings.probe_timeout_s, "probe"
            )
        except UpstreamHttpError as exc:
            detail = "secret refused" if exc.status in (401, 403) else f"HTTP {exc.status}"
        except UpstreamError as exc:
            detail = f"{exc.kind}: {exc}"
        else:
            ok = isinstance(payload, list)
            if not ok:
                detail = "answer is not a task list"
        return ProbeResult(ok, detail, time.perf_counter() - started)

    async def stream_image(self, url: str) -> tuple[str, AsyncIterator[bytes]]:
        """(content type, body chunks) of an image; errors before the first byte are raised."""
        with _map_transport_errors(url):
            response = await self.session.get(url)
        if response.status != 200:
            response.release()
            raise UpstreamHttpError(response.status, f"image: HTTP {response.status}")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                with _map_transport_errors(url):
                    async for chunk in response.content.iter_chunked(IMAGE_CHUNK_BYTES):
                        yield chunk
            finally:
                response.release()

        return response.content_type or "application/octet-stream", chunks()
