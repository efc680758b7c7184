"""The event file: TOML read into frozen dataclasses, every field checked with a message naming the key."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import ssl
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .audience.options import (
    AUDIENCE_PLATFORMS,
    COMMON_OPTIONS,
    PLATFORM_OPTIONS,
    Option,
    env_option,
    make_options,
    options_of,
)
from .redact import mask_url, register_secret
from .restream.platforms import PLATFORMS

DESTINATION_PLATFORMS = tuple(PLATFORMS)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SLATE_TEXT = "Chương trình sẽ tiếp tục trong giây lát — We'll be right back"
SNAPSHOT_EVERY_S = (1, 86400)  # bounds of [event] snapshot_every_s
SLATE_TEXT_MAX = 200  # characters; the card has room for a few lines
FAILBACK = ("auto", "manual")
DEFAULT_PORTS = {"rtmp": 1935, "srt": 9000}  # where a listening ingest binds when its URL names no port
FAILBACK_AFTER_S = 10.0

# A youtube or facebook destination whose broadcast streamctl creates or looks up (README "Broadcasts").
BROADCAST_KEYS = ("broadcast", "credentials_file", "title", "description", "privacy", "page_id", "api_base")
BROADCAST_PLATFORMS = ("youtube", "facebook")
PRIVACY = ("public", "unlisted", "private")

# The keys each table of the event file takes (README's "Event file" section documents every one).
TABLE_KEYS: dict[str, set[str]] = {
    "event": {"name", "timezone", "database", "snapshot_every_s", "snapshot_dir"},
    "ingest": {"url", "key_env", "slate", "slate_text", "backup_url", "backup_key_env", "failback",
               "failback_after_s"},
    "destination": {"name", "platform", "url", "key_env", "autostart", "profile", "backup", "backup_url",
                    *BROADCAST_KEYS},
    "console": {"listen", "tls_cert", "tls_key", "trusted_proxy"},
    "archive": {"path", "segment_s"},
    "monitor": {"enabled", "preview_fps", "preview_width", "black_after_s", "frozen_after_s", "silent_after_s",
                "silence_db"},
}

AUDIENCE_COMMON = set(COMMON_OPTIONS)


class ConfigError(Exception):
    """The event file has mistakes; `issues` holds one `file: key: problem` line each."""

    def __init__(self, issues: list[str]):
        super().__init__("\n".join(issues))
        self.issues = issues


@dataclass(frozen=True)
class EventInfo:
    name: str
    timezone: str
    database: Path
    snapshot_every_s: int | None = None  # a copy of the database every so many seconds while running, or never
    snapshot_dir: Path | None = None  # where the copies go (default: beside the database)


@dataclass(frozen=True)
class IngestConfig:
    """Where the program comes from. `kind` is rtmp_listen, srt_listen, pull, file or testsrc."""

    url: str
    kind: str
    key_env: str | None = None
    key: str | None = field(default=None, repr=False)
    slate: bool = True  # a holding card keeps every platform fed while the program is lost
    slate_text: str = SLATE_TEXT
    backup: IngestConfig | None = None  # a second encoder, on air while this one is lost (its own url/kind/key)
    failback: str = "auto"  # auto: back to this input once stable `failback_after_s`; manual: by the operator
    failback_after_s: float = FAILBACK_AFTER_S

    @property
    def display_url(self) -> str:
        return mask_url(self.url)


@dataclass(frozen=True)
class DestinationConfig:
    name: str
    platform: str
    url: str
    key_env: str | None = None
    key: str | None = field(default=None, repr=False)
    autostart: bool = True
    profile: str = "copy"
    backup: bool = False  # also publish to the platform's backup ingest, as a second supervised output
    backup_url: str | None = None  # that backup ingest; None: derived from the platform (YouTube) if it can be
    broadcast: str | None = None  # "create", or an existing broadcast / live video id; None: url + key_env
    credentials_file: Path | None = None
    title: str | None = None
    description: str = ""
    privacy: str = "public"
    page_id: str | None = None
    api_base: str | None = None
    broadcast_ready: bool = False  # set once url (and backup_url) come from the platform's broadcast

    @property
    def waits_for_broadcast(self) -> bool:
        """A broadcast destination whose ingest address the platform has not handed out yet."""
        return bool(self.broadcast) and not self.broadcast_ready

    @property
    def publish_url(self) -> str:
        """The full URL ffmpeg publishes to: base URL joined with the stream key."""
        return join_key(self.url, self.key)

    @property
    def backup_base_url(self) -> str | None:
        """The backup ingest without the key: `backup_url`, else the platform's documented one, else None."""
        if self.backup_url:
            return self.backup_url
        return youtube_backup_url(self.url) if self.platform == "youtube" else None

    @property
    def backup_publish_url(self) -> str | None:
        """The full backup URL ffmpeg publishes to (same key as the primary), or None when there is none."""
        base = self.backup_base_url if self.backup else None
        return join_key(base, self.key) if base else None

    @property
    def display_url(self) -> str:
        """The URL with the key masked, fit for logs, pages and API answers."""
        return mask_url(self.publish_url)


def join_key(url: str, key: str | None) -> str:
    """A base ingest URL joined with its stream key (`rtmp://host/app` + `KEY`)."""
    return url.rstrip("/") + "/" + key if key else url


# YouTube's documented backup ingest: the primary host with b. for a., app `live2?backup=1`, the same key.
YOUTUBE_PRIMARY = {"a.rtmp.youtube.com": "b.rtmp.youtube.com", "a.rtmps.youtube.com": "b.rtmps.youtube.com"}


def youtube_backup_url(url: str) -> str | None:
    """`rtmps://a.rtmps.youtube.com/live2` → `rtmps://b.rtmps.youtube.com/live2?backup=1`; None for other hosts."""
    parts = urlsplit(url)
    backup_host = YOUTUBE_PRIMARY.get((parts.hostname or "").lower())
    if backup_host is None:
        return None
    netloc = backup_host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") or "/live2", "backup=1", ""))


@dataclass(frozen=True)
class MonitorConfig:
    """The confidence monitor: one low-rate decoder of the program for the preview, meters and detectors."""

    enabled: bool = True
    preview_fps: float = 2.0  # pictures a second; the preview is at most 1 / fps + the decoder's delay old
    preview_width: int = 480  # pixels; height follows the program's shape
    black_after_s: float = 5.0  # a black picture this long raises program.black
    frozen_after_s: float = 20.0  # an unchanging picture this long raises program.frozen (a slide can be still)
    silent_after_s: float = 10.0  # every channel under silence_db this long raises program.silent
    silence_db: float = -50.0  # RMS level (dBFS) under which a channel counts as silent


@dataclass(frozen=True)
class AudienceConfig:
    """One `[[audience]]` table: `options` is the platform's typed options (audience/options.py)."""

    name: str
    platform: str
    options: Any  # YouTubeOptions, FacebookOptions, ... (a plain dict is turned into them)
    credential: str | None = field(default=None, repr=False)
    interval: float | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.options, dict):  # sources built in code (the simulation, tests) pass plain values
            object.__setattr__(self, "options", make_options(self.platform, self.options))

    def get(self, key: str, default: Any = None) -> Any:
        """An option's value, or `default` when it is unset (kept for callers written before typed options)."""
        value = getattr(self.options, key, None)
        return default if value is None else value

    @property
    def credential_env(self) -> str | None:
        """The environment variable the file names for this source's secret, if any."""
        env = env_option(self.platform)
        return getattr(self.options, env.name) if env else None


@dataclass(frozen=True)
class ConsoleConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None  # PEM certificate (chain): streamctl serves HTTPS itself
    tls_key: Path | None = None  # its PEM private key
    trusted_proxy: str | None = None  # the reverse proxy's address, whose X-Forwarded-Proto/Forwarded is believed

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def loopback_only(self) -> bool:
        """Whether only this machine can reach the console."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ArchiveConfig:
    path: Path
    segment_s: int = 600


@dataclass(frozen=True)
class EventFile:
    path: Path
    event: EventInfo
    ingest: IngestConfig | None
    destinations: tuple[DestinationConfig, ...]
    audience: tuple[AudienceConfig, ...]
    console: ConsoleConfig
    archive: ArchiveConfig | None
    monitor: MonitorConfig = field(default_factory=MonitorConfig)


class _Checker:
    """Collects problems while reading one event file."""

    def __init__(self, path: Path, environ: dict[str, str], need_secrets: bool):
        self.path = path
        self.base = path.resolve().parent
        self.environ = environ
        self.need_secrets = need_secrets
        self.issues: list[str] = []
        self.names: dict[tuple[str, int], str] = {}  # ("destination", 0) -> its name, to say which one

    def fail(self, key: str, problem: str) -> None:
        self.issues.append(f"{self.path}: {entry_key(key, self.names)}: {problem}")

    def name_entry(self, kind: str, index: int, table: dict) -> None:
        """Remember an entry's name, so its problems say `destination "facebook-qmg": url` not `destination[0].url`."""
        name = table.get("name")
        if isinstance(name, str) and NAME_RE.match(name):
            self.names[(kind, index)] = name

    def table(self, data: dict, key: str, required: bool) -> dict | None:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(key, f"missing, expected a [{key}] table")
            return None
        if not isinstance(value, dict):
            self.fail(key, f"is a {type(value).__name__}, expected a [{key}] table")
            return None
        return value

    def value(self, data: dict, where: str, key: str, kind, required: bool, default=None):
        full = f"{where}.{key}" if where else key
        if key not in data:
            if required:
                self.fail(full, f"missing, expected {_kind_name(kind)}")
            return default
        value = data[key]
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            self.fail(full, f"{value!r} is a boolean, expected {_kind_name(kind)}")
            return default
        if not isinstance(value, kind):
            self.fail(full, f"{_short(value)} is a {type(value).__name__}, expected {_kind_name(kind)}")
            return default
        if isinstance(value, str) and not value.strip():
            self.fail(full, f"is empty, expected {_kind_name(kind)}")
            return default
        return value

    def unknown(self, data: dict, where: str, known: set[str]) -> dict:
        """Report unknown keys, suggesting the likely one; returns the table read as that one was meant.

        A misspelt `platfrom = "facebook"` is one problem: the rest is checked as if `platform` had been
        written, so no follow-on ("url: missing") buries it.
        """
        meant = dict(data)
        for key in data:
            if key in known:
                continue
            full = f"{where}.{key}" if where else key
            guess = likely_key(key, known)
            if guess is None:
                self.fail(full, f"unknown key, expected one of {', '.join(sorted(known))}")
                continue
            self.fail(full, f'unknown key, did you mean "{guess}"? (expected one of {", ".join(sorted(known))})')
            meant.setdefault(guess, data[key])
        return meant

    def secret(self, where: str, env_name: str | None, required: bool) -> str | None:
        if env_name is None:
            return None
        if not ENV_RE.match(env_name):
            self.fail(where, f"{env_name!r} is not an environment variable name, expected e.g. FB_QMG_KEY")
            return None
        value = self.environ.get(env_name)
        if not value:
            if required and self.need_secrets:
                self.fail(where, f"environment variable {env_name} is not set, expected it to hold the secret")
            return None
        register_secret(value)
        return value


ENTRY_KEY = re.compile(r"^(destination|audience)\[(\d+)\](?:\.(.+))?$")


def entry_key(key: str, names: dict[tuple[str, int], str]) -> str:
    """`destination[0].url` as `destination "facebook-qmg": url` when that entry has a usable name."""
    m = ENTRY_KEY.match(key)
    name = names.get((m.group(1), int(m.group(2)))) if m else None
    if m is None or name is None:
        return key
    return f'{m.group(1)} "{name}"' + (f": {m.group(3)}" if m.group(3) else "")


def likely_key(key: str, known: Iterable[str]) -> str | None:
    """The known key `key` is most likely a misspelling of, or None."""
    found = difflib.get_close_matches(key.lower(), sorted(known), n=1, cutoff=0.75)
    return found[0] if found else None


def meant_as(table: dict, known: Iterable[str]) -> dict:
    """`table` with each missing known key taken from the misspelt key that stands for it (nothing reported)."""
    meant = dict(table)
    for key, value in table.items():
        if key not in known and (guess := likely_key(key, known)) is not None:
            meant.setdefault(guess, value)
    return meant


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def ingest_kind(url: str) -> str | None:
    """How an ingest URL is used, or None when it is not one we can take."""
    if url == "testsrc":
        return "testsrc"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "rtmp":
        # A local or wildcard address means the switcher pushes to us; `?listen=0` / `?listen=1` override.
        listen = parse_qs(parts.query).get("listen")
        if listen in (["0"], ["1"]):
            return "rtmp_listen" if listen == ["1"] else "pull"
        local = (parts.hostname or "") in ("0.0.0.0", "::", "127.0.0.1", "localhost", "::1")
        return "rtmp_listen" if local else "pull"
    if scheme == "srt":
        mode = parse_qs(parts.query).get("mode", [""])[0]
        return "srt_listen" if mode == "listener" else "pull"
    if scheme in ("rtmps", "http", "https", "rtsp", "udp", "tcp"):
        return "pull"
    if scheme in ("", "file"):
        return "file"
    return None


def _check_event(c: _Checker, data: dict, base: Path) -> EventInfo:
    table = c.table(data, "event", required=True) or {}
    table = c.unknown(table, "event", TABLE_KEYS["event"])
    name = c.value(table, "event", "name", str, True, "event")
    tz = c.value(table, "event", "timezone", str, False, "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        c.fail("event.timezone", f"{tz!r} is not a known time zone, expected e.g. \"Asia/Ho_Chi_Minh\"")
        tz = "UTC"
    db = c.value(table, "event", "database", str, False, None)
    database = (base / db) if db else base / (re.sub(r"[^A-Za-z0-9_-]+", "-", c.path.stem) + ".db")
    every = c.value(table, "event", "snapshot_every_s", int, False, None)
    if every is not None and not SNAPSHOT_EVERY_S[0] <= every <= SNAPSHOT_EVERY_S[1]:
        c.fail("event.snapshot_every_s", f"{every} is out of range, expected seconds between "
               f"{SNAPSHOT_EVERY_S[0]} and {SNAPSHOT_EVERY_S[1]}")
        every = None
    folder = c.value(table, "event", "snapshot_dir", str, False, None)
    if folder is not None and every is None and "snapshot_every_s" not in table:
        c.fail("event.snapshot_dir", "is set without snapshot_every_s, expected both (how often, and where)")
    snapshot_dir = (base / folder).resolve() if folder else None
    return EventInfo(name=name, timezone=tz, database=database.resolve(), snapshot_every_s=every,
                     snapshot_dir=snapshot_dir)


def _check_ingest(c: _Checker, data: dict, base: Path) -> IngestConfig | None:
    table = c.table(data, "ingest", required=False)
    if table is None:
        return None
    table = c.unknown(table, "ingest", TABLE_KEYS["ingest"])
    url = c.value(table, "ingest", "url", str, True)
    key_env = c.value(table, "ingest", "key_env", str, False)
    slate = c.value(table, "ingest", "slate", bool, False, True)
    slate_text = c.value(table, "ingest", "slate_text", str, False, SLATE_TEXT)
    if len(slate_text) > SLATE_TEXT_MAX or any(ord(ch) < 32 and ch != "\n" for ch in slate_text):
        c.fail("ingest.slate_text", f"{_short(slate_text)} is too long or has control characters, expected at most "
                                    f"{SLATE_TEXT_MAX} characters of text (new lines allowed)")
        slate_text = SLATE_TEXT
    key = c.secret("ingest.key_env", key_env, required=True)
    backup_url = c.value(table, "ingest", "backup_url", str, False)
    backup_key_env = c.value(table, "ingest", "backup_key_env", str, False)
    backup_key = c.secret("ingest.backup_key_env", backup_key_env, required=True)
    failback = c.value(table, "ingest", "failback", str, False, "auto")
    if failback not in FAILBACK:
        c.fail("ingest.failback", f"{_short(failback)} is not known, expected \"auto\" or \"manual\"")
        failback = "auto"
    failback_after_s = c.value(table, "ingest", "failback_after_s", (int, float), False, FAILBACK_AFTER_S)
    if not 0 <= failback_after_s <= 3600:
        c.fail("ingest.failback_after_s", f"{failback_after_s!r} is out of range, expected 0 to 3600 seconds")
        failback_after_s = FAILBACK_AFTER_S
    if backup_url is None and (backup_key_env is not None or "failback" in table or "failback_after_s" in table):
        c.fail("ingest.backup_url", "missing, expected a backup input since backup_key_env or failback is set")
    if url is None:
        return None
    primary = _check_input(c, "ingest.url", url, base)
    if primary is None:
        return None
    kind, url = primary
    backup = None
    if backup_url is not None and (checked := _check_input(c, "ingest.backup_url", backup_url, base)):
        backup_kind, backup_url = checked
        backup = IngestConfig(url=backup_url, kind=backup_kind, key_env=backup_key_env, key=backup_key, slate=False)
        listeners = ("rtmp_listen", "srt_listen")
        if kind in listeners and backup_kind == kind and _listens_on(url) == _listens_on(backup_url):
            c.fail("ingest.backup_url", f"{mask_url(backup_url)!r} listens on the same port as ingest.url, "
                                        "expected another port for the backup encoder")
    return IngestConfig(url=url, kind=kind, key_env=key_env, key=key, slate=slate, slate_text=slate_text,
                        backup=backup, failback=failback, failback_after_s=float(failback_after_s))


def _listens_on(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 1935)


def _check_input(c: _Checker, key: str, url: str, base: Path) -> tuple[str, str] | None:
    """One input's URL: its kind and the URL as used (a file made absolute, our `listen=` dropped)."""
    kind = ingest_kind(url)
    if kind is None:
        c.fail(key, f"{mask_url(url)!r} has an unknown scheme, expected rtmp://, srt://, a file, "
                    "a pull URL or \"testsrc\"")
        return None
    if kind == "file":
        path = Path(urlsplit(url).path if url.startswith("file:") else url)
        if not path.is_absolute():
            path = base / path
        if not path.exists():
            c.fail(key, f"file {str(path)!r} does not exist, expected a media file to play")
        url = str(path)
    if urlsplit(url).scheme.lower() == "rtmp" and "listen" in parse_qs(urlsplit(url).query):
        # `listen=` was for us, not for the server we pull from or the address we bind.
        parts = urlsplit(url)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "listen"])
        url = urlunsplit(parts._replace(query=query))
    if kind == "rtmp_listen":
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            c.fail(key, f"{url!r} has no app path, expected e.g. rtmp://0.0.0.0:1935/live")
    return kind, url


def _check_destinations(c: _Checker, data: dict) -> tuple[DestinationConfig, ...]:
    raw = data.get("destination", [])
    if not isinstance(raw, list):
        c.fail("destination", "expected [[destination]] tables")
        return ()
    seen: set[str] = set()
    out = []
    for i, table in enumerate(raw):
        where = f"destination[{i}]"
        if not isinstance(table, dict):
            c.fail(where, "expected a table")
            continue
        c.name_entry("destination", i, meant_as(table, TABLE_KEYS["destination"]))
        dest = check_destination(table, where, c)
        if dest is None:
            continue
        if dest.name in seen:
            c.fail(f"{where}.name", f"{dest.name!r} is used twice, expected a unique name")
            continue
        seen.add(dest.name)
        out.append(dest)
    return tuple(out)


def check_destination(table: dict, where: str, c: _Checker) -> DestinationConfig | None:
    """Validate one destination table (from the file or from `POST /api/destinations`)."""
    from .restream.profiles import PROFILES

    before = len(c.issues)
    table = c.unknown(table, where, TABLE_KEYS["destination"])
    name = c.value(table, where, "name", str, True)
    if name is not None and not NAME_RE.match(name):
        c.fail(f"{where}.name", f"{_short(name)} is not a plain name, expected letters, digits, '-', '_' or '.'")
    platform = c.value(table, where, "platform", str, False, "custom")
    if platform not in DESTINATION_PLATFORMS:
        c.fail(f"{where}.platform", f"{platform!r} is unknown, expected one of {', '.join(DESTINATION_PLATFORMS)}")
        platform = "custom"
    rules = PLATFORMS[platform]
    url = c.value(table, where, "url", str, rules.default_url is None, rules.default_url)
    key_env = c.value(table, where, "key_env", str, False)
    autostart = c.value(table, where, "autostart", bool, False, True)
    profile = c.value(table, where, "profile", str, False, "copy")
    if profile not in PROFILES:
        c.fail(f"{where}.profile", f"{profile!r} is unknown, expected one of {', '.join(PROFILES)}")
    key = c.secret(f"{where}.key_env", key_env, required=True)
    extra = _check_broadcast(c, table, where, platform)
    if extra.get("broadcast") and "url" not in table:
        url = ""  # the platform hands out the ingest address when the broadcast is made
    backup = c.value(table, where, "backup", bool, False, False)
    backup_url = c.value(table, where, "backup_url", str, False)
    if backup_url is not None:
        _check_backup_url(c, where, backup_url, platform)
    if backup and backup_url is None and url is not None and not extra.get("broadcast"):
        _check_backup_derivable(c, where, table, platform, url)
    if url:
        scheme = urlsplit(url).scheme.lower() or "file"
        if scheme not in rules.schemes:
            hint = f" ({rules.note})" if rules.note else ""
            c.fail(f"{where}.url", f"{mask_url(url)!r} uses {scheme}, expected {' or '.join(rules.schemes)}"
                                   f" for {platform}{hint}")
        elif scheme != "file" and not urlsplit(url).hostname:
            c.fail(f"{where}.url", f"{mask_url(url)!r} has no host, expected e.g. {rules.default_url or 'rtmp://host/app'}")
    if len(c.issues) > before or name is None or url is None:
        return None
    return DestinationConfig(name=name, platform=platform, url=url, key_env=key_env, key=key,
                             autostart=autostart, profile=profile, backup=backup, backup_url=backup_url, **extra)


def _check_broadcast(c: _Checker, table: dict, where: str, platform: str) -> dict:
    """The broadcast keys of a destination (README "Broadcasts"), checked; {} when there are none."""
    out: dict[str, Any] = {}
    present = [k for k in BROADCAST_KEYS if k in table]
    if not present:
        return out
    if platform not in BROADCAST_PLATFORMS:
        c.fail(f"{where}.{present[0]}", f"is for youtube or facebook destinations, not {platform}")
        return out
    for key in ("broadcast", "title", "description", "page_id", "api_base"):
        value = c.value(table, where, key, str, False)
        if value is not None:
            out[key] = value
    if "api_base" in out and urlsplit(out["api_base"]).scheme not in ("http", "https"):
        c.fail(f"{where}.api_base", f"{_short(out['api_base'])} is not a URL, expected http(s)://host/path")
    privacy = c.value(table, where, "privacy", str, False, "public")
    if privacy not in PRIVACY:
        c.fail(f"{where}.privacy", f"{_short(privacy)} is not known, expected one of {', '.join(PRIVACY)}")
    elif "privacy" in table:
        out["privacy"] = privacy
    creds = c.value(table, where, "credentials_file", str, False)
    if creds is not None:
        path = _credentials_path(c, f"{where}.credentials_file", creds, platform)
        out["credentials_file"] = path
    if "broadcast" in out and creds is None:
        c.fail(f"{where}.credentials_file", "missing, expected the credentials file streamctl uses to create or "
                                            "look up the broadcast")
    return out


def _credentials_path(c: _Checker, key: str, value: str, platform: str) -> Path:
    """A credentials file relative to the event file; it must exist when secrets are needed."""
    path = Path(value) if Path(value).is_absolute() else c.base / value
    if c.need_secrets and not path.is_file():
        command = "youtube --client-secrets FILE" if platform == "youtube" else \
            "facebook --page PAGE_ID --user-token-env VAR"
        c.fail(key, f"{str(path)!r} does not exist, expected the file written by `streamctl auth {command} "
                    f"-o {value}`")
    return path.resolve()


def _check_backup_url(c: _Checker, where: str, backup_url: str, platform: str) -> None:
    rules = PLATFORMS[platform]
    scheme = urlsplit(backup_url).scheme.lower()
    if scheme not in rules.schemes or scheme == "file" or not urlsplit(backup_url).hostname:
        c.fail(f"{where}.backup_url", f"{mask_url(backup_url)!r} is not a {platform} ingest URL, expected "
                                      f"{' or '.join(s for s in rules.schemes if s != 'file')}://host/app")


def _check_backup_derivable(c: _Checker, where: str, table: dict, platform: str, url: str) -> None:
    """`backup = true` without `backup_url`: only where the platform's backup ingest is known."""
    if platform == "youtube":
        if youtube_backup_url(url) is None:
            c.fail(f"{where}.backup", f"YouTube's backup ingest is known only for a.rtmp(s).youtube.com, not "
                                      f"{mask_url(url)!r}; expected backup_url")
    elif platform == "facebook":
        # Facebook hands out a secondary URL only for a live video created through its API with backup on.
        if table.get("broadcast") != "create":
            c.fail(f"{where}.backup", "Facebook gives a backup (secondary) URL only for a live video streamctl "
                                      "creates, expected broadcast = \"create\" (or an explicit backup_url)")
    else:
        c.fail(f"{where}.backup", f"{platform} has no documented backup ingest, expected backup_url")


def _check_audience(c: _Checker, data: dict) -> tuple[AudienceConfig, ...]:
    raw = data.get("audience", [])
    if not isinstance(raw, list):
        c.fail("audience", "expected [[audience]] tables")
        return ()
    seen: set[str] = set()
    out = []
    for i, table in enumerate(raw):
        where = f"audience[{i}]"
        if not isinstance(table, dict):
            c.fail(where, "expected a table")
            continue
        table = meant_as(table, AUDIENCE_COMMON)  # a misspelt name or platform: read as meant, reported below
        c.name_entry("audience", i, table)
        before = len(c.issues)
        name = c.value(table, where, "name", str, True)
        if name is not None and not NAME_RE.match(name):
            c.fail(f"{where}.name", f"{_short(name)} is not a plain name, expected letters, digits, '-', '_' or '.'")
        platform = c.value(table, where, "platform", str, True)
        if platform not in PLATFORM_OPTIONS:
            if platform is not None:
                c.fail(f"{where}.platform", f"{platform!r} is unknown, expected one of {', '.join(AUDIENCE_PLATFORMS)}")
            continue
        table = c.unknown(table, where, AUDIENCE_COMMON | {o.name for o in options_of(platform)})
        options = check_options(c, table, where, platform)
        if platform == "youtube":
            options = _youtube_credentials(c, table, where, options)
        interval = c.value(table, where, "interval", (int, float), False)
        if interval is not None and not 0.2 <= interval <= 3600:
            c.fail(f"{where}.interval", f"{interval} is out of range, expected seconds between 0.2 and 3600")
        enabled = c.value(table, where, "enabled", bool, False, True)
        env = env_option(platform)
        credential = c.secret(f"{where}.{env.name}", getattr(options, env.name), required=env.required) if env else None
        if name in seen:
            c.fail(f"{where}.name", f"{name!r} is used twice, expected a unique name")
        seen.add(name)
        if len(c.issues) == before:
            out.append(AudienceConfig(name=name, platform=platform, options=options, credential=credential,
                                      interval=float(interval) if interval is not None else None,
                                      enabled=enabled))
    return tuple(out)


def _youtube_credentials(c: _Checker, table: dict, where: str, options: Any) -> Any:
    """A YouTube source signs with credential_env (a key or token) or a credentials_file (refreshed tokens)."""
    if options is None:
        return options
    if options.credentials_file:
        path = _credentials_path(c, f"{where}.credentials_file", options.credentials_file, "youtube")
        return replace(options, credentials_file=str(path))
    if not options.credential_env:
        c.fail(f"{where}.credential_env", "missing, expected credential_env (an API key or token) or "
                                          "credentials_file (from `streamctl auth youtube`)")
    else:
        c.secret(f"{where}.credential_env", options.credential_env, required=True)
    return options


def check_options(c: _Checker, table: dict, where: str, platform: str) -> Any:
    """One platform's options from a table, each checked against its declaration (kind, choices, URL)."""
    values: dict[str, Any] = {}
    for opt in options_of(platform):
        value = c.value(table, where, opt.name, (int, float) if opt.kind is float else opt.kind, opt.required)
        if value is None or not _fits(c, f"{where}.{opt.name}" if where else opt.name, opt, value):
            continue
        values[opt.name] = float(value) if opt.kind is float else value
    return make_options(platform, values)


def _fits(c: _Checker, where: str, opt: Option, value: Any) -> bool:
    if opt.choices and value not in opt.choices:
        c.fail(where, f"{_short(value)} is not known, expected one of {', '.join(opt.choices)}")
        return False
    if opt.url and urlsplit(value).scheme not in ("http", "https", "ws", "wss"):
        c.fail(where, f"{_short(value)} is not a URL, expected http(s)://host/path")
        return False
    return True


def audience_from_api(current: AudienceConfig, changes: dict, environ: dict[str, str] | None = None
                      ) -> AudienceConfig:
    """`current` with the options and `enabled`/`interval` a request changes, checked as the file's are.

    A secret's environment variable cannot be changed this way (the credential route replaces the secret).
    Raises ConfigError with `request: key: problem` lines.
    """
    c = _Checker(Path("request"), dict(os.environ if environ is None else environ), need_secrets=False)
    if not isinstance(changes, dict) or not changes:
        raise ConfigError(["request: body: expected an object with the keys to change"])
    env = env_option(current.platform)
    if env is not None and env.name in changes:
        c.fail(env.name, f"cannot be changed while running, expected PUT /api/audience/{current.name}/credential "
                         "to replace the secret")
        changes = {k: v for k, v in changes.items() if k != env.name}
    c.unknown(changes, "", {o.name for o in options_of(current.platform) if not o.env} | {"enabled", "interval"})
    declared = options_of(current.platform)
    merged = {o.name: getattr(current.options, o.name) for o in declared}
    # An option that belongs to another (a chat id to its video) goes when that one changes, unless given too.
    merged = {k: v for k, v in merged.items() if v is not None
              and not any(o.name == k and o.follows in changes and k not in changes for o in declared)}
    merged.update({k: v for k, v in changes.items() if k not in ("enabled", "interval")})
    options = check_options(c, merged, "", current.platform)
    enabled = c.value(changes, "", "enabled", bool, False, current.enabled)
    interval = c.value(changes, "", "interval", (int, float), False, current.interval)
    if interval is not None and not 0.2 <= interval <= 3600:
        c.fail("interval", f"{interval} is out of range, expected seconds between 0.2 and 3600")
    if c.issues:
        raise ConfigError(c.issues)
    return replace(current, options=options, enabled=enabled,
                   interval=float(interval) if interval is not None else None)


def parse_listen(value: str) -> tuple[str, int] | None:
    """`host:port` or `[v6]:port` into its parts, or None when malformed."""
    m = re.match(r"^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):(\d{1,5})$", value)
    if not m:
        return None
    port = int(m.group(3))
    if not 0 <= port <= 65535:
        return None
    return (m.group(1) or m.group(2)), port


def _check_tls(c: _Checker, table: dict, base: Path) -> tuple[Path | None, Path | None]:
    cert = c.value(table, "console", "tls_cert", str, False, None)
    key = c.value(table, "console", "tls_key", str, False, None)
    if (cert is None) != (key is None):
        given, lacking = ("tls_cert", "tls_key") if key is None else ("tls_key", "tls_cert")
        c.fail(f"console.{lacking}", f"missing while {given} is set, expected both PEM files (certificate and key)")
        return None, None
    if cert is None:
        return None, None
    paths = (base / cert).resolve(), (base / key).resolve()
    for name, path in zip(("tls_cert", "tls_key"), paths, strict=True):
        if not path.is_file():
            c.fail(f"console.{name}", f"{path} is not a readable file, expected a PEM file")
            return None, None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*paths)
    except (ssl.SSLError, OSError) as e:
        c.fail("console.tls_cert", f"{paths[0]} with {paths[1]} cannot be loaded ({e.strerror or e}), "
               "expected a PEM certificate and the private key that belongs to it")
        return None, None
    return paths


def _check_console(c: _Checker, data: dict, base: Path) -> ConsoleConfig:
    table = c.table(data, "console", required=False) or {}
    table = c.unknown(table, "console", TABLE_KEYS["console"])
    listen = c.value(table, "console", "listen", str, False, "127.0.0.1:8080")
    parsed = parse_listen(listen)
    if parsed is None:
        c.fail("console.listen", f"{_short(listen)} is not host:port, expected e.g. \"127.0.0.1:8080\"")
        parsed = ("127.0.0.1", 8080)
    cert, key = _check_tls(c, table, base)
    proxy = c.value(table, "console", "trusted_proxy", str, False, None)
    if proxy is not None:
        try:
            proxy = str(ipaddress.ip_address(proxy))
        except ValueError:
            c.fail("console.trusted_proxy", f"{_short(proxy)} is not an IP address, expected the reverse proxy's "
                   "address as it connects to the console, e.g. \"127.0.0.1\"")
            proxy = None
    return ConsoleConfig(host=parsed[0], port=parsed[1], tls_cert=cert, tls_key=key, trusted_proxy=proxy)


def _check_archive(c: _Checker, data: dict, base: Path) -> ArchiveConfig | None:
    table = c.table(data, "archive", required=False)
    if table is None:
        return None
    table = c.unknown(table, "archive", TABLE_KEYS["archive"])
    path = c.value(table, "archive", "path", str, True, "archive")
    seg = c.value(table, "archive", "segment_s", int, False, 600)
    if not 10 <= seg <= 86400:
        c.fail("archive.segment_s", f"{seg} is out of range, expected seconds between 10 and 86400")
    return ArchiveConfig(path=(base / path).resolve(), segment_s=seg)


def _check_monitor(c: _Checker, data: dict) -> MonitorConfig:
    table = c.table(data, "monitor", required=False) or {}
    table = c.unknown(table, "monitor", TABLE_KEYS["monitor"])
    d = MonitorConfig()
    enabled = c.value(table, "monitor", "enabled", bool, False, d.enabled)
    ranges = {"preview_fps": (1.0, 10.0, d.preview_fps), "preview_width": (64, 1920, d.preview_width),
              "black_after_s": (0.5, 3600.0, d.black_after_s), "frozen_after_s": (0.5, 3600.0, d.frozen_after_s),
              "silent_after_s": (0.5, 3600.0, d.silent_after_s), "silence_db": (-120.0, 0.0, d.silence_db)}
    values: dict[str, Any] = {}
    for key, (low, high, default) in ranges.items():
        kind = int if key == "preview_width" else (int, float)
        value = c.value(table, "monitor", key, kind, False, default)
        if not low <= value <= high:
            c.fail(f"monitor.{key}", f"{value} is out of range, expected a number from {low:g} to {high:g}")
            value = default
        values[key] = value
    return MonitorConfig(enabled=enabled, **values)


def load_event(path: str | os.PathLike, environ: dict[str, str] | None = None,
               need_secrets: bool = True) -> EventFile:
    """Read and validate an event file; raises ConfigError listing every problem found."""
    path = Path(path)
    c = _Checker(path, dict(os.environ if environ is None else environ), need_secrets)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found, expected an event file (TOML)"]) from None
    except OSError as e:
        raise ConfigError([f"{path}: cannot be read ({e.strerror}), expected a readable event file"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError([f"{path}: byte {e.start}: not UTF-8, expected a UTF-8 TOML file"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: {e}: not valid TOML, expected key = value lines and [tables]"]) from None
    base = path.resolve().parent
    data = c.unknown(data, "", set(TABLE_KEYS) | {"audience"})
    event = _check_event(c, data, base)
    ingest = _check_ingest(c, data, base)
    destinations = _check_destinations(c, data)
    audience = _check_audience(c, data)
    console = _check_console(c, data, base)
    archive = _check_archive(c, data, base)
    monitor = _check_monitor(c, data)
    # Only when the table is absent: a broken [ingest] has already been reported key by key.
    if destinations and "ingest" not in data:
        c.fail("ingest", "missing, expected an [ingest] table since the event has destinations")
    if archive is not None and "ingest" not in data:
        c.fail("archive", "needs an [ingest] table to record from")
    if c.issues:
        raise ConfigError(c.issues)
    return EventFile(path=path, event=event, ingest=ingest, destinations=destinations, audience=audience,
                     console=console, archive=archive, monitor=monitor)


# Values that were never filled in: a template's placeholder or a documentation host (RFC 2606) still there.
PLACEHOLDER_WORDS = re.compile(r"(?i)replace[_ -]?with|^(…|\.\.\.|xxx+|todo|changeme|change_me)$")
PLACEHOLDER_HOSTS = re.compile(r"(?i)((^|\.)(example|invalid)|(^|\.)example\.(com|net|org))$")


def placeholders(path: str | os.PathLike) -> list[str]:
    """`file: key: ...` for every value of the event file still a placeholder; [] when it cannot be read.

    `run` would start with them and fail later (a video id nobody has, a host that does not exist), so
    `check` reports them. Named entries are named: `destination "zalo": url`.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    issues: list[str] = []
    names = {(kind, i): table["name"] for kind in ("destination", "audience")
             for i, table in enumerate(data.get(kind) if isinstance(data.get(kind), list) else [])
             if isinstance(table, dict) and isinstance(table.get("name"), str) and NAME_RE.match(table["name"])}

    def visit(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for inner, item in value.items():
                visit(item, f"{key}.{inner}" if key else inner)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, f"{key}[{i}]" if key in ("destination", "audience") else key)
        elif isinstance(value, str) and (problem := _placeholder(value)):
            issues.append(f"{path}: {entry_key(key, names)}: {problem}")

    visit(data, "")
    return issues


def _placeholder(value: str) -> str | None:
    text = value.strip()
    if PLACEHOLDER_WORDS.search(text):
        return f"{_short(mask_url(text) if '://' in text else text)} is a placeholder, expected the real value"
    if "://" in text:
        try:
            host = urlsplit(text).hostname or ""
        except ValueError:
            return None
        if PLACEHOLDER_HOSTS.search(host):
            return (f"{mask_url(text)!r} points at {host}, a placeholder host that does not exist, expected the "
                    "platform's real address")
    return None


KEY_MAX = 1000  # characters; platforms' keys are tens of characters, TikTok's signed ones a few hundred


def typed_key(value: object, where: str = "request: key") -> str:
    """A stream key typed in the console: one word of printable characters; raises ConfigError (never quoting it)."""
    if not isinstance(value, str):
        raise ConfigError([f"{where}: is a {type(value).__name__}, expected the stream key as a string"])
    key = value.strip()
    if not 4 <= len(key) <= KEY_MAX or any(ch.isspace() or not ch.isprintable() for ch in key):
        raise ConfigError([f"{where}: is not a stream key, expected 4 to {KEY_MAX} printable characters "
                           "without spaces, as the platform shows it"])
    register_secret(key)
    return key


def destination_from_api(table: dict, environ: dict[str, str] | None = None) -> DestinationConfig:
    """A destination posted to the API, checked as the event file's are; raises ConfigError.

    Beside the file's keys it takes `key`: the stream key typed in the console, kept in memory only.
    """
    table = dict(table)
    has_key = "key" in table
    key = table.pop("key", None)
    if has_key:
        key = typed_key(key, "request: destination.key")
        if table.get("key_env") is not None:
            raise ConfigError(["request: destination.key: given with key_env, expected one of them"])
    c = _Checker(Path("request"), dict(os.environ if environ is None else environ), need_secrets=True)
    dest = check_destination(table, "destination", c)
    if c.issues or dest is None:
        raise ConfigError(c.issues or ["request: destination: invalid"])
    return replace(dest, key=key) if has_key else dest
