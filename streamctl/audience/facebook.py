"""Facebook: a live video's comments (newest first, unfiltered, paged back past known ones) and live_views."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping

from ..config import AudienceConfig
from ..events import now
from .models import Comment, ViewerSample
from .options import FacebookOptions
from .source import BLOCKED, RATE_LIMITED, TRANSIENT, WAITING, Batch, Http, Reply, SourceError, parse_time, unexpected

FIELDS = "id,message,created_time,from{name,id}"
PAGE = 100
MAX_PAGES = 100  # a first poll pages back through at most this many pages of history
# A comment held for review and approved later keeps its old created_time, so it surfaces below comments
# already fetched. Every poll reads on past the first known comment, until it has met OVERLAP_KNOWN of them or
# one OVERLAP_S older than the newest seen (at most one more page); every SWEEP_EVERY_S a sweep reads back
# SWEEP_WINDOW_S, at most SWEEP_PAGES pages past the known ones. Repeats are dropped by id (and by the store).
OVERLAP_KNOWN = 50
OVERLAP_S = 120.0
SWEEP_EVERY_S = 60.0
SWEEP_WINDOW_S = 1800.0
SWEEP_PAGES = 10
RATE_LIMIT_CODES = (4, 17, 32, 613)
STOPPED_STATUSES = ("LIVE_STOPPED", "VOD", "PROCESSING", "SCHEDULED_CANCELED", "SCHEDULED_EXPIRED")
KNOWN = 5000  # recent comment ids remembered to tell new from known


class FacebookSource:
    """One live video; the poller calls `fetch` for comments and `sample` for live_views and status."""

    platform = "facebook"

    def __init__(self, config: AudienceConfig, http: Http):
        self.name = config.name
        options: FacebookOptions = config.options
        self.video_id = options.live_video_id
        self.credential = config.credential
        self.api = options.api_base.rstrip("/")
        self.http = http
        self.units = 0
        self.watermark: float | None = None  # created_time of the newest comment seen
        self.known: deque[str] = deque(maxlen=KNOWN)
        self._known_set: set[str] = set()
        self.stopped = False  # the status said the broadcast is over: one last poll, then end
        self._answered = False  # the comments edge answered once: a later code 100 means the video is gone
        self.sweep_every = SWEEP_EVERY_S
        self._swept_at = 0.0  # the first poll after a restart sweeps: approvals may have come while we were away

    def resume(self, cursor: str | None) -> None:
        if not cursor:
            return
        try:
            saved = json.loads(cursor)
            self.watermark = float(saved["t"])
            for comment_id in saved.get("ids", []):
                self._remember(str(comment_id))
        except (ValueError, KeyError, TypeError):
            self.watermark = None  # unreadable: page back through everything; the store drops repeats

    async def close(self) -> None:
        """Nothing of its own to release."""

    def bind_broadcast(self, video_id: str, chat_id: str | None = None) -> None:
        """The live video streamctl made for the destination of the same name: read its comments."""
        self.video_id = video_id

    def _remember(self, comment_id: str) -> None:
        if len(self.known) == self.known.maxlen:
            self._known_set.discard(self.known[0])
        self.known.append(comment_id)
        self._known_set.add(comment_id)

    async def _get(self, what: str, path: str, params: dict) -> Reply:
        if not self.credential:
            raise SourceError(f"{what}: no Page token: set the environment variable named by credential_env",
                              "fatal")
        # The token goes in a header, not the query string, so it never lands in a URL or a log line.
        return await self.http.get(what, self.api + path, params, {"Authorization": f"Bearer {self.credential}"})

    async def fetch(self) -> Batch:
        """New comments since the last poll: newest first, page after page until past the known ones.

        How far past (an overlap every poll, a deeper sweep now and then) is what catches late approvals.
        """
        ended = self.stopped
        newest_first: list[Comment] = []
        after: str | None = None
        received = now()
        sweep = self.watermark is None or received - self._swept_at >= self.sweep_every
        window = SWEEP_WINDOW_S if sweep else OVERLAP_S
        reached = False  # met a comment fetched before (a known id, or not newer than the newest seen)
        old = 0  # comments met that were fetched before, or may have been
        pages_past = 0  # pages read since reaching them
        for _ in range(MAX_PAGES):
            params = {"fields": FIELDS, "order": "reverse_chronological", "filter": "stream",
                      "live_filter": "no_filter", "limit": str(PAGE)}
            if after:
                params["after"] = after
            if not self.video_id:
                raise SourceError("waiting for the destination's live video to be made (no id yet)", WAITING)
            reply = await self._get("comments", f"/{self.video_id}/comments", params)
            if reply.status != 200 or not isinstance(reply.data, dict) or "data" not in reply.data:
                error = self._error("comments", reply)
                if error is None:
                    return Batch(ended=True)
                raise error
            self._answered = True
            past = False  # met a comment older than the window
            for item in reply.data["data"] if isinstance(reply.data["data"], list) else []:
                comment = self._comment(item, received)
                if comment is None:
                    continue
                known = comment.platform_id in self._known_set
                if known or (self.watermark is not None and comment.published_at <= self.watermark):
                    reached = True
                    old += 1
                if self.watermark is not None and comment.published_at < self.watermark - window:
                    past = True
                if not known:  # older than the newest but never seen: a late approval (or a repeat after restart)
                    newest_first.append(comment)
            pages_past += reached
            paging = reply.data.get("paging") if isinstance(reply.data.get("paging"), dict) else {}
            after = (paging.get("cursors") or {}).get("after") if paging.get("next") else None
            enough = pages_past >= SWEEP_PAGES if sweep else old >= OVERLAP_KNOWN
            if not after or (reached and (past or enough)):
                break
        if sweep:
            self._swept_at = received
        comments = newest_first[::-1]  # oldest first, as they were typed
        for c in comments:
            self._remember(c.platform_id)
        cursor = None
        if comments:
            self.watermark = max(self.watermark or 0.0, max(c.published_at for c in comments))
            latest = [c.platform_id for c in comments if c.published_at >= self.watermark]
            cursor = json.dumps({"t": self.watermark, "ids": latest})
        return Batch(comments=comments, cursor=cursor, ended=ended)

    async def sample(self) -> Batch:
        """live_views and the broadcast's status; a stopped broadcast ends the source after one last poll."""
        if not self.video_id:
            raise SourceError("waiting for the destination's live video to be made (no id yet)", WAITING)
        reply = await self._get("live video", f"/{self.video_id}", {"fields": "live_views,status"})
        status = None
        if reply.status != 200 or not isinstance(reply.data, dict) or "error" in reply.data:
            error = self._error("live video", reply)
            if error is not None:
                raise error
            status = "VOD"  # code 100 after it answered before: the video is gone
        else:
            status = reply.data.get("status")
        views = reply.data.get("live_views") if isinstance(reply.data, dict) else None
        viewers = views if isinstance(views, int) and not isinstance(views, bool) and views >= 0 else None
        if status in STOPPED_STATUSES:
            self.stopped = True
            viewers = 0
        return Batch(viewers=ViewerSample(self.name, self.platform, now(), viewers), ended=self.stopped)

    def _comment(self, item: object, received: float) -> Comment | None:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return None
        author = item.get("from") if isinstance(item.get("from"), dict) else {}
        try:
            published = parse_time(item.get("created_time"))
        except ValueError:
            published = received
        message = item.get("message")
        return Comment(platform=self.platform, source=self.name, platform_id=item["id"],
                       author_name=str(author.get("name") or ""), author_id=str(author.get("id") or ""),
                       text=message if isinstance(message, str) else "", published_at=published,
                       received_at=received)

    def _error(self, what: str, reply: Reply) -> SourceError | None:
        """The SourceError for a Graph error; None when it means the video is over (code 100 after answers)."""
        error = reply.data.get("error") if isinstance(reply.data, dict) else None
        if not isinstance(error, dict):
            return unexpected(what, reply)
        code = error.get("code")
        text = f"{what}: HTTP {reply.status}, code {code}: {str(error.get('message', ''))[:160]}"
        if code in RATE_LIMIT_CODES:
            return SourceError(text, RATE_LIMITED, retry_after=_regain_after(reply.headers))
        if code == 190:
            return SourceError(f"{what}: the Page token has expired or was revoked (code 190)", BLOCKED)
        if code == 100 and self._answered:
            return None
        if error.get("is_transient") or code in (1, 2) or reply.status >= 500:
            return SourceError(text, TRANSIENT)
        return SourceError(text, BLOCKED)


def _regain_after(headers: Mapping[str, str]) -> float | None:
    """Seconds until access returns, from X-Business-Use-Case-Usage (given in minutes), if present."""
    raw = headers.get("X-Business-Use-Case-Usage")
    try:
        usage = json.loads(raw) if raw else {}
        minutes = max(int(entry.get("estimated_time_to_regain_access", 0))
                      for entries in usage.values() for entry in entries)
    except (ValueError, TypeError, AttributeError):
        return None
    return minutes * 60.0 if minutes > 0 else None
