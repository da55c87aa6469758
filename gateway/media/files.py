"""What a result's bytes are, pure: their type by magic number, a WebP thumbnail, the four single
images of a 2x2 grid, and a byte range of a stored object. Pillow runs in the caller's thread:
callers on the event loop hand these to a worker thread."""

from __future__ import annotations

import io
import re

from PIL import Image

THUMBNAIL_PX = 256
MAX_PIXELS = 25_000_000
"""Larger pictures are not decoded (Midjourney's largest upscale is some 16.8 million pixels): a
small file can claim a vast size, and decoding takes some 4 bytes a pixel."""


class UnfitImage(ValueError):
    """Bytes Pillow cannot or must not decode: broken, or over ``MAX_PIXELS``."""


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UnfitImage(f"not a picture Pillow reads: {error}") from error
    if image.width * image.height > MAX_PIXELS:
        image.close()
        raise UnfitImage(f"{image.width}x{image.height} is over {MAX_PIXELS} pixels")
    return image


IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
VIDEO_TYPES = frozenset({"video/mp4", "video/webm", "video/quicktime"})
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII)


def sniff(data: bytes) -> str | None:
    """The content type the bytes are, by their first bytes; None when not an image or video
    the store keeps."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:10] == b"qt" else "video/mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def thumbnail(data: bytes) -> bytes:
    """A WebP of the image, at most ``THUMBNAIL_PX`` on its longer side; ``UnfitImage`` when
    it cannot be decoded."""
    with _open(data) as image:
        try:
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        except (OSError, ValueError) as error:
            raise UnfitImage(f"not a picture Pillow reads: {error}") from error
        small = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    buffer = io.BytesIO()
    small.save(buffer, format="WEBP", quality=80)
    return buffer.getvalue()


def split_grid(data: bytes) -> list[bytes]:
    """The four single images of a 2x2 grid, as PNGs, left to right and top to bottom;
    ``UnfitImage`` when it cannot be decoded."""
    with _open(data) as image:
        try:
            grid = image.convert("RGB")
        except (OSError, ValueError) as error:
            raise UnfitImage(f"not a picture Pillow reads: {error}") from error
    half_w, half_h = grid.width // 2, grid.height // 2
    tiles = []
    for left, top in ((0, 0), (half_w, 0), (0, half_h), (half_w, half_h)):
        buffer = io.BytesIO()
        grid.crop((left, top, left + half_w, top + half_h)).save(buffer, format="PNG")
        tiles.append(buffer.getvalue())
    return tiles


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a ``Range`` header asks of an object of ``size`` bytes, as (first,
    last) inclusive; None for no header, or one this does not take (several ranges, another
    unit, an end before its start), which is answered with the whole object. ``ValueError``
    when it cannot be satisfied (416)."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        length = min(int(last), size)
        if length == 0:
            raise ValueError("an empty suffix range")
        return size - length, size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # not a valid range: ignored, as RFC 9110 has it
    if start >= size:
        raise ValueError("the range starts past the end")
    return start, min(int(last), size - 1) if last else size - 1
