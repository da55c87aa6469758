"""The OpenAPI document at ``/schema/openapi.json``: what clients see, so a generated client works.

Litestar generates the paths, parameters and the admin API's bodies. This module adds what it
cannot know: the ``/mj`` request bodies (their handlers decode the raw body themselves, see
``gateway.api.validation``), the shape of every answer, and the one error shape
``{code, description, result: null}`` for every error status, in place of Litestar's own. A
handler says what to document in its ``opt`` (``DOC_KEY``: a ``Doc``). The document is served as
JSON only; no documentation page (their scripts would come from public CDNs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import msgspec
from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

DOC_KEY = "doc"
_SCHEMAS = "#/components/schemas/{name}"
_PATH_PARAMETER = re.compile(r"\{(\w+):[^}]+\}")

TaskStatus = Literal[
    "NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "FAILURE", "SUCCESS", "CANCEL"
]


class ErrorAnswer(msgspec.Struct, kw_only=True):
    """Every error: 21 bad input or unknown task, 23 system, 24 key or account, 25 balance."""

    code: Literal[21, 23, 24, 25]
    description: str
    result: None
    properties: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class SubmitAnswer(msgspec.Struct, kw_only=True):
    """A submit taken: code 1 (22 when queued pass-through is on); 21 with a MODAL task id."""

    code: Literal[1, 21, 22]
    description: str
    properties: dict[str, Any]
    result: str


class UploadAnswer(msgspec.Struct, kw_only=True):
    code: Literal[1]
    description: str
    result: list[str]


class TextAnswer(msgspec.Struct, kw_only=True):
    """An answer whose result is one text: a seed, a cancelled task's id."""

    code: Literal[1]
    description: str
    result: str


class TaskButton(msgspec.Struct, kw_only=True):
    customId: str
    emoji: str | None
    label: str | None
    type: int | None
    style: int | None


class TaskObject(msgspec.Struct, kw_only=True):
    """A task as midjourney-proxy-plus shows it; every key always present."""

    id: str
    action: str
    status: TaskStatus
    progress: str
    prompt: str | None
    promptEn: str | None
    description: str | None
    state: str | None
    submitTime: int
    startTime: int | None
    finishTime: int | None
    imageUrl: str | None
    failReason: str | None
    buttons: list[TaskButton]
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Doc:
    """What a route takes and answers, beyond what Litestar sees: the type of its JSON 200
    answer (None: Litestar's own), the error statuses it documents, its JSON body (a msgspec
    Struct), and whether it wants a client API key."""

    answer: Any
    errors: tuple[int, ...]
    body: type[msgspec.Struct] | None = None
    key: bool = True


SUBMIT_ERRORS = (400, 401, 403, 404, 409, 413, 429, 500, 502, 503, 504)
READ_ERRORS = (401, 403, 404, 429, 500)


class OpenApiJson(JsonRenderPlugin):
    """Serves the document, Litestar's with this module's additions, as JSON."""

    def __init__(self) -> None:
        super().__init__()
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = msgspec.json.encode(complete(request.app, openapi_schema))
        return self._rendered


def complete(app: Litestar, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every route's ``Doc`` applied and every error in the one shape."""
    docs = _Docs(app)
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(docs.components)
    components["securitySchemes"] = _KEYS
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                docs.apply(operation, docs.by_route.get((path, method.upper())))
    return document


class _Docs:
    def __init__(self, app: Litestar) -> None:
        self.by_route: dict[tuple[str, str], Doc] = {}
        types: set[Any] = {ErrorAnswer}
        for route in app.routes:
            if not isinstance(route, HTTPRoute):
                continue
            path = _PATH_PARAMETER.sub(r"{\1}", route.path)
            for handler in route.route_handlers:
                doc = handler.opt.get(DOC_KEY)
                if isinstance(doc, Doc):
                    for method in handler.http_methods:
                        self.by_route[(path, method)] = doc
                    types.update(t for t in (doc.answer, doc.body) if t is not None)
        self._types = sorted(types, key=repr)

    @cached_property
    def _generated(self) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
        return msgspec.json.schema_components(self._types, ref_template=_SCHEMAS)

    @property
    def components(self) -> dict[str, Any]:
        return self._generated[1]

    def schema(self, kind: Any) -> dict[str, Any]:
        return self._generated[0][self._types.index(kind)]

    def apply(self, operation: dict[str, Any], doc: Doc | None) -> None:
        responses: dict[str, Any] = operation["responses"]
        error = {"$ref": _SCHEMAS.format(name="ErrorAnswer")}
        statuses = set(doc.errors) if doc else set()
        statuses.update(int(s) for s in responses if s.isdigit() and int(s) >= 400)
        for status in sorted(statuses):
            responses[str(status)] = _json(_ERROR_DESCRIPTIONS.get(status, "error"), error)
        responses["default"] = _json("any other error, in the same shape", error)
        if doc is None:
            return
        if doc.key:
            operation["security"] = [{name: []} for name in _KEYS]
        if doc.answer is not None:
            ok = responses.setdefault("200", {"description": "OK"})
            ok["content"] = {"application/json": {"schema": self.schema(doc.answer)}}
        if doc.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self.schema(doc.body)}},
            }


_KEYS = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer sk-...",
    },
    "mjApiSecret": {"type": "apiKey", "in": "header", "name": "mj-api-secret"},
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR_DESCRIPTIONS = {
    400: "code 21: malformed body, bad field, bad image, parent not SUCCESS, banned prompt",
    401: "code 24: missing or unknown key",
    403: "code 24: key refused (expired, disabled, network, action); code 25: balance",
    404: "code 21: unknown task, or not the caller's",
    405: "code 21: method not allowed (see the Allow header)",
    409: "code 21: Idempotency-Key reused with another body, or still in flight",
    413: "code 21: body too large",
    429: "code 23: rate limit or open-task cap (Retry-After)",
    500: "code 23: unexpected error",
    502: "code 23: the upstream failed on every channel tried",
    503: "code 23: every queue full or every channel resting (Retry-After); code 24: no account",
    504: "code 23: the upstream timed out",
}
