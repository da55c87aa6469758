"""``gateway bench``: throughput (``throughput``), latency (``latency``), the media store
(``media``) and the poller under many open tasks (``polling``), measured against subprocesses
that ``stack`` starts."""

from gateway.bench.latency import run_latency
from gateway.bench.media import run_media
from gateway.bench.polling import run_polling
from gateway.bench.throughput import run_bench

__all__ = ["run_bench", "run_latency", "run_media", "run_polling"]
