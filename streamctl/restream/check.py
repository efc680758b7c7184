"""`streamctl check`'s look at a reachable ingest: probe it, then hold it against each destination's platform rules."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..events import Bus, IngestStateChanged
from .ingest import Ingest
from .inputs import BACKUP, PRIMARY, Input
from .platforms import facts_from_dict, rule_violations
from .probe import READY_AFTER_MS, describe
from .program import Program
from .sources import listen_address
from .supervisor import Supervisor

if TYPE_CHECKING:
    from ..config import EventFile


def destination_problems(event: EventFile, facts: dict[str, Any]) -> list[str]:
    """`EVENTFILE: destination "NAME": problem` for each platform rule the probed stream breaks."""
    stream = facts_from_dict(facts)
    lines = []
    for dest in event.destinations:
        for problem in rule_violations(dest.platform, stream):
            lines.append(f'{event.path}: destination "{dest.name}": {dest.platform}: {problem}')
    return lines


def _port_taken(host: str, port: int, kind: int) -> bool:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as s:
            s.bind((host, port))
    except OSError:
        return True
    return False


async def check_ingest_against_rules(event: EventFile, timeout: float,  # noqa: ASYNC109 - cli.py's contract
                                     say: Callable[[str], None] = print) -> list[str]:
    """Probe a reachable ingest for up to about `timeout` s; one line per platform rule broken, per destination.

    Listeners (RTMP, SRT) wait for a publisher only while their port is free; nothing arriving is not
    an error. `say` gets the info lines (what was probed, or why nothing was).
    """
    ingest_cfg = event.ingest
    if ingest_cfg is None or not event.destinations:
        return []
    listener = ingest_cfg.kind in ("rtmp_listen", "srt_listen")
    if listener:
        host, port = listen_address(ingest_cfg)
        kind = socket.SOCK_STREAM if ingest_cfg.kind == "rtmp_listen" else socket.SOCK_DGRAM
        if _port_taken(host, port, kind):
            say(f"ingest: port {port} is in use (is the event running?); platform rules not checked")
            return []
        say(f"ingest: waiting up to {timeout:g} s for a publisher on {ingest_cfg.display_url}")
    bus = Bus()
    supervisor = Supervisor(grace_s=1.0)
    ingest = Ingest(ingest_cfg, Program(), bus, supervisor, event.event.name, realtime=False)
    facts: dict[str, Any] | None = None
    backup_facts: dict[str, Any] | None = None
    error: str | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with bus.subscribe(IngestStateChanged, name="check") as sub:
        task = asyncio.create_task(ingest.run(), name="check.ingest")
        try:
            primary = ingest.switcher.inputs[PRIMARY]
            extended = False
            while facts is None and error is None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):  # the primary's probe is looked at every 0.2 s
                    await asyncio.wait_for(sub.get(), min(remaining, 0.2))
                if primary.state == "live" and primary.probe.ready:
                    facts = primary.probe.facts()
                elif primary.state == "live" and not extended:
                    # Media is flowing: give the probe the time it needs to see two keyframes.
                    deadline, extended = max(deadline, loop.time() + READY_AFTER_MS / 1000 + 1), True
                elif primary.state in ("lost", "stopped"):
                    error = primary.error or primary.state
            backup = ingest.switcher.inputs.get(BACKUP)
            backup_facts = await _probed(backup, deadline) if backup is not None else None
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await supervisor.stop_all()
    if facts is None:
        probed = ingest.switcher.inputs[PRIMARY].probe.facts()
        if probed.get("video_codec") or probed.get("audio_codec"):
            facts = probed  # cut short, but what was seen still counts
    if facts is None:
        where = ingest_cfg.display_url
        if error:
            say(f"ingest: {where} not reachable ({error}); platform rules not checked")
        elif listener:
            say(f"ingest: no publisher within {timeout:g} s; platform rules not checked")
        else:
            say(f"ingest: nothing arrived from {where} within {timeout:g} s; platform rules not checked")
        return []
    say(f"ingest: {describe(facts)}")
    problems = destination_problems(event, facts)
    if ingest_cfg.backup is not None:
        if backup_facts is None:
            say(f"ingest backup: nothing probed from {ingest_cfg.backup.display_url}; its platform rules not checked")
        else:
            say(f"ingest backup: {describe(backup_facts)}")
            problems += [f"{line} (the backup input)" for line in destination_problems(event, backup_facts)]
    return problems


async def _probed(inp: Input, deadline: float) -> dict[str, Any] | None:
    """The backup input's probe, waited for until `deadline` (longer while its media flows); None if nothing came."""
    loop = asyncio.get_running_loop()
    extended = False
    while not inp.probe.ready and loop.time() < deadline:
        if inp.probe.tags and not extended:
            deadline, extended = max(deadline, loop.time() + READY_AFTER_MS / 1000 + 1), True
        await asyncio.sleep(0.1)
    facts = inp.probe.facts()
    return facts if facts.get("video_codec") or facts.get("audio_codec") else None
