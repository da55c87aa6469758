"""``gateway bench``: throughput (``throughput``), latency (``latency``) and the media store
(``media``), measured against subprocesses that ``stack`` starts."""

from gateway.bench.latency import run_latency
from gateway.bench.media import run_media
from gateway.bench.throughput import run_bench

__all__ = ["run_bench", "run_latency", "run_media"]
