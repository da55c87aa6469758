"""``gateway bench``: throughput (``throughput``) and latency (``latency``), measured against
subprocesses that ``stack`` starts."""

from gateway.bench.latency import run_latency
from gateway.bench.throughput import run_bench

__all__ = ["run_bench", "run_latency"]
