"""Channel flavours, pure: which kinds of midjourney-proxy offer which endpoints (UPSTREAM.md,
"Flavours"), and how a button press reaches an upstream that has no ``/submit/action``.

    endpoint                                         open-source   plus   trueai
    imagine, blend, describe, fetch, list             yes           yes    yes
    change, simple-change                            yes           yes    no
    action, modal, shorten, upload, face swap,       no            yes    yes
    image-seed, cancel
    video                                            no            yes    yes
    edits, retexture                                 no            no     yes

An open-source upstream takes U1-U4, V1-V4 and reroll only as ``/submit/change``.
"""

from __future__ import annotations

import re

FLAVOURS = ("plus", "open-source", "trueai")
DEFAULT_FLAVOUR = "plus"

_LACKS: dict[str, frozenset[str]] = {
    "plus": frozenset({"edits", "retexture"}),
    "open-source": frozenset(
        {
            "action",
            "modal",
            "shorten",
            "upload",
            "swap_face",
            "image_seed",
            "cancel",
            "video",
            "edits",
            "retexture",
        }
    ),
    "trueai": frozenset({"change"}),
}
_CHANGE_BUTTON = re.compile(r"MJ::JOB::(upsample|variation|reroll)::([0-4])::[^:]+(::SOLO)?")
_CHANGES = {"upsample": "UPSCALE", "variation": "VARIATION", "reroll": "REROLL"}


def offers(flavour: str, kind: str) -> bool:
    """Whether an upstream of ``flavour`` has the endpoint of ``kind`` (a submit order's kind:
    imagine, action, change, upload, ...; or image_seed, cancel)."""
    return kind not in _LACKS.get(flavour, frozenset())


def change_for_button(custom_id: str) -> tuple[str, int | None] | None:
    """The ``/submit/change`` that presses the button: (UPSCALE | VARIATION, index) for U1-U4
    and V1-V4, (REROLL, None) for reroll; None for any other button."""
    match = _CHANGE_BUTTON.fullmatch(custom_id)
    if match is None:
        return None
    change = _CHANGES[match.group(1)]
    if change == "REROLL":
        return change, None
    index = int(match.group(2))
    return (change, index) if 1 <= index <= 4 else None
