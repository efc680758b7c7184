"""Console pages (console/pages.py), message catalogues (console/i18n.py) and overlays (console/overlays.py)."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from streamctl.audience import poller
from streamctl.config import AUDIENCE_PLATFORMS
from streamctl.console.i18n import CATALOGUES, LANGS, catalogue
from streamctl.console.issues import FALLBACK as ISSUE_FALLBACK
from streamctl.console.issues import KINDS as ISSUE_KINDS
from streamctl.console.pages import NAV, RECENT_ALERTS, SHORTCUTS
from streamctl.events import Alert
from streamctl.questions import ACTIONS, STATES
from streamctl.reasons import KEYS as REASON_KEYS
from streamctl.reasons import RULES
from streamctl.redact import register_secret
from streamctl.restream.platforms import PLATFORMS
from streamctl.restream.profiles import PROFILES
from streamctl.store import ROLES

from .console_harness import page_data, running_console

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+)["']""")
SCRIPT_KEY = re.compile(r"""\bT\(\s*["']([a-z_]+\.[a-z_.]+)["']""")
# Keys built at run time from a fixed family: every member must be in the catalogues.
DYNAMIC = ([f"state.{s}" for s in STATES] + [f"role.{r}" for r in ROLES] + [f"audit.{a}" for a in ACTIONS]
           + ["audit.create", "audit.hide", "audit.unhide", "audit.note"]
           + [f"live.{s}" for s in ("connecting", "live", "offline")]
           + [f"dstate.{s}" for s in ("stopped", "starting", "live", "backoff", "failed")]
           + [f"ops.{v}" for v in ("start", "stop", "restart")] + ["overlay.question", "overlay.viewers"]
           + [key for _, key in SHORTCUTS] + [key for _, _, key in NAV]
           # /operate: ingest, source and alert words, platform notes, profiles, the confirm step
           + [f"istate.{s}" for s in ("stopped", "waiting", "live", "lost")]
           + [f"ikind.{k}" for k in ("rtmp_listen", "srt_listen", "pull", "file", "testsrc")]
           + [f"sstate.{s}" for s in (poller.STARTING, poller.OK, poller.WAITING_STATE, poller.BACKOFF, poller.FAILED,
                                      poller.ENDED, poller.STOPPED)]
           + [f"alert.{level}" for level in ("info", "warning", "error")]
           + [f"aplatform.{p}" for p in AUDIENCE_PLATFORMS] + [f"pnote.{p}" for p in PLATFORMS]
           + [f"profile.{p.replace('-', '_')}" for p in PROFILES]
           + [f"ops.confirm_{v}{end}" for v in ("stop", "restart", "remove") for end in ("", "_title")]
           + ["ops.remove"]
           # Why something failed and what is wrong with a field: built from the server's keys.
           + [f"reason.{k}" for k in REASON_KEYS] + [f"rule.{k}" for k, _ in RULES] + ["rule.other"]
           + [f"issue.{k}" for k, _ in ISSUE_KINDS] + [f"issue.{ISSUE_FALLBACK}"])


def used_keys() -> set[str]:
    keys = set(DYNAMIC)
    for path in [*(ROOT / "web" / "templates").glob("*.html"), *(ROOT / "overlays").glob("*.html")]:
        keys |= set(TEMPLATE_KEY.findall(path.read_text(encoding="utf-8")))
    for path in [*(ROOT / "web" / "static").glob("*.js"), *(ROOT / "overlays" / "assets").glob("*.js")]:
        keys |= set(SCRIPT_KEY.findall(path.read_text(encoding="utf-8")))
    for path in (ROOT / "streamctl" / "console").glob("*.py"):
        found = re.findall(r'"((?:login|error|issue)\.[a-z_]+)"', path.read_text(encoding="utf-8"))
        keys |= {k for k in found if not k.endswith(".html")}  # template names are not messages
    return keys


def test_every_message_used_is_in_both_catalogues():
    used = used_keys()
    assert len(used) > 100  # the scan found the templates and scripts
    for lang in LANGS:
        missing = sorted(used - set(catalogue(lang)))
        assert not missing, f"{lang}.json lacks {missing}"
        empty = [k for k, v in catalogue(lang).items() if not v.strip()]
        assert not empty, f"{lang}.json has empty messages {empty}"
    assert set(catalogue("vi")) == set(catalogue("en"))
    for path in CATALOGUES.glob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


def test_placeholders_agree_between_languages():
    for key, vi in catalogue("vi").items():
        assert set(re.findall(r"{(\w+)}", vi)) == set(re.findall(r"{(\w+)}", catalogue("en")[key])), key


async def test_each_role_sees_its_pages_in_its_language(tmp_path):
    async with running_console(tmp_path) as console:
        await console.feed("Xin chào Hạ Long", "Bao giờ sửa cầu?")
        mod = await console.client("mod1")
        status, text = await mod.page("/moderate")
        assert status == 200 and '<html lang="vi">' in text and "Kiểm duyệt" in text
        data = page_data(text)
        assert [c["text"] for c in data["comments"]] == ["Xin chào Hạ Long", "Bao giờ sửa cầu?"]
        assert data["csrf"] and data["user"] == "mod1" and data["messages"]["comments.title"] == "Bình luận"
        assert "Kỳ họp HĐND tỉnh" in text
        chair = await console.client("chair")  # created with lang="en"
        status, text = await chair.page("/official")
        assert status == 200 and '<html lang="en">' in text and "On air now" in text
        op = await console.client("op")
        for path in ("/operate", "/moderate", "/official"):
            status, text = await op.page(path)
            assert status == 200, path
            assert '<script type="module" src="/static/' in text


async def test_search_finds_text_without_diacritics(tmp_path):
    async with running_console(tmp_path) as console:
        await console.feed("Đường Hạ Long bị ngập", "Cầu Bãi Cháy", ("Lê Hạ", "ok"))
        mod = await console.client("mod1")
        _, text = await mod.page("/moderate?q=ha+long")
        assert [c["text"] for c in page_data(text)["comments"]] == ["Đường Hạ Long bị ngập"]
        _, text = await mod.page("/moderate?q=duong")
        assert [c["text"] for c in page_data(text)["comments"]] == ["Đường Hạ Long bị ngập"]
        _, text = await mod.page("/moderate?q=le+ha")  # the author's name counts too
        assert [c["author"] for c in page_data(text)["comments"]] == ["Lê Hạ"]


async def test_the_moderate_page_shows_the_latest_comments(tmp_path):
    async with running_console(tmp_path) as console:
        await console.feed(*[f"bình luận {i}" for i in range(320)])
        await console.feed("trên facebook", platform="facebook", source="fb")
        mod = await console.client("mod1")
        _, text = await mod.page("/moderate")
        texts = [c["text"] for c in page_data(text)["comments"]]
        assert len(texts) == 300 and texts[-1] == "trên facebook" and texts[0] == "bình luận 21"
        _, text = await mod.page("/moderate?platform=facebook")
        assert [c["text"] for c in page_data(text)["comments"]] == ["trên facebook"]


async def test_static_files_are_served_locally(tmp_path):
    async with running_console(tmp_path) as console:
        client = await console.client()
        for path in ("/static/console.css", "/static/console.js", "/static/moderate.js", "/overlay/assets/overlay.js"):
            async with client.session.get(f"{console.url}{path}") as r:
                assert r.status == 200, path
                body = await r.text()
                assert "http://" not in body and "https://" not in body, f"{path} reaches outside"
        for path in (ROOT / "web" / "templates").glob("*.html"):
            assert "https://" not in path.read_text(encoding="utf-8"), path


async def test_overlays_need_an_overlay_token_and_show_what_is_on_air(tmp_path):
    async with running_console(tmp_path) as console:
        (q,) = await console.feed_questions("Khi nào có nước sạch?")
        mod = await console.client("mod1")
        for action in ("forward", "on_air"):
            await mod.call("POST", f"/api/questions/{q['id']}/{action}")
        token = console.controller.store.create_token("overlay")
        moderator_token = console.controller.store.create_token("moderator")
        client = await console.client()
        for bad, expected in (("", 401), ("?token=nope", 401), (f"?token={moderator_token}", 403)):
            status, body = await client.page(f"/overlay/question{bad}")
            assert status == expected and "<body></body>" in body, bad  # nothing that would show on air
        status, text = await client.page(f"/overlay/question?token={token}&theme=light&accent=00ff00&scale=9")
        assert status == 200
        data = page_data(text)
        assert data["on_air"]["text"] == "Khi nào có nước sạch?"
        assert (data["theme"], data["accent"], data["scale"]) == ("light", "#00ff00", 2.0)
        assert "theme-light" in text
        status, text = await client.page(f"/overlay/question?token={token}&theme=<x>&accent=red;x")
        assert status == 200 and "theme-dark" in text and page_data(text)["accent"] == ""
        status, _ = await client.page(f"/overlay/viewers?token={token}")
        assert status == 200
        status, _ = await client.page(f"/overlay/nothing?token={token}")
        assert status == 404


async def test_the_operate_page_carries_its_data_and_the_stored_alerts(tmp_path):
    async with running_console(tmp_path) as console:
        secret = "sk-" + secrets.token_hex(8)
        register_secret(secret)
        desk = console.controller.alerts
        await desk.take(Alert("warning", "fb", f"publish to rtmps://x/rtmp/{secret} refused", code="something.new"))
        op = await console.client("op")
        text = (await op.page("/operate"))[1]
        data = page_data(text)
        # Alerts are stored: the page is handed the recent ones so a reload loses none, secrets masked.
        assert [(a["level"], a["source"], a["text"]) for a in data["alerts"]] == [
            ("warning", "fb", "publish to rtmps://x/rtmp/**** refused")]
        assert secret not in text
        assert data["ingest"]["state"] == "stopped" and data["destinations"] == [] and data["sources"] == []
        assert set(data["platforms"]) == set(PLATFORMS) and data["platforms"]["youtube"]["url"].startswith("rtmp")
        assert data["status"] == {"state": "off_air", "program": None, "on_air": False, "destinations_live": 0,
                                  "destinations": 0, "sources_reading": 0, "sources": 0, "viewers": 0}
        for i in range(RECENT_ALERTS + 5):
            await desk.take(Alert("info", f"test-{i}", f"alert {i}", code="something.new"))
        data = page_data((await op.page("/operate"))[1])
        assert len(data["alerts"]) == RECENT_ALERTS and data["alerts"][-1]["text"] == f"alert {RECENT_ALERTS + 4}"
        assert data["alerts_unacknowledged"] == RECENT_ALERTS + 6
