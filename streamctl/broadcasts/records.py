"""What the event database keeps of broadcasts: their ids (so a restart reuses them) and the platforms' health.

Only ids are stored, never an ingest address: the stream name in it is a key, and the platform gives it
again for the stored id.
"""

from __future__ import annotations

import json

from ..events import now
from ..store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS broadcasts (
    destination TEXT PRIMARY KEY, platform TEXT NOT NULL, broadcast_id TEXT NOT NULL, stream_id TEXT,
    chat_id TEXT, status TEXT, watch_url TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS platform_health (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, destination TEXT NOT NULL, platform TEXT NOT NULL,
    status TEXT NOT NULL, issues TEXT NOT NULL, we_live INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS platform_health_by_destination ON platform_health(destination, at);
"""


class BroadcastRecords:
    """The `broadcasts` and `platform_health` tables of one event database."""

    def __init__(self, store: Store):
        self.store = store
        with store.transaction() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)

    def known(self, destination: str, platform: str) -> dict | None:
        row = self.store.query_one("SELECT * FROM broadcasts WHERE destination = ? AND platform = ?",
                                   (destination, platform))
        return dict(row) if row else None

    def remember(self, destination: str, platform: str, ids: dict, status: str | None,
                 watch_url: str | None) -> None:
        at = now()
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO broadcasts (destination, platform, broadcast_id, stream_id, chat_id, status, watch_url,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(destination) DO UPDATE SET"
                " platform = excluded.platform, broadcast_id = excluded.broadcast_id, stream_id = excluded.stream_id,"
                " chat_id = excluded.chat_id, status = excluded.status, watch_url = excluded.watch_url,"
                " updated_at = excluded.updated_at",
                (destination, platform, ids["broadcast_id"], ids.get("stream_id"), ids.get("chat_id"), status,
                 watch_url, at, at))

    def log_health(self, destination: str, platform: str, health: dict, we_live: bool, at: float) -> None:
        issues = [i.get("type") for i in health.get("issues") or [] if i.get("type")]
        with self.store.transaction() as db:
            db.execute("INSERT INTO platform_health (at, destination, platform, status, issues, we_live)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (at, destination, platform, str(health.get("status")), json.dumps(issues), int(we_live)))


def platform_view(store: Store, start: float | None = None, end: float | None = None) -> dict[str, dict]:
    """Per destination, what the platform said of our stream while we were live (see `platform_view_of`)."""
    return platform_view_of(store.db, start, end)


def platform_view_of(db, start: float | None = None, end: float | None = None) -> dict[str, dict]:
    """Per destination, what the platform said of our stream while we were live: for the report.

    `samples`, `good_share` (share of samples good/ok), `bad_s` (seconds it said noData/bad, counted from
    one sample to the next), `worst` status and the configuration `issues` it named. {} without the table.
    """
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'platform_health'").fetchone():
        return {}
    rows = db.execute("SELECT at, destination, status, issues, we_live FROM platform_health ORDER BY at").fetchall()
    out: dict[str, dict] = {}
    last: dict[str, tuple[float, str]] = {}
    order = {"good": 0, "ok": 1, "bad": 2, "noData": 3, "revoked": 4}
    for r in rows:
        if (start is not None and r["at"] < start) or (end is not None and r["at"] > end):
            continue
        view = out.setdefault(r["destination"], {"samples": 0, "good": 0, "bad_s": 0.0, "worst": None,
                                                 "issues": []})
        previous = last.get(r["destination"])
        if previous and previous[1] in ("bad", "noData", "revoked"):
            view["bad_s"] += r["at"] - previous[0]
        last[r["destination"]] = (r["at"], r["status"] if r["we_live"] else "")
        if not r["we_live"]:
            continue
        view["samples"] += 1
        view["good"] += r["status"] in ("good", "ok")
        if view["worst"] is None or order.get(r["status"], 5) > order.get(view["worst"], 5):
            view["worst"] = r["status"]
        for issue in json.loads(r["issues"] or "[]"):
            if issue not in view["issues"]:
                view["issues"].append(issue)
    for view in out.values():
        view["good_share"] = round(view.pop("good") / view["samples"], 3) if view["samples"] else None
        view["bad_s"] = round(view["bad_s"], 1)
    return out
