"""The README documents every event-file key, profile, question action and API route the program has."""

from __future__ import annotations

import re
from pathlib import Path

from streamctl.audience.options import COMMON_OPTIONS, readme_table
from streamctl.audience.registry import ADAPTERS
from streamctl.config import TABLE_KEYS, load_event
from streamctl.console.app import make_app
from streamctl.controller import Controller
from streamctl.questions import ACTIONS
from streamctl.restream.profiles import PROFILES

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def test_every_event_file_key_is_documented():
    text = section("Event file")
    for table, keys in TABLE_KEYS.items():
        assert f"[{table}]" in text, table
        for key in keys:
            assert f"`{key}`" in text, f"[{table}] {key}"
    for key in COMMON_OPTIONS:
        assert f"`{key}`" in text, f"[[audience]] {key}"
    for name in PROFILES:
        assert f"`{name}`" in text, f"profile {name}"


def test_the_audience_table_is_the_one_generated_from_the_declared_options():
    text = section("Event file")
    match = re.search(r"<!-- audience-options: start -->\n(.*?)<!-- audience-options: end -->", text, re.S)
    assert match, "README has no generated audience table"
    assert match.group(1) == readme_table(), "regenerate it: python -m streamctl.audience.options"
    for adapter in ADAPTERS.values():
        if adapter.extra:
            assert f"`pip install 'streamctl[{adapter.extra}]'`" in text, adapter.platform


def test_every_question_action_and_api_route_is_documented(tmp_path):
    text = section("Console and API")
    for action in ACTIONS:
        assert f"`{action}" in text, f"question action {action}"
    event = tmp_path / "e.toml"
    event.write_text(f'[event]\nname = "docs"\ndatabase = "{tmp_path / "e.db"}"\n', encoding="utf-8")
    app = make_app(Controller(load_event(event)))
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith(("/api/", "/metrics", "/report", "/ws", "/healthz", "/overlay/{")):
            continue
        if path.startswith("/ws/") or path.endswith("/{verb}") or path.endswith("/{action}"):
            continue  # the overlay socket is the overlays' own; verbs and actions are listed one by one
        assert path in text, f"{route.method} {path}"
