"""The Discord accounts the simulator pretends to drive: ``core_size`` running slots and a
``queue_size`` waiting line each, and the choice of an account for a new task."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gateway.config import SimulatorSettings
from gateway.simulator.tasks import Task


@dataclass(eq=False)
class Account:
    id: str
    core_size: int
    queue_size: int
    remix: bool
    running: set[str] = field(default_factory=set)
    waiting: deque[Task] = field(default_factory=deque)

    @property
    def has_room(self) -> bool:
        return len(self.running) < self.core_size or len(self.waiting) < self.queue_size

    def admit(self, task: Task) -> int | None:
        """Take a task that fits (check ``has_room`` first): None when it may start now, else
        the number of tasks already waiting ahead of it."""
        if len(self.running) < self.core_size:
            self.running.add(task.id)
            return None
        ahead = len(self.waiting)
        self.waiting.append(task)
        return ahead

    def release(self, task: Task) -> Task | None:
        """Forget a task that ended or left the line; the waiting task that may start now."""
        if task.id not in self.running:
            if task in self.waiting:
                self.waiting.remove(task)
            return None
        self.running.discard(task.id)
        if self.waiting and len(self.running) < self.core_size:
            successor = self.waiting.popleft()
            self.running.add(successor.id)
            return successor
        return None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "running": len(self.running),
            "queued": len(self.waiting),
            "remix": self.remix,
        }


class AccountPool:
    def __init__(self, settings: SimulatorSettings) -> None:
        self.accounts = [
            Account(f"sim-account-{n}", settings.core_size, settings.queue_size, settings.remix)
            for n in range(1, settings.accounts + 1)
        ]
        self._by_id = {account.id: account for account in self.accounts}

    def get(self, account_id: str) -> Account | None:
        return self._by_id.get(account_id)

    def candidates(self, instance_id: str | None) -> list[Account]:
        """The accounts a new task may use: all, or the one ``accountFilter.instanceId`` names."""
        if instance_id is None:
            return self.accounts
        account = self._by_id.get(instance_id)
        return [account] if account is not None else []

    @staticmethod
    def least_loaded(accounts: list[Account]) -> Account | None:
        """The account with room and the fewest tasks (the first on a tie), if any has room."""
        best: Account | None = None
        best_load = 0
        for account in accounts:
            running, waiting = len(account.running), len(account.waiting)
            if running >= account.core_size and waiting >= account.queue_size:
                continue
            if best is None or running + waiting < best_load:
                best, best_load = account, running + waiting
        return best
