"""What a result's bytes are, pure: sniffing, thumbnails, grid splitting, byte ranges."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from gateway.media import files


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 8, "image/jpeg"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        (b"GIF89a" + b"\0" * 6, "image/gif"),
        (b"\0\0\0\x20ftypisom\0\0", "video/mp4"),
        (b"\0\0\0\x14ftypqt  \0\0", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3" + b"\0" * 8, "video/webm"),
        (b"<html>not a picture", None),
        (b"", None),
    ],
)
def test_bytes_are_known_by_their_head(head: bytes, kind: str | None) -> None:
    assert files.sniff(head) == kind


def test_a_grid_splits_into_its_four_images_and_thumbnails_are_small_webps() -> None:
    grid = Image.new("RGB", (200, 100))
    for n, (x, y) in enumerate(((0, 0), (100, 0), (0, 50), (100, 50))):
        grid.paste((n * 60, 0, 0), (x, y, x + 100, y + 50))
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    tiles = [Image.open(io.BytesIO(tile)) for tile in files.split_grid(buffer.getvalue())]
    assert [tile.size for tile in tiles] == [(100, 50)] * 4
    assert [tile.getpixel((10, 10)) for tile in tiles] == [(n * 60, 0, 0) for n in range(4)]
    small = Image.open(io.BytesIO(files.thumbnail(_png((2000, 1000), "RGBA"))))
    assert (small.format, small.size) == ("WEBP", (256, 128))


@pytest.mark.parametrize(
    "data", [_png((6000, 5000), "1"), b"\x89PNG\r\n\x1a\n broken", b"plain text"]
)
def test_pictures_too_large_to_decode_or_broken_are_unfit(data: bytes) -> None:
    for make in (files.thumbnail, files.split_grid):
        with pytest.raises(files.UnfitImage):
            make(data)


@pytest.mark.parametrize(
    ("header", "size", "wanted"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-500", 100, (0, 99)),
        ("bytes=50-500", 100, (50, 99)),
        ("bytes=0-1,5-6", 100, None),  # several ranges: the whole object
        ("items=0-9", 100, None),
        ("bytes=9-3", 100, None),  # invalid: ignored
    ],
)
def test_a_range_header_names_one_byte_range(
    header: str | None, size: int, wanted: tuple[int, int] | None
) -> None:
    assert files.byte_range(header, size) == wanted


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-200", "bytes=-0"])
def test_a_range_past_the_end_cannot_be_satisfied(header: str) -> None:
    with pytest.raises(ValueError, match=r"range|suffix"):
        files.byte_range(header, 100)
