"""The event bus: lossy subscribers drop their oldest, lossless ones make the publisher wait."""

import asyncio

import pytest

from streamctl.events import Alert, Bus, CommentsStored


async def test_subscriber_gets_only_its_types():
    bus = Bus()
    alerts = bus.subscribe(Alert)
    everything = bus.subscribe()
    await bus.publish(CommentsStored(({"id": 1},)))
    await bus.publish(Alert("warning", "yt", "quota low"))
    assert alerts.queue.qsize() == 1
    assert (await alerts.get()).message == "quota low"
    assert everything.queue.qsize() == 2


async def test_slow_lossy_subscriber_loses_oldest_and_never_blocks():
    bus = Bus()
    slow = bus.subscribe(Alert, maxsize=3)
    for i in range(10):
        await asyncio.wait_for(bus.publish(Alert("info", "x", str(i))), 1)
    got = [slow.get_nowait().message for _ in range(3)]
    assert got == ["7", "8", "9"]
    assert slow.dropped == 7


async def test_lossless_subscriber_makes_publisher_wait_and_loses_nothing():
    bus = Bus()
    sink = bus.subscribe(Alert, maxsize=2, lossless=True)
    received = []

    async def consume():
        for _ in range(20):
            received.append((await sink.get()).message)
            await asyncio.sleep(0)

    consumer = asyncio.create_task(consume())
    for i in range(20):
        await asyncio.wait_for(bus.publish(Alert("info", "x", str(i))), 2)
    await asyncio.wait_for(consumer, 2)
    assert received == [str(i) for i in range(20)]


async def test_publish_nowait_to_full_lossless_subscriber_raises():
    bus = Bus()
    bus.subscribe(Alert, maxsize=1, lossless=True)
    bus.publish_nowait(Alert("info", "x", "1"))
    with pytest.raises(asyncio.QueueFull):
        bus.publish_nowait(Alert("info", "x", "2"))


async def test_closed_subscription_receives_nothing():
    bus = Bus()
    with bus.subscribe(Alert) as sub:
        pass
    await bus.publish(Alert("info", "x", "after close"))
    assert sub.queue.empty()
    assert bus.subscribers == 0
