"""Why something failed, as a catalogue key a page can show in the viewer's language.

Error texts (an aiohttp exception, an ffmpeg line, a platform's answer) are written for the log and for
scripts. A page never shows them: it shows the sentence of `reason.<key>` (web/i18n/*.json) for the key
`reason_key()` finds, and the details stay in the log, where every line is redacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# First match wins: the more specific causes come before the general ones they may also mention.
REASONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((key, re.compile(pattern, re.I)) for key, pattern in (
    ("internal", r"internal error"),
    # A publisher our own ingest turned away (restream/rtmp_server.py), before the platforms' refusals below.
    ("wrong_key", r"wrong stream key"),
    ("already_publishing", r"already publishing|another publisher"),
    ("wrong_app", r"wrong app|unknown app|\bapp '[^']*' is not"),
    ("no_credential", r"no (page )?token|no credential|environment variable|is not set|key_env"),
    ("missing_extra", r"not installed|pip install|no module named"),
    ("program_lost", r"waiting for the program|ingest lost"),
    ("key_expired", r"key expired|expired at"),
    ("quota", r"quota|rate.?limit|too many requests|\b429\b"),
    ("server", r"\b50[0-4]\b|service unavailable|internal server error|bad gateway"),
    ("not_live", r"not live yet|no active live chat|not started|has not begun"),
    ("ended", r"chat (has )?ended|live video ended|broadcast (has )?ended|livechatended"),
    ("not_found", r"\b404\b|not found|does not exist|no such (video|broadcast)"),
    ("auth", r"\b401\b|\b403\b|unauthori[sz]ed|forbidden|refused \(|was refused|token (has expired|expired)|"
             r"revoked|invalid (credentials|token|key|stream key)|authentication failed|oauth|permission|"
             r"publish\.denied|badname|connect\.rejected|server error|operation not permitted"),
    ("dns", r"name or service not known|temporary failure in name resolution|nodename nor servname|"
            r"getaddrinfo|could not resolve"),
    ("tls", r"certificate|sslerror|ssl: |tls handshake|handshake (failed|timed out)|wrong version number"),
    ("unreachable", r"cannot connect to host|connect call failed|connection refused|no route to host|"
                    r"network is unreachable|clientconnectorerror|connection (was )?closed before"),
    ("timeout", r"timed? ?out|timeouterror|no answer within|deadline"),
    ("reset", r"connection reset|broken pipe|server disconnected|end of file|input/output error|"
              r"connection (lost|closed)|serverdisconnectederror"),
    ("bad_answer", r"not (valid )?json|unexpected answer|malformed|cut off|could not be read"),
    ("ffmpeg", r"ffmpeg|exit(ed)? (code|with)|protocol not found|unknown encoder|invalid argument"),
))
FALLBACK = "other"
KEYS = (*(key for key, _ in REASONS), FALLBACK)


def reason_key(text: str | None) -> str | None:
    """The catalogue key (without `reason.`) for an error text; None for no error."""
    if not text:
        return None
    for key, pattern in REASONS:
        if pattern.search(text):
            return key
    return FALLBACK


# The platform rules the probed program breaks (restream/platforms.py `rule_violations`), as keys.
RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(pattern, re.I)) for kind, pattern in (
    ("no_video", r"^no video"),
    ("video_codec", r"^video codec (?P<codec>\S+) is not accepted, expected (?P<expected>\S+)"),
    ("no_audio", r"^no audio"),
    ("audio_codec", r"^audio codec (?P<codec>\S+) is not accepted, expected (?P<expected>\S+)"),
    ("keyframe", r"^keyframe every (?P<every>[\d.]+) s, expected every (?P<target>[\d.]+) s"
                 r" \(at most (?P<max>[\d.]+) s\)"),
))


def rule_view(text: str) -> dict:
    """One broken platform rule as `{key, params}` (`rule.other` for a wording this table does not know)."""
    for kind, pattern in RULES:
        matched = pattern.search(text)
        if matched:
            return {"key": f"rule.{kind}", "params": {k: v for k, v in matched.groupdict().items() if v is not None}}
    return {"key": "rule.other", "params": {}}


# Fields holding an error text; alerts carry theirs as params.detail (a failure) or params.reason (a refusal).
ERROR_FIELDS = ("error", "last_error", "detail", "reason")


def with_reasons(value: object, keep_text: bool = True, fields: Iterable[str] = ERROR_FIELDS) -> object:
    """A copy of a JSON-ready value where every `error`-like text field has a `<field>_key` beside it.

    Pages show `T("reason." + error_key)`. API answers keep the English text for scripts (`keep_text`);
    what goes into a page itself (its page data, its socket's events) carries the key in place of the text,
    so no raw exception text is ever in a page, shown or not.
    """
    names = tuple(fields)
    if isinstance(value, dict):
        out = {k: with_reasons(v, keep_text, names) for k, v in value.items()}
        warnings = value.get("rule_warnings")
        if isinstance(warnings, list):  # the platform rules the program breaks, as keys too
            out["rule_keys"] = [rule_view(str(w)) for w in warnings]
        for name in names:
            text = value.get(name)
            if isinstance(text, str) or (name in value and text is None):
                out[f"{name}_key"] = reason_key(text)
                if not keep_text:
                    out[name] = out[f"{name}_key"]
        return out
    if isinstance(value, list | tuple):
        return [with_reasons(v, keep_text, names) for v in value]
    return value


def for_pages(value: object) -> object:
    """`with_reasons` for what a page holds: reason keys only, no error texts."""
    return with_reasons(value, keep_text=False)
