"""Wire vocabulary of midjourney-proxy(-plus): return codes, messages, enums and answer bodies.

Everything a client can read on the wire that is not a task object lives here, so the messages
are spelled once and exactly as the Java and C# proxies spell them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

import msgspec


class ReturnCode(IntEnum):
    """The ``code`` of a submit answer, as the proxies number them."""

    SUCCESS = 1
    MODAL = 21
    IN_QUEUE = 22
    QUEUE_REJECTED = 23
    BANNED_PROMPT = 24
    NOT_FOUND = 3
    VALIDATION_ERROR = 4
    FAILURE = 9


class TaskStatus(StrEnum):
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    MODAL = "MODAL"
    IN_PROGRESS = "IN_PROGRESS"
    FAILURE = "FAILURE"
    SUCCESS = "SUCCESS"
    CANCEL = "CANCEL"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({TaskStatus.FAILURE, TaskStatus.SUCCESS, TaskStatus.CANCEL})


class TaskAction(StrEnum):
    IMAGINE = "IMAGINE"
    UPSCALE = "UPSCALE"
    VARIATION = "VARIATION"
    REROLL = "REROLL"
    DESCRIBE = "DESCRIBE"
    BLEND = "BLEND"
    SHORTEN = "SHORTEN"
    ZOOM = "ZOOM"
    PAN = "PAN"
    SWAP_FACE = "SWAP_FACE"
    VIDEO = "VIDEO"
    EDIT = "EDIT"
    RETEXTURE = "RETEXTURE"


class Mode(StrEnum):
    """Generation speed, from ``accountFilter.modes[0]`` or the ``/mj-<mode>`` path prefix."""

    FAST = "FAST"
    RELAX = "RELAX"
    TURBO = "TURBO"


class BotType(StrEnum):
    MID_JOURNEY = "MID_JOURNEY"
    NIJI_JOURNEY = "NIJI_JOURNEY"


class Dimensions(StrEnum):
    """Blend output shapes; ``ratio`` is width over height."""

    PORTRAIT = "PORTRAIT"
    SQUARE = "SQUARE"
    LANDSCAPE = "LANDSCAPE"

    @property
    def ratio(self) -> float:
        return {"PORTRAIT": 2 / 3, "SQUARE": 1.0, "LANDSCAPE": 3 / 2}[self.value]


SUBMIT_OK = "提交成功"
OK_SHORT = "成功"
QUEUED = "排队中，前面还有{n}个任务"
QUEUE_FULL = "队列已满，请稍后尝试"
NO_ACCOUNT = "无可用的账号实例"
BANNED = "可能包含敏感词"
SYSTEM_ERROR = "提交失败，系统异常"
WAITING_MODAL = "Waiting for window confirm"
PROMPT_EMPTY = "prompt不能为空"
BASE64_EMPTY = "base64不能为空"
BASE64_INVALID = "base64格式错误"
BASE64_LIST_INVALID = "base64List参数错误"
UPLOAD_EMPTY = "base64 参数错误"
DIMENSIONS_INVALID = "dimensions参数错误"
PARAMS_INVALID = "参数错误"
TASK_ID_EMPTY = "taskId不能为空"
ACTION_INVALID = "action参数错误"
INDEX_INVALID = "index参数错误"
CONTENT_INVALID = "content参数错误"
CUSTOM_ID_INVALID = "customId参数错误"
ZOOM_INVALID = "zoom参数错误，--zoom 取值 1-2"
MASK_EMPTY = "maskBase64不能为空"
PARENT_MISSING = "关联任务不存在或已失效"
PARENT_STATUS = "关联任务状态错误"
PARENT_NOT_CHANGEABLE = "关联任务不允许执行变化"
IMAGE_OR_PROMPT_EMPTY = "image或prompt不能为空"
IMAGE_EMPTY = "image不能为空"
IMAGE_INVALID = "image参数错误"
MOTION_INVALID = "motion参数错误"
VIDEO_TYPE_INVALID = "videoType参数错误"
BATCH_SIZE_INVALID = "batchSize参数错误"
VIDEO_ACTION_INVALID = "action参数错误，仅支持 extend"
FACE_EMPTY = "人脸图片不能为空"
TARGET_EMPTY = "目标图片不能为空"
FACE_SAME = "人脸图片和目标图片不能相同"
TIMEOUT = "任务超时"
CANCELLED = "取消任务"
FAIL_BANNED = (
    "[Banned prompt detected] Sorry! Our AI moderator thinks this prompt is probably against "
    "our community standards."
)
FAIL_INVALID = "[Invalid parameter] Invalid value provided for argument --ar"


@dataclass(frozen=True, slots=True)
class SubmitAnswer:
    """``{code, description, result, properties}``: every submit answer (HTTP 200)."""

    code: ReturnCode
    description: str
    result: str | list[str] | None = None
    properties: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "code": int(self.code),
            "description": self.description,
            "result": self.result,
            "properties": self.properties,
        }


def fail(code: ReturnCode, description: str, **properties: object) -> SubmitAnswer:
    return SubmitAnswer(code, description, None, dict(properties))


def spring_error_body(status: int, error: str, path: str) -> dict[str, object]:
    """The body Spring Boot sends for a request it could not bind (bad JSON, bad enum)."""
    now = datetime.now(UTC)
    return {
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+00:00",
        "status": status,
        "error": error,
        "path": path,
    }


def dumps(value: object) -> bytes:
    """Compact UTF-8 JSON, Chinese left readable as the Java proxies send it."""
    return msgspec.json.encode(value)
