"""Account slots and lines, and the task store."""

from __future__ import annotations

from gateway.config import SimulatorSettings
from gateway.simulator.accounts import Account, AccountPool
from gateway.simulator.buttons import Output, Profile
from gateway.simulator.protocol import Mode, TaskAction, TaskStatus
from gateway.simulator.tasks import ImageRecipe, Task, TaskStore
from tests.support import TASK_KEY_ORDER


def _task(task_id: str, status: TaskStatus = TaskStatus.NOT_START) -> Task:
    return Task(
        id=task_id,
        action=TaskAction.IMAGINE,
        status=status,
        submit_time=0,
        account_id="sim-account-1",
        mode=Mode.FAST,
        output=Output.GRID,
        profile=Profile.FULL,
        image_hash="h",
        recipe=ImageRecipe("h", 0, 1.0),
    )


def test_account_runs_core_size_then_queues_then_is_full() -> None:
    account = Account("a", core_size=2, queue_size=2, remix=False)
    tasks = [_task(str(n)) for n in range(4)]
    assert [account.admit(task) for task in tasks] == [None, None, 0, 1]
    assert not account.has_room
    assert account.to_json() == {"id": "a", "running": 2, "queued": 2, "remix": False}


def test_release_starts_the_next_waiting_task() -> None:
    account = Account("a", core_size=1, queue_size=5, remix=False)
    first, second, third = _task("1"), _task("2"), _task("3")
    for task in (first, second, third):
        account.admit(task)
    assert account.release(third) is None
    assert account.release(first) is second
    assert account.running == {"2"}
    assert not account.waiting


def test_pool_picks_the_least_loaded_account_with_room() -> None:
    pool = AccountPool(SimulatorSettings(accounts=3, core_size=1, queue_size=0))
    assert [a.id for a in pool.accounts] == ["sim-account-1", "sim-account-2", "sim-account-3"]
    chosen = []
    for n in range(3):
        account = pool.least_loaded(pool.accounts)
        assert account is not None
        account.admit(_task(str(n)))
        chosen.append(account.id)
    assert chosen == ["sim-account-1", "sim-account-2", "sim-account-3"]
    assert pool.least_loaded(pool.accounts) is None
    assert pool.candidates("sim-account-2") == [pool.accounts[1]]
    assert pool.candidates("nope") == []


def test_store_lists_newest_first_and_drops_unknown_ids() -> None:
    store = TaskStore()
    for n in range(5):
        store.add(_task(f"17000000000000{n:02d}"))
    assert [t.id for t in store.newest(2)] == ["1700000000000004", "1700000000000003"]
    found = store.by_ids(["1700000000000001", "nope", "1700000000000003", "1700000000000001"])
    assert sorted(t.id for t in found) == ["1700000000000001", "1700000000000003"]


def test_store_evicts_oldest_finished_tasks_past_its_cap() -> None:
    store = TaskStore(max_tasks=10)
    store.add(_task("running"))
    for n in range(10):
        store.add(_task(f"done-{n}", TaskStatus.SUCCESS))
    assert "running" in store
    assert "done-0" not in store
    assert len(store) <= 10


def test_store_evicts_a_hundredth_of_its_cap_at_a_time() -> None:
    store = TaskStore(max_tasks=1000)
    store.add(_task("running"))
    for n in range(1000):
        store.add(_task(f"done-{n}", TaskStatus.SUCCESS))
    assert len(store) == 990
    assert "running" in store
    assert "done-10" not in store
    assert "done-11" in store


def test_task_json_has_every_key() -> None:
    assert tuple(_task("1").to_json()) == TASK_KEY_ORDER
