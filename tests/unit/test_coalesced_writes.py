"""A connection's writes within one turn of the event loop leave in one system call, in order,
and a close sends what is pending first: over a real loopback connection."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.server import CoalescedWrites


class _CountedWrites:
    """A real transport, with the calls to its ``write`` recorded."""

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self.calls: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.calls.append(data)
        self._transport.write(data)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def test_writes_of_one_turn_go_out_as_one_and_a_close_sends_what_is_pending() -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await received.put(await reader.read())  # to the end of the stream
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    counted = _CountedWrites(transport)
    writes = CoalescedWrites(counted, loop)  # type: ignore[arg-type]
    try:
        writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        writes.write(b"{}")
        assert counted.calls == []
        await asyncio.sleep(0)
        assert counted.calls == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]

        writes.write(b"next")
        await asyncio.sleep(0)
        writes.write(b" and last")
        writes.close()

        assert counted.calls[1:] == [b"next", b" and last"]
        everything = await asyncio.wait_for(received.get(), timeout=5)
        assert everything == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}next and last"
        await asyncio.sleep(0)  # the flush scheduled with the last write finds nothing to send
        assert len(counted.calls) == 3
    finally:
        transport.close()
        server.close()
        await server.wait_closed()
