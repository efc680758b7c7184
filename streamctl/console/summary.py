"""The program at a glance for every page's top bar and /operate's strip: on air from what, N of M live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from ..events import (
    DestinationRemoved,
    DestinationStateChanged,
    IngestStateChanged,
    ProgramStatus,
    SourceStateChanged,
    ViewersStored,
)
from ..states import DestinationState, IngestState, SourceState
from .auth import requires
from .http import json_response
from .keys import CONTROLLER

READING = (SourceState.OK,)  # audience source states that mean comments are being read


def program_on_air(ingest: dict) -> str | None:
    """What the platforms get: "primary", "backup" or "slate"; None while there is no program at all."""
    on_air = ingest.get("on_air")
    if isinstance(on_air, str) and on_air in ("primary", "backup", "slate"):
        return on_air
    if (ingest.get("slate") or {}).get("on_air"):
        return "slate"
    return "primary" if ingest.get("state") == IngestState.LIVE else None


def program_summary(controller, viewers: int | None = None) -> dict:
    """`{state, program, on_air, destinations_live, destinations, sources_reading, sources, viewers}` right now.

    `on_air` is true when a program (any input, or the slate) reaches at least one live destination; `state`
    is what the top bar's dot says: on_air (the primary input), backup, slate or off_air.
    """
    restreamer, audience = controller.restreamer, controller.audience
    ingest = restreamer.ingest_status() if restreamer.event.ingest else {}
    program = program_on_air(ingest)
    # Platforms, not outputs: a destination's backup output is not one more platform on air.
    states = [d["state"] for d in restreamer.destinations() if not d.get("backup_of")]
    live = sum(state == DestinationState.LIVE for state in states)
    pollers = list(getattr(audience, "pollers", {}).values())
    if viewers is None:
        viewers = controller.store.latest_viewers()[1]
    on_air = bool(program and live)
    return {
        "state": ({"primary": "on_air"}.get(program, program) if on_air else "off_air"),
        "program": program, "on_air": on_air, "destinations_live": live,
        "destinations": len(states), "sources_reading": sum(p.state in READING for p in pollers),
        "sources": len(pollers), "viewers": viewers,
    }


async def watch(app: web.Application) -> AsyncIterator[None]:
    """Publish `ProgramStatus` whenever the summary changes (cleanup context of the console)."""
    controller = app[CONTROLLER]
    sub = controller.bus.subscribe(DestinationStateChanged, DestinationRemoved, IngestStateChanged,
                                   SourceStateChanged, ViewersStored, maxsize=1000, name="console.status")

    async def run() -> None:
        viewers = controller.store.latest_viewers()[1]
        last: dict | None = None
        async for event in sub:
            if isinstance(event, ViewersStored):
                viewers = event.total
            now = program_summary(controller, viewers)
            if now != last:
                last = now
                await controller.bus.publish(ProgramStatus(now))

    task = asyncio.create_task(run(), name="console.status")
    try:
        yield
    finally:
        sub.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@requires("moderator")
async def status(request: web.Request) -> web.Response:
    """`GET /api/status`: the program at a glance (what the top bar and /operate's strip show)."""
    return json_response(program_summary(request.app[CONTROLLER]))


def setup(app: web.Application) -> None:
    """Register this area's route and background task."""
    app.router.add_get("/api/status", status)
    app.cleanup_ctx.append(watch)
