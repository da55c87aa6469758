"""Every answer carries a request id: the client's own when it sent a sane one, else a new one
that no other answer shares; and the request's summary line carries it too."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
import structlog

from gateway.config import LogSettings
from gateway.logging import configure_logging
from tests.conftest import StartGateway


async def test_a_sane_client_id_is_echoed_and_any_other_replaced_by_a_fresh_one(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()

    echoed = await gateway.http.get("/healthz", headers={"X-Request-Id": "trace-42.a_b"})
    refused = await gateway.http.get("/healthz", headers={"X-Request-Id": "no spaces\tplease"})
    fresh = [(await gateway.http.get("/healthz")).headers["x-request-id"] for _ in range(50)]

    assert echoed.headers["x-request-id"] == "trace-42.a_b"
    assert re.fullmatch(r"[0-9a-f]{16}", refused.headers["x-request-id"])
    assert all(re.fullmatch(r"[0-9a-f]{16}", rid) for rid in fresh)
    assert len(set(fresh)) == 50


@pytest.fixture
def info_lines() -> Iterator[None]:
    """This process logging as a served gateway does, at INFO, for one test."""
    root = logging.getLogger()
    before = (structlog.get_config(), root.handlers[:], root.level)
    configure_logging(LogSettings(level="INFO", format="json"))
    yield
    structlog.configure(**before[0])
    root.handlers[:] = before[1]
    root.setLevel(before[2])


@pytest.mark.usefixtures("info_lines")
async def test_the_summary_line_of_a_request_carries_its_id(
    gateway_factory: StartGateway, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = await gateway_factory()

    answer = await gateway.http.get("/mj/task/1/fetch", headers={"X-Request-Id": "find-me-1"})

    assert answer.status_code == 401
    lines = [r.msg for r in caplog.records if r.name == "gateway.request"]
    summary = [line for line in lines if isinstance(line, dict) and line.get("event") == "request"]
    assert len(summary) == 1, lines
    assert summary[0]["request_id"] == "find-me-1"
    assert summary[0]["status"] == 401
    assert summary[0]["path"] == "/mj/task/1/fetch"
