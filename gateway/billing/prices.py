"""Prices, pure: which priced action a request is, and what it costs.

A price is ``base_units x mode ratio x group ratio x quantity``, ratios and the quantity in
basis points (10000 = x1; an upload of 3 images is 30000, a video batch of 2 is 5000), rounded
half up to a whole unit once, computed in integers only.
"""

from __future__ import annotations

from dataclasses import dataclass

BASIS_POINTS = 10_000

SUBMIT_PRICE_ACTIONS = {
    "imagine": "mj_imagine",
    "blend": "mj_blend",
    "describe": "mj_describe",
    "shorten": "mj_shorten",
    "modal": "mj_modal",
    "upload": "mj_upload",
    "swap_face": "mj_swap_face",
    "video": "mj_video",
    "edits": "mj_edits",
    "retexture": "mj_retexture",
}
VIDEO_PRICE_ACTION = "mj_video"
VIDEO_EXTEND_PRICE_ACTION = "mj_video_extend"
VIDEO_PRICE_ACTIONS = frozenset({VIDEO_PRICE_ACTION, VIDEO_EXTEND_PRICE_ACTION, "mj_video_upscale"})
"""The priced actions whose tasks end with videos (what an extend may continue)."""
REROLL_PRICE_ACTION = "mj_reroll"
CHANGE_PRICE_ACTIONS = {
    "UPSCALE": "mj_upscale",
    "VARIATION": "mj_variation",
    "REROLL": REROLL_PRICE_ACTION,
}

_JOB_PRICE_ACTIONS = {
    "upsample": "mj_upscale",
    "variation": "mj_variation",
    "low_variation": "mj_low_variation",
    "high_variation": "mj_high_variation",
    "reroll": "mj_reroll",
}


def price_action_for_custom_id(custom_id: str) -> str | None:
    """The priced action a button's customId starts, or None for one that starts no task."""
    parts = custom_id.split("::")
    if len(parts) < 3 or parts[0] != "MJ":
        return None
    kind, name = parts[1], parts[2]
    if kind == "JOB":
        if name in _JOB_PRICE_ACTIONS:
            return _JOB_PRICE_ACTIONS[name]
        if name in ("animate_high", "animate_low"):
            return "mj_video"
        if name == "video_virtual_upscale":
            return "mj_video_upscale"
        if name.startswith("upsample_"):
            return "mj_upscale_hd"
        if name.startswith("pan_"):
            return "mj_pan"
        return None
    if kind == "Outpaint":
        return "mj_zoom"
    if kind == "CustomZoom":
        return "mj_custom_zoom"
    if kind == "Inpaint":
        return "mj_inpaint"
    if kind == "Job" and name in ("PicReader", "PromptAnalyzer"):
        return "mj_imagine"
    if kind == "Picread" and name == "Retry":
        return "mj_describe"
    return None


@dataclass(frozen=True, slots=True)
class PriceBook:
    """Base prices by priced action and mode ratios, as the operator set them."""

    base_units: dict[str, int]
    mode_ratio_bp: dict[str, int]

    def price_units(
        self, price_action: str, mode: str, group_ratio_bp: int, quantity_bp: int = BASIS_POINTS
    ) -> int:
        base = self.base_units.get(price_action)
        if base is None:
            raise KeyError(f"no price for {price_action}")
        scaled = base * self.mode_ratio_bp.get(mode, BASIS_POINTS) * group_ratio_bp * quantity_bp
        divisor = BASIS_POINTS**3
        return (scaled + divisor // 2) // divisor
