"""The server's own bounds on a connection: request heads too large, too many headers, too slow;
how long an idle connection stays open; and TCP_NODELAY on every accepted connection."""

from __future__ import annotations

import asyncio
import json
import socket

from gateway.server import bind_socket
from tests.conftest import Gateway, StartGateway

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _connect(gateway: Gateway) -> Streams:
    host, port = gateway.base_url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of the one answer on a connection the server then closes."""
    raw = await asyncio.wait_for(reader.read(), timeout=10.0)
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def _send_head(gateway: Gateway, head: bytes) -> tuple[int, bytes]:
    reader, writer = await _connect(gateway)
    writer.write(head)
    try:
        return await _answer(reader)
    finally:
        writer.close()


def _refusal(body: bytes) -> dict[str, object]:
    answer: dict[str, object] = json.loads(body)
    assert answer["code"] == 21, answer
    assert answer["result"] is None, answer
    return answer


async def test_a_head_too_large_or_with_too_many_headers_is_431(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()
    big_value = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    many += b"".join(b"X-%d: 1\r\n" % n for n in range(150)) + b"\r\n"
    long_url = b"GET /healthz?" + b"q" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    for head in (big_value, many, long_url):
        status, body = await _send_head(gateway, head)
        assert status == 431
        assert "headers" in str(_refusal(body)["description"])

    fine = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX: " + b"a" * 20_000
    assert (await _send_head(gateway, fine + b"\r\n\r\n"))[0] == 200


async def test_a_head_that_never_ends_is_cut_off_after_the_limit(
    gateway_factory: StartGateway,
) -> None:
    """Eight clients stream endless headers: each is answered 431 and disconnected once the
    server has read about its limit, and the gateway answers everyone else meanwhile."""
    gateway = await gateway_factory()

    async def endless() -> tuple[int, int]:
        reader, writer = await _connect(gateway)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:
                writer.write(b"a" * 65_536)
                await writer.drain()
                sent += 65_536
        except (ConnectionError, OSError):
            pass
        try:
            status, _ = await _answer(reader)
        except ConnectionResetError:  # the server closed with our bytes unread: a reset
            status = 0
        finally:
            writer.close()
        return status, sent

    results = await asyncio.gather(*(endless() for _ in range(8)))
    for status, sent in results:
        assert status in (431, 0)
        assert sent < 16 * 1024 * 1024, sent  # cut off long before the client was done
    assert (await gateway.http.get("/healthz")).status_code == 200


async def test_a_head_not_received_in_time_is_408(gateway_factory: StartGateway) -> None:
    gateway = await gateway_factory(server={"header_timeout_s": 0.3})
    reader, writer = await _connect(gateway)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and then nothing more
    try:
        status, body = await _answer(reader)
    finally:
        writer.close()
    assert status == 408
    _refusal(body)

    silent_reader, silent_writer = await _connect(gateway)  # never sends a byte: closed
    assert await asyncio.wait_for(silent_reader.read(), timeout=5.0) == b""
    silent_writer.close()


async def _status_kept_alive(reader: asyncio.StreamReader) -> int:
    """The status of the next answer on a connection the server keeps open."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10.0)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def test_an_idle_connection_stays_open_for_the_keep_alive_time(
    gateway_factory: StartGateway,
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    short, usual = await gateway_factory(server={"keep_alive_s": 1}), await gateway_factory()
    connections = [await _connect(gateway) for gateway in (short, usual)]
    for reader, writer in connections:
        writer.write(request)
        assert await _status_kept_alive(reader) == 200
    await asyncio.sleep(1.6)  # longer than the short one, far shorter than the usual 75 s
    (short_reader, _), (usual_reader, usual_writer) = connections
    assert await asyncio.wait_for(short_reader.read(), timeout=1.0) == b""  # closed by now
    usual_writer.write(request)
    assert await _status_kept_alive(usual_reader) == 200  # still open: answered again
    for _, writer in connections:
        writer.close()


async def test_a_large_body_is_not_counted_as_its_head(gateway_factory: StartGateway) -> None:
    gateway = await gateway_factory()
    body = json.dumps({"ids": ["1"] * 400, "pad": "x" * 100_000}).encode()
    head = (
        b"POST /mj/task/list-by-condition HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    status, answer = await _send_head(gateway, head + body)
    assert status == 401, answer  # read whole, then refused for want of a key


async def test_accepted_connections_have_tcp_nodelay() -> None:
    """Small writes are sent at once: no 40 ms wait for a delayed ACK on kept-alive
    connections (asyncio sets the option only on sockets made with IPPROTO_TCP)."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await asyncio.get_running_loop().create_server(Probe, sock=bind_socket("127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert await asyncio.wait_for(seen, timeout=5.0) == 1
    finally:
        writer.close()
        server.close()
