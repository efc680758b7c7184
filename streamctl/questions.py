"""The moderation desk: audience questions through their workflow, hidden comments and author notes.

Workflow: pending → approved → forwarded → on_air → answered, and dismissed. Forwarding straight from
pending is allowed (one key press for an obvious question). Only one question is on air at a time:
putting another on air marks the previous one answered (the presenter moved on); `off_air` takes a
question off the screen without answering it, and `restore` reopens a dismissed (or merged) question as
pending and an answered one as forwarded. Every change is audited (who, what, when, before/after) and
published as `QuestionChanged` so every screen follows at once.
"""

from __future__ import annotations

import logging
import sqlite3

from .events import AuthorNoted, Bus, CommentsHidden, CommentsStored, QuestionChanged, now
from .states import (
    QUESTION_CLOSED,
    QUESTION_EDITABLE,
    QUESTION_MERGEABLE,
    QUESTION_OFFICIAL,
    QUESTION_QUEUE,
    QUESTION_TRANSITIONS,
    QuestionState,
)
from .store import Store, iso
from .text import strip_controls

log = logging.getLogger(__name__)

STATES = tuple(QuestionState)
Q = QuestionState
LOCK_S = 60.0  # a moderator editing holds the question this long, renewed while the editor stays open
MAX_TEXT = 1000
MAX_ASSIGNEE = 100
MAX_NOTE = 500

TRANSITIONS = QUESTION_TRANSITIONS  # action -> (states it may start from, state it leads to)
STAMPS = {Q.APPROVED: "approved_at", Q.FORWARDED: "forwarded_at", Q.ON_AIR: "on_air_at",
          Q.ANSWERED: "answered_at", Q.DISMISSED: "dismissed_at"}
# The hall's ordered queue in SQL, spelt from its states (ours, never user input).
IN_QUEUE = "state IN (" + ", ".join(f"'{s}'" for s in QUESTION_QUEUE) + ")"
NEXT_ORD = f", ord = (SELECT COALESCE(MAX(ord), 0) + 1 FROM questions WHERE {IN_QUEUE})"  # noqa: S608
ACTIONS = (*TRANSITIONS, "restore", "edit", "merge", "move", "assign", "lock", "unlock")


class QuestionError(Exception):
    """An action that cannot be done: `status` 404 (no such question), 400 (bad input) or 409 (conflict)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def question_dict(row: sqlite3.Row, at: float | None = None) -> dict:
    """A question's API shape; `lock_expires_in` is relative so clocks of other machines do not matter."""
    at = now() if at is None else at
    locked = row["locked_by"] is not None and (row["locked_until"] or 0) > at
    return {
        "id": row["id"], "comment_id": row["comment_id"], "text": row["text"],
        "original_text": row["original_text"], "edited": row["text"] != row["original_text"],
        "author": row["author"], "platform": row["platform"], "source": row["source"], "state": row["state"],
        "order": row["ord"], "merged_count": row["merged_count"], "merged_into": row["merged_into"],
        "assigned_to": row["assigned_to"], "asked_at": iso(row["asked_at"]),
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
        **{stamp: iso(row[stamp]) for stamp in STAMPS.values()},
        "locked_by": row["locked_by"] if locked else None,
        "lock_expires_in": round(row["locked_until"] - at, 1) if locked else None,
    }


def official_view(question: dict) -> dict:
    """What an official's screen may learn of a question: all of it in their queue, else only that it left."""
    if question["state"] in QUESTION_OFFICIAL and question["merged_into"] is None:
        return {k: v for k, v in question.items() if k not in ("locked_by", "lock_expires_in")}
    return {"id": question["id"], "state": "hidden"}


def _text(value: object, what: str, limit: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise QuestionError(400, f"{what} must be a string")
    text = strip_controls(value).strip()
    if required and not text:
        raise QuestionError(400, f"{what} must not be empty")
    if len(text) > limit:
        raise QuestionError(400, f"{what} is {len(text)} characters long, expected at most {limit}")
    return text


_SELECT = "SELECT * FROM questions WHERE id = ?"


class _Change:
    """The questions one action touches, as they were before it, to audit and announce each afterwards."""

    def __init__(self, db: sqlite3.Connection, row: sqlite3.Row):
        self.db = db
        self.before = {row["id"]: row}

    def touch(self, qids: list[int]) -> None:
        """Remember other questions the action is about to change (the merge target, the previous on air)."""
        for q in qids:
            if q not in self.before:
                self.before[q] = self.db.execute(_SELECT, (q,)).fetchone()

    def results(self, at: float) -> list[tuple[dict, dict]]:
        """(before, after) of every question touched, the acted-on one first."""
        return [(question_dict(row, at), question_dict(self.db.execute(_SELECT, (q,)).fetchone(), at))
                for q, row in self.before.items()]


def _check_lock(row: sqlite3.Row, actor: str, at: float) -> None:
    if row["locked_by"] not in (None, actor) and (row["locked_until"] or 0) > at:
        raise QuestionError(409, f"{row['locked_by']} is editing question {row['id']}; try again shortly")


class QuestionDesk:
    """Question workflow, comment hiding and author notes on the event's store, announced on the bus."""

    def __init__(self, store: Store, bus: Bus):
        self.store = store
        self.bus = bus

    # ---- auto-flagged questions ------------------------------------------------------------------------

    async def run(self) -> None:
        """Turn every stored comment that reads as a question into a pending question, until cancelled."""
        # Lossless: a question must not be lost because the desk was briefly behind.
        sub = self.bus.subscribe(CommentsStored, maxsize=1000, lossless=True, name="questions")
        try:
            # Comments stored before this subscription (a restart, or the console starting late).
            await self._publish_created(self._create_pending("1 = 1", ()))
            async for event in sub:
                ids = [c["id"] for c in event.comments if c.get("is_question") and not c.get("hidden")]
                if ids:
                    marks = ",".join("?" * len(ids))
                    await self._publish_created(self._create_pending(f"c.id IN ({marks})", ids))
        finally:
            sub.close()

    def _create_pending(self, where: str, params, flagged_only: bool = True) -> list[dict]:
        """Pending questions from the comments matching `where` (built here from placeholders only)."""
        at = now()
        flagged = "c.is_question = 1 AND " if flagged_only else ""
        sql = ("INSERT OR IGNORE INTO questions (comment_id, text, original_text, author, platform, source, state,"  # noqa: S608
               " asked_at, created_at, updated_at) SELECT c.id, c.text, c.text, c.author_name, c.platform, c.source,"
               " ?, c.published_at, ?, ? FROM comments c LEFT JOIN questions q ON q.comment_id = c.id"
               f" WHERE q.id IS NULL AND {flagged}c.hidden = 0 AND c.kind IN ('comment', 'paid') AND {where}"
               " ORDER BY c.id RETURNING *")
        with self.store.transaction() as db:
            rows = db.execute(sql, (Q.PENDING, at, at, *params)).fetchall()
        return [question_dict(r, at) for r in rows]

    async def _publish_created(self, questions: list[dict]) -> None:
        for q in questions:
            self.store.audit("auto", "create", "question", q["id"], None, {"state": Q.PENDING, "text": q["text"]})
            await self.bus.publish(QuestionChanged(q, "create", "auto"))

    # ---- reading -------------------------------------------------------------------------------------

    def get(self, qid: int) -> dict:
        row = self.store.query_one(_SELECT, (qid,))
        if row is None:
            raise QuestionError(404, f"no question {qid}")
        return question_dict(row)

    def questions(self, states: tuple[str, ...] = STATES, limit: int = 1000) -> list[dict]:
        """Questions in `states`: the whole hall queue, and the latest `limit` of the rest, queue order first."""
        marks = ",".join("?" * len(states))
        rows = self.store.query(
            f"SELECT * FROM questions WHERE state IN ({marks}) AND ({IN_QUEUE}"  # noqa: S608
            f" OR id IN (SELECT id FROM questions WHERE state IN ({marks}) ORDER BY id DESC LIMIT ?))"
            " ORDER BY ord IS NULL, ord, id", (*states, *states, max(1, min(limit, 5000))))
        at = now()
        return [question_dict(r, at) for r in rows]

    # ---- the moderators' actions ---------------------------------------------------------------------

    async def create(self, comment_id: int, actor: str) -> tuple[dict, bool]:
        """Make a comment a question (pending); returns it and whether it is new."""
        existing = self.store.query_one("SELECT id FROM questions WHERE comment_id = ?", (comment_id,))
        if existing is not None:
            return self.get(existing["id"]), False
        if self.store.comment(comment_id) is None:
            raise QuestionError(404, f"no comment {comment_id}")
        created = self._create_pending("c.id = ?", (comment_id,), flagged_only=False)
        if not created:
            # Hidden, or a system message: nothing an official should read.
            raise QuestionError(409, f"comment {comment_id} is hidden or not a message from the audience")
        question = created[0]
        self.store.audit(actor, "create", "question", question["id"], None,
                         {"state": Q.PENDING, "comment_id": comment_id})
        await self.bus.publish(QuestionChanged(question, "create", actor))
        return question, True

    async def act(self, qid: int, action: str, actor: str, payload: dict | None = None) -> dict:
        """Do `action` on question `qid` as `actor`; returns the question afterwards."""
        payload = payload or {}
        if action not in ACTIONS:
            raise QuestionError(404, f"unknown action {action!r}, expected one of {', '.join(ACTIONS)}")
        at = now()
        with self.store.transaction() as db:
            row = db.execute(_SELECT, (qid,)).fetchone()
            if row is None:
                raise QuestionError(404, f"no question {qid}")
            if action != "unlock":
                _check_lock(row, actor, at)
            change = _Change(db, row)
            step = getattr(self, f"_do_{action}", None)
            if step is not None:
                step(change, row, actor, at, payload)
            else:
                self._transition(change, row, action, actor, at)
            changes = change.results(at)
        for before, after in changes:
            if before != after:
                self.store.audit(actor, action, "question", after["id"], _diff(before, after, "before"),
                                 _diff(before, after, "after"))
                await self.bus.publish(QuestionChanged(after, action, actor))
        return changes[0][1]

    def _transition(self, change: _Change, row: sqlite3.Row, action: str, actor: str, at: float) -> None:
        allowed, target = TRANSITIONS[action]
        if row["state"] not in allowed:
            raise QuestionError(409, f"question {row['id']} is {row['state']}; {action} needs it to be "
                                f"{' or '.join(sorted(allowed))}")
        if row["merged_into"] is not None:
            raise QuestionError(409, f"question {row['id']} was merged into {row['merged_into']}; restore it first")
        db = change.db
        if target == Q.ON_AIR:
            previous = [r["id"] for r in db.execute("SELECT id FROM questions WHERE state = ? AND id != ?",
                                                    (Q.ON_AIR, row["id"]))]
            change.touch(previous)
            for pid in previous:
                db.execute("UPDATE questions SET state = ?, answered_at = ?, answered_by = ?,"
                           " updated_at = ? WHERE id = ?", (Q.ANSWERED, at, actor, at, pid))
        extra, params = "", []
        if target == Q.FORWARDED and row["state"] != Q.ON_AIR:
            extra = NEXT_ORD
        if target == Q.ANSWERED:
            extra, params = ", answered_by = ?", [actor]
        if target == Q.ON_AIR and row["state"] == Q.APPROVED:
            extra, params = ", forwarded_at = ?" + NEXT_ORD, [at]
        db.execute(f"UPDATE questions SET state = ?, {STAMPS[target]} = ?, updated_at = ?{extra}"  # noqa: S608
                   " WHERE id = ?", (target, at, at, *params, row["id"]))

    def _do_restore(self, change: _Change, row: sqlite3.Row, actor: str, at: float, payload: dict) -> None:
        if row["state"] == Q.ANSWERED:
            change.db.execute("UPDATE questions SET state = ?, answered_at = NULL, answered_by = NULL,"
                              " updated_at = ? WHERE id = ?", (Q.FORWARDED, at, row["id"]))
            return
        if row["state"] != Q.DISMISSED:
            raise QuestionError(409, f"question {row['id']} is {row['state']}; only dismissed or answered "
                                "questions can be restored")
        if row["merged_into"] is not None:
            change.touch([row["merged_into"]])
            change.db.execute("UPDATE questions SET merged_count = merged_count - ?, updated_at = ? WHERE id = ?",
                              (row["merged_count"], at, row["merged_into"]))
        change.db.execute("UPDATE questions SET state = ?, dismissed_at = NULL, approved_at = NULL,"
                          " forwarded_at = NULL, merged_into = NULL, updated_at = ? WHERE id = ?",
                          (Q.PENDING, at, row["id"]))

    def _do_edit(self, change: _Change, row: sqlite3.Row, actor: str, at: float, payload: dict) -> None:
        text = _text(payload.get("text"), "text", MAX_TEXT)
        if row["state"] not in QUESTION_EDITABLE:
            raise QuestionError(409, f"question {row['id']} is {row['state']}; edit it before it is forwarded")
        # Saving ends the editor's hold on the question.
        change.db.execute("UPDATE questions SET text = ?, locked_by = NULL, locked_until = NULL, updated_at = ?"
                          " WHERE id = ?", (text, at, row["id"]))

    def _do_merge(self, change: _Change, row: sqlite3.Row, actor: str, at: float, payload: dict) -> None:
        into = payload.get("into")
        if not isinstance(into, int) or isinstance(into, bool):
            raise QuestionError(400, 'merge needs {"into": QUESTION_ID}')
        if into == row["id"]:
            raise QuestionError(409, "a question cannot be merged into itself")
        target = change.db.execute(_SELECT, (into,)).fetchone()
        if target is None:
            raise QuestionError(404, f"no question {into}")
        if row["state"] not in QUESTION_MERGEABLE or row["merged_into"] is not None:
            raise QuestionError(409, f"question {row['id']} is {row['state']}; only pending, approved or "
                                "forwarded questions can be merged")
        if target["state"] in QUESTION_CLOSED:
            raise QuestionError(409, f"question {into} is {target['state']}; merge into an open question")
        _check_lock(target, actor, at)
        change.touch([into])
        # The merged question keeps its own count, so restoring it gives back exactly what it brought.
        change.db.execute("UPDATE questions SET merged_count = merged_count + ?, updated_at = ? WHERE id = ?",
                          (row["merged_count"], at, into))
        change.db.execute("UPDATE questions SET state = ?, dismissed_at = ?, merged_into = ?,"
                          " updated_at = ? WHERE id = ?", (Q.DISMISSED, at, into, at, row["id"]))

    def _do_move(self, change: _Change, row: sqlite3.Row, actor: str, at: float, payload: dict) -> None:
        position = payload.get("order")
        if not isinstance(position, int) or isinstance(position, bool) or position < 1:
            raise QuestionError(400, 'move needs {"order": N}, N counted from 1 at the top of the queue')
        if row["state"] not in QUESTION_QUEUE:
            raise QuestionError(409, f"question {row['id']} is {row['state']}; only forwarded questions have "
                                "an order")
        queue = [r["id"] for r in change.db.execute(f"SELECT id FROM questions WHERE {IN_QUEUE}"  # noqa: S608
                                                    " ORDER BY ord, id")]
        queue.remove(row["id"])
        queue.insert(min(position, len(queue) + 1) - 1, row["id"])
        change.touch(queue)
        for number, q in enumerate(queue, 1):
            change.db.execute("UPDATE questions SET ord = ? WHERE id = ?", (number, q))
        change.db.execute("UPDATE questions SET updated_at = ? WHERE id = ?", (at, row["id"]))

    def _do_assign(self, change: _Change, row: sqlite3.Row, actor: str, at: float, payload: dict) -> None:
        to = payload.get("to")
        assignee = None if to in (None, "") else _text(to, "to", MAX_ASSIGNEE)
        if row["state"] == Q.DISMISSED:
            raise QuestionError(409, f"question {row['id']} is dismissed; restore it first")
        change.db.execute("UPDATE questions SET assigned_to = ?, updated_at = ? WHERE id = ?",
                          (assignee or None, at, row["id"]))

    def _do_lock(self, change: _Change, row: sqlite3.Row, actor: str, at: float, payload: dict) -> None:
        change.db.execute("UPDATE questions SET locked_by = ?, locked_until = ? WHERE id = ?",
                          (actor, at + LOCK_S, row["id"]))

    def _do_unlock(self, change: _Change, row: sqlite3.Row, actor: str, at: float, payload: dict) -> None:
        _check_lock(row, actor, at)
        change.db.execute("UPDATE questions SET locked_by = NULL, locked_until = NULL WHERE id = ?", (row["id"],))

    # ---- comments and authors --------------------------------------------------------------------------

    async def hide(self, comment_id: int, hidden: bool, actor: str) -> bool:
        """Hide (or show again) a comment on every moderator's screen; False if it already was."""
        if self.store.comment(comment_id) is None:
            raise QuestionError(404, f"no comment {comment_id}")
        changed = self.store.set_hidden([comment_id], hidden, actor)
        if changed:
            self.store.audit(actor, "hide" if hidden else "unhide", "comment", comment_id,
                             {"hidden": not hidden}, {"hidden": hidden})
            await self.bus.publish(CommentsHidden(tuple(changed), hidden, actor))
        return bool(changed)

    async def note(self, platform: str, author_id: str, note: object, actor: str) -> dict:
        """Set (or, with an empty note, clear) the moderators' note on an audience member."""
        text = _text(note, "note", MAX_NOTE, required=False)
        at = now()
        with self.store.transaction() as db:
            old = db.execute("SELECT note FROM author_notes WHERE platform = ? AND author_id = ?",
                             (platform, author_id)).fetchone()
            if text:
                db.execute("INSERT OR REPLACE INTO author_notes (platform, author_id, note, by, at) VALUES (?,?,?,?,?)",
                           (platform, author_id, text, actor, at))
            else:
                db.execute("DELETE FROM author_notes WHERE platform = ? AND author_id = ?", (platform, author_id))
        self.store.audit(actor, "note", "author", f"{platform}:{author_id}",
                         {"note": old["note"] if old else None}, {"note": text or None})
        await self.bus.publish(AuthorNoted(platform, author_id, text, actor, at))
        return {"platform": platform, "author_id": author_id, "note": text, "by": actor, "at": iso(at)}

    def notes(self) -> list[dict]:
        """Every author note, newest first."""
        return [{"platform": r["platform"], "author_id": r["author_id"], "note": r["note"], "by": r["by"],
                 "at": iso(r["at"])}
                for r in self.store.query("SELECT * FROM author_notes ORDER BY at DESC LIMIT 5000")]


def _diff(before: dict, after: dict, side: str) -> dict:
    """Only the fields an action changed, as they were (`before`) or became (`after`)."""
    keys = [k for k in after if before.get(k) != after.get(k) and k not in ("updated_at", "lock_expires_in")]
    source = before if side == "before" else after
    return {k: source.get(k) for k in keys}

