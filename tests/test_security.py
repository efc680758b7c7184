"""Console security: hostile audience text, every route refused without the right credentials, CSP, no HTML sinks."""

from __future__ import annotations

import re
from pathlib import Path

from streamctl.console.app import make_app
from streamctl.console.auth import ALLOWED

from .console_harness import page_data, running_console

ROOT = Path(__file__).resolve().parents[1]

# Script, event-handler and URL payloads as they arrive in author names and comment texts.
PAYLOADS = (
    "<script>alert('xss-1')</script>",
    "<img src=x onerror=alert('xss-2')>",
    "<svg/onload=alert('xss-3')>",
    "javascript:alert('xss-4')",
    "\"><iframe src=javascript:alert('xss-5')></iframe>",
    "</script><script>alert('xss-6')</script>",
    "<a href=\"javascript:alert('xss-7')\">bấm vào đây?</a>",
    "{{7*7}} ${alert('xss-8')} <b onmouseover=alert('xss-9')>hỏi?</b>",
)
TAGS = ("<script>alert", "<img src=x", "<svg/onload", "<iframe", "<b onmouseover", '<a href="javascript')
HOSTILE = [(p, f"Câu hỏi? {p}") for p in PAYLOADS]

# Someone of each role, and a role that may not do what `role` requires.
WRONG_ROLE = {"operator": "mod1", "moderator": "chair", "official": None, "overlay": "mod1"}
USER_OF = {"operator": "op", "moderator": "mod1", "official": "chair"}


def raw_payload_in(text: str) -> list[str]:
    """Payloads that appear unescaped in an HTML page."""
    return [p for p in PAYLOADS if p in text and "<" in p]


async def test_hostile_text_renders_as_text_everywhere(tmp_path):
    async with running_console(tmp_path) as console:
        created = await console.feed_questions(*[t for _, t in HOSTILE][:1])
        await console.feed(*HOSTILE)
        mod = await console.client("mod1")
        await mod.call("POST", f"/api/questions/{created[0]['id']}/forward")
        await mod.call("POST", f"/api/questions/{created[0]['id']}/on_air")
        token = console.controller.store.create_token("overlay")
        chair, op = await console.client("chair"), await console.client("op")
        pages = [await mod.page("/moderate"), await mod.page("/moderate?q=" + "%3Cscript%3E"),
                 await chair.page("/official"), await op.page("/operate"),
                 await (await console.client()).page(f"/overlay/question?token={token}")]
        for status, text in pages:
            assert status == 200
            assert raw_payload_in(text) == []
            for tag in TAGS:
                assert tag not in text, tag
        authors = {c["author"] for c in page_data(pages[0][1])["comments"]}
        assert set(PAYLOADS) <= authors  # the text itself arrives intact, as data
        assert page_data(pages[4][1])["on_air"]["text"] == HOSTILE[0][1]
        # Hostile input echoed in error pages and messages is escaped too.
        status, text = await mod.page("/moderate?platform=%3Cscript%3Ealert(1)%3C/script%3E")
        assert status == 200 and "<script>alert(1)" not in text


def route_cases(controller) -> list[tuple[str, str, str]]:
    """Every guarded route of the console app (all areas): method, a concrete path, the role it needs."""
    app = make_app(controller)  # built only to list its routes; never started
    cases = []
    for route in app.router.routes():
        role = getattr(route.handler, "required_role", None)
        info = route.resource.get_info() if route.resource else {}
        template = info.get("formatter") or info.get("path")
        if role is None or template is None or route.method == "HEAD":
            continue
        path = re.sub(r"{(\w+)(:[^}]*)?}", lambda m: "hide" if m.group(1) == "verb" else "1", template)
        cases.append((route.method, path, role))
    return cases


async def test_every_guarded_route_refuses_the_signed_out_and_the_wrong_role(tmp_path):
    async with running_console(tmp_path) as console:
        cases = route_cases(console.controller)
        paths = {p for _, p, _ in cases}
        assert {"/api/questions", "/api/questions/1/1", "/api/comments/1/hide", "/api/notes"} <= paths
        anonymous = await console.client()
        clients = {name: await console.client(name) for name in ("op", "mod1", "chair")}
        for method, path, role in cases:
            status, _ = await anonymous.call(method, path, {} if method != "GET" else None)
            assert status == 401, (method, path)
            wrong = WRONG_ROLE[role]
            if wrong is not None:
                status, _ = await clients[wrong].call(method, path, {} if method != "GET" else None)
                assert status == 403, (method, path, wrong)


async def test_cross_origin_form_posts_are_refused_on_every_state_change(tmp_path):
    async with running_console(tmp_path) as console:
        (c,) = await console.feed("Chào mọi người")
        clients = {name: await console.client(name) for name in ("op", "mod1")}
        for method, path, role in route_cases(console.controller):
            if method == "GET":
                continue
            client = clients["op" if role == "operator" else "mod1"]
            # What a <form action="http://console/..." method="post"> on another site sends: cookies, no token.
            async with client.session.request(method, f"{console.url}{path}", data={"comment_id": str(c["id"])},
                                              headers={"Origin": "http://evil.example"}, allow_redirects=False) as r:
                assert r.status == 403, (method, path)
        for path in ("/logout", "/account/lang"):
            async with clients["mod1"].session.post(f"{console.url}{path}", data={"lang": "en"},
                                                    headers={"Origin": "http://evil.example"},
                                                    allow_redirects=False) as r:
                assert r.status == 403, path
        assert console.controller.store.query("SELECT * FROM questions") == []
        assert console.controller.store.query_one("SELECT lang FROM users WHERE username = 'mod1'")["lang"] == "vi"


async def test_pages_are_refused_or_redirected_without_the_right_role(tmp_path):
    async with running_console(tmp_path) as console:
        anonymous = await console.client()
        for path in ("/moderate", "/official", "/operate"):
            status, text = await anonymous.page(path)
            assert status == 302 and "page-data" not in text
        chair, mod = await console.client("chair"), await console.client("mod1")
        for client, path in ((chair, "/moderate"), (chair, "/operate"), (mod, "/operate")):
            status, text = await client.page(path)
            assert status == 403 and "comments" not in page_data(text), path


async def test_every_answer_carries_a_strict_content_security_policy(tmp_path):
    async with running_console(tmp_path) as console:
        mod = await console.client("mod1")
        for path in ("/login", "/moderate", "/api/questions", "/nowhere"):
            async with mod.session.get(f"{console.url}{path}") as r:
                csp = r.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
                assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert r.headers["X-Frame-Options"] == "DENY"


def test_templates_have_no_inline_script_style_or_handlers():
    for path in [*(ROOT / "web" / "templates").glob("*.html"), *(ROOT / "overlays").glob("*.html")]:
        text = path.read_text(encoding="utf-8")
        scripts = re.findall(r"<script\b([^>]*)>", text)
        assert all("src=" in attrs or 'type="application/json"' in attrs for attrs in scripts), path
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path}: inline event handler"
        assert not re.search(r"\sstyle\s*=", text) and "<style" not in text, f"{path}: inline style"
        assert "|safe" not in text and "autoescape false" not in text, path


def test_scripts_never_turn_text_into_html():
    for path in [*(ROOT / "web" / "static").glob("*.js"), *(ROOT / "overlays" / "assets").glob("*.js")]:
        text = path.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{path}: {sink}"


def test_overlay_role_is_its_own():
    assert ALLOWED["overlay"] == {"operator", "overlay"}
    assert "overlay" not in ALLOWED["moderator"] | ALLOWED["official"]
