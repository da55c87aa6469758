"""Every row of the contract's table of response codes, produced against real simulators.

Each error is checked for its HTTP status, its code, ``result: null``, a description and
Retry-After where the contract asks for one; then the caller's balance (nothing is charged for an
error) and, where it matters, the simulator's /sim/stats (did anything go upstream).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway import admin
from gateway.domain import KeySettings
from gateway.simulator import RunningSimulator
from tests.api.helpers import (
    DESCRIBE_PRICE,
    IMAGINE_PRICE,
    MODAL_PRICE,
    PNG_1PX,
    UPSCALE_PRICE,
    assert_error,
    button,
    data_url,
    imagine_done,
    ledger_rows,
    ledger_sum,
    sim_requests,
    sim_submits,
    sim_tasks,
    start_sim,
    submitted_id,
)
from tests.conftest import Client, Gateway, StartGateway, StartSimulator

START = 1_000_000
UNKNOWN_TASK_ID = "1000000000000000"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
FOUR_MIB = 4 * 1024 * 1024


async def _gateway_with_channel(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    gateway_groups: dict[str, dict[str, Any]] | None = None,
    **sim_settings: Any,
) -> tuple[Gateway, RunningSimulator, Client]:
    gateway = await gateway_factory(**(gateway_groups or {}))
    sim = await start_sim(simulator_factory, **sim_settings)
    await gateway.add_channel(sim)
    client = await gateway.client_with_key(balance_units=START)
    return gateway, sim, client


async def _post_raw(client: Client, path: str, raw: bytes) -> Any:
    headers = {**client.headers, "Content-Type": "application/json"}
    return await client.gateway.http.post(path, content=raw, headers=headers)


def _case(*values: Any, id: str) -> tuple[Any, ...]:
    return (id, *values)


def _error_problems(name: str, response: Any, status: int, code: int) -> list[str]:
    """``[]`` when ``response`` is the contract's error ``status``/``code``, else what is wrong."""
    try:
        assert_error(response, status, code)
    except (AssertionError, ValueError) as wrong:
        return [f"{name}: {wrong}"]
    return []


# --- 400/21: malformed JSON, missing or wrong field ----------------------------------------------

BAD_BODIES = [
    _case("/mj/submit/imagine", b'{"prompt": "a cat"', id="malformed-json"),
    _case("/mj/submit/imagine", b"not json at all", id="not-json"),
    _case("/mj/submit/imagine", b"", id="empty-body"),
    _case("/mj/submit/imagine", b'["a cat"]', id="not-an-object"),
    _case("/mj/submit/imagine", b"{}", id="missing-prompt"),
    _case("/mj/submit/imagine", b'{"prompt": 42}', id="prompt-not-a-string"),
    _case("/mj/submit/imagine", b'{"prompt": "   "}', id="blank-prompt"),
    _case("/mj/submit/imagine", b'{"prompt": "' + b"a" * 8193 + b'"}', id="prompt-too-long"),
    _case(
        "/mj/submit/imagine",
        b'{"prompt": "a cat", "state": "' + b"s" * 1025 + b'"}',
        id="state-too-long",
    ),
    _case("/mj/submit/imagine", b'{"prompt": "a cat", "botType": "DALL_E"}', id="bad-bot-type"),
    _case(
        "/mj/submit/imagine",
        b'{"prompt": "a cat", "accountFilter": {"modes": ["LUDICROUS"]}}',
        id="bad-mode",
    ),
    _case(
        "/mj/submit/imagine",
        b'{"prompt": "a cat", "notifyHook": "ftp://example.com/hook"}',
        id="notify-hook-not-http",
    ),
    _case("/mj/submit/imagine", b'{"prompt": "a cat", "base64Array": "x"}', id="images-not-a-list"),
    _case("/mj/submit/shorten", b'{"prompt": ""}', id="shorten-empty-prompt"),
    _case("/mj/submit/describe", b"{}", id="describe-missing-image"),
    _case(
        "/mj/submit/blend",
        b'{"base64Array": ["' + PNG_1PX.encode() + b'"]}',
        id="blend-one-image",
    ),
    _case(
        "/mj/submit/blend",
        b'{"base64Array": ["'
        + PNG_1PX.encode()
        + b'", "'
        + PNG_1PX.encode()
        + b'"], "dimensions": "ROUND"}',
        id="blend-bad-dimensions",
    ),
    _case(
        "/mj/submit/change",
        b'{"taskId": "' + UNKNOWN_TASK_ID.encode() + b'", "action": "UPSCALE"}',
        id="change-without-index",
    ),
    _case(
        "/mj/submit/change",
        b'{"taskId": "' + UNKNOWN_TASK_ID.encode() + b'", "action": "UPSCALE", "index": 5}',
        id="change-index-out-of-range",
    ),
    _case(
        "/mj/submit/change",
        b'{"taskId": "' + UNKNOWN_TASK_ID.encode() + b'", "action": "ZOOM", "index": 1}',
        id="change-bad-action",
    ),
    _case("/mj/submit/simple-change", b'{"content": "U1"}', id="simple-change-garbled"),
    _case("/mj/submit/action", b'{"taskId": "1"}', id="action-missing-custom-id"),
    _case(
        "/mj/insight-face/swap",
        b'{"sourceBase64": "'
        + PNG_1PX.encode()
        + b'", "targetBase64": "'
        + PNG_1PX.encode()
        + b'"}',
        id="swap-same-images",
    ),
    _case("/mj/task/list-by-condition", b'{"ids": "1"}', id="list-ids-not-a-list"),
    _case(
        "/mj/task/list-by-condition",
        b'{"ids": [' + b",".join(b'"%d"' % i for i in range(501)) + b"]}",
        id="list-over-500-ids",
    ),
]


async def test_malformed_or_invalid_body_is_400_21(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(gateway_factory, simulator_factory)

    problems: list[str] = []
    for name, path, raw in BAD_BODIES:
        response = await _post_raw(client, path, raw)
        problems += _error_problems(name, response, 400, 21)

    assert problems == []
    assert await client.balance() == START
    assert await sim_submits(gateway.http, sim) == 0


# --- 400/21: bad images --------------------------------------------------------------------------

BAD_IMAGES = [
    _case("https://example.com/cat.png", id="url-not-data-url"),
    _case(base64.b64encode(b"plain text, no image").decode(), id="bare-base64-not-an-image"),
    _case(data_url("image/bmp", b"BM" + b"\x00" * 64), id="unsupported-mime"),
    _case(data_url("text/plain", b"hello"), id="not-an-image-mime"),
    _case(data_url("image/png", JPEG_BYTES), id="jpeg-bytes-declared-png"),
    _case(data_url("image/jpeg", PNG_MAGIC + b"\x00" * 32), id="png-bytes-declared-jpeg"),
    _case(data_url("image/webp", b"plain text, no image"), id="no-magic-number"),
    _case("data:image/png;base64,@@@not base64@@@", id="broken-base64"),
    _case("data:image/png;base64,", id="empty-image"),
    _case(data_url("image/png", PNG_MAGIC + b"\x00" * (FOUR_MIB + 1 - 8)), id="over-4mib"),
]


def _image_bodies(image: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/mj/submit/imagine", {"prompt": "a cat", "base64Array": [image]}),
        ("/mj/submit/describe", {"base64": image}),
        ("/mj/submit/blend", {"base64Array": [PNG_1PX, image]}),
        ("/mj/insight-face/swap", {"sourceBase64": PNG_1PX, "targetBase64": image}),
        ("/mj/submit/upload-discord-images", {"base64Array": [image]}),
    ]


async def test_bad_image_is_400_21(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(gateway_factory, simulator_factory)

    problems: list[str] = []
    for name, image in BAD_IMAGES:
        for path, body in _image_bodies(image):
            response = await client.post(path, body)
            problems += _error_problems(f"{name} {path}", response, 400, 21)

    assert problems == []
    assert await client.balance() == START
    assert await sim_submits(gateway.http, sim) == 0


async def test_image_of_exactly_4mib_is_accepted(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """The other side of the 4 MiB limit: the same image one byte smaller goes upstream.

    The suite turns warnings into errors, so this also fails if forwarding the multi-MB body
    makes aiohttp warn about sending it as raw bytes (it did once).
    """
    gateway, sim, client = await _gateway_with_channel(gateway_factory, simulator_factory)
    image = data_url("image/png", PNG_MAGIC + b"\x00" * (FOUR_MIB - 8))

    response = await client.post("/mj/submit/imagine", {"prompt": "a cat", "base64Array": [image]})

    assert response.status_code not in (400, 413) or "larger" not in response.text, response.text
    assert await sim_requests(gateway.http, sim, "submit/imagine") == 1


# --- 413/21: body over the configured size -------------------------------------------------------


async def test_body_over_configured_size_is_413_21(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(
        gateway_factory, simulator_factory, {"relay": {"max_body_bytes": 2048}}
    )

    assert_error(await client.post("/mj/submit/imagine", {"prompt": "a" * 3000}), 413, 21)
    assert_error(
        await client.post("/mj/submit/describe", {"base64": PNG_1PX, "state": "s" * 2100}),
        413,
        21,
    )
    assert await client.balance() == START
    assert await sim_submits(gateway.http, sim) == 0

    submitted_id(await client.post("/mj/submit/imagine", {"prompt": "a" * 1500}))
    assert await client.balance() == START - IMAGINE_PRICE
    assert await sim_requests(gateway.http, sim, "submit/imagine") == 1


# --- 400/21: unknown customId, parent not SUCCESS ------------------------------------------------


async def test_unknown_custom_id_is_400_21(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(gateway_factory, simulator_factory)
    task = await imagine_done(client)
    after_imagine = START - IMAGINE_PRICE
    upscale_1 = button(task, "U1")
    foreign_hash = "0f0f0f0f-0000-4000-8000-000000000000"
    not_buttons = [
        "nonsense",
        "MJ::JOB::upsample::1",
        upscale_1.rsplit("::", 1)[0] + "::" + foreign_hash,
        "MJ::JOB::upsample::9::" + upscale_1.rsplit("::", 1)[1],
        "MJ::JOB::variation::1::" + foreign_hash,
        "MJ::Outpaint::50::1::" + foreign_hash + "::SOLO",
    ]

    for custom_id in not_buttons:
        response = await client.post(
            "/mj/submit/action", {"taskId": task["id"], "customId": custom_id}
        )
        assert_error(response, 400, 21)

    assert await client.balance() == after_imagine
    assert await sim_requests(gateway.http, sim, "submit/action") == 0

    submitted_id(
        await client.post("/mj/submit/action", {"taskId": task["id"], "customId": upscale_1})
    )
    assert await client.balance() == after_imagine - UPSCALE_PRICE


async def test_parent_task_not_success_is_400_21(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    fast = await start_sim(simulator_factory)
    await gateway.add_channel(fast, name="fast")
    client = await gateway.client_with_key(balance_units=START)

    failed_id = submitted_id(
        await client.post("/mj/submit/imagine", {"prompt": "[[sim:fail_invalid]] a cat"})
    )
    failed = await client.wait_for(failed_id, {"SUCCESS", "FAILURE"})
    assert failed["status"] == "FAILURE", failed
    succeeded = await imagine_done(client)
    balance = await client.balance()
    assert balance == START - IMAGINE_PRICE

    refusals = [
        ("/mj/submit/change", {"taskId": failed_id, "action": "UPSCALE", "index": 1}),
        ("/mj/submit/change", {"taskId": failed_id, "action": "REROLL"}),
        ("/mj/submit/simple-change", {"content": f"{failed_id} V2"}),
        ("/mj/submit/action", {"taskId": failed_id, "customId": button(succeeded, "U1")}),
        ("/mj/submit/modal", {"taskId": succeeded["id"], "prompt": "a cat --zoom 2"}),
    ]
    for path, body in refusals:
        assert_error(await client.post(path, body), 400, 21)
    assert await client.balance() == balance
    assert await sim_submits(gateway.http, fast) == 2  # the two imagines, nothing since


async def test_parent_still_running_is_400_21(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(
        gateway_factory, simulator_factory, speed_factor=5
    )
    parent_id = submitted_id(await client.post("/mj/submit/imagine", {"prompt": "a cat"}))
    parent = (await client.get(f"/mj/task/{parent_id}/fetch")).json()
    assert parent["status"] in {"NOT_START", "SUBMITTED", "IN_PROGRESS"}, parent

    for path, body in [
        ("/mj/submit/change", {"taskId": parent_id, "action": "UPSCALE", "index": 1}),
        ("/mj/submit/simple-change", {"content": f"{parent_id} U1"}),
        ("/mj/submit/change", {"taskId": parent_id, "action": "REROLL"}),
    ]:
        assert_error(await client.post(path, body), 400, 21)

    assert await client.balance() == START - IMAGINE_PRICE
    assert await sim_requests(gateway.http, sim, "submit/change") == 0
    assert await sim_requests(gateway.http, sim, "submit/simple-change") == 0


# --- 400/21 from upstream: banned prompt, validation error ---------------------------------------


async def test_banned_prompt_upstream_is_400_21_with_banned_word_and_no_retry(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    sims = [await start_sim(simulator_factory), await start_sim(simulator_factory)]
    for number, sim in enumerate(sims):
        await gateway.add_channel(sim, name=f"sim-{number}")
    client = await gateway.client_with_key(balance_units=START)

    body = assert_error(
        await client.post("/mj/submit/imagine", {"prompt": "a nsfwword on a beach"}), 400, 21
    )
    assert body["properties"]["bannedWord"] == "nsfwword", body
    assert sum([await sim_requests(gateway.http, sim, "submit/imagine") for sim in sims]) == 1

    body = assert_error(
        await client.post("/mj/submit/imagine", {"prompt": "[[sim:banned]] a quiet lake"}), 400, 21
    )
    assert body["properties"]["bannedWord"], body
    assert sum([await sim_requests(gateway.http, sim, "submit/imagine") for sim in sims]) == 2

    body = assert_error(
        await client.post("/mj/submit/shorten", {"prompt": "forbiddenword in a field"}), 400, 21
    )
    assert body["properties"]["bannedWord"] == "forbiddenword", body
    assert sum([await sim_requests(gateway.http, sim, "submit/shorten") for sim in sims]) == 1

    assert await client.balance() == START
    assert sum([await sim_tasks(gateway.http, sim) for sim in sims]) == 0


async def test_upstream_validation_error_is_400_21_with_its_description(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(gateway_factory, simulator_factory)
    grid = await imagine_done(client)
    response = await client.post(
        "/mj/submit/action", {"taskId": grid["id"], "customId": button(grid, "U1")}
    )
    upscale = await client.wait_for(submitted_id(response), {"SUCCESS", "FAILURE"})
    assert upscale["status"] == "SUCCESS", upscale
    balance = await client.balance()
    assert balance == START - IMAGINE_PRICE - UPSCALE_PRICE

    # An upscale's image is not a grid: the upstream refuses U/V on it with code 4.
    body = assert_error(
        await client.post(
            "/mj/submit/change", {"taskId": upscale["id"], "action": "VARIATION", "index": 1}
        ),
        400,
        21,
    )
    assert "关联任务不允许执行变化" in body["description"], body
    assert await sim_requests(gateway.http, sim, "submit/change") == 1
    assert await client.balance() == balance

    # Custom Zoom needs a modal whose prompt holds --zoom 1..2; without it the upstream says 4.
    zoom = submitted_id(
        await client.post(
            "/mj/submit/action",
            {"taskId": upscale["id"], "customId": button(upscale, "CustomZoom")},
        ),
        code=21,
    )
    body = assert_error(
        await client.post("/mj/submit/modal", {"taskId": zoom, "prompt": "a wide shot"}), 400, 21
    )
    assert "zoom" in body["description"], body
    assert await sim_requests(gateway.http, sim, "submit/modal") == 1
    assert await client.balance() == balance

    # The task is still waiting for its confirmation; a valid one is charged once.
    assert (await client.get(f"/mj/task/{zoom}/fetch")).json()["status"] == "MODAL"
    submitted_id(
        await client.post("/mj/submit/modal", {"taskId": zoom, "prompt": "a wide shot --zoom 2"})
    )
    assert await client.balance() == balance - MODAL_PRICE


# --- 401/24 and 403/24: keys ---------------------------------------------------------------------


async def test_missing_or_unknown_key_is_401_24(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(gateway_factory, simulator_factory)
    unknown = "sk-" + secrets.token_urlsafe(36)
    header_sets: list[dict[str, str]] = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {unknown}"},
        {"Authorization": unknown},
        {"mj-api-secret": unknown},
        {"Authorization": "midjourney-proxy"},
        {"Authorization": "midjourney-proxy", "mj-api-secret": unknown},
        {"Authorization": f"Bearer {client.key}x"},
    ]
    for headers in header_sets:
        response = await gateway.http.post(
            "/mj/submit/imagine", json={"prompt": "a cat"}, headers=headers
        )
        assert_error(response, 401, 24)
        assert_error(await gateway.http.get("/mj/task/list", headers=headers), 401, 24)
        assert_error(
            await gateway.http.get(f"/mj/task/{UNKNOWN_TASK_ID}/fetch", headers=headers), 401, 24
        )

    assert await client.balance() == START
    assert await sim_submits(gateway.http, sim) == 0
    # The same request with the real key goes through.
    submitted_id(
        await gateway.http.post(
            "/mj/submit/imagine", json={"prompt": "a cat"}, headers={"mj-api-secret": client.key}
        )
    )


@pytest.mark.parametrize("refusal", ["disabled", "expired", "ip", "action"])
async def test_refused_key_is_403_24(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, refusal: str
) -> None:
    gateway = await gateway_factory()
    sim = await start_sim(simulator_factory)
    await gateway.add_channel(sim)
    user_id = await gateway.create_user("carol", START)
    options: dict[str, Any] = {
        "expired": {"expires_at": datetime.now(UTC) - timedelta(minutes=1)},
        "ip": {"allowed_cidrs": ["10.0.0.0/8", "2001:db8::/32"]},
        "action": {"allowed_actions": ["mj_upscale", "mj_describe"]},
    }.get(refusal, {})
    issued = await admin.issue_key(gateway.services.pool, user_id, KeySettings(**options))
    if refusal == "disabled":
        await gateway.services.pool.execute(
            "UPDATE api_keys SET enabled = FALSE WHERE id = $1", issued.key_id
        )
    headers = {"Authorization": f"Bearer {issued.key}"}

    submit = await gateway.http.post(
        "/mj/submit/imagine", json={"prompt": "a cat"}, headers=headers
    )
    assert_error(submit, 403, 24)
    if refusal != "action":
        assert_error(await gateway.http.get("/mj/task/list", headers=headers), 403, 24)
    else:
        shorten = await gateway.http.post(
            "/mj/submit/shorten", json={"prompt": "a cat"}, headers=headers
        )
        assert_error(shorten, 403, 24)

    assert await gateway.balance(user_id) == START
    assert await sim_submits(gateway.http, sim) == 0
    # Another key of the same user, without the restriction, works.
    other = await gateway.issue_key(user_id)
    submitted_id(
        await gateway.http.post(
            "/mj/submit/imagine",
            json={"prompt": "a cat"},
            headers={"Authorization": f"Bearer {other}"},
        )
    )


# --- 403/25: insufficient balance ----------------------------------------------------------------


async def test_insufficient_user_balance_is_403_25_and_nothing_goes_upstream(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    sim = await start_sim(simulator_factory)
    await gateway.add_channel(sim)
    poor = await gateway.client_with_key(balance_units=IMAGINE_PRICE - 1, name="poor")
    exact = await gateway.client_with_key(balance_units=IMAGINE_PRICE, name="exact")

    assert_error(await poor.post("/mj/submit/imagine", {"prompt": "a cat"}), 403, 25)
    assert await poor.balance() == IMAGINE_PRICE - 1
    assert await sim_submits(gateway.http, sim) == 0

    submitted_id(await exact.post("/mj/submit/imagine", {"prompt": "a cat"}))
    assert await exact.balance() == 0
    assert_error(await exact.post("/mj/submit/imagine", {"prompt": "a dog"}), 403, 25)
    assert_error(await exact.post("/mj/submit/describe", {"base64": PNG_1PX}), 403, 25)
    assert await exact.balance() == 0
    assert await sim_submits(gateway.http, sim) == 1


async def test_key_quota_limit_is_403_25_and_nothing_goes_upstream(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    sim = await start_sim(simulator_factory)
    await gateway.add_channel(sim)
    user_id = await gateway.create_user("dave", START)
    issued = await admin.issue_key(gateway.services.pool, user_id, KeySettings(quota_units=150_000))
    limited = Client(gateway, user_id, issued.key)

    submitted_id(await limited.post("/mj/submit/imagine", {"prompt": "a cat"}))
    assert_error(await limited.post("/mj/submit/imagine", {"prompt": "a dog"}), 403, 25)
    assert await limited.balance() == START - IMAGINE_PRICE
    left = await gateway.services.pool.fetchval(
        "SELECT quota_remaining_units FROM api_keys WHERE id = $1", issued.key_id
    )
    assert left == 150_000 - IMAGINE_PRICE
    assert await sim_requests(gateway.http, sim, "submit/imagine") == 1

    # What is left on the key still buys a cheaper task; the user's balance is not the limit.
    submitted_id(await limited.post("/mj/submit/describe", {"base64": PNG_1PX}))
    assert await limited.balance() == START - IMAGINE_PRICE - DESCRIBE_PRICE


# --- 404/21: unknown or foreign task -------------------------------------------------------------


async def test_unknown_or_foreign_task_is_404_21(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, alice = await _gateway_with_channel(gateway_factory, simulator_factory)
    task = await imagine_done(alice)
    bob = await gateway.client_with_key(balance_units=START, name="bob")
    foreign = task["id"]

    for task_id in [UNKNOWN_TASK_ID, "abc", "12345678901234567890", foreign]:
        assert_error(await bob.get(f"/mj/task/{task_id}/fetch"), 404, 21)
        assert_error(await bob.get(f"/mj/task/{task_id}/image-seed"), 404, 21)
    for task_id in [UNKNOWN_TASK_ID, foreign]:
        for path, body in [
            ("/mj/submit/action", {"taskId": task_id, "customId": button(task, "U1")}),
            ("/mj/submit/change", {"taskId": task_id, "action": "UPSCALE", "index": 1}),
            ("/mj/submit/simple-change", {"content": f"{task_id} U1"}),
            ("/mj/submit/modal", {"taskId": task_id, "prompt": "a cat --zoom 2"}),
        ]:
            assert_error(await bob.post(path, body), 404, 21)

    listed = await bob.post("/mj/task/list-by-condition", {"ids": [foreign, UNKNOWN_TASK_ID]})
    assert listed.status_code == 200
    assert listed.json() == []
    assert await bob.balance() == START
    assert await alice.balance() == START - IMAGINE_PRICE
    for route in ("submit/action", "submit/change", "submit/modal", "task/image-seed"):
        assert await sim_requests(gateway.http, sim, route) == 0, route
    # Alice herself reaches her task.
    assert (await alice.get(f"/mj/task/{foreign}/fetch")).json()["id"] == foreign


# --- 429/23: rate limit and concurrent-task cap --------------------------------------------------


async def test_rate_limit_is_429_23_with_retry_after(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(gateway_factory, simulator_factory)
    await gateway.services.pool.execute(
        "UPDATE api_keys SET requests_per_minute = 2 WHERE user_id = $1", client.user_id
    )

    codes = []
    for _ in range(4):
        response = await client.post("/mj/submit/imagine", {"prompt": "a cat"})
        codes.append(response.status_code)
        if response.status_code == 429:
            assert_error(response, 429, 23, retry_after=True)
    assert codes == [200, 200, 429, 429], codes
    assert await client.balance() == START - 2 * IMAGINE_PRICE
    assert await sim_requests(gateway.http, sim, "submit/imagine") == 2


async def test_concurrent_task_cap_is_429_23_with_retry_after(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(
        gateway_factory, simulator_factory, speed_factor=5
    )
    await gateway.services.pool.execute(
        "UPDATE api_keys SET max_open_tasks = 1 WHERE user_id = $1", client.user_id
    )

    submitted_id(await client.post("/mj/submit/imagine", {"prompt": "a cat"}))
    response = await client.post("/mj/submit/imagine", {"prompt": "a dog"})
    assert_error(response, 429, 23, retry_after=True)
    assert await client.balance() == START - IMAGINE_PRICE
    assert await sim_requests(gateway.http, sim, "submit/imagine") == 1


# --- 503/23 queue full, 503/24 no account --------------------------------------------------------


async def test_every_eligible_queue_full_is_503_23_with_retry_after(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    sims = [await start_sim(simulator_factory, faults={"queue_full": 1.0}) for _ in range(2)]
    for number, sim in enumerate(sims):
        await gateway.add_channel(sim, name=f"full-{number}")
    client = await gateway.client_with_key(balance_units=START)

    assert_error(
        await client.post("/mj/submit/imagine", {"prompt": "a cat"}), 503, 23, retry_after=True
    )

    assert await client.balance() == START
    for sim in sims:
        assert await sim_requests(gateway.http, sim, "submit/imagine") == 1
        assert await sim_tasks(gateway.http, sim) == 0


async def test_really_full_upstream_is_503_23_with_retry_after(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """Not an injected answer: one account, one slot, no waiting line, the slot taken."""
    gateway, sim, client = await _gateway_with_channel(
        gateway_factory, simulator_factory, accounts=1, core_size=1, queue_size=0, speed_factor=5
    )
    submitted_id(await client.post("/mj/submit/imagine", {"prompt": "a cat"}))

    assert_error(
        await client.post("/mj/submit/imagine", {"prompt": "a dog"}), 503, 23, retry_after=True
    )
    assert await client.balance() == START - IMAGINE_PRICE
    assert await sim_requests(gateway.http, sim, "submit/imagine") == 2
    assert await sim_tasks(gateway.http, sim) == 1


async def test_no_channel_with_a_usable_account_is_503_24(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    client = await gateway.client_with_key(balance_units=START)

    # No channel at all.
    assert_error(await client.post("/mj/submit/imagine", {"prompt": "a cat"}), 503, 24)

    # A working channel that serves only RELAX is no channel for a FAST task.
    relax = await start_sim(simulator_factory)
    await gateway.add_channel(relax, name="relax-only", modes=["RELAX"])
    assert_error(await client.post("/mj/submit/imagine", {"prompt": "a dog --fast"}), 503, 24)
    assert await sim_requests(gateway.http, relax, "submit/imagine") == 0

    # Channels whose simulators have no account: each answers 3.
    sims = [await start_sim(simulator_factory, accounts=0) for _ in range(2)]
    for number, sim in enumerate(sims):
        await gateway.add_channel(sim, name=f"empty-{number}")
    assert_error(await client.post("/mj/submit/imagine", {"prompt": "a cat"}), 503, 24)
    for sim in sims:
        assert await sim_requests(gateway.http, sim, "submit/imagine") == 1

    # Both now rest: resting is not missing. 503/23, back when the first rest ends.
    resting = await client.post("/mj/submit/imagine", {"prompt": "a cat"})
    assert "resting" in assert_error(resting, 503, 23)["description"]
    assert 1 <= int(resting.headers["Retry-After"]) <= 30
    for sim in sims:
        assert await sim_requests(gateway.http, sim, "submit/imagine") == 1

    assert await client.balance() == START
    assert await gateway.services.pool.fetchval("SELECT count(*) FROM holds") == 1


async def test_no_account_upstream_on_every_channel_with_marker_is_503_24(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    sims = [await start_sim(simulator_factory) for _ in range(2)]
    for number, sim in enumerate(sims):
        await gateway.add_channel(sim, name=f"sim-{number}")
    client = await gateway.client_with_key(balance_units=START)

    assert_error(
        await client.post("/mj/submit/imagine", {"prompt": "[[sim:no_account]] a cat"}), 503, 24
    )
    assert await client.balance() == START
    for sim in sims:
        assert await sim_requests(gateway.http, sim, "submit/imagine") == 1


# --- 502/23 and 504/23: upstream failed or timed out ---------------------------------------------


@pytest.mark.parametrize("fault", ["http_500", "not_json", "system_error", "drop_connection"])
async def test_upstream_failed_on_every_channel_is_502_23(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, fault: str
) -> None:
    gateway = await gateway_factory()
    sims = [await start_sim(simulator_factory, faults={fault: 1.0}) for _ in range(2)]
    for number, sim in enumerate(sims):
        await gateway.add_channel(sim, name=f"broken-{number}")
    client = await gateway.client_with_key(balance_units=START)

    assert_error(await client.post("/mj/submit/imagine", {"prompt": "a cat"}), 502, 23)
    assert_error(await client.post("/mj/submit/describe", {"base64": PNG_1PX}), 502, 23)

    assert await client.balance() == START
    assert await ledger_sum(gateway, client.user_id) == START
    for sim in sims:
        assert await sim_requests(gateway.http, sim, "submit/imagine") == 1
        assert await sim_requests(gateway.http, sim, "submit/describe") == 1
        assert await sim_tasks(gateway.http, sim) == 0


async def test_upstream_timed_out_on_every_channel_is_504_23(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(upstream={"submit_timeout_s": 0.3})
    sims = [
        await start_sim(simulator_factory, faults={"slow": 1.0, "slow_answer_s": 1.0})
        for _ in range(2)
    ]
    for number, sim in enumerate(sims):
        await gateway.add_channel(sim, name=f"slow-{number}")
    client = await gateway.client_with_key(balance_units=START)

    started = time.monotonic()
    response = await client.post("/mj/submit/imagine", {"prompt": "a cat"})
    elapsed = time.monotonic() - started

    assert_error(response, 504, 23)
    assert elapsed < 1.5, elapsed  # two tries of 0.3 s, not two slow answers of 1 s
    assert await client.balance() == START
    for sim in sims:
        assert await sim_requests(gateway.http, sim, "submit/imagine") == 1


async def test_upstream_slow_answer_by_marker_is_504_23(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(
        gateway_factory, simulator_factory, {"upstream": {"submit_timeout_s": 0.3}}
    )

    response = await client.post("/mj/submit/imagine", {"prompt": "[[sim:slow=1]] a cat"})

    assert_error(response, 504, 23)
    assert await client.balance() == START
    assert await sim_requests(gateway.http, sim, "submit/imagine") == 1
    # A quick answer within the same timeout is accepted.
    submitted_id(await client.post("/mj/submit/imagine", {"prompt": "[[sim:slow=0.05]] a dog"}))


async def test_wrong_channel_secret_everywhere_is_an_error_with_nothing_charged(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """HTTP 401 from every upstream: the contract leaves the final row open (no usable account
    is the natural reading); it must be one of the documented upstream error rows."""
    gateway = await gateway_factory()
    sims = [await start_sim(simulator_factory, faults={"http_401": 1.0}) for _ in range(2)]
    for number, sim in enumerate(sims):
        await gateway.add_channel(sim, name=f"locked-{number}")
    client = await gateway.client_with_key(balance_units=START)

    response = await client.post("/mj/submit/imagine", {"prompt": "a cat"})

    assert (response.status_code, response.json()["code"]) in {(503, 24), (502, 23)}, response.text
    assert_error(response, response.status_code, response.json()["code"])
    assert await client.balance() == START


# --- 200/1 queued, 200/22 pass-through, 200/21 modal ---------------------------------------------


@pytest.mark.parametrize(("passthrough", "code"), [(False, 1), (True, 22)])
async def test_queued_upstream_answer(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, passthrough: bool, code: int
) -> None:
    gateway, sim, client = await _gateway_with_channel(
        gateway_factory,
        simulator_factory,
        {"relay": {"queued_passthrough": passthrough}},
        accounts=1,
        core_size=1,
        queue_size=5,
        speed_factor=5,
    )
    running = await client.post("/mj/submit/imagine", {"prompt": "a cat"})
    submitted_id(running, code=1)
    assert "numberOfQueues" not in (running.json().get("properties") or {})

    for ahead in range(2):
        response = await client.post("/mj/submit/imagine", {"prompt": f"a dog {ahead}"})
        task_id = submitted_id(response, code=code)
        body = response.json()
        assert body["properties"]["numberOfQueues"] == ahead, body
        assert f"排队中，前面还有{ahead}个任务" in body["description"], body
        task = (await client.get(f"/mj/task/{task_id}/fetch")).json()
        assert task["status"] in {"NOT_START", "SUBMITTED"}, task

    assert await client.balance() == START - 3 * IMAGINE_PRICE
    assert await sim_tasks(gateway.http, sim) == 3


async def test_modal_needed_is_200_21_with_the_new_task_id(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(gateway_factory, simulator_factory)
    response = await client.post("/mj/submit/describe", {"base64": PNG_1PX})
    described = await client.wait_for(submitted_id(response), {"SUCCESS", "FAILURE"})
    assert described["status"] == "SUCCESS", described
    balance = await client.balance()
    assert balance == START - DESCRIBE_PRICE

    response = await client.post(
        "/mj/submit/action",
        {"taskId": described["id"], "customId": button(described, "PicReader::1")},
    )

    modal_id = submitted_id(response, code=21)
    body = response.json()
    assert body["description"], body
    assert modal_id != described["id"]
    task = (await client.get(f"/mj/task/{modal_id}/fetch")).json()
    assert task["status"] == "MODAL", task
    assert task["id"] == modal_id
    assert await client.balance() == balance  # the charge moves to the /modal call

    confirmed = await client.post("/mj/submit/modal", {"taskId": modal_id, "prompt": "a cat"})
    assert submitted_id(confirmed) == modal_id
    assert await client.balance() == balance - MODAL_PRICE
    done = await client.wait_for(modal_id, {"SUCCESS", "FAILURE"})
    assert done["status"] == "SUCCESS", done
    assert await sim_requests(gateway.http, sim, "submit/modal") == 1


async def test_remix_variation_is_200_21_modal(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    _gateway, _sim, client = await _gateway_with_channel(
        gateway_factory, simulator_factory, remix=True
    )
    grid = await imagine_done(client)
    balance = await client.balance()

    response = await client.post(
        "/mj/submit/change", {"taskId": grid["id"], "action": "VARIATION", "index": 2}
    )

    modal_id = submitted_id(response, code=21)
    assert (await client.get(f"/mj/task/{modal_id}/fetch")).json()["status"] == "MODAL"
    assert await client.balance() == balance


# --- accepted, then failed upstream: refunded exactly once ---------------------------------------


@pytest.mark.parametrize(
    ("marker", "reason"),
    [
        ("fail_banned", "[Banned prompt detected]"),
        ("fail_invalid", "[Invalid parameter]"),
        ("stall", "任务超时"),
    ],
)
async def test_task_failing_after_acceptance_is_refunded_exactly_once(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, marker: str, reason: str
) -> None:
    # A stalled task fails at the simulator's task timeout: 300 s, i.e. 0.3 s at speed 1000.
    gateway, _sim, client = await _gateway_with_channel(
        gateway_factory, simulator_factory, task_timeout_s=300.0
    )

    task_id = submitted_id(
        await client.post("/mj/submit/imagine", {"prompt": f"[[sim:{marker}]] a cat"})
    )
    assert await client.balance() == START - IMAGINE_PRICE

    task = await client.wait_for(task_id, {"SUCCESS", "FAILURE", "CANCEL"})
    assert task["status"] == "FAILURE", task
    assert task["failReason"], task
    assert task["failReason"].startswith(reason), task

    assert await client.balance() == START  # refunded with the update that ended it
    await asyncio.sleep(0.3)  # several more poll rounds: no second refund
    assert await client.balance() == START
    assert await ledger_rows(gateway, task_id, "REFUND") == 1
    assert await ledger_sum(gateway, client.user_id) == START


# --- 500/23: unexpected error --------------------------------------------------------------------


async def test_unexpected_error_is_500_23(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, sim, client = await _gateway_with_channel(gateway_factory, simulator_factory)
    # Break the test's own database under the gateway: holds can no longer be written.
    await gateway.services.pool.execute("ALTER TABLE holds RENAME TO holds_gone")

    response = await client.post("/mj/submit/imagine", {"prompt": "a cat"})

    body = assert_error(response, 500, 23)
    assert "holds" not in body["description"]
    assert await client.balance() == START
    assert await sim_submits(gateway.http, sim) == 0
