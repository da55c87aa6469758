"""The one HTTP client for upstream channels, on aiohttp.

Every transport fault is translated in one place (``_map_transport_errors``) into the
``UpstreamError`` branch of ``gateway.errors``; callers never see an aiohttp or asyncio
exception.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import msgspec

from gateway import json_input, public_addresses
from gateway.config import UpstreamSettings
from gateway.domain import Channel
from gateway.errors import (
    PrivateAddressError,
    UpstreamBadBody,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamHttpError,
    UpstreamTimedOut,
    UpstreamUnreachable,
)
from gateway.metrics import upstream_call
from gateway.routing import flavours
from gateway.upstream.task_objects import TaskObjects, read_task_list

IMAGE_CHUNK_BYTES = 64 * 1024
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a list of 100 task objects is well under 1 MiB
MAX_IMAGE_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_STREAMED_BODY_BYTES = 1024 * 1024  # larger bodies are sent from a buffer, in chunks
SECRET_HEADER = "mj-api-secret"  # noqa: S105 - a header name, not a secret


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
_SEED_PROBE_PATH = "/mj/task/0/image-seed"  # any answer but 404 shows the route is there
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
        PrivateAddressError,
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


async def _read(url: str, response: aiohttp.ClientResponse) -> bytes:
    """The body of a 2xx answer, at most ``MAX_ANSWER_BYTES`` of it."""
    if response.status >= 300:
        raise UpstreamHttpError(response.status, f"{url}: HTTP {response.status}")
    too_long = UpstreamBadBody(f"{url}: answer longer than {MAX_ANSWER_BYTES} bytes")
    if (response.content_length or 0) > MAX_ANSWER_BYTES:
        raise too_long
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise too_long
        chunks.append(chunk)
    return b"".join(chunks)


def _as_answer(url: str, raw: bytes) -> UpstreamAnswer:
    """A submit-style answer: a JSON object with an integer ``code``."""
    try:
        payload = json_input.decode(raw) if raw.strip() else None
    except json_input.JsonInputError as exc:
        raise UpstreamBadBody(f"{url}: answer is not JSON the gateway reads ({exc})") from None
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
        self._public_session: aiohttp.ClientSession | None = None
        self._media_timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout_s, sock_read=settings.fetch_timeout_s
        )

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
        self._public_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._settings.max_connections,
                ttl_dns_cache=60,
                resolver=public_addresses.PublicResolver(),
            ),
            timeout=aiohttp.ClientTimeout(
                total=self._settings.fetch_timeout_s, connect=self._settings.connect_timeout_s
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        for session in (self._session, self._public_session):
            if session is not None:
                await session.close()
        self._session = self._public_session = None

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
    ) -> bytes:
        """The body of the channel's 2xx answer; any other answer or fault is an
        ``UpstreamError``."""
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
                return await _read(url, response)

    async def submit(
        self, channel: Channel, path: str, body: bytes, price_action: str
    ) -> UpstreamAnswer:
        """POST a submit (``/mj/submit/imagine`` ...) and return its answer, whatever its code.

        ``body`` is the JSON already encoded (``encode_body``), so failover re-sends the same bytes;
        ``price_action`` labels its metrics.
        """
        timeout_s = self._settings.submit_timeout_s
        raw = await self._request("POST", channel, path, body, timeout_s, "submit", price_action)
        return _as_answer(path, raw)

    async def image_seed(self, channel: Channel, upstream_task_id: str) -> UpstreamAnswer:
        path = f"/mj/task/{upstream_task_id}/image-seed"
        timeout_s = self._settings.fetch_timeout_s
        raw = await self._request("GET", channel, path, None, timeout_s, "image-seed")
        return _as_answer(path, raw)

    async def cancel(self, channel: Channel, upstream_task_id: str) -> UpstreamAnswer:
        path = f"/mj/task/{upstream_task_id}/cancel"
        timeout_s = self._settings.fetch_timeout_s
        raw = await self._request("POST", channel, path, b"{}", timeout_s, "cancel")
        return _as_answer(path, raw)

    async def list_by_condition(
        self, channel: Channel, ids: list[str], known: Mapping[bytes, str] | None = None
    ) -> TaskObjects:
        """The upstream task objects it still knows among ``ids`` (any order), each read on its
        own: those unfit to apply are in ``refused``, and those ``known`` (by digest) are only
        listed as unchanged (``read_task_list``)."""
        raw = await self._request(
            "POST",
            channel,
            "/mj/task/list-by-condition",
            encode_body({"ids": ids}),
            self._settings.fetch_timeout_s,
            "list",
        )
        try:
            return await read_task_list(raw, known)
        except json_input.JsonInputError as exc:
            raise UpstreamBadBody(
                f"{channel.name}: list-by-condition did not answer a list"
            ) from exc

    async def probe(self, channel: Channel) -> ProbeResult:
        """Ask the channel for no task at all (list-by-condition, ``{"ids": []}``), as every
        midjourney-proxy answers: ok when it takes the secret and answers a JSON list, and,
        claiming a flavour with image-seed (plus, trueai), has that route (an open-source build
        answers 404 there). Never raises an ``UpstreamError``; works on any channel, enabled or
        not. It cannot tell whether the channel has a usable account."""
        started = time.perf_counter()
        ok, detail = False, "answered"
        timeout_s = self._settings.probe_timeout_s
        try:
            raw = await self._request("POST", channel, PROBE_PATH, _PROBE_BODY, timeout_s, "probe")
            json_input.array_items(raw)
            if not await self._has_seed_route(channel, timeout_s):
                detail = (
                    f"no image-seed route: not the {channel.flavour} midjourney-proxy it claims"
                )
                return ProbeResult(False, detail, time.perf_counter() - started)
        except UpstreamHttpError as exc:
            detail = "secret refused" if exc.status in (401, 403) else f"HTTP {exc.status}"
        except UpstreamError as exc:
            detail = f"{exc.kind}: {exc}"
        except json_input.JsonInputError:
            detail = "answer is not a task list"
        else:
            ok = True
        return ProbeResult(ok, detail, time.perf_counter() - started)

    async def _has_seed_route(self, channel: Channel, timeout_s: float) -> bool:
        """Whether a channel whose flavour offers image-seed has the route: any answer but a
        404 shows it (open-source builds have none)."""
        if not flavours.offers(channel.flavour, "image_seed"):
            return True
        try:
            await self._request("GET", channel, _SEED_PROBE_PATH, None, timeout_s, "probe")
        except UpstreamHttpError as exc:
            return exc.status != 404
        return True

    async def stream_media(
        self, url: str, channel: Channel, byte_range: str | None = None
    ) -> MediaStream:
        """A task's image or video, streamed; errors before the first byte are raised. ``url``
        is the upstream's word: it is fetched only from ``channel``'s own origin or from a
        public address (``gateway.public_addresses``), and so is every redirect. ``byte_range``
        (a client's ``Range`` header) is passed on; a 206 comes back as it is. There is no
        limit on the whole download (a video takes as long as it takes), only on each wait."""
        headers = {"Accept-Encoding": "identity"}  # byte ranges count bytes as stored
        if byte_range:
            headers["Range"] = byte_range
        for _ in range(MAX_IMAGE_REDIRECTS + 1):
            session = self._session_for(url, channel)
            with _map_transport_errors(url):
                if session is not self.session:
                    public_addresses.refuse_private_literal(url)
                response = await session.get(
                    url, allow_redirects=False, headers=headers, timeout=self._media_timeout
                )
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or location is None:
                break
            response.release()
            url = urljoin(url, location)
        else:
            raise UpstreamHttpError(response.status, "image: too many redirects")
        if response.status not in (200, 206, 416):
            response.release()
            raise UpstreamHttpError(response.status, f"image: HTTP {response.status}")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                with _map_transport_errors(url):
                    async for chunk in response.content.iter_chunked(IMAGE_CHUNK_BYTES):
                        yield chunk
            finally:
                response.release()

        kept = {
            name: response.headers[name]
            for name in ("Content-Length", "Content-Range", "Accept-Ranges")
            if name in response.headers
        }
        if "Content-Encoding" in response.headers:  # the body arrives decoded: another length
            kept.pop("Content-Length", None)
        content_type = response.content_type or "application/octet-stream"
        return MediaStream(response.status, content_type, kept, chunks())

    def _session_for(self, url: str, channel: Channel) -> aiohttp.ClientSession:
        """The channel's own session for its own origin (the operator named it), else the one
        that connects to public addresses only."""
        if _origin(url) == _origin(channel.base_url):
            return self.session
        if self._public_session is None:
            raise RuntimeError("UpstreamClient.start() was not awaited")
        return self._public_session


@dataclass(frozen=True, slots=True)
class MediaStream:
    """An upstream image or video on its way: status 200, 206 (a byte range) or 416, and the
    headers a client needs to page through it."""

    status: int
    content_type: str
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port
