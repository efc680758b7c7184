"""Fake YouTube (under /yt) and fake Facebook (under /fb) on one loopback port, for rehearsals and the demo."""

from __future__ import annotations

from .facebook import FakeFacebook
from .server import FakeServer
from .youtube import FakeYouTube

SIM_TOKEN = "simulated-audience-token"  # noqa: S105 - a fake's own token, loopback only
YOUTUBE_PREFIX = "/yt"
FACEBOOK_PREFIX = "/fb"


class FakePlatforms(FakeServer):
    """Both fakes in one server; each keeps its own control routes (`/yt/_fake/comments`, `/fb/_fake/...`)."""

    def __init__(self, youtube_interval_ms: int = 1000):
        super().__init__()
        # A rehearsal may run for hours at any rate: the fake's quota must not be what stops it.
        self.youtube = FakeYouTube(token=SIM_TOKEN, interval_ms=youtube_interval_ms, daily_quota=10**12)
        self.facebook = FakeFacebook(token=SIM_TOKEN)
        self.app.add_subapp(YOUTUBE_PREFIX, self.youtube.app)
        self.app.add_subapp(FACEBOOK_PREFIX, self.facebook.app)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        url = await super().start(host, port)
        self.youtube.url = url + YOUTUBE_PREFIX
        self.facebook.url = url + FACEBOOK_PREFIX
        return url


def youtube_base(root: str) -> str:
    """The YouTube API root inside a FakePlatforms server at `root`."""
    return root.rstrip("/") + YOUTUBE_PREFIX


def facebook_base(root: str) -> str:
    """The Graph API root (with its version) inside a FakePlatforms server at `root`."""
    return root.rstrip("/") + FACEBOOK_PREFIX + "/v21.0"
