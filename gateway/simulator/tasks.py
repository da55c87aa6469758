"""The simulated task, its JSON shape on the wire, and the in-memory store of tasks.

A ``Task`` carries the fields the proxies show (rendered by ``to_json`` with every key present)
plus what the simulator needs to run it (account, mode, timers, image recipe, fault).
``TaskStore`` keeps tasks by id in submit order and evicts the oldest finished ones past a cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.simulator.buttons import Button, FollowUp, Output, Profile
from gateway.simulator.faults import LifecycleFault
from gateway.simulator.protocol import BotType, Mode, TaskAction, TaskStatus
from gateway.simulator.timing import Step

MAX_TASKS = 100_000
"""Tasks kept in memory; past it the oldest finished ones are evicted (fetch then answers empty)."""


@dataclass(slots=True, eq=False)
class ImageRecipe:
    """How to draw a task's picture: tiles of the grid ``seed``; ``tile`` 0 = the whole grid."""

    seed: str
    tile: int
    aspect: float


@dataclass(slots=True, eq=False)
class Task:
    id: str
    action: TaskAction
    status: TaskStatus
    submit_time: int
    account_id: str
    mode: Mode
    output: Output
    profile: Profile
    image_hash: str
    recipe: ImageRecipe
    bot_type: BotType = BotType.MID_JOURNEY
    prompt: str | None = None
    prompt_en: str | None = None
    description: str = ""
    state: str | None = None
    progress: str | None = "0%"
    start_time: int | None = None
    finish_time: int | None = None
    image_url: str | None = None
    fail_reason: str | None = None
    buttons: list[Button] = field(default_factory=list)
    properties: dict[str, object] = field(default_factory=dict)
    notify_hook: str | None = None
    parent_id: str | None = None
    follow_up: FollowUp | None = None
    fault: LifecycleFault | None = None
    input_image_url: str | None = None
    result_text: str | None = None
    image_name: str | None = None
    video_count: int = 0
    image_urls: list[dict[str, str]] | None = None
    video_url: str | None = None
    video_urls: list[dict[str, str]] | None = None
    steps: list[Step] = field(default_factory=list)
    step_index: int = 0
    timer: asyncio.TimerHandle | None = None
    timeout_timer: asyncio.TimerHandle | None = None

    def to_json(self) -> dict[str, object]:
        """The task object of fetch / list / callbacks: every key present, nulls kept; the
        newer media keys only where the task has them, as trueai sends them."""
        media = {
            key: value
            for key, value in (
                ("imageUrls", self.image_urls),
                ("videoUrl", self.video_url),
                ("videoUrls", self.video_urls),
            )
            if value is not None
        }
        return {
            "id": self.id,
            "action": self.action.value,
            "status": self.status.value,
            "progress": self.progress,
            "prompt": self.prompt,
            "promptEn": self.prompt_en,
            "description": self.description,
            "state": self.state,
            "submitTime": self.submit_time,
            "startTime": self.start_time,
            "finishTime": self.finish_time,
            "imageUrl": self.image_url,
            "failReason": self.fail_reason,
            "buttons": [button.to_json() for button in self.buttons],
            "properties": self.properties,
            **media,
        }

    def cancel_timers(self) -> None:
        for handle in (self.timer, self.timeout_timer):
            if handle is not None:
                handle.cancel()
        self.timer = None
        self.timeout_timer = None


class TaskStore:
    """Tasks by id, in submit order (dicts keep insertion order)."""

    def __init__(self, max_tasks: int = MAX_TASKS) -> None:
        self._tasks: dict[str, Task] = {}
        self._max_tasks = max_tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._tasks

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def add(self, task: Task) -> None:
        self._tasks[task.id] = task
        if len(self._tasks) > self._max_tasks:
            self._evict()

    def remove(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)

    def all(self) -> Iterable[Task]:
        return self._tasks.values()

    def newest(self, limit: int) -> list[Task]:
        found: list[Task] = []
        for task in reversed(self._tasks.values()):
            if len(found) == limit:
                break
            found.append(task)
        return found

    def by_ids(self, ids: Iterable[str]) -> list[Task]:
        """Known tasks among ``ids``, without duplicates, in an order unrelated to the request
        (sorted by the reversed id string, like a hash set would scatter them)."""
        found = {task.id: task for task in map(self._tasks.get, ids) if task is not None}
        return sorted(found.values(), key=lambda task: task.id[::-1])

    def _evict(self) -> None:
        """Drop the oldest finished tasks, 1% of the cap at a time: a walk from the oldest end
        that stops as soon as it has found them, so that no submit waits for a scan of all."""
        excess = len(self._tasks) - self._max_tasks + max(1, self._max_tasks // 100)
        doomed: list[str] = []
        for task_id, task in self._tasks.items():
            if task.status.finished:
                doomed.append(task_id)
                if len(doomed) == excess:
                    break
        for task_id in doomed:
            del self._tasks[task_id]
