"""Short MP4 videos made from a task's picture: H.264 in an MP4 with its index first, so a browser
plays it while it downloads. PyAV's wheels carry their own FFmpeg, so nothing else is needed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
from PIL import ImageChops

from gateway.simulator.images import draw
from gateway.simulator.tasks import ImageRecipe

FPS = 12
FRAMES = 24
_SIDE_PX = 128


def render_mp4(recipe: ImageRecipe, size_px: int) -> bytes:
    """Two seconds of the picture drifting sideways, at most 128 pixels on its longer side."""
    picture = draw(recipe, size_px)
    picture.thumbnail((_SIDE_PX, _SIDE_PX))
    width, height = picture.width // 2 * 2, picture.height // 2 * 2
    picture = picture.crop((0, 0, width, height))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        # faststart moves the index to the front in a second pass, which needs a real file
        with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "30"}
            for number in range(FRAMES):
                frame = ImageChops.offset(picture, number * width // FRAMES, 0)
                container.mux(stream.encode(av.VideoFrame.from_image(frame)))  # type: ignore[no-untyped-call]
            container.mux(stream.encode(None))
        return path.read_bytes()
