"""Prompt text the simulator makes up or reads: describe and shorten suggestions, file-name
slugs, and the aspect ratio a prompt asks for (``--ar W:H``)."""

from __future__ import annotations

import random
import re

KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")

_ADJECTIVES = ("serene", "vibrant", "moody", "whimsical", "ancient", "luminous", "misty", "bold")
_SUBJECTS = (
    "fox in a meadow",
    "lighthouse on a cliff",
    "city street at night",
    "portrait of an astronaut",
    "bowl of ripe fruit",
    "mountain lake",
    "steam locomotive",
    "koi pond",
)
_STYLES = (
    "in the style of watercolor",
    "cinematic lighting",
    "oil painting",
    "isometric illustration",
    "35mm film photography",
    "ukiyo-e woodblock print",
)
_RATIOS = ("1:1", "4:3", "3:2", "16:9", "2:3")
_PARAMS = re.compile(r"\s--\w+(?:\s+[^\s-][^\s]*)?")
_ASPECT = re.compile(r"--(?:ar|aspect)\s+(\d+):(\d+)")
_SLUG_WORD = re.compile(r"[a-z0-9]+")


def numbered(suggestions: list[str]) -> str:
    """Suggestions as Midjourney prints them: keycap-numbered, separated by blank lines."""
    return "\n\n".join(f"{KEYCAPS[i]} {text}" for i, text in enumerate(suggestions))


def suggestion_at(text: str | None, number: int) -> str | None:
    """The ``number``-th (1-based) suggestion of a ``numbered`` text, without its keycap."""
    parts = [part.strip() for part in (text or "").split("\n\n") if part.strip()]
    if not 1 <= number <= len(parts):
        return None
    head, _, rest = parts[number - 1].partition(" ")
    return rest.strip() if head in KEYCAPS else parts[number - 1]


def describe_suggestions(rng: random.Random) -> list[str]:
    """Four made-up descriptions of an image, each ending with an aspect ratio."""
    return [
        f"a {rng.choice(_ADJECTIVES)} {rng.choice(_SUBJECTS)}, {rng.choice(_STYLES)} "
        f"--ar {rng.choice(_RATIOS)}"
        for _ in range(4)
    ]


def shorten_suggestions(prompt: str, rng: random.Random) -> list[str]:
    """Five shorter versions of ``prompt``: ever fewer of its words, order and parameters kept."""
    params = "".join(_PARAMS.findall(prompt))
    words = _PARAMS.sub("", prompt).split() or ["image"]
    shortened: list[str] = []
    for step in range(5):
        keep = max(1, round(len(words) * (1 - 0.15 * step)))
        chosen = sorted(rng.sample(range(len(words)), keep))
        shortened.append(" ".join(words[i] for i in chosen) + params)
    return shortened


def aspect_ratio(prompt: str | None) -> float:
    """Width over height asked by ``--ar W:H`` (1.0 when absent or silly)."""
    match = _ASPECT.search(prompt or "")
    if match is None:
        return 1.0
    width, height = int(match.group(1)), int(match.group(2))
    if width == 0 or height == 0:
        return 1.0
    return min(max(width / height, 0.25), 4.0)


def slug(prompt: str | None, max_words: int = 6) -> str:
    """Discord-style file-name words: ``simuser_a_red_fox`` from "A red fox, --ar 3:2"."""
    words = _SLUG_WORD.findall(_PARAMS.sub("", prompt or "").lower())[:max_words]
    return "_".join(["simuser", *words])
