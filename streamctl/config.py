"""The event file: TOML read into frozen dataclasses, every field checked with a message naming the key."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .redact import mask_url, register_secret
from .restream.platforms import PLATFORMS

DESTINATION_PLATFORMS = tuple(PLATFORMS)
AUDIENCE_PLATFORMS = ("youtube", "facebook", "tiktok", "twitch", "webhook", "simulated", "manual")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SLATE_TEXT = "Chương trình sẽ tiếp tục trong giây lát — We'll be right back"
SLATE_TEXT_MAX = 200  # characters; the card has room for a few lines

# A youtube or facebook destination whose broadcast streamctl creates or looks up (README "Broadcasts").
BROADCAST_KEYS = ("broadcast", "credentials_file", "title", "description", "privacy", "page_id", "api_base")
BROADCAST_PLATFORMS = ("youtube", "facebook")
PRIVACY = ("public", "unlisted", "private")

# The keys each table of the event file takes (README's "Event file" section documents every one).
TABLE_KEYS: dict[str, set[str]] = {
    "event": {"name", "timezone", "database"},
    "ingest": {"url", "key_env", "slate", "slate_text"},
    "destination": {"name", "platform", "url", "key_env", "autostart", "profile", "backup", *BROADCAST_KEYS},
    "console": {"listen"},
    "archive": {"path", "segment_s"},
}

# Per audience platform: field -> (required, expected type, help). The help text is the documentation.
AUDIENCE_FIELDS: dict[str, dict[str, tuple[bool, type | tuple[type, ...], str]]] = {
    "youtube": {
        "video_id": (True, str, "the live video's id (the v= of its watch URL)"),
        "live_chat_id": (False, str, "the chat id, if known; otherwise read from the video"),
        "credential_env": (False, str, "environment variable holding an OAuth bearer token or API key "
                           "(or use credentials_file)"),
        "credentials_file": (False, str, "an authorized_user file from `streamctl auth youtube`; access tokens "
                             "are refreshed before they expire"),
        "api_base": (False, str, "API root, default https://www.googleapis.com"),
        "daily_quota": (False, int, "quota units available for the day, default 10000"),
        "planned_hours": (False, (int, float), "planned event length in hours, for the quota planner"),
        "transport": (False, str, "how chat is read: \"stream\" (default; liveChatMessages.streamList pushes "
                      "messages as they are typed, 5 units a connection; falls back to polling when the endpoint "
                      "answers 404/405/501 or not JSON) or \"poll\" (liveChatMessages.list, 5 units a poll)"),
    },
    "facebook": {
        "live_video_id": (True, str, "the live video's id"),
        "credential_env": (True, str, "environment variable holding the Page access token"),
        "api_base": (False, str, "API root, default https://graph.facebook.com/v26.0"),
    },
    "tiktok": {
        "unique_id": (True, str, "the broadcasting account, e.g. @baoquangninh"),
        "credential_env": (False, str, "environment variable holding a sign-server API key"),
    },
    "twitch": {
        "channel": (True, str, "the channel login"),
        "credential_env": (True, str, "environment variable holding an app access token"),
        "client_id": (True, str, "the Twitch application's client id"),
        "api_base": (False, str, "Helix root, default https://api.twitch.tv/helix"),
        "irc_url": (False, str, "chat websocket, default wss://irc-ws.chat.twitch.tv:443"),
    },
    "webhook": {
        "secret_env": (True, str, "environment variable holding the HMAC-SHA256 secret"),
        "label": (False, str, "platform name shown for these comments, e.g. zalo"),
    },
    "simulated": {
        "api_base": (False, str, "root of the local fake platform APIs, set by the demo"),
        "rate": (False, (int, float), "comments per second on average, default 1"),
        "seed": (False, int, "random seed for a repeatable audience"),
    },
    "manual": {
        "label": (False, str, "platform name shown for these counts, e.g. zalo"),
    },
}
AUDIENCE_COMMON = {"name", "platform", "interval", "enabled"}
# Fields that take one of a few words.
AUDIENCE_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {("youtube", "transport"): ("stream", "poll")}


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


@dataclass(frozen=True)
class IngestConfig:
    """Where the program comes from. `kind` is rtmp_listen, srt_listen, pull, file or testsrc."""

    url: str
    kind: str
    key_env: str | None = None
    key: str | None = field(default=None, repr=False)
    slate: bool = True  # a holding card keeps every platform fed while the program is lost
    slate_text: str = SLATE_TEXT

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
    backup: bool = False  # also publish to the platform's backup ingest
    backup_url: str | None = field(default=None, repr=False)  # full backup publish URL (key inside), from the broadcast
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
        if not self.key:
            return self.url
        return self.url.rstrip("/") + "/" + self.key

    @property
    def display_url(self) -> str:
        """The URL with the key masked, fit for logs, pages and API answers."""
        return mask_url(self.publish_url)


@dataclass(frozen=True)
class AudienceConfig:
    name: str
    platform: str
    options: dict[str, Any]
    credential: str | None = field(default=None, repr=False)
    interval: float | None = None
    enabled: bool = True

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class ConsoleConfig:
    host: str = "127.0.0.1"
    port: int = 8080


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


class _Checker:
    """Collects problems while reading one event file."""

    def __init__(self, path: Path, environ: dict[str, str], need_secrets: bool):
        self.path = path
        self.base = path.resolve().parent
        self.environ = environ
        self.need_secrets = need_secrets
        self.issues: list[str] = []

    def fail(self, key: str, problem: str) -> None:
        self.issues.append(f"{self.path}: {key}: {problem}")

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

    def unknown(self, data: dict, where: str, known: set[str]) -> None:
        for key in data:
            if key not in known:
                self.fail(f"{where}.{key}" if where else key,
                          f"unknown key, expected one of {', '.join(sorted(known))}")

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
    c.unknown(table, "event", TABLE_KEYS["event"])
    name = c.value(table, "event", "name", str, True, "event")
    tz = c.value(table, "event", "timezone", str, False, "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        c.fail("event.timezone", f"{tz!r} is not a known time zone, expected e.g. \"Asia/Ho_Chi_Minh\"")
        tz = "UTC"
    db = c.value(table, "event", "database", str, False, None)
    database = (base / db) if db else base / (re.sub(r"[^A-Za-z0-9_-]+", "-", c.path.stem) + ".db")
    return EventInfo(name=name, timezone=tz, database=database.resolve())


def _check_ingest(c: _Checker, data: dict, base: Path) -> IngestConfig | None:
    table = c.table(data, "ingest", required=False)
    if table is None:
        return None
    c.unknown(table, "ingest", TABLE_KEYS["ingest"])
    url = c.value(table, "ingest", "url", str, True)
    key_env = c.value(table, "ingest", "key_env", str, False)
    slate = c.value(table, "ingest", "slate", bool, False, True)
    slate_text = c.value(table, "ingest", "slate_text", str, False, SLATE_TEXT)
    if len(slate_text) > SLATE_TEXT_MAX or any(ord(ch) < 32 and ch != "\n" for ch in slate_text):
        c.fail("ingest.slate_text", f"{_short(slate_text)} is too long or has control characters, expected at most "
                                    f"{SLATE_TEXT_MAX} characters of text (new lines allowed)")
        slate_text = SLATE_TEXT
    key = c.secret("ingest.key_env", key_env, required=True)
    if url is None:
        return None
    kind = ingest_kind(url)
    if kind is None:
        c.fail("ingest.url", f"{mask_url(url)!r} has an unknown scheme, expected rtmp://, srt://, a file, "
                             "a pull URL or \"testsrc\"")
        return None
    if kind == "file":
        path = Path(urlsplit(url).path if url.startswith("file:") else url)
        if not path.is_absolute():
            path = base / path
        if not path.exists():
            c.fail("ingest.url", f"file {str(path)!r} does not exist, expected a media file to play")
        url = str(path)
    if urlsplit(url).scheme.lower() == "rtmp" and "listen" in parse_qs(urlsplit(url).query):
        # `listen=` was for us, not for the server we pull from or the address we bind.
        parts = urlsplit(url)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "listen"])
        url = urlunsplit(parts._replace(query=query))
    if kind == "rtmp_listen":
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            c.fail("ingest.url", f"{url!r} has no app path, expected e.g. rtmp://0.0.0.0:1935/live")
    return IngestConfig(url=url, kind=kind, key_env=key_env, key=key, slate=slate, slate_text=slate_text)


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
    c.unknown(table, where, TABLE_KEYS["destination"])
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
                             autostart=autostart, profile=profile, **extra)


def _check_broadcast(c: _Checker, table: dict, where: str, platform: str) -> dict:
    """The broadcast keys of a destination (README "Broadcasts"), checked; {} when there are none."""
    out: dict[str, Any] = {}
    backup = c.value(table, where, "backup", bool, False, False)
    if backup:
        out["backup"] = True
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
        path = Path(creds) if Path(creds).is_absolute() else c.base / creds
        if c.need_secrets and not path.is_file():
            command = "youtube --client-secrets FILE" if platform == "youtube" else \
                "facebook --page PAGE_ID --user-token-env VAR"
            c.fail(f"{where}.credentials_file", f"{str(path)!r} does not exist, expected the file written by "
                                                f"`streamctl auth {command} -o {creds}`")
        out["credentials_file"] = path.resolve()
    if "broadcast" in out and creds is None:
        c.fail(f"{where}.credentials_file", "missing, expected the credentials file streamctl uses to create or "
                                            "look up the broadcast")
    return out


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
        before = len(c.issues)
        name = c.value(table, where, "name", str, True)
        if name is not None and not NAME_RE.match(name):
            c.fail(f"{where}.name", f"{_short(name)} is not a plain name, expected letters, digits, '-', '_' or '.'")
        platform = c.value(table, where, "platform", str, True)
        if platform not in AUDIENCE_FIELDS:
            if platform is not None:
                c.fail(f"{where}.platform", f"{platform!r} is unknown, expected one of {', '.join(AUDIENCE_PLATFORMS)}")
            continue
        fields = AUDIENCE_FIELDS[platform]
        c.unknown(table, where, AUDIENCE_COMMON | set(fields))
        options = {}
        for key, (required, kind, _help) in fields.items():
            value = c.value(table, where, key, kind, required)
            if value is not None:
                options[key] = value
        for key, value in options.items():
            choices = AUDIENCE_CHOICES.get((platform, key))
            if choices and value not in choices:
                c.fail(f"{where}.{key}", f"{_short(value)} is not known, expected one of {', '.join(choices)}")
        for key in ("api_base", "irc_url"):
            if key in options and urlsplit(options[key]).scheme not in ("http", "https", "ws", "wss"):
                c.fail(f"{where}.{key}", f"{_short(options[key])} is not a URL, expected http(s)://host/path")
        interval = c.value(table, where, "interval", (int, float), False)
        if interval is not None and not 0.2 <= interval <= 3600:
            c.fail(f"{where}.interval", f"{interval} is out of range, expected seconds between 0.2 and 3600")
        enabled = c.value(table, where, "enabled", bool, False, True)
        env_key = "secret_env" if "secret_env" in fields else "credential_env"
        credential = c.secret(f"{where}.{env_key}", options.get(env_key),
                              required=fields.get(env_key, (False,))[0] or platform == "youtube")
        if "credentials_file" in options:
            path = Path(options["credentials_file"])
            path = (path if path.is_absolute() else c.base / path).resolve()
            if c.need_secrets and not path.is_file():
                c.fail(f"{where}.credentials_file", f"{str(path)!r} does not exist, expected the file written by "
                                                    f"`streamctl auth youtube --client-secrets FILE -o {path.name}`")
            options["credentials_file"] = str(path)
        elif platform == "youtube" and "credential_env" not in options:
            c.fail(f"{where}.credential_env", "missing, expected credential_env (an API key or token) or "
                                              "credentials_file (from `streamctl auth youtube`)")
        if name in seen:
            c.fail(f"{where}.name", f"{name!r} is used twice, expected a unique name")
        seen.add(name)
        if len(c.issues) == before:
            out.append(AudienceConfig(name=name, platform=platform, options=options, credential=credential,
                                      interval=float(interval) if interval is not None else None,
                                      enabled=enabled))
    return tuple(out)


def parse_listen(value: str) -> tuple[str, int] | None:
    """`host:port` or `[v6]:port` into its parts, or None when malformed."""
    m = re.match(r"^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):(\d{1,5})$", value)
    if not m:
        return None
    port = int(m.group(3))
    if not 0 <= port <= 65535:
        return None
    return (m.group(1) or m.group(2)), port


def _check_console(c: _Checker, data: dict) -> ConsoleConfig:
    table = c.table(data, "console", required=False) or {}
    c.unknown(table, "console", TABLE_KEYS["console"])
    listen = c.value(table, "console", "listen", str, False, "127.0.0.1:8080")
    parsed = parse_listen(listen)
    if parsed is None:
        c.fail("console.listen", f"{_short(listen)} is not host:port, expected e.g. \"127.0.0.1:8080\"")
        return ConsoleConfig()
    return ConsoleConfig(host=parsed[0], port=parsed[1])


def _check_archive(c: _Checker, data: dict, base: Path) -> ArchiveConfig | None:
    table = c.table(data, "archive", required=False)
    if table is None:
        return None
    c.unknown(table, "archive", TABLE_KEYS["archive"])
    path = c.value(table, "archive", "path", str, True, "archive")
    seg = c.value(table, "archive", "segment_s", int, False, 600)
    if not 10 <= seg <= 86400:
        c.fail("archive.segment_s", f"{seg} is out of range, expected seconds between 10 and 86400")
    return ArchiveConfig(path=(base / path).resolve(), segment_s=seg)


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
    c.unknown(data, "", set(TABLE_KEYS) | {"audience"})
    event = _check_event(c, data, base)
    ingest = _check_ingest(c, data, base)
    destinations = _check_destinations(c, data)
    audience = _check_audience(c, data)
    console = _check_console(c, data)
    archive = _check_archive(c, data, base)
    # Only when the table is absent: a broken [ingest] has already been reported key by key.
    if destinations and "ingest" not in data:
        c.fail("ingest", "missing, expected an [ingest] table since the event has destinations")
    if archive is not None and "ingest" not in data:
        c.fail("archive", "needs an [ingest] table to record from")
    if c.issues:
        raise ConfigError(c.issues)
    return EventFile(path=path, event=event, ingest=ingest, destinations=destinations, audience=audience,
                     console=console, archive=archive)


def destination_from_api(table: dict, environ: dict[str, str] | None = None) -> DestinationConfig:
    """A destination posted to the API, checked as the event file's are; raises ConfigError."""
    c = _Checker(Path("request"), dict(os.environ if environ is None else environ), need_secrets=True)
    dest = check_destination(table, "destination", c)
    if c.issues or dest is None:
        raise ConfigError(c.issues or ["request: destination: invalid"])
    return dest
