"""The leader: one process at a time runs the jobs that must not run twice, each at its own pace.

The leader is the holder of a PostgreSQL advisory lock on a connection of its own (named
``gateway-poller:<pid>`` in ``pg_stat_activity``), so a process that dies releases it with its
connection and another takes over at its next try. While it leads it runs every job in a loop of
its own (the container says which, ``gateway.container``):

    sync             every poll interval   ends overdue tasks, brings open ones up to date
                     (counted from each round's start: a round spreads its calls over it)
    sweep-holds      every poll interval   resolves holds past their deadline
    backlog          every poll interval   exports what waits: open tasks, holds, webhooks
    probe            every second or less  probes resting channels
    purge-keys       every minute          forgets Idempotency-Key answers past their day
    purge-holds      every ten minutes     deletes holds of ended tasks past their keeping
    archive-tasks    every ten minutes     moves old ended tasks to the archive (if set)
    media-copy       every second          copies results into the media store
    media-stats      every minute          exports the media store's size
    media-retention  every ten minutes     deletes stored media past their retention
    media-jobs-purge every ten minutes     forgets copy jobs done a day ago

A job that fails is logged and runs again at its next turn; the others go on. When the lock's
connection is lost, every job stops, and this process tries to lead again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog

log = structlog.get_logger(__name__)

LOCK_KEY = 0x6D6A_6777_706F_6C6C  # "mjgwpoll"
APPLICATION_NAME = "gateway-poller"  # its connection's name in pg_stat_activity, with the pid


@dataclass(frozen=True, slots=True)
class Job:
    """``every_s``: the pause after each run, or with ``from_start`` the time from one run's
    start to the next's (at once when a run took longer)."""

    name: str
    every_s: float
    run: Callable[[], Awaitable[object]]
    from_start: bool = False


class Leader:
    def __init__(self, database_url: str, jobs: Sequence[Job], *, retry_s: float) -> None:
        """``retry_s``: how often a follower asks for the lock, and the leader checks it."""
        self._database_url = database_url
        self._jobs = jobs
        self._retry_s = retry_s

    async def run(self) -> None:
        """Until cancelled: lead whenever the lock is free."""
        while True:
            try:
                conn = await asyncpg.connect(
                    self._database_url,
                    server_settings={"application_name": f"{APPLICATION_NAME}:{os.getpid()}"},
                )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("poller_connect_failed", error=str(exc))
                await asyncio.sleep(self._retry_s)
                continue
            try:
                await self._lead_when_possible(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("poller_interrupted", error=str(exc))
                await asyncio.sleep(self._retry_s)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _lead_when_possible(self, conn: asyncpg.Connection) -> None:
        while True:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                break
            await asyncio.sleep(self._retry_s)
        log.info("poller_leading")
        running = [asyncio.create_task(self._every(job), name=job.name) for job in self._jobs]
        try:
            while True:  # returns only by raising, when the lock's connection is lost
                await conn.execute("SELECT 1")
                await asyncio.sleep(self._retry_s)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    @staticmethod
    async def _every(job: Job) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await job.run()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("job_failed", job=job.name, error=str(exc))
            except Exception:  # a bug must not stop the job for good: log it, go on
                log.exception("job_crashed", job=job.name)
            taken_s = loop.time() - started if job.from_start else 0.0
            await asyncio.sleep(max(0.0, job.every_s - taken_s))
