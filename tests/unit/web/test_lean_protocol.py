"""The lighter mailbox and flag behave like the asyncio.Queue and asyncio.Event they replace."""

from __future__ import annotations

import asyncio

from tokenwise.web.lean_protocol import Flag, Mailbox


async def test_mailbox_is_fifo_and_wakes_its_reader() -> None:
    box: Mailbox[int] = Mailbox()
    assert box.empty()
    reader = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    assert not reader.done()
    box.put_nowait(1)
    box.put_nowait(2)
    assert await asyncio.wait_for(reader, 1) == 1
    assert (box.qsize(), box.empty()) == (1, False)
    assert await box.get() == 2
    assert box.empty()


async def test_a_cancelled_get_loses_nothing() -> None:
    box: Mailbox[str] = Mailbox()
    reader = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    box.put_nowait("kept")
    assert await asyncio.wait_for(box.get(), 1) == "kept"


async def test_flag_wakes_every_waiter_and_clear_makes_them_wait_again() -> None:
    flag = Flag()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    assert await flag.wait() is True  # set: returns at once
    flag.clear()
    late = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not late.done()
    flag.set()
    assert await asyncio.wait_for(late, 1) is True
