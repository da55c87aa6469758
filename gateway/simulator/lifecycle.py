"""Running tasks: from an account slot to an end state, on loop timers, with callbacks.

``enqueue`` puts a created task on its account (start now, or wait in line); a started task walks
its ``timing`` plan with one ``loop.call_later`` handle at a time plus a timeout handle. Every
visible change is posted to the task's notifyHook. Ending a task frees its slot and starts the
next one waiting on that account. ``stop`` cancels every timer.
"""

from __future__ import annotations

import asyncio
import random
import time

from gateway.config import SimulatorSettings
from gateway.simulator import protocol, timing
from gateway.simulator.accounts import Account, AccountPool
from gateway.simulator.buttons import Output, Profile, buttons_for
from gateway.simulator.callbacks import Notifier
from gateway.simulator.faults import LifecycleFault
from gateway.simulator.images import Urls
from gateway.simulator.prompts import describe_suggestions, numbered, shorten_suggestions, slug
from gateway.simulator.protocol import ReturnCode, SubmitAnswer, TaskStatus
from gateway.simulator.tasks import Task, TaskStore

_FAIL_REASONS = {
    LifecycleFault.FAIL_BANNED: protocol.FAIL_BANNED,
    LifecycleFault.FAIL_INVALID: protocol.FAIL_INVALID,
}
_PICTURE_OUTPUTS = frozenset({Output.GRID, Output.SINGLE, Output.SWAP})
VIDEO_OUTPUTS = frozenset({Output.VIDEO, Output.VIDEO_SINGLE})
_HASHED_OUTPUTS = frozenset({Output.GRID, Output.SINGLE, Output.DESCRIBE, *VIDEO_OUTPUTS})
GRID_TILES = 4


def now_ms() -> int:
    return int(time.time() * 1000)


def digits(rng: random.Random, count: int) -> str:
    return str(rng.randrange(10 ** (count - 1), 10**count))


class Lifecycle:
    def __init__(
        self,
        settings: SimulatorSettings,
        rng: random.Random,
        store: TaskStore,
        pool: AccountPool,
        notifier: Notifier,
        urls: Urls,
    ) -> None:
        self._speed = settings.speed_factor
        self._split_grids = settings.flavour == "trueai"  # imageUrls: only trueai gives them
        self._timeout_s = settings.task_timeout_s
        self._rng = rng
        self._store = store
        self._pool = pool
        self._notifier = notifier
        self._urls = urls
        self._active: set[Task] = set()

    def enqueue(self, account: Account, task: Task) -> SubmitAnswer:
        """Admit ``task`` on ``account`` (the caller checked it has room): code 1 when it starts
        now, 22 with the count of tasks ahead when it waits."""
        ahead = account.admit(task)
        properties: dict[str, object] = {"discordInstanceId": account.id}
        if ahead is None:
            self._start(task)
            return SubmitAnswer(ReturnCode.SUCCESS, protocol.SUBMIT_OK, task.id, properties)
        properties["numberOfQueues"] = ahead
        description = protocol.QUEUED.format(n=ahead)
        return SubmitAnswer(ReturnCode.IN_QUEUE, description, task.id, properties)

    def notify(self, task: Task) -> None:
        if task.notify_hook:
            self._notifier.post(task.notify_hook, protocol.dumps(task.to_json()))

    def fail(self, task: Task, reason: str) -> None:
        task.status = TaskStatus.FAILURE
        task.progress = ""
        task.fail_reason = reason
        task.finish_time = now_ms()
        self._end(task)
        self.notify(task)

    def cancel(self, task: Task) -> None:
        """End a task that has not finished as CANCEL, wherever it is (modal, line, running)."""
        task.status = TaskStatus.CANCEL
        task.progress = ""
        task.fail_reason = protocol.CANCELLED
        task.finish_time = now_ms()
        self._end(task)
        self.notify(task)

    def forget(self, task: Task) -> None:
        """Drop a task as an upstream that lost it would: no end state, no callback."""
        self._end(task)
        self._store.remove(task.id)

    def stop(self) -> None:
        for task in self._active:
            task.cancel_timers()
        self._active.clear()

    def _start(self, task: Task) -> None:
        plan = timing.plan(task.profile, task.mode, self._rng)
        steps = plan.steps
        if task.fault is LifecycleFault.STALL:
            steps = timing.stalled(steps, self._rng)
        task.steps = steps
        task.step_index = 0
        task.status = TaskStatus.SUBMITTED
        task.progress = "0%"
        task.start_time = now_ms()
        loop = asyncio.get_running_loop()
        timeout_s = (self._timeout_s + plan.relax_wait_s) / self._speed
        task.timeout_timer = loop.call_later(timeout_s, self._time_out, task)
        self._active.add(task)
        self._schedule(task, loop)
        self.notify(task)

    def _schedule(self, task: Task, loop: asyncio.AbstractEventLoop) -> None:
        delay_s = task.steps[task.step_index].delay_s / self._speed
        task.timer = loop.call_later(delay_s, self._advance, task)

    def _advance(self, task: Task) -> None:
        task.timer = None
        step = task.steps[task.step_index]
        task.step_index += 1
        if task.step_index == 1 and task.fault is not None:
            if task.fault is LifecycleFault.FORGET:
                self.forget(task)
                return
            reason = _FAIL_REASONS.get(task.fault)
            if reason is not None:
                self.fail(task, reason)
                return
        if step.progress is None:
            self._succeed(task)
            return
        task.status = TaskStatus.IN_PROGRESS
        task.progress = f"{step.progress}%"
        if step.progress == 0:
            task.properties["finalPrompt"] = task.prompt_en
            task.properties["messageId"] = digits(self._rng, 19)
        elif task.profile is Profile.FULL and task.output in _PICTURE_OUTPUTS:
            task.image_url = self._urls.image(task.id, f"preview_{step.progress}")
        if task.step_index < len(task.steps):
            self._schedule(task, asyncio.get_running_loop())
        self.notify(task)

    def _succeed(self, task: Task) -> None:
        task.status = TaskStatus.SUCCESS
        task.progress = "100%"
        task.finish_time = now_ms()
        task.buttons = buttons_for(task.output, task.image_hash, task.video_count)
        if task.output in _HASHED_OUTPUTS:
            task.properties["messageHash"] = task.image_hash
        name = task.image_name = f"{slug(task.prompt_en)}_{task.image_hash}"
        if task.output in _PICTURE_OUTPUTS:
            task.image_url = self._urls.image(task.id, name)
            if task.output is Output.GRID and self._split_grids:
                task.image_urls = self._parts(task, GRID_TILES, "png")
        elif task.output in VIDEO_OUTPUTS:
            task.video_urls = self._parts(task, task.video_count, "mp4")
            task.image_url = task.video_url = task.video_urls[0]["url"]
        elif task.output is Output.DESCRIBE:
            task.result_text = numbered(describe_suggestions(self._rng))
            task.prompt = task.prompt_en = task.result_text
            task.properties["finalPrompt"] = task.result_text
            task.image_url = task.input_image_url
        elif task.output is Output.SHORTEN:
            task.result_text = numbered(shorten_suggestions(task.prompt_en or "", self._rng))
            task.prompt_en = task.result_text
            task.properties["finalPrompt"] = task.result_text
        self._end(task)
        self.notify(task)

    def _parts(self, task: Task, count: int, suffix: str) -> list[dict[str, str]]:
        """``[{url, thumbnail}]`` of the n-th single image or video of a task, n = 1..count."""
        name = task.image_name or ""
        return [
            {
                "url": self._urls.part(task.id, name, number, suffix),
                "thumbnail": self._urls.part(task.id, name, number, "webp"),
            }
            for number in range(1, count + 1)
        ]

    def _time_out(self, task: Task) -> None:
        task.timeout_timer = None
        self.fail(task, protocol.TIMEOUT)

    def _end(self, task: Task) -> None:
        task.cancel_timers()
        self._active.discard(task)
        account = self._pool.get(task.account_id)
        successor = account.release(task) if account is not None else None
        if successor is not None:
            self._start(successor)
