"""Server-rendered console pages: sign-in, /moderate, /official, /operate, and their static files."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from functools import partial, wraps
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from .. import assets
from ..questions import ORIGINS, QuestionDesk, official_view
from ..reasons import for_pages
from ..restream.platforms import PLATFORMS
from ..restream.profiles import PROFILES
from ..states import QUESTION_OFFICIAL, QUESTION_QUEUE, QuestionState, page_states
from ..store import Store
from . import accounts
from .auth import (
    ALLOWED,
    CSRF_FIELD,
    CSRF_TOKEN,
    IDENTITY,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_S,
    Identity,
    LoginLimiter,
    clear_cookie,
    create_session,
    end_session,
    may,
    not_cross_origin,
    set_cookie,
    tokens_match,
)
from .i18n import LANGS, catalogue, pick_lang, translate
from .keys import CONTROLLER, DESK, LIMITER
from .summary import program_summary

WEB = assets.path("web")
OVERLAYS = assets.path("overlays")
RECENT_ALERTS = 200  # what /operate shows on opening (older ones: GET /api/alerts)

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader([WEB / "templates", OVERLAYS]),
    autoescape=True,  # every page, every variable: audience text is hostile until proven otherwise
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

NAV = (("operator", "/operate", "nav.operate"), ("moderator", "/moderate", "nav.moderate"),
       ("official", "/official", "nav.official"), ("official", "/report", "nav.report"))  # leadership reads it
HOME = {"operator": "/operate", "moderator": "/moderate", "official": "/official"}
SHORTCUTS = (("j / k", "help.move"), ("← / →", "help.pane"), ("1 2 3", "help.pane_jump"), ("/", "help.search"),
             ("a", "help.approve"), ("d", "help.dismiss"), ("f", "help.forward"), ("e", "help.edit"),
             ("o", "help.on_air"), ("x", "help.answered"), ("m", "help.merge"), ("g", "help.merge_group"),
             ("J / K", "help.reorder"),
             ("t", "help.assign"), ("u", "help.restore"), ("q", "help.make_question"), ("h", "help.hide"),
             ("n", "help.note"), ("p", "help.pause"), ("?", "help.help"), ("Esc", "help.escape"))
COMMENTS_ON_PAGE = 300
QUESTION_TABS = (QuestionState.PENDING, QuestionState.APPROVED, QuestionState.DISMISSED)
LANE_PAGE = {QuestionState.PENDING: 200, QuestionState.APPROVED: 100, QuestionState.DISMISSED: 50}  # first page


def render(request: web.Request, template: str, *, page: str, title_key: str, script: str | None = None,
           data: dict | None = None, status: int = 200, lang: str | None = None, **context) -> web.Response:
    """A page in the viewer's language, with its live data as JSON for the page's script."""
    identity: Identity | None = request.get(IDENTITY)
    lang = pick_lang(lang, identity.lang if identity else None)
    controller = request.app[CONTROLLER]
    event = controller.event.event
    page_data = {
        "lang": lang, "csrf": request.get(CSRF_TOKEN, ""), "messages": catalogue(lang),
        "user": identity.name if identity else None, "role": identity.role if identity else None,
        "timezone": event.timezone, "states": page_states(), **(data or {}),
    }
    if may(identity, "moderator"):
        page_data["status"] = program_summary(controller)
    if may(identity, "operator"):
        page_data["alerts_unacknowledged"] = controller.store.unacknowledged_alerts()
    nav = [{"href": href, "key": key, "current": request.path == href}
           for role, href, key in NAV if may(identity, role)]
    html = templates.get_template(template).render(
        t=partial(translate, lang), lang=lang, other_lang="en" if lang == "vi" else "vi", identity=identity,
        csrf=request.get(CSRF_TOKEN, ""), nav=nav, path=request.path, page=page, title_key=title_key,
        script=script, event_name=event.name, page_data=page_data, dark=context.pop("dark", False), **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def error_page(request: web.Request, status: int, title_key: str, message: str) -> web.Response:
    return render(request, "error.html", page="error", title_key=title_key, status=status, message=message)


def page(role: str) -> Callable:
    """Page guard: signed out goes to the sign-in form (and comes back), a role that may not see it gets 403."""

    def wrap(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        @wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            identity: Identity | None = request.get(IDENTITY)
            if identity is None:
                raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
            if identity.role not in ALLOWED[role]:
                lang = pick_lang(identity.lang)
                return error_page(request, 403, "error.forbidden_title", translate(lang, "error.forbidden"))
            return await handler(request)

        return guarded

    return wrap


def safe_next(value: str | None, identity_role: str | None = None) -> str:
    """A local path to go to after signing in; anything pointing elsewhere becomes the role's home."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        parts = urlsplit(value)
        if not parts.scheme and not parts.netloc:
            return value
    return HOME.get(identity_role or "", "/login")


# ---- sign-in -----------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    identity: Identity | None = request.get(IDENTITY)
    raise web.HTTPFound(HOME.get(identity.role, "/login") if identity else "/login")


def _login_form(request: web.Request, *, status: int = 200, error: str = "", username: str = "",
                lang: str | None = None) -> web.Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    lang = pick_lang(lang, request.query.get("lang"))
    response = render(request, "login.html", page="login", title_key="login.title", status=status, lang=lang,
                      login_csrf=token, next=safe_next(request.query.get("next")), error=error, username=username)
    set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
    return response


async def login_form(request: web.Request) -> web.Response:
    identity: Identity | None = request.get(IDENTITY)
    if identity is not None and identity.via == "session":
        raise web.HTTPFound(safe_next(request.query.get("next"), identity.role))
    return _login_form(request)


async def login(request: web.Request) -> web.Response:
    """Check the form's origin and token, the rate limit, then the password (off the event loop)."""
    form = await request.post()
    lang = pick_lang(str(form.get("lang", "")))
    if not not_cross_origin(request) or not tokens_match(str(form.get(CSRF_FIELD, "")),
                                                         request.cookies.get(LOGIN_COOKIE)):
        return error_page(request, 403, "error.forbidden_title", translate(lang, "login.expired"))
    name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))
    limiter = request.app[LIMITER]
    address = request.remote or "?"
    wait = limiter.retry_after(name, address)
    if wait > 0:
        response = _login_form(request, status=429, username=name, lang=lang,
                               error=translate(lang, "login.too_many", seconds=int(wait) + 1))
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    store: Store = request.app[CONTROLLER].store
    user = await asyncio.to_thread(accounts.authenticate, store, name, password)
    if user is None:
        limiter.failed(name, address)
        return _login_form(request, status=401, username=name, lang=lang, error=translate(lang, "login.wrong"))
    limiter.succeeded(name)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        end_session(store, old)
    response = web.HTTPFound(safe_next(str(form.get("next", "")), user["role"]))
    set_cookie(request, response, SESSION_COOKIE, create_session(store, user["id"]), max_age=SESSION_S)
    clear_cookie(response, LOGIN_COOKIE)
    raise response


async def logout(request: web.Request) -> web.Response:
    # The CSRF middleware has already checked origin and token for a signed-in session.
    token = request.cookies.get(SESSION_COOKIE)
    identity: Identity | None = request.get(IDENTITY)
    if identity is None or identity.via != "session" or not token:
        raise web.HTTPFound("/login")
    end_session(request.app[CONTROLLER].store, token)
    response = web.HTTPFound("/login")
    clear_cookie(response, SESSION_COOKIE)
    raise response


async def switch_lang(request: web.Request) -> web.Response:
    identity: Identity | None = request.get(IDENTITY)
    if identity is None or identity.user_id is None:
        raise web.HTTPFound("/login")
    form = await request.post()
    lang = str(form.get("lang", ""))
    if lang not in LANGS:
        return error_page(request, 400, "error.bad_request_title", f"lang: expected one of {', '.join(LANGS)}")
    accounts.set_lang(request.app[CONTROLLER].store, identity.user_id, lang)
    raise web.HTTPFound(safe_next(str(form.get("next", "")), identity.role))


# ---- the pages -----------------------------------------------------------------------------------------


def latest_comments(store: Store, n: int, **filters) -> list[dict]:
    """The newest `n` comments matching `filters`, oldest first (the store pages forward from an id)."""
    top = store.last_comment_id()
    window = n * 4
    while True:
        low = max(0, top - window)
        found: list[dict] = []
        after = low
        while True:
            batch = store.comments(after=after, limit=1000, **filters)
            found = (found + batch)[-n:]
            if len(batch) < 1000:
                break
            after = batch[-1]["id"]
        if len(found) >= n or low == 0:
            return found
        window *= 8


def _platforms(request: web.Request) -> list[str]:
    controller = request.app[CONTROLLER]
    seen = controller.store.comment_platforms()
    configured = {a.get("label") or a.platform for a in controller.event.audience}
    return sorted(seen | configured)


def desk_lanes(desk: QuestionDesk) -> tuple[list[dict], dict]:
    """What /moderate opens with: the newest page of every lane (tab × origin), the hall queue and the answered.

    `lanes["pending:auto"]` is the cursor to page further back (None when the lane is all here).
    """
    by_id = {q["id"]: q for q in desk.questions((*QUESTION_QUEUE, QuestionState.ANSWERED), 1000)}
    lanes: dict[str, int | None] = {}
    for state, size in LANE_PAGE.items():
        for origin in ORIGINS:
            page, cursor = desk.page((state,), (origin,), "newest", size)
            by_id.update((q["id"], q) for q in page)
            lanes[f"{state}:{origin}"] = cursor
    return list(by_id.values()), lanes


@page("moderator")
async def moderate(request: web.Request) -> web.Response:
    store: Store = request.app[CONTROLLER].store
    desk: QuestionDesk = request.app[DESK]
    q = request.query.get("q", "")[:200]
    platform = request.query.get("platform", "")[:64]
    questions_only = request.query.get("questions") == "1"
    comments = latest_comments(store, COMMENTS_ON_PAGE, platform=platform or None, q=q or None,
                               questions_only=questions_only)
    viewers, total = store.latest_viewers()
    questions, lanes = desk_lanes(desk)
    data = {
        "comments": comments, "questions": questions, "lanes": lanes, "counts": desk.counts(),
        "notes": desk.notes(),
        "viewers": {"sources": viewers, "total": total},
        "filters": {"platform": platform, "q": q, "questions": questions_only},
    }
    return render(request, "moderate.html", page="moderate", title_key="nav.moderate", script="moderate", data=data,
                  platforms=_platforms(request), filters=data["filters"], shortcuts=SHORTCUTS, tabs=QUESTION_TABS,
                  officials=accounts.official_names(store))


@page("official")
async def official(request: web.Request) -> web.Response:
    desk: QuestionDesk = request.app[DESK]
    assignee = request.query.get("to", "")[:100]
    questions = [official_view(q) for q in desk.questions(QUESTION_OFFICIAL)]
    data = {"questions": [q for q in questions if q["state"] != "hidden"], "assignee": assignee}
    return render(request, "official.html", page="official", title_key="nav.official", script="official",
                  data=data, assignee=assignee, dark=request.query.get("theme", "dark") != "light")


@page("operator")
async def operate(request: web.Request) -> web.Response:
    """Everything the operator watches, in the page itself so it shows at once; the socket keeps it live."""
    controller = request.app[CONTROLLER]
    viewers, total = controller.store.latest_viewers()
    data = {
        "viewers": {"sources": viewers, "total": total},
        # Each error text gets its reason key beside it: the page shows that, never the raw text.
        "ingest": for_pages(controller.restreamer.ingest_status()),
        "destinations": for_pages(controller.broadcasts.decorate(controller.restreamer.destinations())),
        "sources": for_pages(controller.audience.sources_status()),
        "alerts": for_pages(controller.alerts.alerts(pick_lang(request[IDENTITY].lang), limit=RECENT_ALERTS)),
        "platforms": {name: {"url": rules.default_url or "", "note": rules.note} for name, rules in PLATFORMS.items()},
    }
    return render(request, "operate.html", page="operate", title_key="nav.operate", script="operate", data=data,
                  destination_platforms=list(PLATFORMS), profiles=PROFILES)


async def favicon(request: web.Request) -> web.FileResponse:
    """Browsers ask for /favicon.ico on pages that name no icon (the report, the overlays)."""
    return web.FileResponse(WEB / "static" / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


def setup(app: web.Application) -> None:
    """Register this area's routes."""
    app[LIMITER] = LoginLimiter()
    app.router.add_get("/", home)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_post("/account/lang", switch_lang)
    app.router.add_get("/moderate", moderate)
    app.router.add_get("/official", official)
    app.router.add_get("/operate", operate)
    app.router.add_static("/static", WEB / "static", append_version=False)
    app.router.add_get("/favicon.ico", favicon)
