"""A midjourney-proxy-plus simulator: the /mj API with accounts, queues, a timed task lifecycle,
buttons, modals, real PNGs, callbacks and fault injection, without Discord or Midjourney.

Operators use it to try the gateway, tests and benchmarks use it as the upstream.
``start_simulator`` serves in-process on the running loop; ``run_simulator`` blocks (CLI).
"""

from gateway.simulator.app import create_simulator_app
from gateway.simulator.server import RunningSimulator, run_simulator, start_simulator

__all__ = ["RunningSimulator", "create_simulator_app", "run_simulator", "start_simulator"]
