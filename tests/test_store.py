"""The event database: comments stored exactly once with their cursor, search, viewers, tokens."""

import sqlite3

import pytest

from streamctl.audience.models import Comment, ViewerSample
from streamctl.store import Store


def comment(pid, text="hello", source="yt", author="Viewer", published=1000.0):
    return Comment(platform="youtube", source=source, platform_id=pid, author_name=author, author_id="a-" + author,
                   text=text, published_at=published, received_at=published + 1)


def test_comments_are_stored_once_and_cursor_with_them(tmp_path):
    store = Store(tmp_path / "e.db")
    new, _ = store.add_comments("yt", [comment("m1"), comment("m2")], cursor="page-2")
    assert [c["id"] for c in new] == [1, 2]
    replay, _ = store.add_comments("yt", [comment("m2"), comment("m3")], cursor="page-3")
    assert [c["text"] for c in replay] == ["hello"] and replay[0]["id"] == 3
    assert store.get_cursor("yt") == "page-3"
    rows = sqlite3.connect(tmp_path / "e.db").execute("SELECT platform_id FROM comments ORDER BY id").fetchall()
    assert rows == [("m1",), ("m2",), ("m3",)]


def test_same_platform_id_from_two_sources_is_two_comments(tmp_path):
    store = Store(tmp_path / "e.db")
    store.add_comments("yt-1", [comment("m1", source="yt-1")])
    new, _ = store.add_comments("yt-2", [comment("m1", source="yt-2")])
    assert len(new) == 1


def test_a_failed_batch_stores_nothing_and_keeps_the_old_cursor(tmp_path):
    store = Store(tmp_path / "e.db")
    store.add_comments("yt", [comment("m1")], cursor="c1")
    bad = Comment("youtube", "yt", "m2", "A", "a", "hi", None, 1.0)  # published_at NOT NULL violated
    with pytest.raises(sqlite3.IntegrityError):
        store.add_comments("yt", [comment("m9"), bad], cursor="c2")
    assert store.get_cursor("yt") == "c1"
    assert [c["id"] for c in store.comments()] == [1]


def test_deleted_ids_hide_the_original(tmp_path):
    store = Store(tmp_path / "e.db")
    store.add_comments("yt", [comment("m1"), comment("m2")])
    _, hidden = store.add_comments("yt", [], deleted_ids=["m2", "unknown"])
    assert hidden == [2]
    assert [c["hidden"] for c in store.comments()] == [False, True]
    assert store.comments(include_hidden=False)[0]["id"] == 1


def test_search_is_diacritics_insensitive_and_matches_authors(tmp_path):
    store = Store(tmp_path / "e.db")
    store.add_comments("yt", [comment("m1", "Đường ở Hạ Long bao giờ xong?"), comment("m2", "xin chào"),
                              comment("m3", "hello", author="Nguyễn Văn Đức")])
    assert [c["id"] for c in store.comments(q="ha long")] == [1]
    assert [c["id"] for c in store.comments(q="DUONG")] == [1]
    assert [c["id"] for c in store.comments(q="van duc")] == [3]
    assert [c["id"] for c in store.comments(questions_only=True)] == [1]
    assert [c["id"] for c in store.comments(after=1, limit=1)] == [2]


def test_hostile_text_is_stored_verbatim(tmp_path):
    store = Store(tmp_path / "e.db")
    text = "<script>alert(1)</script>\x00\x1b[31m😀" + "x" * 10000
    store.add_comments("yt", [comment("m1", text, author="<img src=x onerror=alert(1)>")])
    got = store.comments()[0]
    assert got["text"] == text and got["author"] == "<img src=x onerror=alert(1)>"


def test_latest_viewers_sums_latest_sample_per_source(tmp_path):
    store = Store(tmp_path / "e.db")
    store.add_viewers(ViewerSample("yt", "youtube", 10.0, 100))
    store.add_viewers(ViewerSample("fb", "facebook", 11.0, 50))
    store.add_viewers(ViewerSample("yt", "youtube", 12.0, 120))
    store.add_viewers(ViewerSample("zalo", "manual", 13.0, 30, manual=True))
    sources, total = store.latest_viewers()
    assert {s["name"]: s["viewers"] for s in sources} == {"yt": 120, "fb": 50, "zalo": 30}
    assert total == 200
    assert [s["manual"] for s in sources if s["name"] == "zalo"] == [True]


def test_tokens_are_stored_hashed(tmp_path):
    store = Store(tmp_path / "e.db")
    token = store.create_token("moderator")
    assert store.token_role(token) == "moderator"
    assert store.token_role(token + "x") is None
    raw = (tmp_path / "e.db").read_bytes() + (tmp_path / "e.db-wal").read_bytes()
    assert token.encode() not in raw
