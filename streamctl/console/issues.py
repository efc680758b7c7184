"""What is wrong with a submitted field, as a catalogue key a page can show in the viewer's language.

The event file's checks (config.py) write `where.field: what is wrong, expected what` lines in English for
the terminal and for scripts. A page shows each line as the field's own label and the sentence of
`issue.<kind>` with the few values it names (a variable, a scheme, the choices), filled in.
"""

from __future__ import annotations

import re

LINE = re.compile(r"^(?:[^:]*: )?[\w\[\]-]+\.(?P<field>\w+): (?P<problem>.*)$", re.S)  # `[file: ]where.field: …`
# First match wins; named groups become the sentence's placeholders (the same in every language).
KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(pattern, re.I | re.S)) for kind, pattern in (
    ("env_unset", r"environment variable (?P<name>\S+) is not set"),
    ("env_name", r"is not an environment variable name"),
    ("missing", r"^missing\b|^is empty\b"),
    ("plain_name", r"is not a plain name"),
    ("taken", r"used twice|exists already"),
    ("scheme", r"uses (?P<scheme>[\w+.-]+), expected (?P<expected>\w+(?: or \w+)*)|unknown scheme"),
    ("no_host", r"has no host"),
    ("choice", r"is (?:unknown|not known), expected one of (?P<choices>[^;]+)"),
    ("wrong_type", r"is an? \w+, expected"),
    ("range", r"out of range"),
))
FALLBACK = "invalid"
PARAMS = {"env_unset": ("name",), "scheme": ("scheme", "expected"), "choice": ("choices",)}


def issue_view(line: str) -> dict:
    """One check line as `{field, key, params}` (field None when the line names none)."""
    found = LINE.match(line)
    field, problem = (found["field"], found["problem"]) if found else (None, line)
    for kind, pattern in KINDS:
        matched = pattern.search(problem)
        if matched:
            wanted = PARAMS.get(kind, ())
            if any(matched.group(name) is None for name in wanted):
                return {"field": field, "key": f"issue.{FALLBACK}", "params": {}}
            # Lists are shown as "rtmp, rtmps": the words between them would stay English.
            params = {name: matched.group(name).strip().replace(" or ", ", ") for name in wanted}
            return {"field": field, "key": f"issue.{kind}", "params": params}
    return {"field": field, "key": f"issue.{FALLBACK}", "params": {}}

