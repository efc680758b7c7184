"""The ingest: the event's program inputs (a primary and maybe a backup encoder), the switcher between them and
the slate, and what `GET /api/ingest` shows of it all.

Each input has a source (sources.py: our RTMP listener, or an ffmpeg child for SRT, a pull, a file, testsrc)
that only reports feeds and tags; the switcher (switcher.py) decides what the program carries: the primary,
else the backup, else the slate (a holding card in the program's own format, slate.py), switched at keyframes.
`state` is the program's: `live` while an input is on air, `lost` while none is (the slate only covers it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..config import IngestConfig
from ..events import Bus, IngestStateChanged
from ..states import IngestState
from .inputs import BACKUP, PRIMARY, Input, iso
from .probe import StreamProbe
from .program import Program
from .slate import Slate
from .sources import BACKOFF_S, FIRST_TAG_S, STALL_S, ChildSource, RtmpListenSource, Source
from .supervisor import Supervisor
from .switcher import GAP_S, Switcher, SwitchRefused

log = logging.getLogger(__name__)

__all__ = ["Ingest", "SwitchRefused"]


class Ingest:
    """Feeds the Program from the event's inputs; its state is what `GET /api/ingest` shows."""

    def __init__(self, config: IngestConfig | None, program: Program, bus: Bus, supervisor: Supervisor,
                 event_name: str, *, realtime: bool = True, stall_s: float = STALL_S,
                 first_tag_s: float = FIRST_TAG_S, backoff_s: tuple[float, ...] = BACKOFF_S,
                 slate_after_s: float = GAP_S):
        self.config = config
        self.program = program
        self.bus = bus
        self.supervisor = supervisor
        slate = None
        if config is not None and config.slate:
            slate = Slate(supervisor, event_name, config.slate_text, self._slate_tag)
        self.switcher = Switcher(program, bus, slate=slate, gap_s=slate_after_s,
                                 failback=config.failback if config else "auto",
                                 failback_after_s=config.failback_after_s if config else 10.0)
        self._stopped_probe = StreamProbe()
        if config is None:
            return
        for role, input_config in ((PRIMARY, config), (BACKUP, config.backup)):
            if input_config is None:
                continue
            inp = Input(role, input_config, self.switcher)
            options = {"stall_s": stall_s, "backoff_s": backoff_s}
            if input_config.kind == "rtmp_listen":
                inp.source = RtmpListenSource(input_config, inp, **options)
            else:
                name = f"{'ingest' if role == PRIMARY else 'backup'}-{input_config.kind}"
                inp.source = ChildSource(input_config, inp, supervisor, event_name, name=name, realtime=realtime,
                                         first_tag_s=first_tag_s, **options)
            self.switcher.add(inp)

    # ---- what the program is ---------------------------------------------------------------------------

    @property
    def _lead(self) -> Input | None:
        return self.switcher.leading if self.switcher.inputs else None

    @property
    def state(self) -> str:
        lead = self._lead
        return lead.state if lead else IngestState.STOPPED

    @property
    def error(self) -> str | None:
        lead = self._lead
        return lead.error if lead else None

    @property
    def probe(self) -> StreamProbe:
        lead = self._lead
        return lead.probe if lead else self._stopped_probe

    @property
    def on_air(self) -> str | None:
        """Whose tags the program carries: primary, backup or slate (None before the first feed)."""
        return self.switcher.on_air

    @property
    def slate(self) -> Slate | None:
        return self.switcher.slate

    @property
    def slate_times(self) -> int:
        return self.switcher.slate_times

    def _primary(self) -> Input | None:
        return self.switcher.inputs.get(PRIMARY)

    @property
    def source(self) -> Source | None:
        primary = self._primary()
        return primary.source if primary else None

    @property
    def server(self):
        """The primary's RTMP listener, when it is one (tests and benchmarks wait for its port)."""
        return self.source.server if self.source else None

    @property
    def feeds(self) -> int:
        primary = self._primary()
        return primary.feeds if primary else 0

    @property
    def restarts(self) -> int:
        return self.source.restarts if self.source else 0

    @property
    def publisher(self) -> str | None:
        lead = self._lead
        return lead.publisher if lead else None

    def status(self) -> dict[str, Any]:
        """The shape of `GET /api/ingest`: the program (as the leading input shows it), each input, the slate."""
        cfg = self.config
        lead = self._lead
        inputs = [i.describe() for i in self.switcher.inputs.values()]
        refusals = [i["refused"] for i in inputs if i["refused"]]
        return {
            "state": self.state,
            "url": cfg.display_url if cfg else None,
            "kind": cfg.kind if cfg else None,
            "probe": self.probe.facts(),
            "since": iso(lead.since) if lead else None,
            "error": self.error,
            "publisher": self.publisher,
            "feeds": self.feeds,
            "restarts": self.restarts,
            "slate": self.switcher.slate_status(),
            "on_air": self._carried(),
            "switch": {"state": self.switcher.state.value, "target": self.switcher.target.role
                       if self.switcher.target else None, "failback": self.switcher.failback,
                       "failback_after_s": self.switcher.failback_after_s, "held": self.switcher.held,
                       "switches": self.switcher.switches},
            "inputs": inputs,
            "refused": max(refusals, key=lambda r: r["at"]) if refusals else None,
        }

    def _carried(self) -> str | None:
        """What the platforms get now: the source on air, or None when that is an input whose feed is gone."""
        on_air = self.switcher.on_air
        inp = self.switcher.inputs.get(on_air) if on_air else None
        return None if inp is not None and inp.state != IngestState.LIVE else on_air

    async def switch(self, to: str) -> dict[str, Any]:
        """The operator's `POST /api/ingest/switch`; SwitchRefused when `to` cannot go on air now."""
        await self.switcher.switch(to)
        return self.status()

    async def _slate_tag(self, tag) -> None:
        await self.switcher.slate_tag(tag)

    # ---- running -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Feed the program until cancelled; then stop the slate, close the listeners and stop the children."""
        if self.config is None:
            await asyncio.Event().wait()  # nothing to ingest; stay "stopped" until the event ends
            return
        for inp in self.switcher.inputs.values():
            inp.set_state(IngestState.WAITING)
        await self.switcher.announce()
        tasks = [asyncio.create_task(inp.source.run(), name=f"ingest.{inp.role}")
                 for inp in self.switcher.inputs.values() if inp.source is not None]
        watching = asyncio.create_task(self.switcher.watch(), name="ingest.switcher")
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                if task.done():
                    task.result()
        finally:
            # The switcher goes first: a deliberate stop must never put the slate on air while the inputs wind down.
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await self.switcher.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for inp in self.switcher.inputs.values():
                inp.publisher = None
                inp.set_state(IngestState.STOPPED, inp.error)
            with contextlib.suppress(asyncio.QueueFull):
                self.bus.publish_nowait(IngestStateChanged(IngestState.STOPPED, self.probe.facts(), self.error,
                                                           on_air=self.on_air))
