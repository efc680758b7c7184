"""Every state machine's one home: the names the runtime, the API, the report and the pages share."""

from __future__ import annotations

import re

from streamctl.console.pages import WEB
from streamctl.questions import STATES, TRANSITIONS
from streamctl.report.charts import STATE_COLOURS
from streamctl.restream import destinations
from streamctl.states import (
    DESTINATION_NEXT,
    INGEST_NEXT,
    QUESTION_TRANSITIONS,
    SOURCE_NEXT,
    SWITCH_NEXT,
    DestinationState,
    IngestState,
    QuestionState,
    SourceState,
    SwitchState,
    may_change,
    page_states,
)


def test_every_state_has_its_transitions_and_they_stay_inside_the_machine():
    for table, states in ((DESTINATION_NEXT, DestinationState), (INGEST_NEXT, IngestState),
                          (SOURCE_NEXT, SourceState), (SWITCH_NEXT, SwitchState)):
        assert set(table) == set(states)
        assert all(set(targets) <= set(states) for targets in table.values())
    for _action, (sources, target) in QUESTION_TRANSITIONS.items():
        assert set(sources) <= set(QuestionState) and target in QuestionState
    assert may_change(DESTINATION_NEXT, "live", "backoff") and not may_change(DESTINATION_NEXT, "stopped", "live")


def test_the_runtime_and_the_report_use_the_same_names():
    assert destinations.STATES == tuple(DestinationState) == ("stopped", "starting", "live", "backoff", "failed")
    assert STATES == ("pending", "approved", "forwarded", "on_air", "answered", "dismissed")
    assert TRANSITIONS is QUESTION_TRANSITIONS
    assert set(STATE_COLOURS) == set(DestinationState) | set(IngestState)


def test_pages_get_the_names_and_their_scripts_spell_no_state():
    names = page_states()
    assert names["question"]["on_air"] == "on_air" and names["groups"]["question_queue"] == ["forwarded", "on_air"]
    spelt = {s.value for s in (*QuestionState, *DestinationState, *IngestState)} - {"live"}
    for script in (WEB / "static").glob("*.js"):
        text = script.read_text()
        # A state compared or listed as a literal: `=== "on_air"`, `["pending", …]`, `state: "stopped"`.
        found = [m.group(0) for m in re.finditer(r'(?:===|!==|\[|, |state: )"(\w+)"', text) if m.group(1) in spelt]
        assert not found, f"{script.name} spells states {found}; take them from data.states"
