"""Long work in turns: the event loop runs other tasks between slices of it."""

from __future__ import annotations

import asyncio

from gateway import eventloop


async def test_work_in_turns_lets_other_tasks_run_between_its_slices() -> None:
    seen: list[str] = []

    async def other() -> None:
        while True:
            seen.append("other")
            await asyncio.sleep(0)

    running = asyncio.create_task(other())
    await asyncio.sleep(0)  # it has started
    seen.clear()
    async for item in eventloop.in_turns(range(30), 10):
        seen.append(str(item))
    running.cancel()

    items = [entry for entry in seen if entry != "other"]
    assert items == [str(n) for n in range(30)]
    # Ten items at a time, and no more: the other task ran after the 10th and the 20th.
    runs = "".join("o" if entry == "other" else "." for entry in seen)
    assert [len(stretch) for stretch in runs.split("o") if stretch] == [10, 10, 10]
