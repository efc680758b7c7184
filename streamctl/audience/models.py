"""One comment model and one viewer-sample model for every platform."""

from __future__ import annotations

from dataclasses import dataclass, field

COMMENT_KINDS = ("comment", "paid", "member", "deleted", "banned", "system")


@dataclass(frozen=True)
class Comment:
    """A message from a platform's live chat, as adapters map it."""

    platform: str
    source: str
    platform_id: str
    author_name: str
    author_id: str
    text: str
    published_at: float  # epoch seconds (UTC)
    received_at: float
    kind: str = "comment"
    hidden: bool = False
    amount: str | None = None  # paid messages: the platform's display string, e.g. "$5.00"
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ViewerSample:
    """Concurrent viewers of one source at one moment; likes and views where the platform gives them."""

    source: str
    platform: str
    at: float
    viewers: int | None
    likes: int | None = None
    views: int | None = None
    manual: bool = False
