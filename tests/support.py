"""Small helpers for tests that are not fixtures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import redis.asyncio as aioredis

from gateway.sealing import SecretBox
from gateway.storage import holds
from gateway.storage.holds import Held, NewTask

SEALING_KEY = "test-sealing-key-of-channel-secrets"
BOX = SecretBox(SEALING_KEY.encode())
"""The box of the tests' gateways, for channels a test adds straight in the database."""

TASK_KEY_ORDER = (
    "id",
    "action",
    "status",
    "progress",
    "prompt",
    "promptEn",
    "description",
    "state",
    "submitTime",
    "startTime",
    "finishTime",
    "imageUrl",
    "failReason",
    "buttons",
    "properties",
)
TASK_KEYS = frozenset(TASK_KEY_ORDER)
"""Every key of a midjourney-proxy-plus task object, always present (null where unknown)."""


def imagine_task(
    user_id: int, key_id: int, price_units: int, prompt: str = "a fox", submit_time_ms: int = -1
) -> NewTask:
    """An imagine about to be held, as the submit path records it (submitted now, by default)."""
    return NewTask(
        user_id=user_id,
        api_key_id=key_id,
        parent_id=None,
        action="IMAGINE",
        price_action="mj_imagine",
        mode="FAST",
        bot_type="MID_JOURNEY",
        price_units=price_units,
        prompt=prompt,
        state=None,
        notify_hook=None,
        submit_time_ms=submit_time_ms if submit_time_ms >= 0 else int(time.time() * 1000),
    )


async def hold_imagine(
    pool: asyncpg.Pool, user_id: int, key_id: int, price_units: int, prompt: str = "a fox"
) -> Held:
    """A SUBMITTING imagine with its open hold, as if its upstream call were under way."""
    held = await holds.hold_new_task(
        pool, imagine_task(user_id, key_id, price_units, prompt), 600.0
    )
    assert isinstance(held, Held), held
    return held


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server (TCP or Unix-socket URLs)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class TcpProxy:
    """A TCP forwarder on loopback that a test can cut (every connection closed, no new ones
    accepted) and restore on the same port: a network fault between the gateway and a store."""

    def __init__(self, connect: Callable[[], Awaitable[Streams]]) -> None:
        self._connect = connect
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @classmethod
    def to_database(cls, url: str) -> tuple[TcpProxy, Callable[[int], str]]:
        """A proxy to the PostgreSQL of ``url`` (TCP, or the Unix socket of an embedded server),
        and how to make the URL that goes through it from the proxy's port."""
        parts = urlsplit(url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        port = parts.port or 5432
        if socket_dir.startswith("/"):
            path = f"{socket_dir}/.s.PGSQL.{port}"
            proxy = cls(lambda: asyncio.open_unix_connection(path))
        else:
            host = parts.hostname or "127.0.0.1"
            proxy = cls(lambda: asyncio.open_connection(host, port))
        user = parts.username or "postgres"
        password = f":{parts.password}" if parts.password else ""

        def through(proxy_port: int) -> str:
            netloc = f"{user}{password}@127.0.0.1:{proxy_port}"
            return urlunsplit(parts._replace(netloc=netloc, query=""))

        return proxy, through

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await self._connect()
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


async def seconds_left_in_minute(redis: aioredis.Redis) -> float:
    """Seconds until the current clock minute ends by the Redis server's clock, which is the
    clock the gateway's per-minute windows follow."""
    seconds, micros = await redis.time()
    return 60.0 - (seconds % 60 + micros / 1_000_000)


async def within_one_minute(redis: aioredis.Redis, needed_s: float) -> None:
    """Wait for the next clock minute unless ``needed_s`` are left in this one, so that a
    test's requests all fall in one rate-limit window."""
    left_s = await seconds_left_in_minute(redis)
    if left_s < needed_s:
        await asyncio.sleep(left_s + 0.05)


async def until(
    check: Callable[[], object], what: str = "not in time", timeout_s: float = 15.0
) -> None:
    """Wait until ``check()`` is true; fail the test with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def subscribed(redis: aioredis.Redis, channel: str, count: int) -> None:
    """Wait until ``count`` clients listen on the pub/sub ``channel``."""
    deadline = time.monotonic() + 15.0
    while (await redis.pubsub_numsub(channel))[0][1] < count:
        assert time.monotonic() < deadline, f"fewer than {count} listen on {channel}"
        await asyncio.sleep(0.01)
