"""The switcher: which input the program carries, primary → backup → slate, switched at keyframes.

States (`SwitchState` and its table `SWITCH_NEXT`, in states.py), every change through `change_state()`,
which publishes `IngestSwitched` and the alerts:

- idle → primary or backup: an input's first feed (the primary first; the backup when the primary is not live).
- primary/backup → the other input: the one on air is gone (its feed ended, or nothing for `gap_s`) and the
  other flows; a cut at the other's latest keyframe (its GOP is kept), so no wait for its next one.
- primary/backup → slate: the one on air has sent nothing for `gap_s` and the other does not flow; the slate,
  started then, takes the air at its first keyframe.
- any → handback: an input is to take over from a source still on air (the auto failback once the primary
  has been stable `failback_after_s`, the operator's switch, an input back while the slate covers).
- handback → primary/backup: at the target's next keyframe (or after `SWITCH_BACK_S` without one);
  handback → the state before: the target stopped flowing first.

The program's timeline goes on across every switch (Program.new_feed) and the new source's decoder headers go
first, so the destinations' decoders follow a change of picture size or audio format.

No slate before the first feed: the platforms would go live with a card before the show.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..events import Alert, Bus, IngestStateChanged, IngestSwitched
from ..events import now as wall_clock
from ..states import SWITCH_NEXT, IngestState, SwitchState, may_change
from .flv import DecoderHeaders, Tag
from .inputs import BACKUP, PRIMARY, Input, iso
from .program import Program
from .slate import NoSlate, Slate, slate_format

log = logging.getLogger(__name__)

SLATE = "slate"
# Nothing from the input on air for this long and it is gone: the backup, or the slate (some 0.2 s later, at its
# first keyframe), takes over well within the 2 s after which destinations call the program gone
# (destinations.Timing.program_idle_s).
GAP_S = 1.0
SWITCH_BACK_S = 10.0  # a target with no keyframe by then (audio only?) takes over anyway


class SwitchRefused(ValueError):
    """The operator asked for an input that cannot go on air now (the message says why)."""


class Switcher:
    """Routes the inputs' and the slate's tags into the program; owns the on-air decision and its events."""

    def __init__(self, program: Program, bus: Bus, *, slate: Slate | None, gap_s: float = GAP_S,
                 failback: str = "auto", failback_after_s: float = 10.0):
        self.program = program
        self.bus = bus
        self.slate = slate
        self.gap_s = gap_s
        self.failback = failback
        self.failback_after_s = failback_after_s
        self.inputs: dict[str, Input] = {}
        self.state = SwitchState.IDLE
        self.on_air: str | None = None  # primary, backup, slate: whose tags the program carries
        self.target: Input | None = None  # handback: who takes over at its next keyframe
        self.held = False  # the operator chose the backup: no auto failback until they choose the primary
        self.switches = 0
        self.slate_times = 0
        self.slate_since: float | None = None  # wall clock
        self._last_input: Input | None = None  # the input on air most recently
        self._handback_at: float | None = None
        self._slate_run = 0  # which of the slate's ffmpeg runs is on air
        self._no_slate: str | None = None
        self._published: tuple | None = None
        self._stopping = False

    def add(self, inp: Input) -> None:
        self.inputs[inp.role] = inp

    # ---- what the program is -------------------------------------------------------------------------

    @property
    def leading(self) -> Input:
        """The input the program's state is about: the one taking over, on air, last on air, or the primary."""
        if self.target is not None:
            return self.target
        if self.on_air in self.inputs:
            return self.inputs[self.on_air]
        return self._last_input or self.inputs[PRIMARY]

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _other(self, inp: Input) -> Input | None:
        return self.inputs.get(BACKUP if inp.role == PRIMARY else PRIMARY)

    def _flowing(self, inp: Input | None, at: float) -> bool:
        return inp is not None and inp.flowing(at, self.gap_s)

    def _silent(self, inp: Input, at: float) -> bool:
        """Nothing from it for `gap_s` (a feed that ended a moment ago may still be replaced by its next one)."""
        return inp.last_in is None or at - inp.last_in >= self.gap_s

    # ---- the one place the switcher's state changes ---------------------------------------------------

    async def change_state(self, new: SwitchState, on_air: str | None, target: Input | None = None,
                           reason: str = "") -> None:
        old, was_on_air = self.state, self.on_air
        if not may_change(SWITCH_NEXT, old, new):
            log.warning("ingest switcher: unexpected change %s -> %s", old, new)
        self.state, self.on_air, self.target = new, on_air, target
        self._handback_at = self._now() if target is not None else None
        if on_air in self.inputs:
            self._last_input = self.inputs[on_air]
        if on_air == PRIMARY and was_on_air != PRIMARY:
            self.held = False  # whatever brought the primary back, the operator's choice of the backup is over
        if on_air != was_on_air:
            self.switches += 1
        log.log(logging.WARNING if on_air in (BACKUP, SLATE) else logging.INFO, "ingest switcher: %s -> %s%s%s",
                old, new, f" ({target.role} at its next keyframe)" if target else "", f": {reason}" if reason else "")
        await self.bus.publish(IngestSwitched(old.value, new.value, on_air, target.role if target else None, reason))
        if on_air != was_on_air:
            await self._on_air_alerts(was_on_air, on_air, reason)
        await self.announce()

    async def _on_air_alerts(self, was: str | None, now_on: str | None, reason: str) -> None:
        if was == BACKUP:
            await self.bus.publish(Alert("info", "ingest", f"the backup input is off air ({now_on})",
                                         code="ingest.backup", params={"on_air": now_on}, resolved=True))
        if now_on == BACKUP:
            await self.bus.publish(Alert("warning", "ingest", f"on air from the backup input: {reason}",
                                         code="ingest.backup", params={"reason": reason}))
        if was == SLATE:
            await self.bus.publish(Alert("info", "ingest", f"the slate is off air ({now_on} back)",
                                         code="slate.on", params={"on_air": now_on}, resolved=True))
        if now_on == SLATE:
            await self.bus.publish(Alert("warning", "ingest", "the slate is on air: no input is live",
                                         code="slate.on", params={"reason": reason}))

    async def announce(self, force: bool = False) -> None:
        """Publish the program's state when it changed (or `force`: its probe is now complete)."""
        lead = self.leading
        inputs = tuple({"role": i.role, "state": i.state, "error": i.error} for i in self.inputs.values())
        slate_on = self.on_air == SLATE
        key = (lead.state, lead.error, slate_on, self.on_air, inputs)
        if key == self._published and not force:
            return
        before = self._published[0] if self._published else None
        self._published = key
        await self.bus.publish(IngestStateChanged(lead.state, lead.probe.facts(), lead.error, slate=slate_on,
                                                  on_air=self.on_air, inputs=inputs))
        if lead.state == IngestState.LOST and before == IngestState.LIVE and not self._stopping:
            await self.bus.publish(Alert("error", "ingest", f"no input is live: {lead.error}", code="ingest.lost",
                                         params={"error": lead.error, "slate": self.slate is not None}))
        elif lead.state == IngestState.LIVE and before == IngestState.LOST:
            await self.bus.publish(Alert("info", "ingest", f"the {lead.role} input is live again",
                                         code="ingest.lost", params={"role": lead.role}, resolved=True))

    # ---- what the inputs say ---------------------------------------------------------------------------

    async def input_started(self, inp: Input) -> None:
        """A new feed on `inp`: on air at once when nothing is, or when it already was (a fresh timeline)."""
        if self.state == SwitchState.IDLE:
            if inp.role == PRIMARY or not self._flowing(self.inputs.get(PRIMARY), self._now()):
                self.program.new_feed()
                await self.change_state(SwitchState(inp.role), inp.role, reason="first feed")
                return
        elif self.on_air == inp.role:
            self.program.new_feed()  # the same input reconnected: its timestamps start again at its own zero
        await self.announce()

    async def input_tag(self, inp: Input, tag: Tag) -> None:
        if self.on_air == inp.role:
            self.program.publish(tag)
            return
        if tag.is_sequence_header or tag.is_metadata:
            return  # kept by the input; sent first when it takes the air
        if self.target is inp:
            if tag.is_keyframe or self._now() - (self._handback_at or 0.0) >= SWITCH_BACK_S:
                await self._take(inp, [tag], "keyframe" if tag.is_keyframe else "no keyframe in time")
            return
        if self.state == SwitchState.SLATE and self._best(self._now()) is inp:
            # Back while the slate covers: on air at its first keyframe, the slate meanwhile.
            if tag.is_keyframe:
                await self._take(inp, [tag], f"the {inp.role} input is back")
            else:
                await self.change_state(SwitchState.HANDBACK, SLATE, inp, f"the {inp.role} input is back")

    async def input_probed(self, inp: Input) -> None:
        if inp is self.leading:
            await self.announce(force=True)

    async def input_ended(self, inp: Input) -> None:
        await self.decide()
        await self.announce()

    async def input_changed(self, inp: Input) -> None:
        await self.announce()

    async def input_refused(self, inp: Input) -> None:
        refused = inp.refusal or {}
        await self.bus.publish(Alert("warning", f"ingest:{inp.role}",
                                     f"refused a publisher from {refused.get('address')}: {refused.get('reason')}",
                                     code="ingest.refused",
                                     params={"role": inp.role, "address": refused.get("address"),
                                             "reason": refused.get("reason")}))

    # ---- deciding ----------------------------------------------------------------------------------------

    def _best(self, at: float) -> Input | None:
        """The input that should be on air, if any flows: the primary first."""
        for role in (PRIMARY, BACKUP):
            if self._flowing(self.inputs.get(role), at):
                return self.inputs[role]
        return None

    async def decide(self) -> None:
        """Look at every input (on every watch tick and when a feed ends) and switch if one must."""
        if self._stopping:
            return
        at = self._now()
        switchable = self.slate is not None or len(self.inputs) > 1
        for inp in self.inputs.values():
            gone = at - inp.last_in if inp.last_in is not None else None
            if switchable and inp.state == IngestState.LIVE and gone is not None and gone >= self.gap_s:
                inp.stalled(self.gap_s)
                await self.announce()
        if self.target is not None and not self._flowing(self.target, at):
            # The target stopped before its keyframe came: the state before the handback.
            back = SwitchState(self.on_air) if self.on_air else SwitchState.IDLE
            await self.change_state(back, self.on_air, reason=f"the {self.target.role} input stopped")
        current = self.inputs.get(self.on_air) if self.on_air else None
        if current is None:
            if self.on_air == SLATE and self.target is None and (best := self._best(at)):
                await self.change_state(SwitchState.HANDBACK, SLATE, best, f"the {best.role} input is back")
            return
        if not self._flowing(current, at):
            other = self._other(current)
            if self._flowing(other, at):
                if self.target is not other:
                    await self._cut(other, f"the {current.role} input is {current.state}: {current.error or '?'}")
            elif self._silent(current, at) and self.slate is not None and not self.slate.running:
                self._start_slate()
            return
        if self.slate is not None and self.slate.running:
            await self.slate.stop()
        if current.role == BACKUP and self.target is None and self.failback == "auto" and not self.held:
            primary = self.inputs[PRIMARY]
            if self._flowing(primary, at) and primary.stable_for(at) >= self.failback_after_s:
                await self.change_state(SwitchState.HANDBACK, BACKUP, primary,
                                        f"failback: the primary input stable for {self.failback_after_s:g} s")

    async def switch(self, to: str) -> None:
        """The operator's switch to `to` (primary or backup), at its next keyframe; SwitchRefused if it cannot."""
        inp = self.inputs.get(to)
        if inp is None:
            raise SwitchRefused(f"there is no {to} input, expected one of {', '.join(self.inputs)}")
        self.held = to == BACKUP
        if self.target is inp or (self.on_air == to and self.target is None):
            return
        if self.on_air == to:  # a handback away from `to` under way: called off, `to` stays on air
            await self.change_state(SwitchState(to), to, reason=f"the operator kept the {to} input")
            return
        if not self._flowing(inp, self._now()):
            raise SwitchRefused(f"the {to} input is {inp.state}, expected it live to put it on air")
        await self.change_state(SwitchState.HANDBACK, self.on_air, inp, f"the operator chose the {to} input")

    # ---- going on air --------------------------------------------------------------------------------------

    async def _cut(self, inp: Input, reason: str) -> None:
        """On air now from `inp`'s latest keyframe (its GOP so far, then live); or at its next one."""
        if not inp.gop:
            await self.change_state(SwitchState.HANDBACK, self.on_air, inp, reason)
            return
        await self._take(inp, list(inp.gop), reason)

    async def _take(self, inp: Input, tags: list[Tag], reason: str) -> None:
        """From `tags` (a keyframe first) on the program carries `inp`."""
        self._put_on_air(inp.headers, tags)
        await self.change_state(SwitchState(inp.role), inp.role, reason=reason)

    def _put_on_air(self, headers: DecoderHeaders, tags: list[Tag]) -> None:
        """A new source on air: its timeline continues the old one, its decoder headers go first (readers get
        changed ones inline)."""
        self.program.new_feed()
        for header in headers:
            self.program.publish(header)
        for tag in tags:
            self.program.publish(tag)

    # ---- the slate -------------------------------------------------------------------------------------------

    def _start_slate(self) -> None:
        assert self.slate is not None
        lead = self._last_input or self.inputs[PRIMARY]
        facts = lead.probe.facts() if lead.probe.ready else (lead.facts or lead.probe.facts())
        try:
            fmt = slate_format(facts)
        except NoSlate as e:
            if str(e) != self._no_slate:  # said once, not every tick
                self._no_slate = str(e)
                log.warning("ingest lost and no slate: %s", e)
            return
        self._no_slate = None
        self.slate.start(fmt)

    async def slate_tag(self, tag: Tag) -> None:
        """A tag of the slate: carried while its run is on air; its first keyframe goes on air if still needed."""
        assert self.slate is not None
        if self.on_air == SLATE and self._slate_run == self.slate.starts:
            self.program.publish(tag)
            return
        if not tag.is_keyframe or tag.is_sequence_header or self._stopping:
            return
        if self.on_air == SLATE:  # a restarted slate is a new feed too
            self._slate_run = self.slate.starts
            self._put_on_air(self.slate.headers, [tag])
            return
        at = self._now()
        current = self.inputs.get(self.on_air) if self.on_air else None
        if current is None or self._flowing(current, at) or not self._silent(current, at) or self._best(at):
            return  # the program came back meanwhile (the next tick stops the slate)
        self._slate_run = self.slate.starts
        self._put_on_air(self.slate.headers, [tag])
        self.slate_times += 1
        self.slate_since = wall_clock()
        fmt = self.slate.format.describe() if self.slate.format else "?"
        gone = at - (current.last_in or at)
        await self.change_state(SwitchState.SLATE, SLATE,
                                reason=f"no input for {gone:.1f} s; slate ({fmt}) until one returns")

    def slate_status(self) -> dict[str, Any]:
        """Whether the slate is enabled and on air, since when, how often so far, its last error and format."""
        on_air = self.on_air == SLATE
        fmt = self.slate.format if self.slate else None
        return {
            "enabled": self.slate is not None,
            "on_air": on_air,
            "since": iso(self.slate_since) if on_air else None,
            "times": self.slate_times,
            "error": self.slate.error if self.slate else None,
            "format": fmt.describe() if fmt else None,
        }

    # ---- running -------------------------------------------------------------------------------------------

    async def watch(self, every_s: float = 0.1) -> None:
        """Decide every `every_s` until cancelled (the inputs' events decide in between)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.decide()
            except Exception:
                log.exception("ingest switcher failed")  # the program carries on as it is

    async def stop(self) -> None:
        """No more switching: the slate is stopped and never put on air while the inputs wind down."""
        self._stopping = True
        if self.slate is not None:
            await self.slate.stop()
