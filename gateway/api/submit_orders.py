"""Client request bodies -> ``SubmitOrder``: what goes upstream, at what price, in which mode.

The client's ``notifyHook`` and ``state`` stay with the gateway; the mode is forwarded as
``accountFilter.modes``. Follow-ups carry the gateway's task id here; the submit path swaps in
the upstream's.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.api.dependencies import task_id_of
from gateway.api.schemas import (
    AccountFilter,
    ActionBody,
    BlendBody,
    ChangeBody,
    DescribeBody,
    EditBody,
    ImagineBody,
    ModalBody,
    ShortenBody,
    SimpleChangeBody,
    SwapFaceBody,
    UploadBody,
    VideoBody,
)
from gateway.api.validation import mode_from, parse_simple_change, without_mode_flags
from gateway.billing.prices import (
    BASIS_POINTS,
    CHANGE_PRICE_ACTIONS,
    SUBMIT_PRICE_ACTIONS,
    VIDEO_EXTEND_PRICE_ACTION,
    price_action_for_custom_id,
)
from gateway.errors import BadRequest
from gateway.routing.flavours import change_for_button
from gateway.tasks.orders import TASK_ID_MARK, SubmitOrder

_SHOWN_ACTIONS = {
    "mj_upscale": "UPSCALE",
    "mj_upscale_hd": "UPSCALE",
    "mj_variation": "VARIATION",
    "mj_low_variation": "VARIATION",
    "mj_high_variation": "VARIATION",
    "mj_inpaint": "VARIATION",
    "mj_reroll": "REROLL",
    "mj_zoom": "ZOOM",
    "mj_custom_zoom": "ZOOM",
    "mj_pan": "PAN",
    "mj_imagine": "IMAGINE",
    "mj_describe": "DESCRIBE",
    "mj_video": "VIDEO",
    "mj_video_upscale": "UPSCALE",
}
_CHANGE_LETTERS = {"UPSCALE": "U", "VARIATION": "V", "REROLL": "R"}
_KIND_ACTIONS = {"edits": "EDIT", "swap_face": "SWAP_FACE"}
_MIME_SUFFIXES = {"jpeg": "jpg"}


def _account_filter(account_filter: AccountFilter | None, mode: str) -> dict[str, Any]:
    forwarded: dict[str, Any] = msgspec.to_builtins(account_filter) if account_filter else {}
    forwarded["modes"] = [mode]
    return forwarded


def _change_description(parent_id: str, change: str, index: int | None) -> str:
    """``/up <task id> U1`` (V1..V4, R): how the proxies describe a U/V/reroll."""
    return f"/up {parent_id} {_CHANGE_LETTERS[change]}{index if change != 'REROLL' else ''}"


GenerationBody = ImagineBody | BlendBody | DescribeBody | ShortenBody | VideoBody | EditBody


def _generation(
    kind: str,
    body: GenerationBody,
    fields: dict[str, Any],
    path_mode: str | None,
    description: str,
    *,
    prompt: str | None = None,
    images: list[str] | None = None,
    named_images: tuple[tuple[str, str | None], ...] = (),
    price_action: str | None = None,
    parent_id: int | None = None,
    quantity_bp: int = BASIS_POINTS,
) -> SubmitOrder:
    """A submit that starts new work (or extends a video), in the mode the request asks for.
    ``images`` (or ``named_images``: by field): those sent with it, as data URLs (which the
    upstream uploads and may put in front of the prompts it shows) or URLs (which it
    downloads)."""
    modes = body.accountFilter.modes if body.accountFilter else None
    mode = mode_from(path_mode, modes, prompt)
    named = [(field, image) for field, image in named_images if image]
    images = images or [image for _, image in named]
    return SubmitOrder(
        kind=kind,
        upstream_path=f"/mj/submit/{kind}",
        upstream_body={
            **fields,
            "botType": body.botType,
            "accountFilter": _account_filter(body.accountFilter, mode),
        },
        price_action=price_action or SUBMIT_PRICE_ACTIONS[kind],
        action=_KIND_ACTIONS.get(kind, kind.upper()),
        mode=mode,
        bot_type=body.botType,
        prompt=prompt,
        state=body.state,
        notify_hook=body.notifyHook or None,
        parent_id=parent_id,
        quantity_bp=quantity_bp,
        description=description,
        prompt_urls=len(images or []),
        fetched_urls=tuple((f, url) for f, url in named if not url.startswith("data:")),
        account_named=parent_id is None
        and body.accountFilter is not None
        and body.accountFilter.names_an_account,
    )


def imagine(body: ImagineBody, path_mode: str | None) -> SubmitOrder:
    fields = {"prompt": without_mode_flags(body.prompt), "base64Array": body.base64Array}
    return _generation(
        "imagine",
        body,
        fields,
        path_mode,
        f"/imagine {body.prompt}",
        prompt=body.prompt,
        images=body.base64Array,
    )


def blend(body: BlendBody, path_mode: str | None) -> SubmitOrder:
    fields = {"base64Array": body.base64Array, "dimensions": body.dimensions}
    description = f"/blend {TASK_ID_MARK} {len(body.base64Array)}"
    return _generation("blend", body, fields, path_mode, description, images=body.base64Array)


def describe(body: DescribeBody, path_mode: str | None) -> SubmitOrder:
    subtype = body.base64[len("data:image/") : body.base64.index(";")]
    description = f"/describe {TASK_ID_MARK}.{_MIME_SUFFIXES.get(subtype, subtype)}"
    fields = {"base64": body.base64}
    return _generation("describe", body, fields, path_mode, description, images=[body.base64])


def shorten(body: ShortenBody, path_mode: str | None) -> SubmitOrder:
    fields = {"prompt": without_mode_flags(body.prompt)}
    description = f"/shorten {body.prompt}"
    return _generation("shorten", body, fields, path_mode, description, prompt=body.prompt)


def video(body: VideoBody, path_mode: str | None) -> SubmitOrder:
    """A new video, or an extend of one (a follow-up of its task, in its mode); priced per video
    of the batch, a batch of four being the action's price."""
    fields: dict[str, Any] = {
        "prompt": without_mode_flags(body.prompt),
        "motion": body.motion,
        "videoType": body.videoType,
        "batchSize": body.batchSize,
        "loop": body.loop,
    }
    extend = body.action == "extend" and body.taskId is not None
    if extend:
        fields.update(action="extend", index=body.index)
    else:
        fields.update(image=body.image, endImage=body.endImage)
    return _generation(
        "video",
        body,
        {name: value for name, value in fields.items() if value is not None},
        path_mode,
        f"/video {body.prompt}",
        prompt=body.prompt,
        named_images=(("image", body.image), ("endImage", body.endImage)),
        price_action=VIDEO_EXTEND_PRICE_ACTION if extend else None,
        parent_id=task_id_of(body.taskId) if extend and body.taskId else None,
        quantity_bp=int(body.batchSize or 4) * BASIS_POINTS // 4,
    )


def edit(kind: str, command: str, body: EditBody, path_mode: str | None) -> SubmitOrder:
    """``/submit/edits`` (kind ``edits``, command ``edit``) or ``/submit/retexture``."""
    fields = {"prompt": without_mode_flags(body.prompt), "image": body.image}
    description = f"/{command} {body.prompt}"
    return _generation(
        kind,
        body,
        fields,
        path_mode,
        description,
        prompt=body.prompt,
        named_images=(("image", body.image),),
    )


def action(body: ActionBody) -> SubmitOrder:
    price_action = price_action_for_custom_id(body.customId)
    if price_action is None:
        raise BadRequest("customId: not a button that starts a task")
    upstream_body: dict[str, Any] = {"customId": body.customId}
    if body.chooseSameChannel is not None:
        upstream_body["chooseSameChannel"] = body.chooseSameChannel
    change = change_for_button(body.customId)
    if change is not None:
        description = _change_description(body.taskId, *change)
    else:
        description = f"/action {body.taskId} {body.customId}"
    return SubmitOrder(
        kind="action",
        upstream_path="/mj/submit/action",
        upstream_body=upstream_body,
        price_action=price_action,
        action=_SHOWN_ACTIONS[price_action],
        mode="FAST",
        state=body.state,
        notify_hook=body.notifyHook or None,
        parent_id=task_id_of(body.taskId),
        custom_id=body.customId,
        description=description,
    )


def modal(body: ModalBody) -> SubmitOrder:
    upstream_body: dict[str, Any] = {}
    if body.prompt is not None:
        upstream_body["prompt"] = without_mode_flags(body.prompt)
    if body.maskBase64 is not None:
        upstream_body["maskBase64"] = body.maskBase64
    return SubmitOrder(
        kind="modal",
        upstream_path="/mj/submit/modal",
        upstream_body=upstream_body,
        price_action=SUBMIT_PRICE_ACTIONS["modal"],
        action="MODAL",
        mode="FAST",
        prompt=body.prompt,
        state=body.state,
        notify_hook=body.notifyHook or None,
        parent_id=task_id_of(body.taskId),
    )


def _change(
    task_id: str, change: str, index: int | None, state: str | None, hook: str | None
) -> SubmitOrder:
    upstream_body: dict[str, Any] = {"action": change}
    if index is not None and change != "REROLL":
        upstream_body["index"] = index
    return SubmitOrder(
        kind="change",
        upstream_path="/mj/submit/change",
        upstream_body=upstream_body,
        price_action=CHANGE_PRICE_ACTIONS[change],
        action=change,
        mode="FAST",
        state=state,
        notify_hook=hook or None,
        parent_id=task_id_of(task_id),
        description=_change_description(task_id, change, index),
    )


def change(body: ChangeBody) -> SubmitOrder:
    return _change(body.taskId, body.action, body.index, body.state, body.notifyHook)


def simple_change(body: SimpleChangeBody) -> SubmitOrder:
    task_id, change_action, index = parse_simple_change(body.content)
    return _change(task_id, change_action, index, body.state, body.notifyHook)


def swap_face(body: SwapFaceBody, path_mode: str | None) -> SubmitOrder:
    mode = mode_from(path_mode, None, None)
    return SubmitOrder(
        kind="swap_face",
        upstream_path="/mj/insight-face/swap",
        upstream_body={
            "sourceBase64": body.sourceBase64,
            "targetBase64": body.targetBase64,
            "accountFilter": {"modes": [mode]},
        },
        price_action=SUBMIT_PRICE_ACTIONS["swap_face"],
        action="SWAP_FACE",
        mode=mode,
        description=f"/swap {TASK_ID_MARK}",
        state=body.state,
        notify_hook=body.notifyHook or None,
    )


def upload(body: UploadBody, path_mode: str | None) -> SubmitOrder:
    """Priced per image; the account filter goes upstream under the name the client used."""
    mode = mode_from(path_mode, None, None)
    upstream_body: dict[str, Any] = {"base64Array": body.base64Array}
    for name, chosen in (("filter", body.filter), ("accountFilter", body.accountFilter)):
        if chosen is not None:
            upstream_body[name] = _account_filter(chosen, mode)
    return SubmitOrder(
        kind="upload",
        upstream_path="/mj/submit/upload-discord-images",
        upstream_body=upstream_body,
        price_action=SUBMIT_PRICE_ACTIONS["upload"],
        action="UPLOAD",
        mode=mode,
        quantity_bp=len(body.base64Array) * BASIS_POINTS,
        account_named=any(
            f is not None and f.names_an_account for f in (body.filter, body.accountFilter)
        ),
    )
