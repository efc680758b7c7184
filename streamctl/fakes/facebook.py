"""A fake Facebook Graph API for one live video: comments with cursor paging and filters, live_views, errors."""

from __future__ import annotations

import itertools
import time

from aiohttp import web

from .server import FakeServer, broken_json, dumps, html_503, opaque, position, stamp

RATE_MESSAGES = {4: "(#4) Application request limit reached", 17: "(#17) User request limit reached",
                 32: "(#32) Page request limit reached", 613: "(#613) Calls to this api have exceeded the rate limit."}


def graph_error(code: int, message: str, subcode: int | None = None, transient: bool = False,
                status: int = 400) -> web.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "is_transient": transient,
             "fbtrace_id": "AbCdEfGhIjK"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return web.Response(text=dumps({"error": error}), status=status, content_type="application/json")


class FakeFacebook(FakeServer):
    """One live video's comments and status, served under /v21.0 as the Graph API does."""

    def __init__(self, live_video_id: str = "911936075671494", token: str = "fb-token",  # noqa: S107 - a fake's
                 prefix: str = "/v21.0", max_limit: int = 100):
        super().__init__()
        self.video_id = live_video_id
        self.token = token
        self.prefix = prefix
        self.max_limit = max_limit
        self.status = "LIVE"
        self.live_views = 0
        self.comments: list[dict] = []  # as typed; private keys: _seq, _at, _low (quality), _parent, _held
        self.published: list[str] = []  # ids that a no_filter poller must store
        self.gone = False  # the video was deleted: comments answer code 100
        self.usage_headers: dict[str, str] = {}
        self._seq = itertools.count(1)
        self.app.router.add_get(prefix + "/{video}/comments", self.list_comments)
        self.app.router.add_get(prefix + "/{video}", self.video)

    @property
    def api_base(self) -> str:
        return self.url + self.prefix

    # ---- what the test (or the simulated audience) does --------------------------------------------

    def post_comment(self, author: str | None, text: str, author_id: str | None = None, at: float | None = None,
                     low_quality: bool = False, reply_to: str | None = None, held: bool = False, **kw) -> str:
        """A comment typed at `at` (now); `held` keeps it out of every answer until `approve`."""
        seq = next(self._seq)
        comment_id = f"{self.video_id}_{900000000000000 + seq}"
        at = at or time.time()
        item = {"id": comment_id, "message": text, "created_time": stamp(at, "fb"),
                "_seq": seq, "_at": int(at), "_low": low_quality, "_parent": reply_to, "_held": held}
        if author is not None:  # `from` is missing for commenters who restrict their profile
            item["from"] = {"name": author, "id": author_id or str(552524095105158 + seq)}
        self.comments.append(item)
        if not held:
            self.published.append(comment_id)
        return comment_id

    def approve(self, comment_id: str) -> None:
        """A held comment is approved: it appears where its (old) created_time puts it, not at the top."""
        item = next(c for c in self.comments if c["id"] == comment_id)
        item["_held"] = False
        self.published.append(comment_id)

    def set_viewers(self, viewers: int | None) -> None:
        self.live_views = viewers or 0

    def end(self) -> None:
        self.status = "LIVE_STOPPED"

    # ---- the API ------------------------------------------------------------------------------------

    def _denied(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        token = header.split(" ", 1)[1] if " " in header else request.query.get("access_token")
        if token != self.token:
            return graph_error(190, "Error validating access token: Session has expired.", subcode=463)
        return None

    def _fault_response(self, fault: str) -> web.Response:
        if fault == "503":
            return html_503()
        if fault == "malformed":
            return broken_json()
        if fault.isdigit() and int(fault) in RATE_MESSAGES:
            return graph_error(int(fault), RATE_MESSAGES[int(fault)], transient=True)
        if fault == "190":
            return graph_error(190, "Error validating access token: Session has expired.", subcode=463)
        if fault == "100":
            return graph_error(100, "(#100) Tried accessing nonexisting field (comments)", subcode=33)
        raise ValueError(fault)

    async def list_comments(self, request: web.Request) -> web.Response:
        self.log(request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        fault = self.fault()
        if fault is not None:
            response = self._fault_response(fault)
            response.headers.update(self.usage_headers)
            return response
        if request.match_info["video"] != self.video_id or self.gone:
            return graph_error(100, "(#100) Tried accessing nonexisting field (comments)", subcode=33)
        q = request.query
        # Ordered by created_time (whole seconds, as Graph gives it), then as typed.
        items = sorted((c for c in self.comments if not c["_held"]), key=lambda c: (c["_at"], c["_seq"]))
        if q.get("filter", "toplevel") == "toplevel":
            items = [c for c in items if c["_parent"] is None]
        if q.get("live_filter", "filter_low_quality") != "no_filter":
            items = [c for c in items if not c["_low"]]  # what the default silently drops
        if q.get("order", "chronological") == "reverse_chronological":
            items.reverse()
        start = 0
        if q.get("after"):
            seq = position(q["after"], "fbc")
            at = next((i for i, c in enumerate(items) if c["_seq"] == seq), None)
            if at is None:
                return graph_error(100, "Invalid cursor")
            start = at + 1
        limit = max(1, min(int(q.get("limit", "25")), self.max_limit))
        page = items[start:start + limit]
        fields = q.get("fields", "")
        data = []
        for c in page:
            shown = {k: v for k, v in c.items() if not k.startswith("_")}
            if "from" not in fields:
                shown.pop("from", None)
            data.append(shown)
        body: dict = {"data": data}
        if page:
            body["paging"] = {"cursors": {"before": opaque(page[0]["_seq"], "fbc"),
                                          "after": opaque(page[-1]["_seq"], "fbc")}}
            if start + limit < len(items):
                body["paging"]["next"] = (f"{self.api_base}/{self.video_id}/comments?after="
                                          f"{opaque(page[-1]['_seq'], 'fbc')}&limit={limit}")
        return web.Response(text=dumps(body), content_type="application/json", headers=self.usage_headers)

    async def video(self, request: web.Request) -> web.Response:
        self.log(request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        if request.match_info["video"] != self.video_id or self.gone:
            return graph_error(100, "(#100) Unsupported get request.", subcode=33)
        body = {"id": self.video_id, "status": self.status,
                "live_views": self.live_views if self.status == "LIVE" else 0}
        return web.Response(text=dumps(body), content_type="application/json")
