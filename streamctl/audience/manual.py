"""Manual viewer counts: typed by the operator for platforms with no API (Zalo, Weibo), marked as manual."""

from __future__ import annotations

from ..config import AudienceConfig
from ..events import now
from .models import ViewerSample
from .source import Batch

FIELDS = ("viewers", "likes", "views")


class ReadingError(ValueError):
    """A manual reading the operator must correct; the message names the field."""


def reading(source: str, platform: str, body: object) -> Batch:
    """`{"viewers": N, "likes": …, "views": …}` into a batch with one manual sample; raises ReadingError."""
    if not isinstance(body, dict):
        raise ReadingError("body: expected an object like {\"viewers\": 120}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ReadingError(f"{unknown[0]}: unknown field, expected one of {', '.join(FIELDS)}")
    values: dict[str, int | None] = {}
    for key in FIELDS:
        value = body.get(key)
        if value is None:
            if key == "viewers":
                raise ReadingError("viewers: missing, expected a whole number >= 0")
            values[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ReadingError(f"{key}: {str(value)[:20]!r} is not a whole number >= 0")
        values[key] = value
    return Batch(viewers=ViewerSample(source, platform, now(), values["viewers"], likes=values["likes"],
                                      views=values["views"], manual=True))


class ManualSource:
    """A platform without an API: only the operator's readings (`POST /api/viewers/{source}`)."""

    platform = "manual"

    def __init__(self, config: AudienceConfig):
        self.name = config.name
        self.label = config.options.label or "manual"
        self.units = 0

    def resume(self, cursor: str | None) -> None:
        """Nothing to resume."""

    async def close(self) -> None:
        """Nothing to release."""
