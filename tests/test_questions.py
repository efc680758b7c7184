"""The question workflow (streamctl/questions.py) on a real store and bus, and its HTTP API."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from streamctl.audience.models import Comment
from streamctl.events import Bus, CommentsFetched, QuestionChanged
from streamctl.questions import LOCK_S, QuestionDesk, QuestionError
from streamctl.recorder import Recorder
from streamctl.store import Store

from .console_harness import running_console


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "q.db")
    yield s
    s.close()


def comment(n: int, text: str, author: str = "Trần Thị Bình", platform: str = "facebook") -> Comment:
    return Comment(platform=platform, source=f"{platform}-1", platform_id=f"p{n}", author_name=author,
                   author_id=f"u{n}", text=text, published_at=1_700_000_000 + n, received_at=1_700_000_000 + n)


def stored_ids(store: Store, *texts: str) -> list[int]:
    new, _ = store.add_comments("facebook-1", [comment(i, t) for i, t in enumerate(texts)])
    return [c["id"] for c in new]


async def question_for(desk: QuestionDesk, text: str, n: int = 0) -> dict:
    (cid,) = [c["id"] for c in desk.store.add_comments("facebook-1", [comment(1000 + n, text)])[0]]
    question, created = await desk.create(cid, "mod1")
    assert created
    return question


def audit_rows(store: Store, target_id: int) -> list[dict]:
    rows = store.query("SELECT * FROM audit WHERE target_type = 'question' AND target_id = ? ORDER BY id",
                       (str(target_id),))
    return [{"actor": r["actor"], "action": r["action"], "before": json.loads(r["before"] or "null"),
             "after": json.loads(r["after"] or "null")} for r in rows]


async def test_the_whole_workflow_is_audited_and_announced(store):
    bus = Bus()
    desk = QuestionDesk(store, bus)
    q = await question_for(desk, "Khi nào đường Hạ Long - Vân Đồn được sửa?")
    with bus.subscribe(QuestionChanged) as sub:
        for action, state in (("approve", "approved"), ("forward", "forwarded"), ("on_air", "on_air"),
                              ("answered", "answered")):
            after = await desk.act(q["id"], action, "mod1")
            assert after["state"] == state
            event = sub.get_nowait()
            assert (event.question["state"], event.action, event.by) == (state, action, "mod1")
    final = desk.get(q["id"])
    assert final["order"] == 1 and final["answered_at"] and final["on_air_at"] and final["forwarded_at"]
    trail = audit_rows(store, q["id"])
    assert [r["action"] for r in trail] == ["create", "approve", "forward", "on_air", "answered"]
    assert trail[1]["before"]["state"] == "pending" and trail[1]["after"]["state"] == "approved"
    assert all(r["actor"] == "mod1" for r in trail)


@pytest.mark.parametrize(("start", "action"), [
    ([], "on_air"), ([], "answered"), (["approve"], "approve"), (["dismiss"], "forward"),
    (["forward", "answered"], "dismiss"), ([], "off_air"),
])
async def test_illegal_transitions_are_refused_with_a_clear_message(store, start, action):
    desk = QuestionDesk(store, Bus())
    q = await question_for(desk, "Vì sao học phí tăng?")
    for step in start:
        await desk.act(q["id"], step, "mod1")
    state = desk.get(q["id"])["state"]
    with pytest.raises(QuestionError) as e:
        await desk.act(q["id"], action, "mod1")
    assert e.value.status == 409
    assert f"is {state}" in e.value.message and action in e.value.message
    assert desk.get(q["id"])["state"] == state  # nothing changed


async def test_only_one_question_is_on_air_and_the_previous_one_counts_as_answered(store):
    desk = QuestionDesk(store, Bus())
    first = await question_for(desk, "Câu thứ nhất?", 1)
    second = await question_for(desk, "Câu thứ hai?", 2)
    for q in (first, second):
        await desk.act(q["id"], "forward", "mod1")
    await desk.act(first["id"], "on_air", "mod1")
    await desk.act(second["id"], "on_air", "mod2")
    states = {q["id"]: q["state"] for q in desk.questions()}
    assert states == {first["id"]: "answered", second["id"]: "on_air"}
    assert desk.get(first["id"])["answered_at"] is not None
    # off_air returns it to the queue without answering it
    assert (await desk.act(second["id"], "off_air", "mod2"))["state"] == "forwarded"


async def test_edit_keeps_the_original_and_only_before_forwarding(store):
    desk = QuestionDesk(store, Bus())
    q = await question_for(desk, "cho hoi  bao gio lam duong  \x07")
    edited = await desk.act(q["id"], "edit", "mod1", {"text": "  Bao giờ làm đường?  "})
    assert edited["text"] == "Bao giờ làm đường?"
    assert edited["original_text"] == "cho hoi  bao gio lam duong  \x07"
    assert edited["edited"] is True
    for bad, status in (({"text": "   "}, 400), ({"text": 5}, 400), ({"text": "x" * 1001}, 400)):
        with pytest.raises(QuestionError) as e:
            await desk.act(q["id"], "edit", "mod1", bad)
        assert e.value.status == status
    await desk.act(q["id"], "forward", "mod1")
    with pytest.raises(QuestionError) as e:
        await desk.act(q["id"], "edit", "mod1", {"text": "late"})
    assert e.value.status == 409
    trail = [r for r in audit_rows(store, q["id"]) if r["action"] == "edit"]
    assert trail[0]["before"]["text"].startswith("cho hoi") and trail[0]["after"]["text"] == "Bao giờ làm đường?"


async def test_merge_counts_askers_and_restore_gives_them_back(store):
    desk = QuestionDesk(store, Bus())
    keep = await question_for(desk, "Khi nào có nước sạch ở Cẩm Phả?", 1)
    dup1 = await question_for(desk, "Bao giờ Cẩm Phả có nước sạch?", 2)
    dup2 = await question_for(desk, "nuoc sach cam pha khi nao co?", 3)
    await desk.act(dup2["id"], "merge", "mod1", {"into": dup1["id"]})
    assert desk.get(dup1["id"])["merged_count"] == 2
    await desk.act(dup1["id"], "merge", "mod1", {"into": keep["id"]})
    assert desk.get(keep["id"])["merged_count"] == 3
    merged = desk.get(dup1["id"])
    assert (merged["state"], merged["merged_into"]) == ("dismissed", keep["id"])
    # Restoring the middle one takes back itself and what was merged into it.
    restored = await desk.act(dup1["id"], "restore", "mod1")
    assert (restored["state"], restored["merged_into"], restored["merged_count"]) == ("pending", None, 2)
    assert desk.get(keep["id"])["merged_count"] == 1
    for payload, status in (({"into": keep["id"]}, None), ({"into": 99999}, 404), ({}, 400), ({"into": True}, 400)):
        if status is None:
            continue
        with pytest.raises(QuestionError) as e:
            await desk.act(dup1["id"], "merge", "mod1", payload)
        assert e.value.status == status
    with pytest.raises(QuestionError) as e:
        await desk.act(keep["id"], "merge", "mod1", {"into": keep["id"]})
    assert e.value.status == 409


async def test_the_hall_queue_can_be_reordered_and_assigned(store):
    desk = QuestionDesk(store, Bus())
    qs = [await question_for(desk, f"Câu hỏi số {i}?", i) for i in range(4)]
    for q in qs:
        await desk.act(q["id"], "forward", "mod1")
    await desk.act(qs[3]["id"], "move", "mod1", {"order": 1})
    await desk.act(qs[0]["id"], "move", "mod1", {"order": 99})  # past the end: the last place
    queue = [q["id"] for q in desk.questions(("forwarded",))]
    assert queue == [qs[3]["id"], qs[1]["id"], qs[2]["id"], qs[0]["id"]]
    assert [q["order"] for q in desk.questions(("forwarded",))] == [1, 2, 3, 4]
    assigned = await desk.act(qs[1]["id"], "assign", "mod1", {"to": "Sở Giao thông Vận tải"})
    assert assigned["assigned_to"] == "Sở Giao thông Vận tải"
    assert (await desk.act(qs[1]["id"], "assign", "mod1", {"to": ""}))["assigned_to"] is None
    with pytest.raises(QuestionError) as e:
        await desk.act(qs[1]["id"], "move", "mod1", {"order": 0})
    assert e.value.status == 400
    pending = await question_for(desk, "Chưa chuyển?", 9)
    with pytest.raises(QuestionError) as e:
        await desk.act(pending["id"], "move", "mod1", {"order": 1})
    assert e.value.status == 409


async def test_an_edit_lock_keeps_other_moderators_off_until_it_expires(store, monkeypatch):
    desk = QuestionDesk(store, Bus())
    q = await question_for(desk, "Ai chịu trách nhiệm?")
    locked = await desk.act(q["id"], "lock", "mod1")
    assert locked["locked_by"] == "mod1" and 0 < locked["lock_expires_in"] <= LOCK_S
    for action in ("approve", "edit", "lock", "unlock", "dismiss"):
        with pytest.raises(QuestionError) as e:
            await desk.act(q["id"], action, "mod2", {"text": "x"})
        assert e.value.status == 409 and "mod1 is editing" in e.value.message
    # The clock is the one thing tests may move: past the lock's expiry another moderator may act.
    later = time.time() + LOCK_S + 1
    monkeypatch.setattr("streamctl.questions.now", lambda: later)
    assert desk.get(q["id"])["locked_by"] is None
    assert (await desk.act(q["id"], "approve", "mod2"))["state"] == "approved"


async def test_flagged_comments_become_pending_questions_through_the_recorder(store):
    bus = Bus()
    recorder, desk = Recorder(store, bus), QuestionDesk(store, bus)
    # Stored before the desk started: picked up when it starts.
    stored_ids(store, "Tại sao phải chờ lâu vậy?")
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(recorder.run()), tg.create_task(desk.run())]
        with bus.subscribe(QuestionChanged) as sub:
            await bus.publish(CommentsFetched("facebook-1", "facebook", (
                comment(10, "Xin hỏi khi nào khởi công cầu Bến Rừng"),
                comment(11, "Chúc mừng kỳ họp thành công"),
                comment(12, "How long will the works take?"),
            )))
            created = []
            async with asyncio.timeout(5):
                while len(created) < 3:
                    created.append((await sub.get()).question)
        for task in tasks:
            task.cancel()
    texts = sorted(q["text"] for q in created)
    assert texts == ["How long will the works take?", "Tại sao phải chờ lâu vậy?",
                     "Xin hỏi khi nào khởi công cầu Bến Rừng"]
    assert {q["state"] for q in created} == {"pending"}
    assert len(QuestionDesk(store, bus).questions()) == 3  # the greeting is not a question


async def test_making_a_question_twice_returns_the_same_one(store):
    desk = QuestionDesk(store, Bus())
    (cid,) = stored_ids(store, "Cảm ơn đại biểu")
    first, created = await desk.create(cid, "mod1")
    again, created_again = await desk.create(cid, "mod2")
    assert created and not created_again and first["id"] == again["id"]
    with pytest.raises(QuestionError) as e:
        await desk.create(424242, "mod1")
    assert e.value.status == 404


# ---- through HTTP ----------------------------------------------------------------------------------------


async def test_api_walks_a_question_from_comment_to_air(tmp_path):
    async with running_console(tmp_path) as console:
        (c,) = await console.feed("Chúc sức khỏe các đại biểu")  # not flagged: a moderator picks it
        mod = await console.client("mod1")
        status, body = await mod.call("POST", "/api/questions", {"comment_id": c["id"]})
        assert status == 201 and body["question"]["state"] == "pending"
        qid = body["question"]["id"]
        status, again = await mod.call("POST", "/api/questions", {"comment_id": c["id"]})
        assert status == 200 and again["question"]["id"] == qid
        for action in ("approve", "forward", "on_air"):
            status, body = await mod.call("POST", f"/api/questions/{qid}/{action}")
            assert status == 200, body
        assert body["question"]["state"] == "on_air"
        status, body = await mod.call("POST", f"/api/questions/{qid}/approve")
        assert status == 409 and "on_air" in body["error"]
        status, body = await mod.call("POST", f"/api/questions/{qid}/fly")
        assert status == 404 and "unknown action" in body["error"]
        status, body = await mod.call("POST", f"/api/questions/{qid}/edit", {"text": ""})
        assert status == 409 or status == 400
        status, body = await mod.call("POST", "/api/questions", {"comment_id": "7"})
        assert status == 400
        status, body = await mod.call("GET", "/api/questions")
        assert [(q["id"], q["state"], q["merged_count"]) for q in body["questions"]] == [(qid, "on_air", 1)]
        assert set(body["questions"][0]) >= {"id", "text", "original_text", "author", "platform", "state", "order",
                                             "merged_count"}


async def test_officials_read_only_the_forwarded_queue(tmp_path):
    async with running_console(tmp_path) as console:
        created = await console.feed_questions("Câu hỏi một?", "Câu hỏi hai?", "Câu hỏi ba?")
        first, second = created[0]["id"], created[1]["id"]
        mod = await console.client("mod1")
        await mod.call("POST", f"/api/questions/{first}/forward")
        await mod.call("POST", f"/api/questions/{second}/dismiss")
        chair = await console.client("chair")
        status, body = await chair.call("GET", "/api/questions")
        assert status == 200 and [q["id"] for q in body["questions"]] == [first]
        status, body = await chair.call("GET", "/api/questions?state=pending,dismissed")
        assert status == 200 and [q["id"] for q in body["questions"]] == [first]
        status, _ = await chair.call("POST", f"/api/questions/{first}/on_air")
        assert status == 403


async def test_an_approved_question_can_go_straight_on_air_and_joins_the_hall_queue(store):
    desk = QuestionDesk(store, Bus())
    queued = await question_for(desk, "Câu đã chuyển?", 1)
    await desk.act(queued["id"], "forward", "mod1")
    q = await question_for(desk, "Bao giờ sửa cầu?", 2)
    await desk.act(q["id"], "approve", "mod1")
    on_air = await desk.act(q["id"], "on_air", "mod1")
    assert on_air["state"] == "on_air"
    assert on_air["forwarded_at"] and on_air["on_air_at"]
    assert on_air["order"] == 2  # behind the question already in the hall's queue
