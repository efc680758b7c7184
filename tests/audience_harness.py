"""A test rig for audience sources: real bus, real recorder, real SQLite, and waits with deadlines."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streamctl.audience.poller import Poller, Timing
from streamctl.audience.source import Http
from streamctl.config import AudienceConfig
from streamctl.events import Alert, Bus, SourceStateChanged
from streamctl.recorder import Recorder
from streamctl.store import Store

FAST = Timing(interval=0.05, jitter=0.1, backoff_max=0.5, viewers_every=0.2)


def audience(name: str, platform: str, credential: str | None = None, interval: float | None = None,
             **options) -> AudienceConfig:
    """An audience table as the event file would give it."""
    return AudienceConfig(name=name, platform=platform, options=options, credential=credential, interval=interval)


async def until(condition, timeout: float = 10.0, what: str = "condition") -> None:  # noqa: ASYNC109
    """Wait until `condition()` is true, failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


class Rig:
    """Recorder and store running on a bus; every event published is kept in `events`."""

    def __init__(self, path: Path):
        self.store = Store(path)
        self.bus = Bus()
        self.recorder = Recorder(self.store, self.bus)
        self._all = self.bus.subscribe(maxsize=1_000_000, name="test")
        self.events: list = []
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> Rig:
        self._tasks.append(asyncio.create_task(self.recorder.run(), name="recorder"))
        self._tasks.append(asyncio.create_task(self._collect(), name="collect"))
        return self

    async def __aexit__(self, *exc) -> None:
        for task in reversed(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.store.close()

    async def _collect(self) -> None:
        async for event in self._all:
            self.events.append(event)

    def drained(self) -> list:
        """Everything published so far, including what the collector has not picked up yet."""
        while not self._all.queue.empty():
            self.events.append(self._all.get_nowait())
        return self.events

    def start(self, poller: Poller, cursor: str | None = "stored") -> asyncio.Task:
        """Run a poller as the service would: resumed from the store's cursor."""
        poller.resume(self.store.get_cursor(poller.name) if cursor == "stored" else cursor)
        task = asyncio.create_task(poller.run(), name=poller.name)
        self._tasks.append(task)
        return task

    async def until(self, condition, timeout: float = 10.0, what: str = "condition") -> None:  # noqa: ASYNC109
        await until(condition, timeout, what)

    def ids(self, source: str) -> list[str]:
        return [r["platform_id"] for r in self.store.query(
            "SELECT platform_id FROM comments WHERE source = ? ORDER BY id", (source,))]

    def rows(self, source: str) -> dict[str, dict]:
        return {r["platform_id"]: dict(r) for r in self.store.query(
            "SELECT * FROM comments WHERE source = ? ORDER BY id", (source,))}

    def states(self, source: str) -> list[str]:
        return [e.state for e in self.drained() if isinstance(e, SourceStateChanged) and e.name == source]

    def alerts(self, source: str | None = None) -> list[Alert]:
        return [e for e in self.drained() if isinstance(e, Alert) and (source is None or e.source == source)]

    def every_text(self) -> str:
        """Everything a person could see of the run: events and stored rows, for secret checks."""
        rows = self.store.query("SELECT * FROM source_events")
        return repr(self.drained()) + repr([dict(r) for r in rows])


@pytest.fixture
async def http():
    """One HTTP client for the adapters of a test, closed after the rig has stopped them."""
    client = Http()
    yield client
    await client.close()


@pytest.fixture
async def rig(tmp_path, http):
    """A running Rig on a fresh database (asks for `http` so the client outlives the pollers)."""
    async with Rig(tmp_path / "audience.db") as r:
        yield r
