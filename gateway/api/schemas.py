"""Request bodies of the client-facing ``/mj`` API, one msgspec Struct per endpoint.

Field names are the wire names (camelCase) so msgspec's error paths (``$.accountFilter.modes[0]``)
name exactly what the client sent. Unknown fields are ignored, as the Java proxies ignore them.
The constraints msgspec can express (types, enum names, lengths, counts, ranges) live here and are
enforced by ``gateway.api.validation.decode_json``; checks it cannot express (image bytes, URLs,
cross-field rules) are in ``gateway.api.validation.validate``. Constructing a Struct directly skips
the constraints: bodies from clients must go through ``decode_json``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

MAX_PROMPT_CHARS = 8192
MAX_STATE_CHARS = 1024
MAX_NOTIFY_HOOK_CHARS = 2048
MAX_CUSTOM_ID_CHARS = 512
MAX_TASK_ID_CHARS = 32
MAX_LIST_IDS = 500
MIN_BLEND_IMAGES = 2
MAX_BLEND_IMAGES = 5
MAX_PROMPT_IMAGES = 5
MAX_UPLOAD_IMAGES = 5
MAX_ACCOUNT_ID_CHARS = 64

Mode = Literal["FAST", "RELAX", "TURBO"]
BotType = Literal["MID_JOURNEY", "NIJI_JOURNEY"]
Dimensions = Literal["PORTRAIT", "SQUARE", "LANDSCAPE"]
ChangeAction = Literal["UPSCALE", "VARIATION", "REROLL"]

Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PROMPT_CHARS)]
OptionalPrompt = Annotated[str, msgspec.Meta(max_length=MAX_PROMPT_CHARS)]
State = Annotated[str, msgspec.Meta(max_length=MAX_STATE_CHARS)]
NotifyHook = Annotated[str, msgspec.Meta(max_length=MAX_NOTIFY_HOOK_CHARS)]
TaskId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TASK_ID_CHARS)]
CustomId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CUSTOM_ID_CHARS)]
ChangeIndex = Annotated[int, msgspec.Meta(ge=1, le=4)]
BlendImages = Annotated[
    list[str], msgspec.Meta(min_length=MIN_BLEND_IMAGES, max_length=MAX_BLEND_IMAGES)
]
PromptImages = Annotated[list[str], msgspec.Meta(max_length=MAX_PROMPT_IMAGES)]
UploadImages = Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_UPLOAD_IMAGES)]
AccountId = Annotated[str, msgspec.Meta(max_length=MAX_ACCOUNT_ID_CHARS)]
ListIds = Annotated[list[str], msgspec.Meta(max_length=MAX_LIST_IDS)]


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Keyword-only fields, unknown fields ignored.

    Subclasses repeat ``kw_only=True``: msgspec inherits it, but type checkers read it per class.
    """


class _SubmitBody(_Body, kw_only=True):
    """Fields every task-creating submit accepts."""

    notifyHook: NotifyHook | None = None
    state: State | None = None


class AccountFilter(_Body, kw_only=True):
    """The client's ``accountFilter``: ``modes`` sets the speed mode; ``instanceId`` (or the
    older ``channelId``) names one upstream account, narrowing the channel's choice. Nothing
    else of it is forwarded."""

    modes: Annotated[list[Mode], msgspec.Meta(max_length=3)] | None = None
    instanceId: AccountId | None = None
    channelId: AccountId | None = None

    @property
    def names_an_account(self) -> bool:
        return bool(self.instanceId or self.channelId)


class ImagineBody(_SubmitBody, kw_only=True):
    """POST /submit/imagine."""

    prompt: Prompt
    base64Array: PromptImages = []
    botType: BotType = "MID_JOURNEY"
    accountFilter: AccountFilter | None = None


class BlendBody(_SubmitBody, kw_only=True):
    """POST /submit/blend: two to five images."""

    base64Array: BlendImages
    dimensions: Dimensions = "SQUARE"
    botType: BotType = "MID_JOURNEY"
    accountFilter: AccountFilter | None = None


class DescribeBody(_SubmitBody, kw_only=True):
    """POST /submit/describe."""

    base64: str
    botType: BotType = "MID_JOURNEY"
    accountFilter: AccountFilter | None = None


class ShortenBody(_SubmitBody, kw_only=True):
    """POST /submit/shorten."""

    prompt: Prompt
    botType: BotType = "MID_JOURNEY"
    accountFilter: AccountFilter | None = None


class ActionBody(_SubmitBody, kw_only=True):
    """POST /submit/action: press a button (``customId``) of the gateway task ``taskId``."""

    taskId: TaskId
    customId: CustomId
    chooseSameChannel: bool | None = None
    accountFilter: AccountFilter | None = None


class ModalBody(_SubmitBody, kw_only=True):
    """POST /submit/modal: confirm the MODAL task ``taskId``."""

    taskId: TaskId
    prompt: OptionalPrompt | None = None
    maskBase64: str | None = None


class ChangeBody(_SubmitBody, kw_only=True):
    """POST /submit/change (legacy); ``index`` is needed for UPSCALE and VARIATION."""

    taskId: TaskId
    action: ChangeAction
    index: ChangeIndex | None = None


class SimpleChangeBody(_SubmitBody, kw_only=True):
    """POST /submit/simple-change (legacy): ``content`` is ``"<taskId> U1..U4|V1..V4|R"``."""

    content: Annotated[str, msgspec.Meta(min_length=1)]


class UploadBody(_Body, kw_only=True):
    """POST /submit/upload-discord-images: one to five images, priced per image. The account
    filter is ``filter`` (midjourney-proxy-plus) or ``accountFilter`` (trueai)."""

    base64Array: UploadImages
    filter: AccountFilter | None = None
    accountFilter: AccountFilter | None = None


class SwapFaceBody(_SubmitBody, kw_only=True):
    """POST /insight-face/swap: two different images."""

    sourceBase64: str
    targetBase64: str


class VideoBody(_SubmitBody, kw_only=True):
    """POST /submit/video: a new video from ``image`` (its first frame, a URL or base64), or
    ``action: "extend"`` of video ``index`` (0-3) of the SUCCESS video task ``taskId``. Empty
    strings are taken as left out, and numbers and booleans may come as text, as web forms send
    them (``gateway.api.validation`` reads them)."""

    prompt: Prompt
    motion: str | None = None
    image: str | None = None
    endImage: str | None = None
    loop: bool | str | None = None
    action: str | None = None
    taskId: TaskId | None = None
    index: int | str | None = None
    videoType: str | None = None
    batchSize: int | str | None = None
    botType: BotType = "MID_JOURNEY"
    accountFilter: AccountFilter | None = None


class EditBody(_SubmitBody, kw_only=True):
    """POST /submit/edits (also /submit/edit) and /submit/retexture: a prompt and an image
    (a URL or base64)."""

    prompt: Prompt
    image: Annotated[str, msgspec.Meta(min_length=1)]
    botType: BotType = "MID_JOURNEY"
    accountFilter: AccountFilter | None = None


class ListByConditionBody(_Body, kw_only=True):
    """POST /task/list-by-condition: at most 500 ids; unknown ones are simply not found."""

    ids: ListIds


RequestBody = (
    ImagineBody
    | BlendBody
    | DescribeBody
    | ShortenBody
    | ActionBody
    | ModalBody
    | ChangeBody
    | SimpleChangeBody
    | UploadBody
    | SwapFaceBody
    | VideoBody
    | EditBody
    | ListByConditionBody
)
"""Every request body of the ``/mj`` API; ``validate`` accepts any of them."""
