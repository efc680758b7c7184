"""Every audience platform's options, declared as data (name, kind, default, help): the help is the documentation.

Each platform has a frozen dataclass; every field is made by `option(...)`, which records its kind, whether it
is required, its choices and its help. config.py validates an `[[audience]]` table key by key from these
declarations and the README's audience table is tested against them, so a new option is one line here.
This module imports nothing of the adapters (only the Graph version from accounts/facebook.py), so config.py
can use it without an import circle.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from ..accounts.facebook import GRAPH_ROOT, GRAPH_VERSION

YOUTUBE_API = "https://www.googleapis.com"
FACEBOOK_API = f"{GRAPH_ROOT}/{GRAPH_VERSION}"  # the Graph version streamctl calls, kept in one place
TWITCH_API = "https://api.twitch.tv/helix"
TWITCH_IRC = "wss://irc-ws.chat.twitch.tv:443"
YOUTUBE_TRANSPORTS = ("stream", "poll")


@dataclass(frozen=True)
class Option:
    """One key of an `[[audience]]` table as the event file takes it."""

    name: str
    kind: type  # str, int, float (an int is taken too) or bool
    default: Any
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()  # the words it may be, when it is one of a few
    url: bool = False  # must be an http(s):// or ws(s):// URL
    env: bool = False  # names the environment variable holding this source's secret
    follows: str | None = None  # belongs to that option: changing it while running clears this one


def option(kind: type, help: str, default: Any = None, *, required: bool = False,
           choices: tuple[str, ...] = (), url: bool = False, env: bool = False, follows: str | None = None) -> Any:
    """A dataclass field carrying its declaration; the field's name becomes the option's name."""
    meta = {"kind": kind, "help": help, "required": required, "choices": choices, "url": url, "env": env,
            "follows": follows}
    return field(default=default, metadata={"option": meta})


@dataclass(frozen=True)
class YouTubeOptions:
    video_id: str = option(str, "the live video's id (the v= of its watch URL)", required=True)
    credential_env: str | None = option(str, "environment variable holding an OAuth bearer token or API key "
                                        "(or use `credentials_file`)", env=True)
    credentials_file: str | None = option(str, "an `authorized_user` file from `streamctl auth youtube`: access "
                                          "tokens are refreshed before they expire")
    live_chat_id: str | None = option(str, "the chat id, if known; otherwise read from the video",
                                      follows="video_id")
    api_base: str = option(str, "API root", YOUTUBE_API, url=True)
    daily_quota: int = option(int, "quota units available for the day", 10_000)
    planned_hours: float = option(float, "planned event length in hours, for the quota planner", 4.0)
    transport: str = option(str, "how chat is read: `stream` (liveChatMessages.streamList pushes messages as "
                            "they are typed, 5 units a connection; falls back to polling when the endpoint "
                            "answers 404/405/501 or not JSON) or `poll` (liveChatMessages.list, 5 units a poll)",
                            "stream", choices=YOUTUBE_TRANSPORTS)


@dataclass(frozen=True)
class FacebookOptions:
    live_video_id: str = option(str, "the live video's id", required=True)
    credential_env: str = option(str, "environment variable holding the Page access token", required=True, env=True)
    api_base: str = option(str, "Graph API root", FACEBOOK_API, url=True)


@dataclass(frozen=True)
class TikTokOptions:
    unique_id: str = option(str, "the broadcasting account, e.g. `@baoquangninh`", required=True)
    credential_env: str | None = option(str, "environment variable holding a sign-server API key (optional)",
                                        env=True)


@dataclass(frozen=True)
class TwitchOptions:
    channel: str = option(str, "the channel login", required=True)
    client_id: str = option(str, "the Twitch application's client id", required=True)
    credential_env: str = option(str, "environment variable holding an app access token", required=True, env=True)
    api_base: str = option(str, "Helix root", TWITCH_API, url=True)
    irc_url: str = option(str, "chat websocket", TWITCH_IRC, url=True)


@dataclass(frozen=True)
class WebhookOptions:
    secret_env: str = option(str, "environment variable holding the HMAC-SHA256 secret", required=True, env=True)
    label: str | None = option(str, "platform name shown for these comments, e.g. `zalo`")


@dataclass(frozen=True)
class SimulatedOptions:
    api_base: str | None = option(str, "root of the local fake platform APIs (the demo sets it; default: "
                                  "served in-process)", url=True)
    rate: float = option(float, "comments per second on average", 1.0)
    seed: int | None = option(int, "random seed for a repeatable audience")


@dataclass(frozen=True)
class ManualOptions:
    label: str = option(str, "platform name shown for these counts, e.g. `zalo`", "manual")


PLATFORM_OPTIONS: dict[str, type] = {
    "youtube": YouTubeOptions,
    "facebook": FacebookOptions,
    "tiktok": TikTokOptions,
    "twitch": TwitchOptions,
    "webhook": WebhookOptions,
    "simulated": SimulatedOptions,
    "manual": ManualOptions,
}
AUDIENCE_PLATFORMS = tuple(PLATFORM_OPTIONS)
# Keys every `[[audience]]` table takes, whatever its platform: name -> help.
COMMON_OPTIONS: dict[str, str] = {
    "name": "unique name (letters, digits, `-`, `_`, `.`)",
    "platform": "one of " + ", ".join(f"`{p}`" for p in AUDIENCE_PLATFORMS),
    "interval": "seconds between polls, where the platform does not dictate it (0.2 to 3600)",
    "enabled": "`true` (default); a disabled source is listed and can be enabled from the console",
}


def options_of(platform: str) -> tuple[Option, ...]:
    """The declared options of one platform, in declaration order."""
    out = []
    for f in fields(PLATFORM_OPTIONS[platform]):
        meta = f.metadata["option"]
        default = None if f.default is MISSING else f.default
        out.append(Option(name=f.name, default=default, **meta))
    return tuple(out)


def env_option(platform: str) -> Option | None:
    """The option naming the environment variable with this platform's secret, if it has one."""
    return next((o for o in options_of(platform) if o.env), None)


def make_options(platform: str, values: dict[str, Any]) -> Any:
    """The typed options of `platform` from already-checked values (defaults fill the rest, None a missing one).

    For code that builds sources itself (the simulation, tests); an unknown key is a TypeError naming it.
    """
    cls = PLATFORM_OPTIONS[platform]
    known = {o.name: o for o in options_of(platform)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TypeError(f"{platform}: unknown option {unknown[0]!r}, expected one of {', '.join(known)}")
    return cls(**{k: float(v) if known[k].kind is float and isinstance(v, int) else v for k, v in values.items()})


KIND_WORDS = {str: "text", int: "whole number", float: "number", bool: "true/false"}


def readme_table() -> str:
    """The README's table of every platform's options, generated from the declarations above."""
    lines = ["| platform | key | kind | default | meaning |", "|---|---|---|---|---|"]
    for platform in AUDIENCE_PLATFORMS:
        for o in options_of(platform):
            default = "required" if o.required else ("—" if o.default is None else f"`{o.default}`")
            kind = " or ".join(f"`{c}`" for c in o.choices) if o.choices else KIND_WORDS[o.kind]
            lines.append(f"| `{platform}` | `{o.name}` | {kind} | {default} | {o.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m streamctl.audience.options > table.md: the README's audience table
    print(readme_table(), end="")
