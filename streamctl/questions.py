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
from .similar import SimilarIndex
from .states import (
    QUESTION_CLOSED,
    QUESTION_EDITABLE,
    QUESTION_MERGEABLE,
    QUESTION_OFFICIAL,
    QUESTION_QUEUE,
    QUESTION_TRANSITIONS,
    QuestionState,
)
from .store import Store, iso, question_folded
from .text import fold, strip_controls

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
ACTIONS = (*TRANSITIONS, "restore", "edit", "merge", "merge_group", "move", "assign", "lock", "unlock")
ORIGINS = ("auto", "moderator")  # cue-flagged by the desk, or made by a person
ORDERS = ("newest", "oldest", "queue")
MAX_PAGE = 1000
MAX_GROUP = 500  # questions one merge_group may take in


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
        "origin": row["origin"], "similar": [],
    }


def official_view(question: dict) -> dict:
    """What an official's screen may learn of a question: all of it in their queue, else only that it left."""
    if question["state"] in QUESTION_OFFICIAL and question["merged_into"] is None:
        return {k: v for k, v in question.items() if k not in ("locked_by", "lock_expires_in", "similar")}
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
        self.similar = SimilarIndex()
        open_states = [s for s in QuestionState if s not in QUESTION_CLOSED]
        marks = ",".join("?" * len(open_states))
        for row in store.query(f"SELECT id, text FROM questions WHERE state IN ({marks})"  # noqa: S608
                               " AND merged_into IS NULL ORDER BY id", open_states):
            self.similar.put(row["id"], row["text"])

    def _indexed(self, questions: list[dict]) -> list[dict]:
        """Keep the duplicates index up to date with `questions` (as they are now) and fill their `similar`."""
        for q in questions:
            if q["state"] in QUESTION_CLOSED or q["merged_into"] is not None:
                self.similar.remove(q["id"])
            else:
                self.similar.put(q["id"], q["text"])
        return self._with_similar(questions)

    def _with_similar(self, questions: list[dict]) -> list[dict]:
        for q in questions:
            q["similar"] = self.similar.similar(q["id"])
        return questions

    # ---- auto-flagged questions ------------------------------------------------------------------------

    async def run(self) -> None:
        """Turn every stored comment that reads as a question into a pending question, until cancelled."""
        # Lossless: a question must not be lost because the desk was briefly behind.
        sub = self.bus.subscribe(CommentsStored, maxsize=1000, lossless=True, name="questions")
        try:
            # Comments stored before this subscription (a restart, or the console starting late).
            await self._publish_created(self._create_pending("1 = 1", (), "auto"))
            async for event in sub:
                ids = [c["id"] for c in event.comments if c.get("is_question") and not c.get("hidden")]
                if ids:
                    marks = ",".join("?" * len(ids))
                    await self._publish_created(self._create_pending(f"c.id IN ({marks})", ids, "auto"))
        finally:
            sub.close()

    def _create_pending(self, where: str, params, origin: str) -> list[dict]:
        """Pending questions from the comments matching `where` (built here from placeholders only).

        The desk's own (`auto`) take only comments with a question cue; a moderator may make any comment one.
        """
        at = now()
        flagged = "c.is_question = 1 AND " if origin == "auto" else ""
        # A comment's folded text is its author and text folded: what a question is searched by, too.
        sql = ("INSERT OR IGNORE INTO questions (comment_id, text, original_text, author, platform, source, state,"  # noqa: S608
               " asked_at, created_at, updated_at, origin, folded) SELECT c.id, c.text, c.text, c.author_name,"
               " c.platform, c.source, ?, c.published_at, ?, ?, ?, c.folded FROM comments c"
               " LEFT JOIN questions q ON q.comment_id = c.id"
               f" WHERE q.id IS NULL AND {flagged}c.hidden = 0 AND c.kind IN ('comment', 'paid') AND {where}"
               " ORDER BY c.id RETURNING *")
        with self.store.transaction() as db:
            rows = db.execute(sql, (Q.PENDING, at, at, origin, *params)).fetchall()
        return self._indexed([question_dict(r, at) for r in rows])

    async def _publish_created(self, questions: list[dict]) -> None:
        for q in questions:
            self.store.audit("auto", "create", "question", q["id"], None, {"state": Q.PENDING, "text": q["text"]})
            await self.bus.publish(QuestionChanged(q, "create", "auto"))

    # ---- reading -------------------------------------------------------------------------------------

    def get(self, qid: int) -> dict:
        row = self.store.query_one(_SELECT, (qid,))
        if row is None:
            raise QuestionError(404, f"no question {qid}")
        return self._with_similar([question_dict(row)])[0]

    def questions(self, states: tuple[str, ...] = STATES, limit: int = 1000) -> list[dict]:
        """Questions in `states`: the whole hall queue, and the latest `limit` of the rest, queue order first."""
        marks = ",".join("?" * len(states))
        rows = self.store.query(
            f"SELECT * FROM questions WHERE state IN ({marks}) AND ({IN_QUEUE}"  # noqa: S608
            f" OR id IN (SELECT id FROM questions WHERE state IN ({marks}) ORDER BY id DESC LIMIT ?))"
            " ORDER BY ord IS NULL, ord, id", (*states, *states, max(1, min(limit, 5000))))
        at = now()
        return self._with_similar([question_dict(r, at) for r in rows])

    def page(self, states: tuple[str, ...] = STATES, origins: tuple[str, ...] = ORIGINS, order: str = "newest",
             limit: int = 200, before: int | None = None, after: int | None = None,
             q: str | None = None) -> tuple[list[dict], int | None]:
        """One page of questions and the cursor to the next (None at the end).

        `newest`: by id downwards from `before`; `oldest`: upwards from `after`; `q`: every word, folded, in
        the author or the text. The cursor is the last id of the page, for `before` (or `after`) next time.
        """
        where = [f"state IN ({','.join('?' * len(states))})", f"origin IN ({','.join('?' * len(origins))})"]
        params: list = [*states, *origins]
        if order == "newest" and before is not None:
            where.append("id < ?")
            params.append(before)
        if order == "oldest" and after is not None:
            where.append("id > ?")
            params.append(after)
        for word in fold(q or "").split()[:10]:
            where.append("instr(folded, ?) > 0")
            params.append(word)
        direction = "DESC" if order == "newest" else "ASC"
        limit = max(1, min(limit, MAX_PAGE))
        rows = self.store.query(f"SELECT * FROM questions WHERE {' AND '.join(where)}"  # noqa: S608
                                f" ORDER BY id {direction} LIMIT ?", (*params, limit + 1))
        at = now()
        page = self._with_similar([question_dict(r, at) for r in rows[:limit]])
        return page, (page[-1]["id"] if len(rows) > limit else None)

    def counts(self) -> dict[str, dict[str, int]]:
        """How many questions each origin has in each state: `{"auto": {"pending": 1812, …}, "moderator": …}`."""
        counts = {origin: dict.fromkeys(STATES, 0) for origin in ORIGINS}
        for row in self.store.query("SELECT origin, state, COUNT(*) AS n FROM questions GROUP BY origin, state"):
            counts.setdefault(row["origin"], {})[row["state"]] = row["n"]
        return counts

    # ---- the moderators' actions ---------------------------------------------------------------------

    async def create(self, comment_id: int, actor: str) -> tuple[dict, bool]:
        """Make a comment a question (pending); returns it and whether it is new."""
        existing = self.store.query_one("SELECT id, origin, state FROM questions WHERE comment_id = ?", (comment_id,))
        if existing is not None:
            if existing["origin"] == "auto" and existing["state"] not in QUESTION_CLOSED:
                # The desk had flagged it among many; a moderator picking it makes it theirs (their lane).
                return await self.act(existing["id"], "adopt", actor), False
            return self.get(existing["id"]), False
        if self.store.comment(comment_id) is None:
            raise QuestionError(404, f"no comment {comment_id}")
        created = self._create_pending("c.id = ?", (comment_id,), "moderator")
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
        if action not in (*ACTIONS, "adopt"):
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
        await self._announce(changes, action, actor)
        return changes[0][1]

    async def merge_group(self, into: int, ids: object, actor: str) -> tuple[dict, list[int], list[dict]]:
        """Merge every question of `ids` into `into` at once (one click on a group of likely duplicates).

        Returns the target afterwards, the ids merged, and the ones skipped with why (taken by another
        moderator's edit, already closed or merged, or the target itself): the others are merged regardless.
        """
        if (not isinstance(ids, list) or not ids or len(ids) > MAX_GROUP
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
            raise QuestionError(400, f'merge_group needs {{"ids": [QUESTION_ID, …]}}, 1 to {MAX_GROUP} of them')
        at = now()
        merged: list[int] = []
        skipped: list[dict] = []
        with self.store.transaction() as db:
            target = db.execute(_SELECT, (into,)).fetchone()
            if target is None:
                raise QuestionError(404, f"no question {into}")
            _mergeable_into(target, actor, at)
            change = _Change(db, target)
            for qid in dict.fromkeys(ids):
                row = db.execute(_SELECT, (qid,)).fetchone()
                try:
                    if row is None:
                        raise QuestionError(404, f"no question {qid}")
                    if qid == into:
                        raise QuestionError(409, "a question cannot be merged into itself")
                    _check_lock(row, actor, at)
                    _mergeable(row)
                except QuestionError as e:
                    skipped.append({"id": qid, "error": e.message})
                    continue
                change.touch([qid])
                _merge(db, row, into, at)
                merged.append(qid)
            changes = change.results(at)
        await self._announce(changes, "merge", actor)
        return changes[0][1], merged, skipped

    async def _announce(self, changes: list[tuple[dict, dict]], action: str, actor: str) -> None:
        """Audit and publish every question an action changed (the index of duplicates follows first)."""
        self._indexed([after for _, after in changes])
        for before, after in changes:
            before["similar"] = after["similar"]  # what the index says is not a change of the question
            if before != after:
                self.store.audit(actor, action, "question", after["id"], _diff(before, after, "before"),
                                 _diff(before, after, "after"))
                await self.bus.publish(QuestionChanged(after, action, actor))

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
        change.db.execute("UPDATE questions SET text = ?, folded = ?, locked_by = NULL, locked_until = NULL,"
                          " updated_at = ? WHERE id = ?",
                          (text, question_folded(row["author"], text, row["original_text"]), at, row["id"]))

    def _do_adopt(self, change: _Change, row: sqlite3.Row, actor: str, at: float, payload: dict) -> None:
        change.db.execute("UPDATE questions SET origin = 'moderator', updated_at = ? WHERE id = ?", (at, row["id"]))

    def _do_merge(self, change: _Change, row: sqlite3.Row, actor: str, at: float, payload: dict) -> None:
        into = payload.get("into")
        if not isinstance(into, int) or isinstance(into, bool):
            raise QuestionError(400, 'merge needs {"into": QUESTION_ID}')
        if into == row["id"]:
            raise QuestionError(409, "a question cannot be merged into itself")
        target = change.db.execute(_SELECT, (into,)).fetchone()
        if target is None:
            raise QuestionError(404, f"no question {into}")
        _mergeable(row)
        _mergeable_into(target, actor, at)
        change.touch([into])
        _merge(change.db, row, into, at)

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


def _mergeable(row: sqlite3.Row) -> None:
    if row["state"] not in QUESTION_MERGEABLE or row["merged_into"] is not None:
        raise QuestionError(409, f"question {row['id']} is {row['state']}; only pending, approved or "
                            "forwarded questions can be merged")


def _mergeable_into(target: sqlite3.Row, actor: str, at: float) -> None:
    if target["state"] in QUESTION_CLOSED or target["merged_into"] is not None:
        raise QuestionError(409, f"question {target['id']} is {target['state']}; merge into an open question")
    _check_lock(target, actor, at)


def _merge(db: sqlite3.Connection, row: sqlite3.Row, into: int, at: float) -> None:
    # The merged question keeps its own count, so restoring it gives back exactly what it brought.
    db.execute("UPDATE questions SET merged_count = merged_count + ?, updated_at = ? WHERE id = ?",
               (row["merged_count"], at, into))
    db.execute("UPDATE questions SET state = ?, dismissed_at = ?, merged_into = ?, updated_at = ? WHERE id = ?",
               (Q.DISMISSED, at, into, at, row["id"]))


def _diff(before: dict, after: dict, side: str) -> dict:
    """Only the fields an action changed, as they were (`before`) or became (`after`)."""
    keys = [k for k in after if before.get(k) != after.get(k) and k not in ("updated_at", "lock_expires_in")]
    source = before if side == "before" else after
    return {k: source.get(k) for k in keys}

