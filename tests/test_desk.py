"""The question desk at volume: origin lanes, paging without limit, search, likely duplicates and their merge.

Real console, real SQLite, real bus: thousands of flagged comments go through the recorder and the desk.
"""

from __future__ import annotations

import time

from streamctl.questions import QuestionDesk
from streamctl.similar import SimilarIndex, tokens
from streamctl.store import Store
from streamctl.text import fold

from .console_harness import running_console

# Twenty things the audience asks about; no two of them alike.
TOPICS = [
    "Khi nào cầu Bến Rừng thông xe", "Học phí năm học mới tăng bao nhiêu", "Đường Hạ Long Vân Đồn sửa xong chưa",
    "Bệnh viện tỉnh thiếu bác sĩ nhi", "Giá điện sinh hoạt tháng sau", "Trường mầm non vùng cao xuống cấp",
    "Nước sạch xã Tân Lập bị nhiễm phèn", "Đền bù giải phóng mặt bằng quốc lộ 10", "Xe buýt tuyến 05 bỏ chuyến",
    "Chợ Hạ Long 2 xây lại", "Lương giáo viên hợp đồng chậm trả", "Rác thải khu công nghiệp Cái Lân",
    "Cấp sổ đỏ phường Bãi Cháy chậm", "Sạt lở bờ sông Ba Chẽ", "Trạm y tế Đầm Hà thiếu thuốc",
    "Bảo hiểm thất nghiệp lao động tự do", "Đèn chiếu sáng đường Trần Phú hỏng", "Cảng cá Vân Ninh nạo vét",
    "Chính sách nhà ở xã hội công nhân", "Ngập úng khu đô thị Cao Xanh",
]
PREFIXES = ("Cho hỏi ", "Xin hỏi ", "", "Anh ơi ")
SUFFIXES = ("?", " ạ?", " vậy?", " không?")


def asked(n: int) -> tuple[str, str]:
    """The n-th audience question: a topic in one of several wordings, half of them typed without diacritics."""
    text = PREFIXES[n % 4] + TOPICS[n % len(TOPICS)] + SUFFIXES[(n // 4) % 4]
    return (f"Khán giả {n}", fold(text) if n % 2 else text)


async def flood(console, items: list[tuple[str, str]], within: float = 60.0) -> list[dict]:
    """Thousands of flagged comments through the recorder; the questions the desk made of them."""
    return await console.feed_questions(*items, within=within)


async def pages_of(client, query: str, cursor: str) -> list[list[dict]]:
    """Every page of a listing, following its cursor (bounded: at most 100 pages)."""
    pages, at = [], None
    for _ in range(100):
        status, answer = await client.call("GET", f"/api/questions?{query}" + (f"&{cursor[5:]}={at}" if at else ""))
        assert status == 200, answer
        pages.append(answer["questions"])
        at = answer[cursor]
        if at is None:
            return pages
    raise AssertionError("more than 100 pages")


async def test_a_hand_made_question_leads_its_lane_and_2000_auto_ones_page_through_without_limit(tmp_path):
    async with running_console(tmp_path) as console:
        await flood(console, [asked(n) for n in range(2000)])
        (plain,) = await console.feed("Cảm ơn chủ tọa đã cho phát biểu")  # no question cue: not flagged
        mod = await console.client("mod1")
        status, made = await mod.call("POST", "/api/questions", {"comment_id": plain["id"]})
        assert status == 201 and made["question"]["origin"] == "moderator"

        status, mine = await mod.call("GET", "/api/questions?state=pending&origin=moderator&order=newest&limit=20")
        assert status == 200 and [q["id"] for q in mine["questions"]] == [made["question"]["id"]]
        assert mine["counts"]["auto"]["pending"] == 2000 and mine["counts"]["moderator"]["pending"] == 1
        status, first = await mod.call("GET", "/api/questions?state=pending&order=newest&limit=1")
        assert first["questions"][0]["id"] == made["question"]["id"]  # newest first, whoever made it

        newest = await pages_of(mod, "state=pending&origin=auto&order=newest&limit=300", "next_before")
        ids = [q["id"] for page in newest for q in page]
        assert len(newest) == 7 and len(ids) == 2000 and ids == sorted(ids, reverse=True)
        assert {q["origin"] for page in newest for q in page} == {"auto"}
        oldest = await pages_of(mod, "state=pending&origin=auto&order=oldest&limit=700", "next_after")
        assert [q["id"] for page in oldest for q in page] == ids[::-1]

        # Searched like comments: without diacritics, every word, in the author or the text.
        status, found = await mod.call("GET", "/api/questions?state=pending&order=newest&q=ben%20rung&limit=1000")
        assert len(found["questions"]) == 100 and all("rung" in fold(q["text"]) for q in found["questions"])
        status, found = await mod.call("GET", "/api/questions?order=newest&q=" + "Kh%C3%A1n%20gi%E1%BA%A3%201999")
        assert [q["author"] for q in found["questions"]] == ["Khán giả 1999"]

        for bad in ("order=sideways", "origin=robot", "order=newest&before=x", "order=newest&limit=5000",
                    "before=10"):
            status, error = await mod.call("GET", f"/api/questions?{bad}")
            assert status == 400 and error["key"].startswith("error."), (bad, error)


async def test_likely_duplicates_are_listed_and_a_group_merges_in_one_call(tmp_path):
    async with running_console(tmp_path) as console:
        created = await flood(console, [asked(n) for n in range(2400)])
        by_id = {q["id"]: q for q in created}
        topic_of = {q["id"]: n % len(TOPICS) for n, q in enumerate(sorted(created, key=lambda q: q["id"]))}
        # Every question arrived with its likely duplicates: the same topic, whatever the wording or diacritics.
        for q in created[40:]:
            assert q["similar"], q
            assert {topic_of[i] for i in q["similar"]} == {topic_of[q["id"]]}, q
        mod = await console.client("mod2")
        status, answer = await mod.call("GET", "/api/questions?state=pending&order=newest&limit=1")
        leader = answer["questions"][0]
        assert len(leader["similar"]) == 20 and all(topic_of[i] == topic_of[leader["id"]] for i in leader["similar"])

        # One click: everything the page grouped with it (here: its whole topic) merges into it.
        group = [i for i, t in topic_of.items() if t == topic_of[leader["id"]] and i != leader["id"]]
        await mod.call("POST", f"/api/questions/{group[0]}/dismiss")
        started = time.monotonic()
        status, merged = await mod.call("POST", f"/api/questions/{leader['id']}/merge_group", {"ids": group})
        took = time.monotonic() - started
        assert status == 200, merged
        assert len(merged["merged"]) == len(group) - 1 and [s["id"] for s in merged["skipped"]] == [group[0]]
        assert merged["question"]["merged_count"] == len(group) and merged["question"]["similar"] == []
        assert took < 5, took
        row = console.controller.store.query_one(
            "SELECT COUNT(*) AS n FROM questions WHERE merged_into = ? AND state = 'dismissed'", (leader["id"],))
        assert row["n"] == len(group) - 1
        # The merged ones left every other question's duplicates; a new wording of the topic joins the leader.
        (again,) = await console.feed_questions("Xin hỏi " + TOPICS[topic_of[leader["id"]]] + " vậy ạ?")
        assert again["similar"] == [leader["id"]]
        status, audit = await mod.call("GET", "/api/audit?limit=1000")
        assert {a["actor"] for a in audit["audit"]} == {"mod2"} and len(audit["audit"]) == len(group) + 1
        status, everything = await mod.call("GET", "/api/audit?auto=1&limit=10")
        assert "auto" in {a["actor"] for a in everything["audit"]} and everything["next_before"] is not None

        status, bad = await mod.call("POST", f"/api/questions/{leader['id']}/merge_group", {"ids": "all"})
        assert status == 400 and bad["key"] == "error.question"
        assert by_id  # (the created questions were looked at above)


async def test_officials_page_only_through_the_forwarded_queue(tmp_path):
    async with running_console(tmp_path) as console:
        created = await flood(console, [asked(n) for n in range(300)])
        mod = await console.client("mod1")
        for q in created[:5]:
            await mod.call("POST", f"/api/questions/{q['id']}/forward")
        chair = await console.client("chair")
        status, answer = await chair.call("GET", "/api/questions?state=pending&origin=auto&order=newest&limit=1000")
        assert status == 200 and {q["state"] for q in answer["questions"]} == {"forwarded"}
        assert len(answer["questions"]) == 5 and "counts" not in answer
        assert all("similar" not in q and "locked_by" not in q for q in answer["questions"])


def test_an_older_database_gets_origins_from_its_audit_and_search_text(tmp_path):
    store = Store(tmp_path / "old.db")
    db = store.db
    for name in ("questions_lane", "questions_origin"):
        db.execute(f"DROP INDEX {name}")
    db.execute("ALTER TABLE questions DROP COLUMN origin")
    db.execute("ALTER TABLE questions DROP COLUMN folded")
    for qid, actor in ((1, "auto"), (2, "mod1")):
        db.execute("INSERT INTO questions (id, text, original_text, author, platform, source, asked_at, created_at,"
                   " updated_at) VALUES (?, 'Bao giờ sửa đường Hạ Long?', 'Bao giờ sửa đường Hạ Long?', 'Bình',"
                   " 'youtube', 'yt', 1, 1, 1)", (qid,))
        store.audit(actor, "create", "question", qid)
    store.close()
    store = Store(tmp_path / "old.db")
    rows = store.query("SELECT id, origin, folded FROM questions ORDER BY id")
    assert [(r["origin"], r["folded"]) for r in rows] == [("auto", "binh bao gio sua duong ha long?")] + [
        ("moderator", "binh bao gio sua duong ha long?")]
    desk = QuestionDesk(store, None)
    assert desk.similar.similar(1) == [2]
    store.close()


def test_the_duplicates_index_stays_cheap_with_thousands_open():
    index = SimilarIndex()
    started = time.perf_counter()
    for n in range(5000):
        index.put(n, asked(n)[1] + (f" mã {n}" if n % 3 == 0 else ""))
    for n in range(5000, 7000):  # distinct questions sharing common words
        index.put(n, f"Xin hỏi về hồ sơ số {n} của ông {n * 7}")
    took = time.perf_counter() - started
    assert took < 2.0, took  # about 0.2 s on the reference machine
    assert len(index.members) == len(TOPICS) + 2000
    assert index.similar(7000 - 1) == [] and len(index.similar(4999)) == 20
    assert tokens("Cho hỏi Hạ Long ạ?") == tokens("cho hoi ha long a") == {"ha", "long"}


async def test_picking_a_flagged_question_by_hand_moves_it_to_the_moderators_lane_and_edits_regroup_it(tmp_path):
    async with running_console(tmp_path) as console:
        first, second, other = await console.feed_questions(
            "Khi nào cầu Bến Rừng thông xe?", "cho hoi khi nao cau ben rung thong xe a", "Giá điện tháng sau ra sao?")
        assert first["origin"] == "auto" and second["similar"] == [first["id"]] and other["similar"] == []
        mod = await console.client("mod1")
        status, made = await mod.call("POST", "/api/questions", {"comment_id": first["comment_id"]})
        assert status == 200 and made["created"] is False and made["question"]["origin"] == "moderator"
        status, mine = await mod.call("GET", "/api/questions?origin=moderator&order=newest")
        assert [q["id"] for q in mine["questions"]] == [first["id"]]
        status, audit = await mod.call("GET", "/api/audit")
        assert [(a["actor"], a["action"]) for a in audit["audit"]] == [("mod1", "adopt")]
        # An edit re-reads the question's words: it leaves its old group and joins the one it now matches.
        status, edited = await mod.call("POST", f"/api/questions/{second['id']}/edit",
                                        {"text": "Giá điện tháng sau ra sao ạ?"})
        assert status == 200 and edited["question"]["similar"] == [other["id"]]
        status, again = await mod.call("GET", "/api/questions?order=newest&q=gia%20dien")
        assert {q["id"] for q in again["questions"]} == {second["id"], other["id"]}
