"""The submit path: hold the price, choose a channel, call upstream, keep or release the hold.

1. The parent of a follow-up must be the caller's and SUCCESS (MODAL for /submit/modal).
2. The price is held and the task recorded as SUBMITTING in one transaction, which also checks
   the caller's caps on open tasks (``gateway.auth.limits``).
3. Channels are tried in failover order with no database connection held, up to
   ``max_attempts`` of them; one at its in-flight cap is passed over (it counts as "queue
   full" and as no attempt). A follow-up only ever goes to its parent's channel, under its cap.
   A task resolved meanwhile (the hold sweep) is sent nowhere.
4. The hold is settled when an upstream task exists, released otherwise: exactly one of the two.
5. What an attempt says of its channel's health is noted after that: a failure before the next
   channel is tried, an answer once its outcome is recorded.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from gateway import metrics
from gateway.auth.authenticator import Authenticator
from gateway.billing.holds import Billing
from gateway.billing.prices import VIDEO_PRICE_ACTIONS
from gateway.domain import Channel, Principal, Task
from gateway.errors import (
    ApiError,
    BadRequest,
    InternalError,
    NoAccount,
    NotFound,
    QueueFull,
    UpstreamError,
    UpstreamFailed,
    UpstreamTimeout,
)
from gateway.routing import health
from gateway.routing.choice import channels_to_try
from gateway.routing.cooldowns import Cooldowns
from gateway.routing.directory import ChannelDirectory
from gateway.routing.slots import ChannelSlots
from gateway.storage import tasks as task_store
from gateway.storage.holds import Held, NewTask
from gateway.storage.slots import Slot
from gateway.tasks.callbacks import callback_url
from gateway.tasks.orders import SubmitOrder, Submitted, as_follow_up_of, as_its_channel_takes_it
from gateway.tasks.views import shown_answer_properties
from gateway.tasks.webhooks import HookGuard
from gateway.upstream.client import UpstreamAnswer, UpstreamClient, encode_body
from gateway.upstream.outcomes import Verdict, classify

log = structlog.get_logger(__name__)

QUEUE_FULL_RETRY_AFTER_S = 10
MODAL_CODE = 21
_MALFORMED = "the upstream refused the request as malformed"


@dataclass
class _Progress:
    accepted: bool = False  # a channel took the task: from then on only its settle resolves it


@dataclass
class _Attempts:
    verdicts: list[Verdict] = field(default_factory=list)

    def failure(self, order: SubmitOrder) -> ApiError:
        """The error for a submit that no channel took, most useful to the client first."""
        seen = set(self.verdicts)
        if Verdict.QUEUE_FULL in seen:
            return QueueFull(retry_after_s=QUEUE_FULL_RETRY_AFTER_S)
        if seen <= {Verdict.NO_ACCOUNT, Verdict.AUTH_FAILED}:
            if order.account_named and Verdict.NO_ACCOUNT in seen:  # the client's choice
                return BadRequest("accountFilter: no usable upstream account has this id")
            return NoAccount()
        if self.verdicts[-1] is Verdict.TIMEOUT:
            return UpstreamTimeout()
        return UpstreamFailed()


class Submitter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        auth: Authenticator,
        billing: Billing,
        channels: ChannelDirectory,
        cooldowns: Cooldowns,
        upstream: UpstreamClient,
        slots: ChannelSlots,
        *,
        max_attempts: int,
        queued_passthrough: bool = False,
        callback_base_url: str | None = None,
        hooks: HookGuard,
        rng: random.Random,
    ) -> None:
        self._pool = pool
        self._auth = auth
        self._billing = billing
        self._channels = channels
        self._cooldowns = cooldowns
        self._upstream = upstream
        self._slots = slots
        self._max_attempts = max_attempts
        self._queued_passthrough = queued_passthrough
        self._callback_base_url = callback_base_url
        self._hooks = hooks
        self._rng = rng

    async def submit(self, principal: Principal, order: SubmitOrder) -> Submitted:
        self._auth.check_action(principal, order.price_action)
        if order.notify_hook is not None:
            await self._hooks.check(order.notify_hook)
        for name, url in order.fetched_urls:
            await self._hooks.check(url, name)
        parent = await self._parent(principal, order)
        if parent is not None:
            order = as_follow_up_of(order, parent)
        channels = await self._route(order, parent)
        if parent is not None:
            order = as_its_channel_takes_it(order, channels[0])
        price = await self._price(principal, order)
        if order.kind == "modal" and parent is not None:
            held = await self._billing.hold_modal(principal, parent.id, order.price_action, price)
        else:
            held = await self._billing.hold_new_task(
                self._new_task(principal, order, price, capped=True)
            )
        unresolved_status = "MODAL" if order.kind == "modal" else "REJECTED"
        progress = _Progress()
        try:
            submitted = await self._forward(order, held, channels, unresolved_status, progress)
        except ApiError:
            raise
        except BaseException:
            if not progress.accepted:  # once a channel took the task, its settle decides
                reason = "gateway error"
                await self._billing.release(held, task_status=unresolved_status, reason=reason)
            raise
        if submitted.code != MODAL_CODE:
            metrics.TASKS_SUBMITTED.labels(order.price_action, order.mode).inc()
            metrics.QUOTA_CHARGED.labels(order.price_action).inc(price)
        return submitted

    async def upload(self, principal: Principal, order: SubmitOrder) -> list[str]:
        """Upload images through a channel; charged like a task that succeeds at once."""
        self._auth.check_action(principal, order.price_action)
        channels = await self._route(order, None)
        price = await self._price(principal, order)
        held = await self._billing.hold_new_task(
            self._new_task(principal, order, price, capped=False)
        )
        attempts = _Attempts()
        payload = encode_body(order.upstream_body)
        try:
            for channel in channels[: self._max_attempts]:
                outcome, verdict = await self._attempt(channel, order, payload)
                if verdict is Verdict.ACCEPTED and isinstance(outcome, UpstreamAnswer):
                    settled = await self._billing.settle(
                        held,
                        status="SUCCESS",
                        channel_id=channel.id,
                        upstream_task_id=None,
                        description=outcome.description,
                        properties={},
                    )
                    await self._note_health(channel, verdict, order, outcome)
                    if not settled:
                        raise InternalError("the upload outlived its hold; nothing was charged")
                    metrics.QUOTA_CHARGED.labels(order.price_action).inc(price)
                    return [str(url) for url in outcome.result]
                await self._note_health(channel, verdict, order, outcome)
                if not verdict.tries_next_channel:
                    if isinstance(outcome, UpstreamError):
                        raise BadRequest(_MALFORMED)
                    raise BadRequest(outcome.description or "upload refused by the upstream")
                attempts.verdicts.append(verdict)
            raise attempts.failure(order)
        except BaseException as exc:
            reason = exc.description if isinstance(exc, ApiError) else "gateway error"
            await self._billing.release(held, task_status="REJECTED", reason=reason)
            raise

    async def _price(self, principal: Principal, order: SubmitOrder) -> int:
        return await self._billing.price(
            principal, order.price_action, order.mode, order.quantity_bp
        )

    async def _parent(self, principal: Principal, order: SubmitOrder) -> Task | None:
        if order.parent_id is None:
            return None
        parent = await task_store.get_user_task(self._pool, order.parent_id, principal.user_id)
        if parent is None or parent.upstream_task_id is None or parent.channel_id is None:
            raise NotFound(f"task {order.parent_id} not found")
        wanted = "MODAL" if order.kind == "modal" else "SUCCESS"
        if parent.status != wanted:
            raise BadRequest(f"task {parent.id} is {parent.status}, not {wanted}")
        if order.kind == "video" and parent.price_action not in VIDEO_PRICE_ACTIONS:
            raise BadRequest(f"task {parent.id} is not a video: only a video can be extended")
        if order.custom_id is not None and not any(
            button.get("customId") == order.custom_id for button in parent.buttons
        ):
            raise BadRequest(f"customId is not a button of task {parent.id}")
        return parent

    def _new_task(
        self, principal: Principal, order: SubmitOrder, price: int, *, capped: bool
    ) -> NewTask:
        """``capped``: the task counts against the caller's caps on open tasks."""
        return NewTask(
            user_id=principal.user_id,
            api_key_id=principal.key_id,
            parent_id=order.parent_id,
            action=order.action,
            price_action=order.price_action,
            mode=order.mode,
            bot_type=order.bot_type,
            price_units=price,
            prompt=order.prompt,
            state=order.state,
            notify_hook=order.notify_hook,
            submit_time_ms=int(time.time() * 1000),
            key_max_open_tasks=principal.max_open_tasks if capped else None,
            user_max_open_tasks=principal.user_max_open_tasks if capped else None,
        )

    async def _route(self, order: SubmitOrder, parent: Task | None) -> list[Channel]:
        """The channels to try, in order (``channels_to_try``); for a follow-up, its parent's
        channel whatever its state."""
        if parent is not None and parent.channel_id is not None:
            channel = await self._channels.get(parent.channel_id)
            if channel is None:
                raise NoAccount("the channel of this task's parent is gone")
            return [channel]
        cooling = await self._cooldowns.cooling()
        return channels_to_try(
            await self._channels.channels(),
            {channel_id: rest.until_ms for channel_id, rest in cooling.items()},
            order.kind,
            order.price_action,
            order.mode,
            order.bot_type,
            self._rng,
            int(time.time() * 1000),
        )

    async def _attempt(
        self, channel: Channel, order: SubmitOrder, payload: bytes
    ) -> tuple[UpstreamAnswer | UpstreamError, Verdict]:
        outcome: UpstreamAnswer | UpstreamError
        try:
            outcome = await self._upstream.submit(
                channel, order.upstream_path, payload, order.price_action
            )
        except UpstreamError as exc:
            outcome = exc
        verdict = classify(outcome, urls=order.kind == "upload")
        metrics.CHANNEL_SELECTIONS.labels(channel.name, order.price_action).inc()
        metrics.UPSTREAM_REQUESTS.labels(
            channel.name, "submit", order.price_action, verdict.value
        ).inc()
        if verdict is Verdict.AUTH_FAILED:
            log.error("channel_secret_refused", channel=channel.name, path=order.upstream_path)
        log.info(
            "upstream_submit",
            channel=channel.name,
            path=order.upstream_path,
            verdict=verdict.value,
            code=outcome.code if isinstance(outcome, UpstreamAnswer) else None,
            error=str(outcome) if isinstance(outcome, UpstreamError) else None,
        )
        return outcome, verdict

    async def _note_health(
        self,
        channel: Channel,
        verdict: Verdict,
        order: SubmitOrder,
        outcome: UpstreamAnswer | UpstreamError,
    ) -> None:
        await health.note_submit(
            self._cooldowns,
            channel,
            verdict,
            outcome,
            no_account_is_the_requests=order.parent_id is not None or order.account_named,
        )

    async def _forward(
        self,
        order: SubmitOrder,
        held: Held,
        channels: list[Channel],
        unresolved_status: str,
        progress: _Progress,
    ) -> Submitted:
        attempts = _Attempts()
        tried = 0
        for channel in channels:
            if tried == self._max_attempts:
                break
            slot = await self._slots.take(held.task_id, channel)
            if slot is Slot.ENDED:
                log.error("submit_outlived_its_task", task_id=held.task_id, channel=channel.name)
                raise InternalError("this submit's task ended before it was sent")
            if slot is Slot.FULL:
                attempts.verdicts.append(Verdict.QUEUE_FULL)
                continue
            tried += 1
            body = order.upstream_body
            if self._callback_base_url is not None:
                hook = callback_url(self._callback_base_url, channel, held.task_id)
                body = {**body, "notifyHook": hook}
            outcome, verdict = await self._attempt(channel, order, encode_body(body))
            if not verdict.tries_next_channel:
                progress.accepted = verdict is Verdict.ACCEPTED
                try:
                    return await self._conclude(
                        order, held, channel, outcome, verdict, unresolved_status
                    )
                finally:  # the outcome is recorded first: health is a Redis call
                    await self._note_health(channel, verdict, order, outcome)
            await self._note_health(channel, verdict, order, outcome)
            await self._slots.give_back(held.task_id, channel)
            attempts.verdicts.append(verdict)
        error = attempts.failure(order)
        await self._billing.release(held, task_status=unresolved_status, reason=error.description)
        raise error

    async def _conclude(
        self,
        order: SubmitOrder,
        held: Held,
        channel: Channel,
        answer: UpstreamAnswer | UpstreamError,
        verdict: Verdict,
        unresolved_status: str,
    ) -> Submitted:
        if isinstance(answer, UpstreamError):  # refused as malformed, in an HTTP status
            await self._billing.release(held, task_status=unresolved_status, reason=str(answer))
            raise BadRequest(_MALFORMED)
        upstream_id = str(answer.result)
        properties = shown_answer_properties(answer.properties, order.prompt_urls)
        if verdict is Verdict.ACCEPTED:
            queued = answer.code == 22
            settled = await self._billing.settle(
                held,
                status="NOT_START" if queued else "SUBMITTED",
                channel_id=channel.id,
                upstream_task_id=upstream_id,
                description=order.description_of(held.task_id),
                properties=_kept_properties(properties),
                prompt_en=order.sent_prompt,
                prompt_urls=order.prompt_urls,
            )
            if not settled:  # the hold expired, or the task was ended meanwhile (a cancel)
                log.error("settle_refused", task_id=held.task_id, channel=channel.name)
                reason = "the task ended before its charge was kept"
                await self._billing.release(held, task_status=unresolved_status, reason=reason)
                raise InternalError("this submit's outcome could not be recorded")
            code = 22 if queued and self._queued_passthrough else 1
            return Submitted(code, held.task_id, answer.description, properties)
        if verdict is Verdict.MODAL:
            await self._billing.release(
                held,
                task_status="MODAL",
                reason="modal confirmation needed",
                channel_id=channel.id,
                upstream_task_id=upstream_id,
                description=order.description_of(held.task_id),
                properties=_modal_properties(properties),
                prompt_urls=order.prompt_urls,
            )
            return Submitted(MODAL_CODE, held.task_id, answer.description, properties)
        await self._billing.release(held, task_status=unresolved_status, reason=answer.description)
        if verdict is Verdict.BANNED:
            banned = answer.properties.get("bannedWord")
            raise BadRequest(
                answer.description or "prompt refused as banned",
                properties={"bannedWord": banned} if banned else None,
            )
        raise BadRequest(answer.description or "refused by the upstream")


def _kept_properties(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if k in ("numberOfQueues", "finalPrompt")}


def _modal_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """What a modal's answer says that a client prefills the modal with, kept for its fetch."""
    return {k: v for k, v in properties.items() if k in ("finalPrompt", "remix")}
