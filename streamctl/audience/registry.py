"""Which adapter serves each audience platform: how it is built, its default interval, its optional library."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import AudienceConfig
from .facebook import FacebookSource
from .manual import ManualSource
from .options import PLATFORM_OPTIONS
from .quota import QuotaPlanner
from .simulated import Simulation
from .source import Http, Source
from .tiktok import ClientFactory, TikTokSource
from .twitch import TwitchSource
from .webhook import WebhookSource
from .youtube import YouTubeSource


@dataclass(frozen=True)
class Context:
    """What adapters are built with: the shared HTTP client, the TikTok client seam tests replace, and the
    event's accounts (one refreshed Google credential per `credentials_file`, shared with the broadcasts)."""

    http: Http
    tiktok_client: ClientFactory | None = None
    accounts: Any = None  # accounts.registry.Accounts


def _youtube(config: AudienceConfig, ctx: Context) -> YouTubeSource:
    path = config.options.credentials_file
    signer = ctx.accounts.google(path) if path and ctx.accounts is not None else None
    return YouTubeSource(config, ctx.http, signer=signer)


@dataclass(frozen=True)
class Adapter:
    """One platform's adapter as the service uses it."""

    platform: str
    build: Callable[[AudienceConfig, Context], Source | Simulation]
    interval: float  # seconds between polls when the event file sets none
    extra: str | None = None  # the pip extra that installs the library it needs
    library: str | None = None  # the module that extra provides
    plans_quota: bool = False  # a daily quota is planned for it (YouTube)

    def installed(self) -> bool:
        """Whether the library this adapter needs is importable (True when it needs none)."""
        return self.library is None or importlib.util.find_spec(self.library) is not None

    def missing(self) -> str | None:
        """What to install when the library is missing, as `check` and the alert say it; else None."""
        if self.installed():
            return None
        return f"{self.platform} needs `pip install 'streamctl[{self.extra}]'` (the {self.library} library)"

    def planner(self, config: AudienceConfig, started_at: float, min_interval_s: float) -> QuotaPlanner | None:
        """The quota planner of a source on this platform, or None where there is no quota."""
        if not self.plans_quota:
            return None
        return QuotaPlanner(daily=config.options.daily_quota, planned_s=config.options.planned_hours * 3600,
                            started_at=started_at, min_interval_s=min_interval_s)


def _tiktok(config: AudienceConfig, ctx: Context) -> TikTokSource:
    return TikTokSource(config, client_factory=ctx.tiktok_client)


ADAPTERS: dict[str, Adapter] = {a.platform: a for a in (
    Adapter("youtube", _youtube, 1.0, plans_quota=True),
    Adapter("facebook", lambda config, ctx: FacebookSource(config, ctx.http), 3.0),
    Adapter("twitch", lambda config, ctx: TwitchSource(config, ctx.http), 10.0),
    Adapter("tiktok", _tiktok, 5.0, extra="tiktok", library="TikTokLive"),
    Adapter("webhook", lambda config, ctx: WebhookSource(config), 5.0),
    Adapter("manual", lambda config, ctx: ManualSource(config), 5.0),
    Adapter("simulated", lambda config, ctx: Simulation(config, ctx.http), 1.0),
)}
assert set(ADAPTERS) == set(PLATFORM_OPTIONS), "every platform with options has an adapter"


def adapter(platform: str) -> Adapter:
    """The adapter of a platform (config.py has already refused unknown ones)."""
    return ADAPTERS[platform]


def missing_extras(configs: Any) -> list[tuple[AudienceConfig, str]]:
    """Enabled sources whose platform library is not installed, each with what to install."""
    out = []
    for config in configs:
        hint = adapter(config.platform).missing()
        if config.enabled and hint:
            out.append((config, hint))
    return out
