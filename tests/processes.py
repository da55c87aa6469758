"""Gateways as real processes (``gateway serve``), for tests of several replicas and of crashes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class GatewayProcess:
    """One ``gateway serve --workers N`` in its own session, on a port it keeps across
    restarts."""

    env: dict[str, str]
    log_path: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> GatewayProcess:
        env = {**os.environ, **self.env, "GATEWAY_SERVER__PORT": str(self.port)}
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "gateway", "serve", "--workers", str(self.workers)),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.returncode is not None:
                    raise AssertionError(f"gateway exited: {self._log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        return self
                await asyncio.sleep(0.1)
        raise AssertionError(f"gateway not ready in time: {self._log_tail()}")

    async def kill(self) -> None:
        """SIGKILL, as a crash: nothing is finished or cleaned up."""
        if self.process is not None and self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            await self.kill()

    def _log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


StartGatewayProcess = Callable[..., Awaitable[GatewayProcess]]


@contextlib.asynccontextmanager
async def gateway_processes(
    base_env: dict[str, str], folder: Path
) -> AsyncIterator[StartGatewayProcess]:
    """Start gateway processes with ``base_env`` plus a call's own settings; all stopped after."""
    started: list[GatewayProcess] = []

    async def start(workers: int = 1, **env: str) -> GatewayProcess:
        log_path = folder / f"gateway-{len(started)}.log"
        gateway = GatewayProcess({**base_env, **env}, log_path, workers)
        started.append(gateway)
        return await gateway.start()

    try:
        yield start
    finally:
        await asyncio.gather(*(gateway.stop() for gateway in started))


async def reconcile(database_url: str, data_dir: Path) -> tuple[int, str]:
    """``gateway reconcile --hold-grace 0`` as an operator runs it: (exit code, its report)."""
    env = {**os.environ, "GATEWAY_DATABASE__URL": database_url, "GATEWAY_DATA_DIR": str(data_dir)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "reconcile", "--hold-grace", "0",
        env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    report, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, report.decode()
