"""The simulated proxy behind the routes: creating tasks and answering every submit and query.

Routes hand over already-validated requests; the engine picks an account (3 when there is none,
23 when all are full), pins follow-ups to their parent's account, opens modals (21), and passes
admitted tasks to ``Lifecycle``. All randomness comes from one ``random.Random(settings.seed)``.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.config import SimulatorSettings
from gateway.simulator import protocol
from gateway.simulator.accounts import Account, AccountPool
from gateway.simulator.buttons import (
    Effect,
    FollowUp,
    FollowUpKind,
    ModalRule,
    Output,
    Profile,
    legacy_custom_id,
    parse_custom_id,
)
from gateway.simulator.callbacks import Notifier
from gateway.simulator.faults import Markers, draw_lifecycle_fault, forces_lifecycle_fault
from gateway.simulator.images import ImageStore, Urls
from gateway.simulator.lifecycle import VIDEO_OUTPUTS, Lifecycle, digits, now_ms
from gateway.simulator.prompts import suggestion_at
from gateway.simulator.protocol import (
    BotType,
    Mode,
    ReturnCode,
    SubmitAnswer,
    TaskAction,
    TaskStatus,
    fail,
)
from gateway.simulator.tasks import ImageRecipe, Task, TaskStore
from gateway.simulator.validation import DataUrl, zoom_is_valid

_CHANGEABLE = frozenset({Output.GRID})
_PROMPT_PICKERS = frozenset(
    {FollowUpKind.PIC_READER, FollowUpKind.PIC_READER_ALL, FollowUpKind.PROMPT_ANALYZER}
)


@dataclass(frozen=True, slots=True)
class Origin:
    """What every submit body may carry besides its own fields."""

    state: str | None = None
    notify_hook: str | None = None
    mode: Mode | None = None
    instance_id: str | None = None
    bot_type: BotType = BotType.MID_JOURNEY
    markers: Markers = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task that starts from nothing (imagine, blend, describe, shorten, swap face, video,
    edit, retexture); ``video_count``: the videos of a batch."""

    action: TaskAction
    output: Output
    profile: Profile
    prompt: str | None
    prompt_en: str | None
    description: Callable[[str], str]
    aspect: float = 1.0
    input_image_url: str | None = None
    video_count: int = 0


class Engine:
    def __init__(self, settings: SimulatorSettings, base_url: str) -> None:
        self.settings = settings
        self.faults = settings.faults.model_copy()
        self.requests: Counter[str] = Counter()
        """Requests served, by route name (``submit/imagine``, ``task/fetch`` ...)."""
        self.rng = random.Random(settings.seed)  # noqa: S311 - simulation, not security
        self.store = TaskStore()
        self.pool = AccountPool(settings)
        self.notifier = Notifier()
        self.urls = Urls(base_url, settings.attachment_ttl_s)
        self.images = ImageStore(settings.image_size_px)
        self.lifecycle = Lifecycle(
            settings, self.rng, self.store, self.pool, self.notifier, self.urls
        )

    async def close(self) -> None:
        self.lifecycle.stop()
        await self.notifier.close()

    def add_upload(self, image: DataUrl) -> str:
        """Keep an uploaded image for serving; its absolute URL."""
        name = f"{uuid.UUID(int=self.rng.getrandbits(128)).hex}.{image.suffix}"
        self.images.add_upload(name, image)
        return self.urls.upload(name)

    def submit(self, spec: NewTask, origin: Origin) -> SubmitAnswer:
        """Start a task from nothing on the least loaded account that has room."""
        candidates = self.pool.candidates(origin.instance_id)
        if not candidates:
            return fail(ReturnCode.NOT_FOUND, protocol.NO_ACCOUNT)
        account = self.pool.least_loaded(candidates)
        if account is None:
            return _queue_full(candidates[0])
        return self._start_new(spec, origin, account)

    def submit_extend(
        self, parent_id: str, index: int, spec: NewTask, origin: Origin
    ) -> SubmitAnswer:
        """Extend video ``index`` (0-based) of the SUCCESS video task ``parent_id``, on its
        account."""
        parent = self.store.get(parent_id)
        if parent is None:
            return fail(ReturnCode.NOT_FOUND, protocol.PARENT_MISSING)
        if parent.status is not TaskStatus.SUCCESS or parent.output not in VIDEO_OUTPUTS:
            return fail(ReturnCode.VALIDATION_ERROR, protocol.PARENT_STATUS)
        if not 0 <= index < parent.video_count:
            return fail(ReturnCode.VALIDATION_ERROR, protocol.INDEX_INVALID)
        account = self.pool.get(parent.account_id)
        if account is None:
            return fail(ReturnCode.NOT_FOUND, protocol.NO_ACCOUNT)
        if not account.has_room:
            return _queue_full(account)
        inherited = dataclasses.replace(origin, mode=origin.mode or parent.mode)
        return self._start_new(spec, inherited, account, parent)

    def _start_new(
        self, spec: NewTask, origin: Origin, account: Account, parent: Task | None = None
    ) -> SubmitAnswer:
        image_hash = self._new_hash()
        tile = 1 if spec.output is Output.SWAP else 0
        task = self._new_task(
            origin,
            account,
            spec.action,
            spec.output,
            spec.profile,
            image_hash,
            ImageRecipe(image_hash, tile, spec.aspect),
        )
        task.prompt, task.prompt_en = spec.prompt, spec.prompt_en
        task.description = spec.description(task.id)
        task.input_image_url = spec.input_image_url
        task.video_count = spec.video_count
        task.parent_id = parent.id if parent is not None else None
        return self.lifecycle.enqueue(account, task)

    def submit_action(self, parent_id: str, custom_id: str, origin: Origin) -> SubmitAnswer:
        """Press button ``custom_id`` of task ``parent_id``."""
        if not self.pool.accounts:
            return fail(ReturnCode.NOT_FOUND, protocol.NO_ACCOUNT)
        parent = self.store.get(parent_id)
        if parent is None:
            return fail(ReturnCode.NOT_FOUND, protocol.PARENT_MISSING)
        if parent.status is not TaskStatus.SUCCESS:
            return fail(ReturnCode.VALIDATION_ERROR, protocol.PARENT_STATUS)
        follow_up = parse_custom_id(custom_id)
        if follow_up is None or all(button.custom_id != custom_id for button in parent.buttons):
            return fail(ReturnCode.VALIDATION_ERROR, protocol.CUSTOM_ID_INVALID)
        effect = follow_up.effect
        if effect is None:
            return SubmitAnswer(ReturnCode.SUCCESS, protocol.OK_SHORT, parent.id)
        account = self.pool.get(parent.account_id)
        if account is None:
            return fail(ReturnCode.NOT_FOUND, protocol.NO_ACCOUNT)
        modal = effect.modal is ModalRule.ALWAYS or (
            effect.modal is ModalRule.IF_REMIX and account.remix
        )
        if not modal and not account.has_room:
            return _queue_full(account)
        task = self._child(parent, account, follow_up, effect, custom_id, origin)
        if follow_up.kind in _PROMPT_PICKERS:
            number = follow_up.index or 1
            task.prompt = task.prompt_en = suggestion_at(parent.result_text, number)
        if not modal:
            return self.lifecycle.enqueue(account, task)
        task.status = TaskStatus.MODAL
        task.description = protocol.WAITING_MODAL
        properties: dict[str, object] = {"finalPrompt": task.prompt_en, "remix": True}
        return SubmitAnswer(ReturnCode.MODAL, protocol.WAITING_MODAL, task.id, properties)

    def submit_change(
        self, parent_id: str, action: TaskAction, index: int | None, origin: Origin
    ) -> SubmitAnswer:
        """Legacy U/V/R by index: the same follow-up as the equivalent button."""
        parent = self.store.get(parent_id)
        if parent is None:
            return fail(ReturnCode.NOT_FOUND, protocol.PARENT_MISSING)
        if parent.status is not TaskStatus.SUCCESS:
            return fail(ReturnCode.VALIDATION_ERROR, protocol.PARENT_STATUS)
        if parent.output not in _CHANGEABLE:
            return fail(ReturnCode.VALIDATION_ERROR, protocol.PARENT_NOT_CHANGEABLE)
        if action is not TaskAction.REROLL and (index is None or not 1 <= index <= 4):
            return fail(ReturnCode.VALIDATION_ERROR, protocol.INDEX_INVALID)
        custom_id = legacy_custom_id(action, index or 0, parent.image_hash)
        return self.submit_action(parent_id, custom_id, origin)

    def submit_modal(
        self, task_id: str, prompt: str, prompt_en: str, has_mask: bool, markers: Markers
    ) -> SubmitAnswer:
        """Confirm the modal of task ``task_id`` (status MODAL) with ``prompt``; it then runs
        under the same id."""
        task = self.store.get(task_id)
        if task is None:
            return fail(ReturnCode.NOT_FOUND, protocol.PARENT_MISSING)
        if task.status is not TaskStatus.MODAL:
            return fail(ReturnCode.VALIDATION_ERROR, protocol.PARENT_STATUS)
        kind = task.follow_up.kind if task.follow_up is not None else None
        if kind is FollowUpKind.CUSTOM_ZOOM and not zoom_is_valid(prompt_en):
            return fail(ReturnCode.VALIDATION_ERROR, protocol.ZOOM_INVALID)
        if kind is FollowUpKind.INPAINT and not has_mask:
            return fail(ReturnCode.VALIDATION_ERROR, protocol.MASK_EMPTY)
        account = self.pool.get(task.account_id)
        if account is None:
            return fail(ReturnCode.NOT_FOUND, protocol.NO_ACCOUNT)
        if not account.has_room:
            return _queue_full(account)
        if forces_lifecycle_fault(markers):
            task.fault = draw_lifecycle_fault(self.faults, markers, self.rng)
        task.prompt, task.prompt_en = prompt, prompt_en
        task.properties["finalPrompt"] = prompt_en
        task.status = TaskStatus.NOT_START
        task.description = _action_description(task.parent_id, task.properties.get("customId"))
        answer = self.lifecycle.enqueue(account, task)
        if answer.code is ReturnCode.IN_QUEUE:
            self.lifecycle.notify(task)
        return answer

    def upload(self, images: list[DataUrl]) -> SubmitAnswer:
        if not self.pool.accounts:
            return fail(ReturnCode.NOT_FOUND, protocol.NO_ACCOUNT)
        urls = [self.add_upload(image) for image in images]
        return SubmitAnswer(ReturnCode.SUCCESS, protocol.SUBMIT_OK, urls)

    def image_seed(self, task_id: str) -> SubmitAnswer:
        task = self.store.get(task_id)
        if task is None:
            return fail(ReturnCode.NOT_FOUND, protocol.PARENT_MISSING)
        message_hash = task.properties.get("messageHash")
        if task.status is not TaskStatus.SUCCESS or not isinstance(message_hash, str):
            return fail(ReturnCode.VALIDATION_ERROR, protocol.PARENT_STATUS)
        seed = int(message_hash.replace("-", "")[:8], 16)
        return SubmitAnswer(ReturnCode.SUCCESS, protocol.OK_SHORT, str(seed))

    def cancel(self, task_id: str) -> SubmitAnswer:
        task = self.store.get(task_id)
        if task is None:
            return fail(ReturnCode.NOT_FOUND, protocol.PARENT_MISSING)
        if task.status.finished:
            return fail(ReturnCode.VALIDATION_ERROR, protocol.PARENT_STATUS)
        self.lifecycle.cancel(task)
        return SubmitAnswer(ReturnCode.SUCCESS, protocol.OK_SHORT, task.id)

    def stats(self) -> dict[str, object]:
        statuses = Counter(task.status.value for task in self.store.all())
        return {
            "requests": dict(self.requests),
            "tasks": dict(statuses),
            "accounts": [account.to_json() for account in self.pool.accounts],
        }

    def _child(
        self,
        parent: Task,
        account: Account,
        follow_up: FollowUp,
        effect: Effect,
        custom_id: str,
        origin: Origin,
    ) -> Task:
        action = follow_up.action_after(parent.action) or parent.action
        image_hash = self._new_hash()
        output, profile = effect.output, effect.profile
        if follow_up.kind is FollowUpKind.REROLL and parent.output is Output.VIDEO:
            output, profile = Output.VIDEO, Profile.VIDEO
        if follow_up.kind in (FollowUpKind.UPSCALE, FollowUpKind.VIDEO_UPSCALE):
            recipe = ImageRecipe(parent.image_hash, follow_up.index, parent.recipe.aspect)
        elif output is Output.SINGLE:
            recipe = parent.recipe
        else:
            recipe = ImageRecipe(image_hash, 0, parent.recipe.aspect)
        inherited = dataclasses.replace(
            origin, mode=origin.mode or parent.mode, instance_id=None, bot_type=parent.bot_type
        )
        task = self._new_task(inherited, account, action, output, profile, image_hash, recipe)
        task.video_count = {Output.VIDEO: parent.video_count or 4, Output.VIDEO_SINGLE: 1}.get(
            output, 0
        )
        task.parent_id = parent.id
        task.follow_up = follow_up
        task.prompt, task.prompt_en = parent.prompt, parent.prompt_en
        task.input_image_url = parent.input_image_url
        task.description = _action_description(parent.id, custom_id)
        task.properties["customId"] = custom_id
        task.properties["finalPrompt"] = parent.properties.get("finalPrompt")
        task.properties["progressMessageId"] = parent.properties.get("messageId")
        return task

    def _new_task(
        self,
        origin: Origin,
        account: Account,
        action: TaskAction,
        output: Output,
        profile: Profile,
        image_hash: str,
        recipe: ImageRecipe,
    ) -> Task:
        task = Task(
            id=self._new_id(),
            action=action,
            status=TaskStatus.NOT_START,
            submit_time=now_ms(),
            account_id=account.id,
            mode=origin.mode or Mode.FAST,
            output=output,
            profile=profile,
            image_hash=image_hash,
            recipe=recipe,
            bot_type=origin.bot_type,
            state=origin.state,
            notify_hook=origin.notify_hook,
            fault=draw_lifecycle_fault(self.faults, origin.markers, self.rng),
        )
        task.properties.update(
            notifyHook=origin.notify_hook,
            discordInstanceId=account.id,
            botType=origin.bot_type.value,
            nonce=digits(self.rng, 19),
            flags=0,
        )
        self.store.add(task)
        return task

    def _new_id(self) -> str:
        """Epoch milliseconds and three random digits (16 characters), unique in the store."""
        while True:
            task_id = f"{now_ms()}{self.rng.randrange(1000):03d}"
            if task_id not in self.store:
                return task_id

    def _new_hash(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def _action_description(parent_id: str | None, custom_id: object) -> str:
    return f"/action {parent_id} {custom_id}"


def _queue_full(account: Account) -> SubmitAnswer:
    return fail(ReturnCode.QUEUE_REJECTED, protocol.QUEUE_FULL, discordInstanceId=account.id)
