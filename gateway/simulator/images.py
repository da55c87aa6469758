"""Pictures: PNGs and WebP thumbnails drawn with Pillow from a task's ``ImageRecipe``, short
MP4s made from them (``gateway.simulator.videos``), and uploaded images kept for serving.

Drawing is deterministic (seeded by the recipe), happens lazily on the first download in a worker
thread, and is cached by URL path, so neither submit nor fetch ever pays for it. Previews are the
final picture, smaller and blurred the less progress there is.
"""

from __future__ import annotations

import asyncio
import io
import random
import time
from collections import OrderedDict
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from gateway.simulator.tasks import ImageRecipe
from gateway.simulator.validation import DataUrl

MAX_RENDERED = 256
MAX_UPLOADS = 512
THUMBNAIL_PX = 128


def _canvas_size(size_px: int, aspect: float) -> tuple[int, int]:
    if aspect >= 1:
        return size_px, max(8, round(size_px / aspect))
    return max(8, round(size_px * aspect)), size_px


def _color(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)


def _tile(seed: str, index: int, width: int, height: int) -> Image.Image:
    rng = random.Random(f"{seed}:{index}")  # noqa: S311 - drawing, not security
    gradient = Image.linear_gradient("L").resize((width, height))
    image = ImageOps.colorize(gradient, _color(rng), _color(rng)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 7)):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randint(max(2, width // 16), max(3, width // 3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=_color(rng))
    return image


def draw(recipe: ImageRecipe, size_px: int) -> Image.Image:
    """The full picture: a 2x2 grid when ``recipe.tile`` is 0, else that one tile, enlarged."""
    width, height = _canvas_size(size_px, recipe.aspect)
    if recipe.tile:
        return _tile(recipe.seed, recipe.tile, width, height)
    grid = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    for number, (left, top) in enumerate(((0, 0), (half_w, 0), (0, half_h), (half_w, half_h)), 1):
        grid.paste(_tile(recipe.seed, number, half_w, half_h), (left, top))
    return grid


def render_png(recipe: ImageRecipe, size_px: int, preview_pct: int | None = None) -> bytes:
    """PNG bytes of the picture, or of its low-res blurred preview at ``preview_pct`` percent."""
    image = draw(recipe, size_px)
    if preview_pct is not None:
        image = image.resize((max(4, image.width // 2), max(4, image.height // 2)))
        image = image.filter(ImageFilter.GaussianBlur(max(1.0, (100 - preview_pct) / 8)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def render_thumbnail(recipe: ImageRecipe, size_px: int) -> bytes:
    """A small WebP of the picture, at most ``THUMBNAIL_PX`` on its longer side."""
    image = draw(recipe, size_px)
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=80)
    return buffer.getvalue()


class Urls:
    """Absolute URLs of served pictures and videos; ``base`` is set once the server knows its
    port. A task's picture is ``<name>.png``; the n-th single image or video of its batch is
    ``<name>_<n>.png`` or ``<name>_<n>.mp4``, with its thumbnail ``<name>_<n>.webp``."""

    def __init__(self, base: str, ttl_s: float | None = None) -> None:
        """``ttl_s``: pictures' URLs expire that long after they are made (``ex=``, in hex
        epoch seconds, as Discord's CDN has it); None: never."""
        self.base = base.rstrip("/")
        self._ttl_s = ttl_s

    def _expiring(self, url: str) -> str:
        if self._ttl_s is None:
            return url
        return f"{url}?ex={int(time.time() + self._ttl_s):x}"

    def image(self, task_id: str, name: str) -> str:
        return self._expiring(f"{self.base}/attachments/{task_id}/{name}.png")

    def part(self, task_id: str, name: str, number: int, suffix: str) -> str:
        return self._expiring(f"{self.base}/attachments/{task_id}/{name}_{number}.{suffix}")

    def upload(self, name: str) -> str:
        return f"{self.base}/attachments/{UPLOADS_FOLDER}/{name}"


def expired(ex: str | None) -> bool:
    """Whether a picture URL's ``ex=`` has passed (one without it never expires)."""
    if not ex:
        return False
    try:
        return int(ex, 16) < time.time()
    except ValueError:
        return True


UPLOADS_FOLDER = "uploads"


class ImageStore:
    """Rendered files (LRU by key) and uploaded images (newest ``MAX_UPLOADS`` kept)."""

    def __init__(self, size_px: int) -> None:
        self._size_px = size_px
        self._rendered: OrderedDict[str, bytes] = OrderedDict()
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._uploads: OrderedDict[str, DataUrl] = OrderedDict()

    @property
    def size_px(self) -> int:
        return self._size_px

    async def png(self, key: str, recipe: ImageRecipe, preview_pct: int | None) -> bytes:
        """The PNG for ``key``, drawn at most once however many downloads ask at the same time."""
        return await self.rendered(key, lambda: render_png(recipe, self._size_px, preview_pct))

    async def rendered(self, key: str, make: Callable[[], bytes]) -> bytes:
        """The bytes ``make`` produces for ``key``, made once in a worker thread however many
        downloads ask at the same time, then cached."""
        cached = self._rendered.get(key)
        if cached is not None:
            self._rendered.move_to_end(key)
            return cached
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            data = await asyncio.to_thread(make)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()
            raise
        finally:
            del self._pending[key]
        future.set_result(data)
        self._rendered[key] = data
        if len(self._rendered) > MAX_RENDERED:
            self._rendered.popitem(last=False)
        return data

    def add_upload(self, name: str, image: DataUrl) -> None:
        self._uploads[name] = image
        if len(self._uploads) > MAX_UPLOADS:
            self._uploads.popitem(last=False)

    def upload(self, name: str) -> DataUrl | None:
        return self._uploads.get(name)
