"""Reading upstream task objects, pure: the newer media keys, and what is left out of them."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.tasks.views import without_leading_urls
from gateway.upstream.task_objects import (
    MAX_MEDIA_ITEMS,
    UnfitTaskObject,
    digest,
    parse_task_object,
    read_task_list,
)

BASE = {"id": "1", "status": "SUCCESS", "progress": "100%"}


def test_single_images_and_videos_are_read_with_their_thumbnails() -> None:
    update = parse_task_object(
        {
            **BASE,
            "imageUrls": [
                {"url": "https://cdn.test/1.png", "thumbnail": "https://cdn.test/1.webp"}
            ],
            "videoUrl": "https://cdn.test/v1.mp4",
            "videoUrls": [{"url": "https://cdn.test/v2.mp4"}],
        }
    )
    assert update.media == {
        "images": [{"url": "https://cdn.test/1.png", "thumbnail": "https://cdn.test/1.webp"}],
        "videos": [
            {"url": "https://cdn.test/v1.mp4", "thumbnail": None},
            {"url": "https://cdn.test/v2.mp4", "thumbnail": None},
        ],
    }


@pytest.mark.parametrize(
    "media",
    [
        {"imageUrls": [{"url": ""}, {"url": "/relative.png"}, "javascript:alert(1)", 7, None]},
        {"imageUrls": "https://cdn.test/1.png", "videoUrl": "file:///etc/passwd"},
        {"videoUrls": [{"thumbnail": "https://cdn.test/t.webp"}]},
    ],
)
def test_unfit_media_items_are_left_out_and_the_task_still_reads(media: dict[str, Any]) -> None:
    update = parse_task_object({**BASE, **media})
    assert update.status == "SUCCESS"
    assert update.media == {}


def test_media_lists_are_cut_to_their_bound() -> None:
    many = [f"https://cdn.test/{n}.png" for n in range(100)]
    update = parse_task_object({**BASE, "imageUrls": many})
    assert len(update.media["images"]) == MAX_MEDIA_ITEMS


BUTTON = {"customId": "MJ::JOB::upsample::1::h", "emoji": "", "label": "U1", "type": 2, "style": 2}


def test_a_button_is_kept_with_its_five_keys_only() -> None:
    sparse = {"customId": "MJ::JOB::reroll::0::h::SOLO", "emoji": None, "type": None}
    update = parse_task_object({**BASE, "buttons": [{**BUTTON, "url": "x"}, sparse]})
    assert update.buttons == [
        BUTTON,
        {**dict.fromkeys(("emoji", "label", "type", "style")), **sparse},
    ]


@pytest.mark.parametrize(
    "unfit",
    [
        {"customId": ""},
        {"customId": 7},
        {"customId": "x" * 513},
        {"emoji": "e" * 257},
        {"label": 1},
        {"type": "2"},
        {"style": -1},
        {"style": 2**31},
        {"type": 2.0},
    ],
)
def test_a_button_out_of_shape_refuses_its_object(unfit: dict[str, Any]) -> None:
    with pytest.raises(UnfitTaskObject) as refused:
        parse_task_object({**BASE, "buttons": [BUTTON, {**BUTTON, **unfit}]})
    assert refused.value.reason == "buttons"
    assert refused.value.upstream_task_id == "1"


@pytest.mark.parametrize(
    ("text", "urls", "left"),
    [
        ("https://up.test/a.png a quiet pond", 1, "a quiet pond"),
        ("<https://up.test/a.png> https://up.test/b.png a pond", 2, "a pond"),
        (
            "https://up.test/a.png https://mine.test/b.png a pond",
            1,
            "https://mine.test/b.png a pond",
        ),
        ("a quiet pond", 2, "a quiet pond"),  # a translation with no links: nothing to take off
        ("cat", 3, "cat"),
        ("https://up.test/a.png https://up.test/b.png", 2, ""),
        ("https://up.test/a.png cat", 0, "https://up.test/a.png cat"),
    ],
)
def test_only_the_upstreams_leading_links_are_taken_off(text: str, urls: int, left: str) -> None:
    assert without_leading_urls(text, urls) == left


async def test_a_list_item_known_by_its_digest_is_not_read_again() -> None:
    running = b'{"id": "u1", "status": "IN_PROGRESS", "progress": "31%"}'
    moved_on = b'{"id": "u2", "status": "SUCCESS", "progress": "100%"}'
    first = await read_task_list(b"[" + running + b"," + moved_on + b"]")
    assert [u.upstream_task_id for u in first.updates] == ["u1", "u2"]
    assert first.digests == {"u1": digest(running), "u2": digest(moved_on)}

    known = {digest(running): "u1", digest(b'{"id": "u2", "status": "IN_PROGRESS"}'): "u2"}
    again = await read_task_list(b"[" + running + b", " + moved_on + b"]", known)
    assert again.unchanged == ["u1"]
    assert [u.upstream_task_id for u in again.updates] == ["u2"]  # changed: read
    assert again.upstream_ids() == {"u1", "u2"}  # both are still the channel's
