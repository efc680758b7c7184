"""Every state machine's states and transitions in one place: destinations, the ingest, audience sources, questions.

The runtime, the API, /metrics, the report and the pages all read the names from here (the pages get them
in their page data), so a state is spelt once. The members are `StrEnum`s: they compare, hash, JSON-encode
and store in SQLite as their plain names, so every existing answer, event and row stays as it was.
"""

from __future__ import annotations

from enum import StrEnum


class DestinationState(StrEnum):
    """One destination's ffmpeg, as supervised."""

    STOPPED = "stopped"
    STARTING = "starting"
    LIVE = "live"
    BACKOFF = "backoff"
    FAILED = "failed"


class IngestState(StrEnum):
    """One program input (primary or backup), and the program as its leading input shows it."""

    STOPPED = "stopped"
    WAITING = "waiting"
    LIVE = "live"
    LOST = "lost"


class SwitchState(StrEnum):
    """The ingest switcher: which source the program carries (restream/switcher.py)."""

    IDLE = "idle"  # nothing on air yet
    PRIMARY = "primary"
    BACKUP = "backup"
    SLATE = "slate"
    HANDBACK = "handback"  # the source on air stays until the target's next keyframe


class SourceState(StrEnum):
    """One audience source's poller."""

    STARTING = "starting"
    OK = "ok"
    WAITING = "waiting"
    BACKOFF = "backoff"
    FAILED = "failed"
    ENDED = "ended"
    STOPPED = "stopped"
    DISABLED = "disabled"  # the operator turned it off from the console


class QuestionState(StrEnum):
    """An audience question on the moderation desk."""

    PENDING = "pending"
    APPROVED = "approved"
    FORWARDED = "forwarded"
    ON_AIR = "on_air"
    ANSWERED = "answered"
    DISMISSED = "dismissed"


D, IN, S, Q = DestinationState, IngestState, SourceState, QuestionState

# state -> the states it may change to (a supervisor's view: any running state can fail or be stopped).
DESTINATION_NEXT: dict[DestinationState, frozenset[DestinationState]] = {
    D.STOPPED: frozenset({D.STARTING, D.FAILED}),
    D.STARTING: frozenset({D.LIVE, D.BACKOFF, D.FAILED, D.STOPPED}),
    # Back to starting when the program stops feeding it (the ingest was lost).
    D.LIVE: frozenset({D.STARTING, D.BACKOFF, D.FAILED, D.STOPPED}),
    D.BACKOFF: frozenset({D.STARTING, D.FAILED, D.STOPPED}),
    D.FAILED: frozenset({D.STARTING, D.STOPPED}),
}
DESTINATION_DOWN = (D.BACKOFF, D.FAILED)  # counted as outages in the report, warnings in the log
DESTINATION_RUNNING = (D.STARTING, D.LIVE, D.BACKOFF)  # a process is (or will be) there: stop, not start

INGEST_NEXT: dict[IngestState, frozenset[IngestState]] = {
    IN.STOPPED: frozenset({IN.WAITING}),
    # A pull or file whose ffmpeg fails before its first tag is lost without having been live.
    IN.WAITING: frozenset({IN.LIVE, IN.LOST, IN.STOPPED}),
    IN.LIVE: frozenset({IN.LOST, IN.STOPPED}),
    # A lost feed comes back (live), or the publisher is gone for good and we listen again (waiting).
    IN.LOST: frozenset({IN.LIVE, IN.WAITING, IN.STOPPED}),
}
SW = SwitchState
SWITCH_NEXT: dict[SwitchState, frozenset[SwitchState]] = {
    SW.IDLE: frozenset({SW.PRIMARY, SW.BACKUP, SW.HANDBACK}),
    # A cut to the other input at its latest keyframe; the slate at its first; a handback waits for a keyframe.
    SW.PRIMARY: frozenset({SW.BACKUP, SW.SLATE, SW.HANDBACK}),
    SW.BACKUP: frozenset({SW.PRIMARY, SW.SLATE, SW.HANDBACK}),
    SW.SLATE: frozenset({SW.PRIMARY, SW.BACKUP, SW.HANDBACK}),
    # The target took the air, or stopped first (back to the state of the source still on air).
    SW.HANDBACK: frozenset({SW.IDLE, SW.PRIMARY, SW.BACKUP, SW.SLATE, SW.HANDBACK}),
}
INGEST_FEEDING = (IN.LIVE, IN.LOST)  # a publisher was there: its probe is shown (as last seen when lost)

SOURCE_NEXT: dict[SourceState, frozenset[SourceState]] = {
    S.STARTING: frozenset({S.OK, S.WAITING, S.BACKOFF, S.FAILED, S.ENDED, S.STOPPED}),
    S.OK: frozenset({S.WAITING, S.BACKOFF, S.FAILED, S.ENDED, S.STOPPED}),
    S.WAITING: frozenset({S.OK, S.BACKOFF, S.FAILED, S.ENDED, S.STOPPED}),
    S.BACKOFF: frozenset({S.OK, S.STARTING, S.WAITING, S.FAILED, S.ENDED, S.STOPPED}),
    S.FAILED: frozenset({S.OK, S.STARTING, S.WAITING, S.BACKOFF, S.ENDED, S.STOPPED}),
    S.ENDED: frozenset({S.STOPPED, S.DISABLED}),
    S.STOPPED: frozenset({S.STARTING, S.DISABLED}),
    S.DISABLED: frozenset({S.STARTING, S.STOPPED}),
}
SOURCE_FAILING = (S.BACKOFF, S.FAILED)  # an alert when a source enters one, a recovery when it leaves
# How the report reads a source's history (older databases also hold "error").
SOURCE_DOWN = (S.BACKOFF, S.FAILED, "error")
SOURCE_END = (S.ENDED, S.STOPPED, S.DISABLED)

# action -> (states it may start from, state it leads to)
QUESTION_TRANSITIONS: dict[str, tuple[frozenset[QuestionState], QuestionState]] = {
    "approve": (frozenset({Q.PENDING}), Q.APPROVED),
    "forward": (frozenset({Q.PENDING, Q.APPROVED}), Q.FORWARDED),
    # Straight to air from approved too: the hall sees it forwarded and on air at once.
    "on_air": (frozenset({Q.APPROVED, Q.FORWARDED}), Q.ON_AIR),
    "off_air": (frozenset({Q.ON_AIR}), Q.FORWARDED),
    "answered": (frozenset({Q.FORWARDED, Q.ON_AIR}), Q.ANSWERED),
    "dismiss": (frozenset({Q.PENDING, Q.APPROVED, Q.FORWARDED}), Q.DISMISSED),
}
QUESTION_OFFICIAL = (Q.FORWARDED, Q.ON_AIR, Q.ANSWERED)  # what officials may read
QUESTION_QUEUE = (Q.FORWARDED, Q.ON_AIR)  # the ordered queue in the hall
QUESTION_EDITABLE = (Q.PENDING, Q.APPROVED)  # edited before it is forwarded
QUESTION_MERGEABLE = (Q.PENDING, Q.APPROVED, Q.FORWARDED)
QUESTION_CLOSED = (Q.DISMISSED, Q.ANSWERED)  # restore reopens them; nothing merges into them


def may_change(table: dict, old: str, new: str) -> bool:
    """Whether `old → new` is a transition of `table` (staying in a state, e.g. a new error, always is)."""
    return old == new or new in table.get(old, ())


def page_states() -> dict:
    """The names and groups the pages' scripts use, so the JavaScript spells no state itself."""
    return {
        "destination": {s.name.lower(): s.value for s in DestinationState},
        "ingest": {s.name.lower(): s.value for s in IngestState},
        "source": {s.name.lower(): s.value for s in SourceState},
        "switch": {s.name.lower(): s.value for s in SwitchState},
        "question": {s.name.lower(): s.value for s in QuestionState},
        "groups": {
            "destination_down": list(DESTINATION_DOWN), "destination_running": list(DESTINATION_RUNNING),
            "ingest_feeding": list(INGEST_FEEDING), "source_failing": list(SOURCE_FAILING),
            "question_queue": list(QUESTION_QUEUE), "question_editable": list(QUESTION_EDITABLE),
            "question_mergeable": list(QUESTION_MERGEABLE), "question_closed": list(QUESTION_CLOSED),
        },
    }
