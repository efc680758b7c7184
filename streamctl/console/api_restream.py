"""Console routes for restreaming: destinations (list, add, start/stop/restart, remove), the ingest, /metrics."""

from __future__ import annotations

from aiohttp import web

from ..config import ConfigError, destination_from_api, typed_key
from ..reasons import with_reasons
from ..redact import redact
from ..restream.restreamer import DuplicateDestination, NotRemovable, UnknownDestination
from ..restream.switcher import SwitchRefused
from ..states import DestinationState, IngestState
from ..store import iso
from .auth import IDENTITY, requires
from .http import json_error, json_response, read_json
from .issues import issue_view
from .keys import CONTROLLER

ACTIONS = ("start", "stop", "restart")
PLATFORM_HEALTH = ("good", "ok", "bad", "noData", "revoked")


def _audit(request: web.Request, action: str, name: str, before: dict | None, after: dict | None) -> None:
    controller = request.app[CONTROLLER]
    controller.store.audit(request[IDENTITY].name, action, "destination", name, before, after)


def _brief(entry: dict | None) -> dict | None:
    """What the audit log keeps of a destination: no health figures, key already masked."""
    if entry is None:
        return None
    return {k: entry[k] for k in ("platform", "url", "state", "profile", "autostart") if k in entry}


def _unknown(name: str) -> web.Response:
    return json_error(404, f"no destination named {name!r}", "error.destination_unknown", {"name": name})


@requires("operator")
async def list_destinations(request: web.Request) -> web.Response:
    return json_response(with_reasons({"destinations": _destinations(request.app[CONTROLLER])}))


def _destinations(controller) -> list[dict]:
    """Every destination with its platform broadcast and what the platform says it receives."""
    items = controller.restreamer.destinations()
    broadcasts = getattr(controller, "broadcasts", None)
    return broadcasts.decorate(items) if broadcasts is not None else items


@requires("operator")
async def add_destination(request: web.Request) -> web.Response:
    body = await read_json(request, "a JSON object like the event file's [[destination]]", required=True)
    try:
        config = destination_from_api(body)
    except ConfigError as e:
        issues = [redact(line) for line in e.issues]
        return json_error(400, "; ".join(issues), "error.destination_config", issues=issues,
                          issue_keys=[issue_view(line) for line in issues])
    try:
        entry = await request.app[CONTROLLER].restreamer.add(config)
    except DuplicateDestination:
        return json_error(409, f"destination {config.name!r} exists already, expected a new name",
                          "error.destination_exists", {"name": config.name})
    broadcasts = getattr(request.app[CONTROLLER], "broadcasts", None)
    if broadcasts is not None and config.broadcast:
        broadcasts.add(config)
        entry.update(broadcasts.describe(config.name))
    _audit(request, "destination.add", config.name, None, _brief(entry))
    return json_response(with_reasons(entry), status=201)


@requires("operator")
async def control_destination(request: web.Request) -> web.Response:
    name, action = request.match_info["name"], request.match_info["action"]
    if action not in ACTIONS:
        return json_error(404, f"unknown action {action!r}, expected one of {', '.join(ACTIONS)}",
                          "error.unknown_action", {"choices": ", ".join(ACTIONS)})
    restreamer = request.app[CONTROLLER].restreamer
    try:
        before = restreamer.get(name).describe()
        entry = await getattr(restreamer, action)(name)
    except UnknownDestination:
        return _unknown(name)
    _audit(request, f"destination.{action}", name, _brief(before), _brief(entry))
    return json_response(with_reasons(entry))


@requires("operator")
async def replace_key(request: web.Request) -> web.Response:
    """`PUT /api/destinations/{name}/key {"key"}`: a new stream key, never echoed; only that destination restarts."""
    name = request.match_info["name"]
    expected = '{"key": "the new stream key"}'
    body = await read_json(request, expected, required=True)
    if "key" not in body:
        return json_error(400, f"request: key: missing, expected {expected}", "error.body_field",
                          {"expected": expected})
    try:
        key = typed_key(body["key"])
    except ConfigError as e:
        return json_error(400, "; ".join(e.issues), "error.destination_config", issues=list(e.issues),
                          issue_keys=[issue_view(line) for line in e.issues])
    restreamer = request.app[CONTROLLER].restreamer
    try:
        before = restreamer.get(name).describe()
        entry = await restreamer.replace_key(name, key)
    except UnknownDestination:
        return _unknown(name)
    _audit(request, "destination.key", name, _brief(before), _brief(entry))
    return json_response(with_reasons(entry))


@requires("operator")
async def remove_destination(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    restreamer = request.app[CONTROLLER].restreamer
    try:
        before = restreamer.get(name).describe()
        await restreamer.remove(name)
    except UnknownDestination:
        return _unknown(name)
    except NotRemovable:
        return json_error(409, f"{name!r} is a backup output and goes with its destination, expected the "
                               "destination's own name (or stop only the backup)", "error.destination_backup",
                          {"name": name})
    _audit(request, "destination.remove", name, _brief(before), None)
    return json_response({"removed": name})


@requires("operator")
async def ingest(request: web.Request) -> web.Response:
    return json_response(with_reasons(request.app[CONTROLLER].restreamer.ingest_status()))


@requires("operator")
async def preview(request: web.Request) -> web.Response:
    """The program's latest picture from the confidence monitor, at most 2 s old; 503 while there is none."""
    monitor = request.app[CONTROLLER].restreamer.monitor
    if monitor is None:
        return json_error(404, "the confidence monitor is off ([monitor] enabled = false or no [ingest])")
    picture = monitor.preview()
    if picture is None:
        last = monitor.picture
        why = f"the last one is {last.age_s():.1f} s old" if last else "none yet"
        return json_error(503, f"no picture of the program from the last 2 s ({why}): is the program flowing?")
    return web.Response(body=picture.jpeg, content_type="image/jpeg", headers={
        "Cache-Control": "no-store",
        "X-Preview-At": iso(picture.at),
        "X-Preview-Age-Ms": str(round(picture.age_s() * 1000)),
    })


SWITCH_TO = ("primary", "backup")


@requires("operator")
async def switch_ingest(request: web.Request) -> web.Response:
    """`POST /api/ingest/switch {"to": "primary"|"backup"}`: that input on air at its next keyframe."""
    expected = '{"to": "primary" or "backup"}'
    body = await read_json(request, expected, required=True)
    to = body.get("to")
    if to not in SWITCH_TO:
        return json_error(400, f"request: to: {to!r} is not an input, expected {expected}", "error.body_field",
                          {"expected": expected})
    controller = request.app[CONTROLLER]
    before = controller.restreamer.ingest_status()
    try:
        status = await controller.restreamer.ingest.switch(to)
    except SwitchRefused as e:
        return json_error(409, str(e), "error.ingest_switch", {"to": to, "why": str(e)})
    controller.store.audit(request[IDENTITY].name, "ingest.switch", "ingest", to,
                           {"on_air": before.get("on_air")}, {"to": to})
    return json_response(status)


def _label(value: object) -> str:
    return redact(str(value)).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Metrics:
    """Prometheus text exposition, one family at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
        self.lines += [f"# HELP streamctl_{name} {help_text}", f"# TYPE streamctl_{name} {kind}"]
        for labels, value in samples:
            inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"streamctl_{name}{{{inner}}} {float(value or 0):g}" if inner
                              else f"streamctl_{name} {float(value or 0):g}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def metrics_text(controller) -> str:
    """The whole /metrics page: destinations, ingest, processes, audience sources."""
    restreamer = controller.restreamer
    dests = _destinations(controller)
    m = _Metrics()
    m.family("destination_state", "gauge", "1 for the destination's current state, 0 for the others",
             [({"name": d["name"], "platform": d["platform"], "state": s}, d["state"] == s)
              for d in dests for s in DestinationState])
    per_dest = [
        ("destination_bitrate_kbps", "gauge", "output bitrate ffmpeg reports, kbit/s", "bitrate_kbps"),
        ("destination_fps", "gauge", "output frames per second", "fps"),
        ("destination_speed", "gauge", "output speed relative to real time (1 = keeping up)", "speed"),
        ("destination_uptime_seconds", "gauge", "seconds live since the last (re)connect", "uptime_s"),
        ("destination_reconnects_total", "counter", "restarts after a failure", "reconnects"),
        ("destination_dropped_bytes_total", "counter", "program bytes dropped because the output fell behind",
         "bytes_dropped"),
    ]
    for name, kind, help_text, key in per_dest:
        m.family(name, kind, help_text,
                 [({"name": d["name"], "platform": d["platform"]}, d["health"].get(key)) for d in dests])
    with_health = [d for d in dests if d.get("platform_health")]
    m.family("destination_platform_health", "gauge",
             "1 for what the platform says it receives from the destination (good, ok, bad, noData, revoked)",
             [({"name": d["name"], "platform": d["platform"], "status": s}, d["platform_health"].get("status") == s)
              for d in with_health for s in PLATFORM_HEALTH])
    m.family("destination_platform_issues", "gauge", "configuration issues the platform names for the stream",
             [({"name": d["name"], "platform": d["platform"]}, len(d["platform_health"].get("issues") or []))
              for d in with_health])
    with_broadcast = [d for d in dests if (d.get("broadcast") or {}).get("id")]
    m.family("destination_broadcast_info", "gauge", "the platform broadcast of the destination and its status",
             [({"name": d["name"], "platform": d["platform"], "id": d["broadcast"]["id"],
                "status": d["broadcast"].get("status") or ""}, 1) for d in with_broadcast])
    ingest_status = restreamer.ingest_status()
    m.family("ingest_state", "gauge", "1 for the ingest's current state",
             [({"state": s}, ingest_status.get("state") == s) for s in IngestState])
    m.family("ingest_on_air", "gauge", "1 for the source the program carries now (primary, backup, slate)",
             [({"input": who}, ingest_status.get("on_air") == who) for who in ("primary", "backup", "slate")])
    m.family("ingest_switches_total", "counter", "changes of the source on air",
             [({}, (ingest_status.get("switch") or {}).get("switches"))])
    slate = ingest_status.get("slate") or {}
    m.family("ingest_slate_on_air", "gauge", "1 while the holding card feeds the platforms in place of the program",
             [({}, bool(slate.get("on_air")))])
    m.family("ingest_slate_total", "counter", "times the holding card went on air", [({}, slate.get("times"))])
    probe = ingest_status.get("probe") or {}
    m.family("ingest_video_kbps", "gauge", "probed video bitrate of the program, kbit/s",
             [({}, probe.get("video_kbps"))])
    monitor = ingest_status.get("monitor")
    if monitor is not None:
        m.family("program_condition", "gauge", "1 while the program is black, frozen or silent past its [monitor] time",
                 [({"condition": c}, bool(monitor.get(c))) for c in ("black", "frozen", "silent")])
        audio = ingest_status.get("audio") or {}
        m.family("program_rms_db", "gauge", "the program's audio RMS level per channel, dBFS",
                 [({"channel": i + 1}, level) for i, level in enumerate(audio.get("rms_db") or [])])
    m.family("processes", "gauge", "child processes (ffmpeg) running now", [({}, restreamer.processes)])
    m.family("alerts_unacknowledged", "gauge", "stored alerts (not recoveries) no operator has acknowledged",
             [({}, controller.store.unacknowledged_alerts())])
    sources_status = getattr(getattr(controller, "audience", None), "sources_status", None)
    if callable(sources_status):
        sources = sources_status()
        m.family("audience_source_state", "gauge", "1 for each audience source's current state",
                 [({"name": s.get("name"), "platform": s.get("platform"), "state": s.get("state")}, 1)
                  for s in sources])
    return m.text()


@requires("operator")
async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=metrics_text(request.app[CONTROLLER]), content_type="text/plain", charset="utf-8")


def setup(app: web.Application) -> None:
    """Register this area's routes."""
    app.router.add_get("/api/destinations", list_destinations)
    app.router.add_post("/api/destinations", add_destination)
    app.router.add_post("/api/destinations/{name}/{action}", control_destination)
    app.router.add_put("/api/destinations/{name}/key", replace_key)
    app.router.add_delete("/api/destinations/{name}", remove_destination)
    app.router.add_get("/api/ingest", ingest)
    app.router.add_get("/api/ingest/preview.jpg", preview)
    app.router.add_post("/api/ingest/switch", switch_ingest)
    app.router.add_get("/metrics", metrics)
