"""The event's SQLite database (WAL): comments, viewers, questions, accounts and the stream's history."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .audience.models import Comment, ViewerSample
from .events import now
from .text import fold, looks_like_question

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    platform TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    author_name TEXT NOT NULL,
    author_id TEXT NOT NULL,
    text TEXT NOT NULL,
    published_at REAL NOT NULL,
    received_at REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'comment',
    hidden INTEGER NOT NULL DEFAULT 0,
    hidden_by TEXT,
    amount TEXT,
    is_question INTEGER NOT NULL DEFAULT 0,
    folded TEXT NOT NULL,
    extra TEXT,
    UNIQUE (source, platform_id)
);
CREATE INDEX IF NOT EXISTS comments_platform ON comments (platform, id);
CREATE INDEX IF NOT EXISTS comments_published ON comments (published_at);

-- Polling cursors and page tokens: written in the same transaction as the comments they led to.
CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, cursor TEXT, updated_at REAL NOT NULL);

CREATE TABLE IF NOT EXISTS viewers (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    platform TEXT NOT NULL,
    at REAL NOT NULL,
    viewers INTEGER,
    likes INTEGER,
    views INTEGER,
    manual INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS viewers_source_at ON viewers (source, at);

CREATE TABLE IF NOT EXISTS source_events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, source TEXT NOT NULL, platform TEXT NOT NULL,
    state TEXT NOT NULL, error TEXT
);

CREATE TABLE IF NOT EXISTS author_notes (
    platform TEXT NOT NULL, author_id TEXT NOT NULL, note TEXT NOT NULL, by TEXT, at REAL NOT NULL,
    PRIMARY KEY (platform, author_id)
);

CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY,
    comment_id INTEGER UNIQUE REFERENCES comments (id),
    text TEXT NOT NULL,
    original_text TEXT NOT NULL,
    author TEXT NOT NULL,
    platform TEXT NOT NULL,
    source TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    ord REAL,
    merged_into INTEGER REFERENCES questions (id),
    merged_count INTEGER NOT NULL DEFAULT 1,
    assigned_to TEXT,
    asked_at REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    approved_at REAL, forwarded_at REAL, on_air_at REAL, answered_at REAL, dismissed_at REAL,
    answered_by TEXT,
    locked_by TEXT, locked_until REAL,
    origin TEXT NOT NULL DEFAULT 'auto',  -- auto: a comment with a question cue; moderator: made by hand
    folded TEXT NOT NULL DEFAULT ''  -- author and text folded, for diacritics-insensitive search
);
CREATE INDEX IF NOT EXISTS questions_state ON questions (state, ord);

CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target_type TEXT NOT NULL, target_id TEXT, before TEXT, after TEXT
);
-- People's actions newest first without reading past the thousands of automatic ones.
CREATE INDEX IF NOT EXISTS audit_people ON audit (id) WHERE actor != 'auto';

CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
    role TEXT NOT NULL, lang TEXT NOT NULL DEFAULT 'vi', created_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, label TEXT,
    created_at REAL NOT NULL, last_used_at REAL, revoked INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), csrf TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS destination_events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, name TEXT NOT NULL, platform TEXT NOT NULL,
    old TEXT NOT NULL, new TEXT NOT NULL, error TEXT
);
CREATE INDEX IF NOT EXISTS destination_events_name ON destination_events (name, at);

CREATE TABLE IF NOT EXISTS destination_health (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, name TEXT NOT NULL,
    bitrate_kbps REAL, fps REAL, speed REAL
);
CREATE INDEX IF NOT EXISTS destination_health_name ON destination_health (name, at);

CREATE TABLE IF NOT EXISTS ingest_events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, state TEXT NOT NULL, error TEXT, probe TEXT
);

-- The ingest switcher's changes: which input (primary, backup, slate) the program carried from when.
CREATE TABLE IF NOT EXISTS ingest_switches (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, state TEXT NOT NULL, on_air TEXT, target TEXT, reason TEXT
);

-- One row per failure (repeats only count up and move last_at), one more per recovery (recovery = 1).
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, last_at REAL NOT NULL, level TEXT NOT NULL, code TEXT NOT NULL,
    source TEXT NOT NULL, message TEXT NOT NULL, params TEXT NOT NULL DEFAULT '{}',
    count INTEGER NOT NULL DEFAULT 1, recovery INTEGER NOT NULL DEFAULT 0, resolved_at REAL,
    acknowledged_by TEXT, acknowledged_at REAL
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (code, source) WHERE resolved_at IS NULL;
"""

# Indexes on columns an older database gets from _migrate, so they are made after it.
INDEXES = """
CREATE INDEX IF NOT EXISTS questions_lane ON questions (state, origin, id);
CREATE INDEX IF NOT EXISTS questions_origin ON questions (origin, state);
"""

ROLES = ("operator", "moderator", "official", "overlay")
TOKEN_USE_EVERY_S = 60.0  # a token's "last used" is written at most this often, not on every request


def token_hash(token: str) -> str:
    """Tokens are stored only as their SHA-256; the token itself is shown once."""
    return hashlib.sha256(token.encode()).hexdigest()


class StoreError(Exception):
    """The event database cannot be opened or used; the message names the file and what to do."""


def disk_trouble(error: BaseException) -> bool:
    """Whether an SQLite error means the disk (full, or failing to write), not our SQL."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)
    return "full" in str(error) or "disk I/O" in str(error)


def _read_only(path: Path) -> bool:
    """Whether the database (or the folder its journal files go in) cannot be written."""
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    return not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))


def explain_open_error(path: Path, error: BaseException) -> str:
    """What an operator reads when the database cannot be opened at start."""
    code = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF
    if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT) or "not a database" in str(error):
        return (f"{path}: is not a readable SQLite database (damaged, or another kind of file): restore it from a "
                "backup or snapshot (streamctl backup), or set [event] database to a new file")
    if code == sqlite3.SQLITE_READONLY or "readonly" in str(error) or isinstance(error, PermissionError) \
            or _read_only(path):
        return (f"{path}: cannot be written (a read-only file, folder or filesystem): streamctl writes everything "
                "of the event there; give its user write access or choose another [event] database")
    if disk_trouble(error):
        return f"{path}: the disk is full or failing ({error}): free space, or choose another [event] database"
    return f"{path}: cannot be opened ({error})"


class Store:
    """One connection to the event database, used from the event loop's thread (and CLI commands)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._open()
        except (sqlite3.Error, OSError) as e:
            with contextlib.suppress(Exception):
                self.db.close()
            raise StoreError(explain_open_error(self.path, e)) from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed; only power loss may lose
        # the last transactions. FULL would fsync every poll's batch.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self._migrate()
        self.db.executescript(INDEXES)
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def _migrate(self) -> None:
        """Bring an older event database up to this schema (columns added since; existing rows kept)."""
        columns = {r["name"] for r in self.db.execute("PRAGMA table_info(questions)")}
        if "origin" in columns:
            return
        with self.transaction() as db:
            db.execute("ALTER TABLE questions ADD COLUMN origin TEXT NOT NULL DEFAULT 'auto'")
            db.execute("ALTER TABLE questions ADD COLUMN folded TEXT NOT NULL DEFAULT ''")
            # Made by a person: its creation was audited under their name, or its comment had no question cue.
            db.execute("UPDATE questions SET origin = 'moderator' WHERE id IN (SELECT CAST(target_id AS INTEGER)"
                       " FROM audit WHERE target_type = 'question' AND action = 'create' AND actor != 'auto')"
                       " OR comment_id IN (SELECT id FROM comments WHERE is_question = 0)")
            for row in db.execute("SELECT id, author, text, original_text FROM questions").fetchall():
                db.execute("UPDATE questions SET folded = ? WHERE id = ?",
                           (question_folded(row["author"], row["text"], row["original_text"]), row["id"]))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")  # where a full disk shows in WAL mode
            except BaseException:
                if self.db.in_transaction:  # a failed COMMIT leaves it open: never leave it for the next writer
                    self.db.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Iterable = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(sql, tuple(params)).fetchall()

    def query_one(self, sql: str, params: Iterable = ()) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute(sql, tuple(params)).fetchone()

    # ---- meta ---------------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else default

    def set_meta(self, key: str, value: str, only_if_missing: bool = False) -> None:
        verb = "INSERT OR IGNORE" if only_if_missing else "INSERT OR REPLACE"
        with self.transaction() as db:
            db.execute(f"{verb} INTO meta VALUES (?, ?)", (key, value))  # noqa: S608 - verb is ours

    # ---- comments -----------------------------------------------------------------------------------

    def add_comments(self, source: str, comments: Iterable[Comment], cursor: str | None = None,
                     deleted_ids: Iterable[str] = (), cleared_before: float | None = None
                     ) -> tuple[list[dict], list[int]]:
        """Store new comments and the source's cursor in one transaction.

        Returns the comments not seen before (as API dicts) and the ids hidden because the platform
        deleted them (or, with `cleared_before`, cleared the whole chat up to that time; notices stay).
        A comment already stored under (source, platform_id) is skipped: replays after a reconnect and
        overlapping pages never make duplicates.
        """
        new: list[dict] = []
        hidden: list[int] = []
        with self.transaction() as db:
            for c in comments:
                is_question = c.kind in ("comment", "paid") and looks_like_question(c.text)
                row = db.execute(
                    "INSERT INTO comments (source, platform, platform_id, author_name, author_id, text,"
                    " published_at, received_at, kind, hidden, amount, is_question, folded, extra)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT (source, platform_id) DO NOTHING RETURNING id",
                    (c.source, c.platform, c.platform_id, c.author_name, c.author_id, c.text, c.published_at,
                     c.received_at, c.kind, int(c.hidden), c.amount,
                     int(is_question),
                     fold(c.author_name + " " + c.text), json.dumps(c.extra) if c.extra else None),
                ).fetchone()
                if row is not None:
                    new.append(_comment_dict(row["id"], c, is_question))
            for pid in deleted_ids:
                for row in db.execute(
                    "UPDATE comments SET hidden = 1, hidden_by = 'platform'"
                    " WHERE source = ? AND platform_id = ? AND hidden = 0 RETURNING id", (source, pid)
                ):
                    hidden.append(row["id"])
            if cleared_before is not None:
                for row in db.execute(
                    "UPDATE comments SET hidden = 1, hidden_by = 'platform' WHERE source = ? AND published_at <= ?"
                    " AND hidden = 0 AND kind NOT IN ('banned', 'system') RETURNING id", (source, cleared_before)
                ):
                    hidden.append(row["id"])
            if cursor is not None:
                db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)", (source, cursor, now()))
        return new, hidden

    def get_cursor(self, source: str) -> str | None:
        row = self.query_one("SELECT cursor FROM cursors WHERE source = ?", (source,))
        return row["cursor"] if row else None

    def set_cursor(self, source: str, cursor: str | None) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)", (source, cursor, now()))

    def set_hidden(self, ids: Iterable[int], hidden: bool, by: str) -> list[int]:
        changed = []
        with self.transaction() as db:
            for cid in ids:
                for row in db.execute("UPDATE comments SET hidden = ?, hidden_by = ? WHERE id = ? AND hidden != ?"
                                      " RETURNING id", (int(hidden), by if hidden else None, cid, int(hidden))):
                    changed.append(row["id"])
        return changed

    def comments(self, after: int = 0, limit: int = 200, platform: str | None = None, q: str | None = None,
                 questions_only: bool = False, include_hidden: bool = True) -> list[dict]:
        """The merged comment stream, oldest first, after comment id `after`."""
        where, params = ["id > ?"], [after]
        if platform:
            where.append("platform = ?")
            params.append(platform)
        if q:
            for word in fold(q).split():
                where.append("instr(folded, ?) > 0")
                params.append(word)
        if questions_only:
            where.append("is_question = 1")
        if not include_hidden:
            where.append("hidden = 0")
        params.append(max(1, min(limit, 1000)))
        rows = self.query(f"SELECT * FROM comments WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",  # noqa: S608
                          params)
        return [_row_dict(r) for r in rows]

    def comment(self, comment_id: int) -> dict | None:
        row = self.query_one("SELECT * FROM comments WHERE id = ?", (comment_id,))
        return _row_dict(row) if row else None

    def last_comment_id(self) -> int:
        """The newest comment's id (0 before the first)."""
        return self.query_one("SELECT COALESCE(MAX(id), 0) AS top FROM comments")["top"]

    def comment_platforms(self) -> set[str]:
        """Every platform a stored comment came from."""
        return {r["platform"] for r in self.query("SELECT DISTINCT platform FROM comments")}

    # ---- viewers ------------------------------------------------------------------------------------

    def add_viewers(self, sample: ViewerSample) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO viewers (source, platform, at, viewers, likes, views, manual)"
                       " VALUES (?,?,?,?,?,?,?)",
                       (sample.source, sample.platform, sample.at, sample.viewers, sample.likes, sample.views,
                        int(sample.manual)))

    def latest_viewers(self) -> tuple[list[dict], int]:
        """The latest sample of every source, and their sum."""
        rows = self.query(
            "SELECT v.source, v.platform, v.viewers, v.likes, v.views, v.at, v.manual FROM viewers v"
            " JOIN (SELECT source, MAX(id) AS id FROM viewers GROUP BY source) m ON v.id = m.id ORDER BY v.source"
        )
        sources = [{"name": r["source"], "platform": r["platform"], "viewers": r["viewers"], "likes": r["likes"],
                    "views": r["views"], "at": iso(r["at"]), "manual": bool(r["manual"])} for r in rows]
        return sources, sum(s["viewers"] or 0 for s in sources)

    def log_source_event(self, source: str, platform: str, state: str, error: str | None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO source_events (at, source, platform, state, error) VALUES (?,?,?,?,?)",
                       (now(), source, platform, state, error))

    # ---- stream history -----------------------------------------------------------------------------

    def log_destination_event(self, at: float, name: str, platform: str, old: str, new: str,
                              error: str | None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO destination_events (at, name, platform, old, new, error) VALUES (?,?,?,?,?,?)",
                       (at, name, platform, old, new, error))

    def log_destination_health(self, at: float, name: str, health: dict) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO destination_health (at, name, bitrate_kbps, fps, speed) VALUES (?,?,?,?,?)",
                       (at, name, health.get("bitrate_kbps"), health.get("fps"), health.get("speed")))

    def log_ingest_event(self, at: float, state: str, error: str | None, probe: dict) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO ingest_events (at, state, error, probe) VALUES (?,?,?,?)",
                       (at, state, error, json.dumps(probe)))

    def log_ingest_switch(self, at: float, state: str, on_air: str | None, target: str | None, reason: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO ingest_switches (at, state, on_air, target, reason) VALUES (?,?,?,?,?)",
                       (at, state, on_air, target, reason))

    # ---- alerts -------------------------------------------------------------------------------------

    def raise_alert(self, at: float, level: str, code: str, source: str, message: str,
                    params: dict) -> tuple[dict, bool]:
        """The open alert for (code, source), counted once more, or a new one; and whether it is new."""
        with self.transaction() as db:
            row = db.execute("SELECT id FROM alerts WHERE code = ? AND source = ? AND resolved_at IS NULL"
                             " AND recovery = 0", (code, source)).fetchone()
            if row is not None:
                db.execute("UPDATE alerts SET count = count + 1, last_at = ?, level = ?, message = ?, params = ?"
                           " WHERE id = ?", (at, level, message, _json(params), row["id"]))
                alert_id, new = row["id"], False
            else:
                alert_id = db.execute(
                    "INSERT INTO alerts (at, last_at, level, code, source, message, params) VALUES (?,?,?,?,?,?,?)"
                    " RETURNING id", (at, at, level, code, source, message, _json(params))).fetchone()["id"]
                new = True
            return _alert_dict(db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()), new

    def resolve_alert(self, at: float, code: str, source: str, message: str, params: dict) -> list[dict]:
        """Close the open alert for (code, source) and record the recovery; [] when nothing was open."""
        with self.transaction() as db:
            row = db.execute("UPDATE alerts SET resolved_at = ? WHERE code = ? AND source = ?"
                             " AND resolved_at IS NULL AND recovery = 0 RETURNING id", (at, code, source)).fetchone()
            if row is None:
                return []
            recovery = db.execute(
                "INSERT INTO alerts (at, last_at, level, code, source, message, params, recovery, resolved_at)"
                " VALUES (?,?,'info',?,?,?,?,1,?) RETURNING id",
                (at, at, code, source, message, _json(params), at)).fetchone()["id"]
            rows = db.execute("SELECT * FROM alerts WHERE id IN (?, ?) ORDER BY id", (row["id"], recovery))
            return [_alert_dict(r) for r in rows]

    def alerts(self, after: int = 0, limit: int = 200) -> list[dict]:
        """Alerts with an id above `after`, oldest first; without `after`, the latest `limit`."""
        limit = max(1, min(limit, 1000))
        if after:
            rows = self.query("SELECT * FROM alerts WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
        else:
            rows = self.query("SELECT * FROM (SELECT * FROM alerts ORDER BY id DESC LIMIT ?) ORDER BY id", (limit,))
        return [_alert_dict(r) for r in rows]

    def acknowledge_alert(self, alert_id: int, by: str) -> dict | None:
        """Mark an alert acknowledged (the first acknowledgement stands); None when there is no such alert."""
        with self.transaction() as db:
            db.execute("UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ?"
                       " AND acknowledged_by IS NULL", (by, now(), alert_id))
            row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return _alert_dict(row) if row else None

    def unacknowledged_alerts(self) -> int:
        """Problems (not recoveries) nobody has acknowledged yet."""
        return self.query_one("SELECT COUNT(*) AS n FROM alerts WHERE acknowledged_by IS NULL AND recovery = 0")["n"]

    # ---- accounts, tokens, audit --------------------------------------------------------------------

    def create_token(self, role: str, label: str | None = None) -> str:
        """A new bearer token for `role`; only its hash is kept."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}, expected one of {', '.join(ROLES)}")
        token = f"sct_{role[:3]}_" + secrets.token_urlsafe(32)
        with self.transaction() as db:
            db.execute("INSERT INTO tokens (token_hash, role, label, created_at) VALUES (?,?,?,?)",
                       (token_hash(token), role, label, now()))
        return token

    def token_role(self, token: str) -> str | None:
        """The role of a valid, unrevoked token, or None; notes when it was used (at most once a minute)."""
        row = self.query_one("SELECT id, role, last_used_at FROM tokens WHERE token_hash = ? AND revoked = 0",
                             (token_hash(token),))
        if row is None:
            return None
        at = now()
        if row["last_used_at"] is None or at - row["last_used_at"] >= TOKEN_USE_EVERY_S:
            # A note, not a need: a full disk must not lock scripts (and the report) out.
            with contextlib.suppress(sqlite3.OperationalError), self.transaction() as db:
                db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (at, row["id"]))
        return row["role"]

    def tokens(self) -> list[dict]:
        """Every token ever made, oldest first: id, role, label, created, last used, revoked (never the token)."""
        rows = self.query("SELECT id, role, label, created_at, last_used_at, revoked FROM tokens ORDER BY id")
        return [{**dict(r), "revoked": bool(r["revoked"])} for r in rows]

    def revoke_token(self, token_id: int) -> bool:
        """Revoke one token by its id; False when there is no such token or it was already revoked."""
        with self.transaction() as db:
            return db.execute("UPDATE tokens SET revoked = 1 WHERE id = ? AND revoked = 0", (token_id,)).rowcount == 1

    def audit_log(self, limit: int = 200, before: int | None = None, automatic: bool = False) -> list[dict]:
        """The latest audited actions before id `before`, newest first, in the API's shape.

        People's actions only, unless `automatic` (the desk's "auto" lines: one per flagged comment).
        """
        where = ["id < ?"] if before is not None else []
        params: list = [before] if before is not None else []
        if not automatic:
            where.append("actor != 'auto'")
        sql = "SELECT * FROM audit" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC LIMIT ?"  # noqa: S608
        rows = self.query(sql, (*params, limit))
        return [{"id": r["id"], "at": iso(r["at"]), "actor": r["actor"], "action": r["action"],
                 "target_type": r["target_type"], "target_id": r["target_id"],
                 "before": json.loads(r["before"]) if r["before"] else None,
                 "after": json.loads(r["after"]) if r["after"] else None} for r in rows]

    def audit(self, actor: str, action: str, target_type: str, target_id: str | int | None,
              before: dict | None = None, after: dict | None = None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO audit (at, actor, action, target_type, target_id, before, after)"
                       " VALUES (?,?,?,?,?,?,?)",
                       (now(), actor, action, target_type, None if target_id is None else str(target_id),
                        json.dumps(before, ensure_ascii=False) if before is not None else None,
                        json.dumps(after, ensure_ascii=False) if after is not None else None))


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string with milliseconds, as the API shows times."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _alert_dict(r: sqlite3.Row) -> dict:
    return {
        "id": r["id"], "at": iso(r["at"]), "last_at": iso(r["last_at"]), "level": r["level"], "code": r["code"],
        "source": r["source"], "message": r["message"], "params": json.loads(r["params"]), "count": r["count"],
        "recovery": bool(r["recovery"]), "resolved_at": iso(r["resolved_at"]),
        "acknowledged_by": r["acknowledged_by"], "acknowledged_at": iso(r["acknowledged_at"]),
    }


def question_folded(author: str, text: str, original_text: str) -> str:
    """What a question is searched by: its author and text (and the text as asked, when edited), folded."""
    return fold(f"{author} {text}" + (f" {original_text}" if original_text != text else ""))


def _comment_dict(cid: int, c: Comment, is_question: bool) -> dict:
    return {
        "id": cid, "platform": c.platform, "source": c.source, "author": c.author_name, "author_id": c.author_id,
        "text": c.text, "published_at": iso(c.published_at), "received_at": iso(c.received_at), "kind": c.kind,
        "hidden": c.hidden, "amount": c.amount, "is_question": is_question,
    }


def _row_dict(r: sqlite3.Row) -> dict:
    return {
        "id": r["id"], "platform": r["platform"], "source": r["source"], "author": r["author_name"],
        "author_id": r["author_id"], "text": r["text"], "published_at": iso(r["published_at"]),
        "received_at": iso(r["received_at"]), "kind": r["kind"], "hidden": bool(r["hidden"]), "amount": r["amount"],
        "is_question": bool(r["is_question"]),
    }
