"""The submit endpoints' own checks, in the proxies' order, turned into engine calls.

One function per endpoint, ``(engine, body, origin) -> SubmitAnswer``; a failed check raises
``Invalid`` (code 4) or ``BadRequest`` (HTTP 400). Nothing here touches HTTP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from gateway.simulator import protocol
from gateway.simulator.buttons import Output, Profile
from gateway.simulator.engine import Engine, NewTask, Origin
from gateway.simulator.faults import strip_markers
from gateway.simulator.prompts import aspect_ratio
from gateway.simulator.protocol import Dimensions, ReturnCode, SubmitAnswer, TaskAction, fail
from gateway.simulator.validation import (
    Body,
    Invalid,
    banned_word,
    decode_data_url,
    decode_data_urls,
    parse_simple_change,
)

SubmitHandler = Callable[[Engine, Body, Origin], SubmitAnswer]

_CHANGE_ACTIONS = frozenset({TaskAction.UPSCALE, TaskAction.VARIATION, TaskAction.REROLL})


def _required_prompt(body: Body) -> str:
    prompt = (body.text("prompt") or "").strip()
    if not prompt:
        raise Invalid(protocol.PROMPT_EMPTY)
    return prompt


def _banned(prompt_en: str) -> SubmitAnswer | None:
    word = banned_word(prompt_en)
    if word is None:
        return None
    return fail(ReturnCode.BANNED_PROMPT, protocol.BANNED, promptEn=prompt_en, bannedWord=word)


def imagine(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    prompt = _required_prompt(body)
    prompt_en, _ = strip_markers(prompt)
    banned = _banned(prompt_en)
    if banned is not None:
        return banned
    sources = body.texts("base64Array") or []
    single = body.text("base64")
    images = decode_data_urls([*sources, single] if single else sources)
    if images:
        urls = " ".join(engine.add_upload(image) for image in images)
        prompt, prompt_en = f"{urls} {prompt}", f"{urls} {prompt_en}"
    spec = NewTask(
        TaskAction.IMAGINE,
        Output.GRID,
        Profile.FULL,
        prompt,
        prompt_en,
        lambda _task_id: f"/imagine {prompt}",
        aspect_ratio(prompt_en),
    )
    return engine.submit(spec, origin)


def blend(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    sources = body.texts("base64Array")
    if sources is None or not 2 <= len(sources) <= 5:
        raise Invalid(protocol.BASE64_LIST_INVALID)
    dimensions = body.enum("dimensions", Dimensions)
    if dimensions is None:
        if body.has("dimensions"):
            raise Invalid(protocol.DIMENSIONS_INVALID)
        dimensions = Dimensions.SQUARE
    count = len(decode_data_urls(sources))
    spec = NewTask(
        TaskAction.BLEND,
        Output.GRID,
        Profile.FULL,
        None,
        None,
        lambda task_id: f"/blend {task_id} {count}",
        dimensions.ratio,
    )
    return engine.submit(spec, origin)


def describe(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    source = body.text("base64")
    if not source or not source.strip():
        raise Invalid(protocol.BASE64_EMPTY)
    image = decode_data_url(source)
    spec = NewTask(
        TaskAction.DESCRIBE,
        Output.DESCRIBE,
        Profile.TEXT,
        None,
        None,
        lambda task_id: f"/describe {task_id}.{image.suffix}",
        input_image_url=engine.add_upload(image),
    )
    return engine.submit(spec, origin)


def shorten(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    prompt = _required_prompt(body)
    prompt_en, _ = strip_markers(prompt)
    banned = _banned(prompt_en)
    if banned is not None:
        return banned
    spec = NewTask(
        TaskAction.SHORTEN,
        Output.SHORTEN,
        Profile.TEXT,
        prompt,
        prompt_en,
        lambda _task_id: f"/shorten {prompt}",
    )
    return engine.submit(spec, origin)


def swap_face(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    source, target = body.text("sourceBase64"), body.text("targetBase64")
    if not source or not source.strip():
        raise Invalid(protocol.FACE_EMPTY)
    if not target or not target.strip():
        raise Invalid(protocol.TARGET_EMPTY)
    if source == target:
        raise Invalid(protocol.FACE_SAME)
    decode_data_urls([source, target])
    spec = NewTask(
        TaskAction.SWAP_FACE,
        Output.SWAP,
        Profile.SWAP,
        None,
        None,
        lambda task_id: f"/swap {task_id}",
    )
    return engine.submit(spec, origin)


def action(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    task_id, custom_id = body.text("taskId"), body.text("customId")
    if not task_id or not task_id.strip() or not custom_id or not custom_id.strip():
        raise Invalid(protocol.PARAMS_INVALID)
    return engine.submit_action(task_id.strip(), custom_id.strip(), origin)


def change(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    task_id = body.text("taskId")
    if not task_id or not task_id.strip():
        raise Invalid(protocol.TASK_ID_EMPTY)
    change_action = body.enum("action", TaskAction)
    if change_action is None or change_action not in _CHANGE_ACTIONS:
        raise Invalid(protocol.ACTION_INVALID)
    return engine.submit_change(task_id.strip(), change_action, body.integer("index"), origin)


def simple_change(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    params = parse_simple_change(body.text("content"))
    return engine.submit_change(params.task_id, params.action, params.index, origin)


def modal(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    task_id, prompt = body.text("taskId"), (body.text("prompt") or "").strip()
    if not task_id or not task_id.strip() or not prompt:
        raise Invalid(protocol.PARAMS_INVALID)
    prompt_en, markers = strip_markers(prompt)
    banned = _banned(prompt_en)
    if banned is not None:
        return banned
    mask = body.text("maskBase64")
    if mask:
        decode_data_url(mask)
    return engine.submit_modal(task_id.strip(), prompt, prompt_en, bool(mask), markers)


_MOTIONS = frozenset({"low", "high"})
_VIDEO_TYPES = frozenset({"vid_1.1_i2v_480", "vid_1.1_i2v_720"})
_BATCH_SIZES = frozenset({1, 2, 4})


def _image_url(engine: Engine, value: str) -> str:
    """An image given as a URL (kept) or a data URL (uploaded, its URL)."""
    if value.startswith("data:"):
        return engine.add_upload(decode_data_url(value))
    if not value.startswith(("http://", "https://")):
        raise Invalid(protocol.IMAGE_INVALID)
    return value


def video(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    """A new video from an image (its first frame), or ``action: extend`` of a SUCCESS video."""
    prompt = _required_prompt(body)
    motion = body.text("motion") or "low"
    if motion not in _MOTIONS:
        raise Invalid(protocol.MOTION_INVALID)
    if (body.text("videoType") or "vid_1.1_i2v_480") not in _VIDEO_TYPES:
        raise Invalid(protocol.VIDEO_TYPE_INVALID)
    batch_size = body.integer("batchSize") or 4
    if batch_size not in _BATCH_SIZES:
        raise Invalid(protocol.BATCH_SIZE_INVALID)
    prompt_en, _ = strip_markers(prompt)
    banned = _banned(prompt_en)
    if banned is not None:
        return banned
    image = (body.text("image") or "").strip()
    end_image = (body.text("endImage") or "").strip()
    spec = NewTask(
        TaskAction.VIDEO,
        Output.VIDEO,
        Profile.VIDEO,
        prompt,
        prompt_en,
        lambda _task_id: f"/video {prompt}",
        video_count=batch_size,
    )
    extend = body.text("action")
    if extend:
        if extend != "extend":
            raise Invalid(protocol.VIDEO_ACTION_INVALID)
        parent_id = (body.text("taskId") or "").strip()
        if not parent_id:
            raise Invalid(protocol.TASK_ID_EMPTY)
        index = body.integer("index")
        return engine.submit_extend(parent_id, 0 if index is None else index, spec, origin)
    if not image:
        raise Invalid(protocol.IMAGE_EMPTY)
    spec = dataclasses.replace(spec, input_image_url=_image_url(engine, image))
    if end_image:
        _image_url(engine, end_image)
    return engine.submit(spec, origin)


def _edit(action: TaskAction, command: str) -> SubmitHandler:
    """``/submit/edits`` and ``/submit/retexture``: a prompt and an image, both required; a grid."""

    def handler(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
        prompt = (body.text("prompt") or "").strip()
        image = (body.text("image") or "").strip()
        if not prompt or not image:
            raise Invalid(protocol.IMAGE_OR_PROMPT_EMPTY)
        prompt_en, _ = strip_markers(prompt)
        banned = _banned(prompt_en)
        if banned is not None:
            return banned
        spec = NewTask(
            action,
            Output.GRID,
            Profile.FULL,
            prompt,
            prompt_en,
            lambda _task_id: f"/{command} {prompt}",
            aspect_ratio(prompt_en),
            _image_url(engine, image),
        )
        return engine.submit(spec, origin)

    return handler


def upload_discord_images(engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    sources = body.texts("base64Array") or []
    if not sources:
        raise Invalid(protocol.UPLOAD_EMPTY)
    return engine.upload(decode_data_urls(sources))


SUBMIT_HANDLERS: dict[str, SubmitHandler] = {
    "submit/imagine": imagine,
    "submit/blend": blend,
    "submit/describe": describe,
    "submit/shorten": shorten,
    "submit/action": action,
    "submit/modal": modal,
    "submit/change": change,
    "submit/simple-change": simple_change,
    "submit/upload-discord-images": upload_discord_images,
    "insight-face/swap": swap_face,
    "submit/video": video,
    "submit/edits": _edit(TaskAction.EDIT, "edit"),
    "submit/edit": _edit(TaskAction.EDIT, "edit"),
    "submit/retexture": _edit(TaskAction.RETEXTURE, "retexture"),
}
"""Route name (the path after ``/mj/``) -> handler."""
