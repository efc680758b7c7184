// /operate: the control room's view of the program. Ingest, every destination with live health and controls,
// audience sources with quota and typed viewer counts, viewers, alerts. Rows are updated in place (a button
// redrawn under the pointer would swallow the click; an input redrawn would lose what is being typed).
import {
  api, batched, clock, data, decimal, el, fixed, live, number, platformBadge, reason, S, setHidden, setText, T, toast,
  Tor,
} from "./console.js";

const $ = (id) => document.getElementById(id);
const MAX_ALERTS = 200;
const G = S.groups;
const RUNNING = G.destination_running;
const TAKES_READINGS = ["manual", "webhook"];

// ---- formatting ------------------------------------------------------------------------------------------

const iso = (epochSeconds) => new Date(epochSeconds * 1000).toISOString();

function duration(seconds) {
  if (seconds == null || seconds < 0) return "–";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

const secondsSince = (isoTime) => (isoTime ? (Date.now() - Date.parse(isoTime)) / 1000 : null);

function rate(kbps) {
  if (!kbps || kbps <= 0) return null;
  return kbps >= 1000 ? T("unit.mbps", { n: decimal(kbps / 1000, 1) }) : T("unit.kbps", { n: number(Math.round(kbps)) });
}

const CODECS = { h264: "H.264", hevc: "H.265", av1: "AV1", vp6: "VP6", vp9: "VP9", flv1: "Sorenson H.263",
  aac: "AAC", mp3: "MP3", opus: "Opus", ac3: "AC-3", eac3: "E-AC-3", flac: "FLAC", pcm: "PCM", speex: "Speex" };
const codec = (name) => CODECS[name] || String(name).toUpperCase();

function frameRate(fps) {
  const whole = Math.abs(fps - Math.round(fps)) < 0.05; // a measured 29.98 is the 30 fps the encoder sends
  return T("unit.fps", { n: decimal(whole ? Math.round(fps) : fps, 2) });
}

function channelLayout(n) {
  if (n === 1) return T("ingest.mono");
  if (n === 2) return T("ingest.stereo");
  return { 6: "5.1", 8: "7.1" }[n] || T("ingest.channels", { n });
}

function videoSummary(p) {
  if (!p.video_codec) return null;
  let head = [codec(p.video_codec), p.video_profile].filter(Boolean).join(" ");
  if (p.width && p.height) head += ` ${p.width}×${p.height}`;
  const parts = [head];
  if (p.fps) parts.push(frameRate(p.fps));
  const gop = p.keyframe_interval_max_s ?? p.keyframe_interval_s;
  if (gop != null) parts.push(T("ingest.keyframe", { n: decimal(gop, 1) }));
  if (rate(p.video_kbps)) parts.push(rate(p.video_kbps));
  return parts.join(" · ");
}

function audioSummary(p) {
  if (!p.audio_codec) return null;
  const parts = [[codec(p.audio_codec), p.audio_profile].filter(Boolean).join(" ")];
  if (p.sample_rate) parts.push(T("unit.khz", { n: decimal(p.sample_rate / 1000, 1) }));
  if (p.channels) parts.push(channelLayout(p.channels));
  if (rate(p.audio_kbps)) parts.push(rate(p.audio_kbps));
  return parts.join(" · ");
}

function setBadge(node, family, state) {
  const kind = String(state || "unknown").replace(/[^a-z_]/g, "");
  const name = `badge st-${kind}`;
  if (node.className !== name) node.className = name;
  setText(node, Tor(`${family}.${state}`, state));
}

// Rebuild a node's children only when what they show changed (`key` says what they show).
function replaceIfChanged(node, key, build) {
  if (node.dataset.key === key) return;
  node.dataset.key = key;
  node.replaceChildren(...build());
}

// One table's items by name, a <tbody> each, updated in place and kept in name order. Nodes move only when
// the order really changed (moving a focused button would drop its focus).
class Rows {
  constructor(table, empty, count, view, update) {
    Object.assign(this, { table, empty, count, view, update, entries: new Map() });
  }

  get(name) { return this.entries.get(name); }
  values() { return this.entries.values(); }

  upsert(item) {
    let entry = this.entries.get(item.name);
    if (!entry) {
      entry = { name: item.name, item, v: this.view(item), busy: false };
      this.entries.set(item.name, entry);
    }
    entry.item = { ...entry.item, ...item };
    this.update(entry);
    return entry;
  }

  show(list) {
    const names = new Set(list.map((item) => item.name));
    for (const name of [...this.entries.keys()]) if (!names.has(name)) this.entries.delete(name);
    for (const item of list) this.upsert(item);
    this.arrange();
  }

  remove(name) {
    if (this.entries.delete(name)) this.arrange();
  }

  arrange() {
    const sorted = [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name));
    const bodies = [...this.table.tBodies];
    if (sorted.length !== bodies.length || sorted.some((entry, i) => entry.v.body !== bodies[i])) {
      for (const body of bodies) if (!sorted.some((entry) => entry.v.body === body)) body.remove();
      for (const entry of sorted) this.table.append(entry.v.body);
    }
    setHidden(this.empty, sorted.length > 0);
    setHidden(this.table, sorted.length === 0);
    setText(this.count, sorted.length ? String(sorted.length) : "");
  }
}

function noteItems(list, notes) {
  replaceIfChanged(list, JSON.stringify(notes), () => notes.map(([kind, label, text]) =>
    el("li", { class: `note-${kind}` }, el("span", { class: "note-label", text: label }), el("span", { text }))));
  setHidden(list.closest("tr"), notes.length === 0);
}

// ---- the confirm step --------------------------------------------------------------------------------------

function confirmDialog(title, text, verb) {
  return new Promise((resolve) => {
    const dialog = $("confirm-dialog");
    setText($("confirm-title"), title);
    setText($("confirm-text"), text);
    setText($("confirm-ok"), verb);
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

// ---- ingest -------------------------------------------------------------------------------------------------

let ingest = data.ingest || { state: S.ingest.stopped, probe: {} };
const LISTENERS = ["rtmp_listen", "srt_listen"];

function ingestFacts(i, p) {
  const facts = [[T("ingest.kind"), i.kind ? Tor(`ikind.${i.kind}`, i.kind) : null]];
  if (p.video_codec) {
    facts.push([T("ingest.video_codec"), [codec(p.video_codec), p.video_profile, p.video_level && T("ingest.level", { n: p.video_level })]
      .filter(Boolean).join(" ")]);
  }
  facts.push(
    [T("ingest.resolution"), p.width && p.height ? `${p.width}×${p.height}` : null],
    [T("ingest.frame_rate"), p.fps ? T("unit.fps", { n: decimal(p.fps, 2) }) : null],
    [T("ingest.keyframe_last"), p.keyframe_interval_s != null ? T("unit.s", { n: decimal(p.keyframe_interval_s, 2) }) : null],
    [T("ingest.keyframe_max"), p.keyframe_interval_max_s != null ? T("unit.s", { n: decimal(p.keyframe_interval_max_s, 2) }) : null],
    [T("ingest.video_bitrate"), p.video_kbps ? T("unit.kbps", { n: number(p.video_kbps) }) : null],
    [T("ingest.audio_codec"), p.audio_codec ? [codec(p.audio_codec), p.audio_profile].filter(Boolean).join(" ") : null],
    [T("ingest.sample_rate"), p.sample_rate ? T("unit.hz", { n: number(p.sample_rate) }) : null],
    [T("ingest.channel_count"), p.channels ? String(p.channels) : null],
    [T("ingest.audio_bitrate"), p.audio_kbps ? T("unit.kbps", { n: number(p.audio_kbps) }) : null],
    [T("ingest.encoder"), p.encoder],
    [T("ingest.media_seen"), p.media_s != null ? `${T("unit.s", { n: decimal(p.media_s, 1) })} · ${p.ready ? T("ingest.probe_done") : T("ingest.probing")}` : null],
    [T("ingest.feeds"), i.feeds != null ? number(i.feeds) : null],
    [T("ingest.restarts"), i.restarts != null ? number(i.restarts) : null],
  );
  const slate = i.slate || {};
  facts.push([T("ingest.slate"), slate.enabled
    ? [slate.on_air ? T("ingest.slate_on_air") : T("ingest.slate_ready"), slate.format, slate.times ? T("ingest.slate_times", { n: number(slate.times) }) : null].filter(Boolean).join(" · ")
    : T("ingest.slate_off")]);
  return facts.filter(([, value]) => value != null && value !== "");
}

function renderIngestSince() {
  const since = ingest.since;
  setText($("ingest-since"), since ? T("ingest.since", { time: clock(since), for: duration(secondsSince(since)) }) : "");
}

function renderIngest() {
  const i = ingest;
  const p = i.probe || {};
  const feeding = G.ingest_feeding.includes(i.state);
  $("ingest-card").dataset.state = i.state;
  setBadge($("ingest-state"), "istate", i.state);
  setHidden($("ingest-slate"), !i.slate?.on_air);
  renderIngestSince();
  setText($("ingest-url"), i.url || "–");
  $("ingest-url").title = i.url || "";
  setText($("ingest-kind"), i.kind ? Tor(`ikind.${i.kind}`, i.kind) : "");
  const listening = LISTENERS.includes(i.kind);
  setHidden($("ingest-publisher-row"), !listening);
  setText($("ingest-publisher"), i.publisher || T("ingest.no_publisher"));
  // Lost: the lines show the feed that went away, and say so.
  const suffix = i.state === S.ingest.lost ? ` · ${T("ingest.last_seen")}` : feeding && !p.ready ? ` · ${T("ingest.probing")}` : "";
  const line = (summary, missing) => (summary ? summary + suffix : feeding && p.ready ? missing : "–");
  setText($("ingest-video"), line(videoSummary(p), T("ingest.no_video")));
  setText($("ingest-audio"), line(audioSummary(p), T("ingest.no_audio")));
  $("ingest-video").classList.toggle("warn", feeding && Boolean(p.ready) && !p.video_codec);
  $("ingest-audio").classList.toggle("warn", feeding && Boolean(p.ready) && !p.audio_codec);
  $("ingest-card").classList.toggle("stale", i.state === S.ingest.lost);
  setHidden($("ingest-error-box"), !i.error);
  setText($("ingest-error"), reason(i));
  const slate = i.slate || {};
  let slateNote = "";
  if (slate.on_air) slateNote = T("ingest.slate_note", { time: clock(slate.since) || "–" });
  else if (i.state === S.ingest.lost && !slate.enabled) slateNote = T("ingest.no_slate");
  if (slate.error) slateNote = [slateNote, T("ingest.slate_error", { error: reason(slate) })].filter(Boolean).join(" ");
  setHidden($("ingest-slate-note"), !slateNote);
  setText($("ingest-slate-note"), slateNote);
  const facts = ingestFacts(i, p);
  replaceIfChanged($("ingest-facts"), JSON.stringify(facts), () =>
    facts.flatMap(([label, value]) => [el("dt", { text: label }), el("dd", { text: String(value) })]));
}

function ingestChanged(event) {
  const slate = ingest.slate || {};
  ingest = {
    ...ingest, state: event.state, probe: event.probe || {}, error: event.error, error_key: event.error_key,
    since: event.state !== ingest.state ? iso(event.at) : ingest.since,
    slate: { ...slate, on_air: event.slate, since: event.slate ? (slate.on_air ? slate.since : iso(event.at)) : null },
  };
  renderIngest();
  reloadIngest(); // the publisher and the slate's format come with the full status
  reloadDestinations(); // a new probe re-checks every destination's platform rules
}

async function loadIngest() {
  const answer = await api("GET", "/api/ingest").catch(() => null);
  if (answer) { ingest = answer.ingest || answer; renderIngest(); }
}
const reloadIngest = batched(loadIngest);

// ---- confidence monitor: the program's picture and audio meters ---------------------------------------------

const PREVIEW_EVERY_MS = 1000;
const METER_FLOOR_DB = -60; // the bottom of a meter; quieter shows as empty
const METERS_STALE_MS = 2000; // no levels for this long: the meters fall to nothing
let previewTimer = null;
let previewLoading = false;

// Two stacked images: the hidden one loads the next picture and is shown only once it has decoded, so a refresh
// never flashes an empty frame; a failed load (503: nothing fresh) keeps the last picture, marked as not fresh.
function refreshPreview() {
  if (previewLoading || document.hidden || $("monitor").dataset.enabled !== "yes") return;
  const shown = $("preview").querySelector("img.shown");
  const next = shown.id === "preview-a" ? $("preview-b") : $("preview-a");
  previewLoading = true;
  next.onload = () => {
    previewLoading = false;
    next.hidden = false;
    next.classList.add("shown");
    next.removeAttribute("aria-hidden");
    next.alt = T("monitor.preview");
    shown.classList.remove("shown");
    shown.setAttribute("aria-hidden", "true");
    shown.alt = "";
    $("preview").classList.add("fresh");
    $("preview").dataset.loaded = String(Number($("preview").dataset.loaded || 0) + 1);
  };
  next.onerror = () => {
    previewLoading = false;
    $("preview").classList.remove("fresh");
  };
  next.src = `/api/ingest/preview.jpg?t=${Date.now()}`;
}

function startPreview() {
  clearInterval(previewTimer);
  previewTimer = setInterval(refreshPreview, PREVIEW_EVERY_MS);
  refreshPreview();
}

let levelsAt = 0;

function meterHeight(db) {
  return `${Math.max(0, Math.min(100, ((db - METER_FLOOR_DB) / -METER_FLOOR_DB) * 100))}%`;
}

function renderMeters(peaks, rms) {
  const box = $("meters");
  while (box.children.length > rms.length) box.lastChild.remove();
  while (box.children.length < rms.length) {
    box.append(el("div", { class: "meter" }, el("div", { class: "rms" }), el("div", { class: "peak" })));
  }
  rms.forEach((level, i) => {
    const meter = box.children[i];
    meter.querySelector(".rms").style.height = meterHeight(level);
    meter.querySelector(".peak").style.bottom = meterHeight(peaks[i] ?? level);
    meter.dataset.rms = String(level);
    meter.title = T("monitor.channel", { n: i + 1, peak: decimal(peaks[i], 1), rms: decimal(level, 1) });
  });
}

function levelsArrived(event) {
  levelsAt = Date.now();
  renderMeters(event.peak_db || [], event.rms_db || []);
}

function fallSilent() {
  if (levelsAt && Date.now() - levelsAt > METERS_STALE_MS) {
    levelsAt = 0;
    const floor = Array.from($("meters").children, () => METER_FLOOR_DB);
    renderMeters(floor, floor);
  }
}

// ---- destinations -------------------------------------------------------------------------------------------

function destinationView(d) {
  const v = {};
  v.body = el("tbody", { class: `item-body${d.backup_of ? " backup-row" : ""}`, dataset: { name: d.name } },
    el("tr", { class: "main" },
      el("th", { scope: "row", class: "name-cell" },
        el("div", { class: "name-line" }, platformBadge(d.platform), el("span", { class: "name", text: d.name, title: d.name })),
        v.url = el("div", { class: "url" }), v.encoder = el("div", { class: "muted small" })),
      el("td", { class: "state-cell" }, v.state = el("span", { class: "badge" }), v.since = el("span", { class: "since" })),
      v.bitrate = el("td", { class: "num" }), v.fps = el("td", { class: "num" }), v.speed = el("td", { class: "num" }),
      v.uptime = el("td", { class: "num" }), v.reconnects = el("td", { class: "num" }),
      el("td", { class: "actions-cell" }, v.controls = el("div", { class: "controls" }))),
    el("tr", { class: "notes-row", hidden: true }, el("td", { colspan: "8" }, v.notes = el("ul", { class: "notes" }))));
  return v;
}

function destinationNotes(d) {
  const h = d.health || {};
  const failing = G.destination_down.includes(d.state);
  const notes = (d.rule_keys || []).map((rule) => ["warn", T("ops.rule_warning", { platform: d.platform }),
    T(rule.key, rule.params)]);
  if (d.error) notes.push([failing ? "error" : "muted", T("ops.error"), reason(d)]);
  if (h.last_error && !(d.error || "").includes(h.last_error) && h.last_error_key !== d.error_key) {
    notes.push([failing ? "error" : "muted", T("ops.last_error"), reason(h, "last_error")]);
  }
  return [...notes, ...broadcastNotes(d)];
}

// The platform's own broadcast and what it says it receives, beside our figures.
const BAD_HEALTH = ["bad", "noData", "revoked"];
function broadcastNotes(d) {
  const b = d.broadcast, p = d.platform_health, notes = [];
  if (b) {
    const where = b.watch_url ? ` · ${b.watch_url}` : "";
    notes.push([b.error ? "error" : "muted", T("ops.broadcast", { platform: d.platform }),
      `${b.status || "–"}${b.id ? ` (${b.id})` : ""}${where}${b.error ? ` — ${b.error}` : ""}`]);
    const sync = b.sync || {};
    if (sync.state && sync.state !== "none") {
      notes.push([sync.state === "ok" ? "muted" : "warn", T("ops.title_sync"),
        `${T(`ops.sync_${sync.state}`)}${sync.title ? `: ${sync.title}` : ""}${sync.error ? ` — ${sync.error}` : ""}`]);
    }
  }
  if (p) {
    const issues = (p.issues || []).map((i) => i.type).join(", ");
    notes.push([BAD_HEALTH.includes(p.status) ? "error" : "muted", T("ops.platform_health", { platform: d.platform }),
      `${p.status}${issues ? ` — ${issues}` : ""}${p.at ? ` (${clock(p.at)})` : ""}`]);
  }
  return notes;
}

const LIVE_BROADCAST = ["live", "LIVE"];
const OVER_BROADCAST = ["complete", "revoked", "VOD", "LIVE_STOPPED"];
function broadcastControls(entry, button) {
  const b = entry.item.broadcast;
  if (!b || !b.id || OVER_BROADCAST.includes(b.status)) return [];
  return LIVE_BROADCAST.includes(b.status) ? [button("end", "danger")] : [button("go_live", "accent")];
}

function controls(entry) {
  const { item: d } = entry;
  const button = (verb, style) => el("button", { class: `mini ${style}`, text: T(`ops.${verb}`), disabled: entry.busy,
    "aria-label": `${T(`ops.${verb}`)} ${d.name}`, onclick: () => destinationAction(d.name, verb) });
  const run = RUNNING.includes(d.state) ? [button("stop", "danger"), button("restart", "")] : [button("start", "accent")];
  const key = el("button", { class: "mini ghost key", text: T("ops.new_key"), disabled: entry.busy,
    "aria-label": T("ops.key_title", { name: d.name }), onclick: () => askKey(d.name) });
  // A backup output goes with its destination.
  return d.backup_of ? run : [...broadcastControls(entry, button), ...run, key, button("remove", "ghost")];
}

function updateDestination(entry) {
  const { item: d, v } = entry;
  const h = d.health || {};
  const onAir = d.state === S.destination.live;
  setText(v.url, d.url || "");
  v.url.title = d.url || "";
  const about = [d.backup_of ? T("ops.backup_of", { name: d.backup_of }) : null,
    d.encoder && d.encoder !== "copy" ? T("ops.encoder", { encoder: d.encoder }) : null].filter(Boolean);
  setText(v.encoder, about.join(" · "));
  setHidden(v.encoder, about.length === 0);
  setBadge(v.state, "dstate", d.state);
  setText(v.since, d.since ? clock(d.since) : "");
  setText(v.bitrate, onAir ? number(Math.round(h.bitrate_kbps || 0)) : "–");
  setText(v.fps, onAir ? fixed(h.fps || 0, 1) : "–");
  setText(v.speed, onAir ? `${fixed(h.speed || 0, 2)}×` : "–");
  v.speed.classList.toggle("warn", onAir && h.speed > 0 && h.speed < 0.97); // falling behind real time
  setText(v.uptime, onAir ? duration(h.uptime_s) : "–");
  setText(v.reconnects, number(h.reconnects ?? 0));
  v.reconnects.classList.toggle("warn", (h.reconnects || 0) > 0);
  v.body.dataset.state = d.state;
  replaceIfChanged(v.controls, `${d.state}|${entry.busy}|${data.lang}|${d.broadcast?.status}|${d.broadcast?.id}`,
    () => controls(entry));
  noteItems(v.notes, destinationNotes(d));
}

const destinations = new Rows($("dest-table"), $("dest-empty"), $("dest-count"), destinationView, updateDestination);

async function loadDestinations() {
  const answer = await api("GET", "/api/destinations").catch(() => null);
  if (answer) destinations.show(answer.destinations);
}
const reloadDestinations = batched(loadDestinations);

async function destinationAction(name, verb) {
  const entry = destinations.get(name);
  if (!entry || entry.busy) return;
  // Stop and remove cut a platform off; restarting a live one drops its stream for a few seconds. The dialog
  // names the destination as the operator named it, never the platform's code ("custom").
  const asks = verb === "stop" || verb === "remove" || verb === "end" || verb === "go_live"
    || (verb === "restart" && entry.item.state === S.destination.live);
  const platform = entry.item.platform;
  if (asks && !(await confirmDialog(T(`ops.confirm_${verb}_title`, { name }), T(`ops.confirm_${verb}`, { name, platform }),
    T(`ops.${verb}`)))) return;
  entry.busy = true;
  updateDestination(entry);
  try {
    if (verb === "remove") {
      await api("DELETE", `/api/destinations/${encodeURIComponent(name)}`);
      destinations.remove(name);
      toast(T("ops.removed", { name }), "info");
    } else {
      const answer = await api("POST", `/api/destinations/${encodeURIComponent(name)}/${verb}`);
      entry.item = { ...entry.item, ...answer };
      toast(T("ops.done", { name, verb: T(`ops.${verb}`) }), "info");
    }
  } catch (error) {
    toast(`${name}: ${error.message}`);
  } finally {
    entry.busy = false;
    if (destinations.get(name) === entry) updateDestination(entry);
  }
}

// ---- the event's title and description on every platform's broadcast ------------------------------------------

async function loadEvent() {
  const answer = await api("GET", "/api/event").catch(() => null);
  if (!answer) return;
  $("event-title").value = answer.title || "";
  $("event-description").value = answer.description || "";
  $("event-title-box").hidden = !(answer.platforms || []).length;
}

$("event-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("event-apply").disabled = true;
  try {
    const answer = await api("PATCH", "/api/event", { title: $("event-title").value, description: $("event-description").value });
    const failed = answer.platforms.filter((p) => p.state !== "ok");
    toast(failed.length ? failed.map((p) => `${p.destination}: ${T(`ops.sync_${p.state}`)}`).join("; ") : T("ops.event_applied"),
      failed.length ? "error" : "info");
    reloadDestinations(); // each destination's note shows what its platform took
  } catch (error) {
    toast(error.message);
  } finally {
    $("event-apply").disabled = false;
  }
});
loadEvent();

// ---- a new stream key, typed (never shown again) ------------------------------------------------------------

let keyFor = null;

function askKey(name) {
  keyFor = name;
  setText($("key-dialog-title"), T("ops.key_title", { name }));
  setText($("key-hint"), T("ops.key_replace_hint", { name }));
  setHidden($("key-form-error"), true);
  $("key-input").value = "";
  $("key-dialog").showModal();
  $("key-input").focus();
}

$("key-form").addEventListener("submit", async (event) => {
  if (event.submitter?.value !== "save") return;
  event.preventDefault();
  const name = keyFor;
  const key = $("key-input").value.trim();
  const fail = (message) => { setText($("key-form-error"), message); setHidden($("key-form-error"), false); };
  if (!/^\S{4,}$/.test(key)) { fail(T("ops.v_key")); return; }
  $("key-save").disabled = true;
  try {
    const answer = await api("PUT", `/api/destinations/${encodeURIComponent(name)}/key`, { key });
    $("key-input").value = "";
    $("key-dialog").close("save");
    destinations.upsert(answer);
    toast(T("ops.key_replaced", { name }), "info");
  } catch (error) {
    fail(issueLines(error).join(" "));
  } finally {
    $("key-save").disabled = false;
  }
});
$("key-dialog").addEventListener("close", () => { $("key-input").value = ""; });

// ---- adding a destination -------------------------------------------------------------------------------------

const form = $("dest-form");
const field = (name) => form.elements.namedItem(name);
const FIELDS = { name: "ops.name", platform: "ops.platform", url: "ops.url", key: "ops.key", key_env: "ops.key_env",
  profile: "ops.profile" };

function platformChosen() {
  const platform = field("platform").value;
  const preset = data.platforms?.[platform] || {};
  field("url").placeholder = preset.url || "rtmp://host/app";
  field("url").required = !preset.url;
  setText($("dest-url-hint"), preset.url ? T("ops.url_hint_default") : T("ops.url_hint_required"));
  setText($("dest-platform-note"), Tor(`pnote.${platform}`, preset.note || ""));
}

function profileChosen() {
  const option = field("profile").selectedOptions[0];
  setText($("dest-profile-note"), option ? Tor(`profile.${option.value.replaceAll("-", "_")}`, option.title) : "");
}

// The server's lines name the field ("request: destination.url: 'ftp://…' uses ftp, expected rtmp or rtmps"):
// shown under the form's own label for it, and the field marked.
function showIssues(issues) {
  const bad = new Set();
  const lines = issues.map((line) => line.replace(/^request: destination\.(\w+): /, (whole, name) => {
    if (!FIELDS[name]) return whole;
    bad.add(name);
    return `${T(FIELDS[name])}: `;
  }));
  for (const [name, key] of Object.entries(FIELDS)) if (lines.some((line) => line.startsWith(`${T(key)}:`))) bad.add(name);
  setHidden($("dest-form-error"), lines.length === 0);
  $("dest-form-issues").replaceChildren(...lines.map((text) => el("li", { text })));
  for (const name of Object.keys(FIELDS)) field(name).toggleAttribute("aria-invalid", bad.has(name));
}

// The server's reasons in the viewer's language: "<field label>: <sentence>", never its English lines.
function issueLines(error) {
  if (!error.fields.length) return [error.message];
  return error.fields.map((f) => {
    const sentence = T(f.key, f.params);
    if (FIELDS[f.field]) return `${T(FIELDS[f.field])}: ${sentence}`;
    return f.field ? `${f.field}: ${sentence}` : sentence; // an event-file key reads the same in every language
  });
}

function localIssues() {
  const issues = [];
  const name = field("name");
  const label = (key) => T(FIELDS[key]);
  if (name.validity.valueMissing) issues.push(`${label("name")}: ${T("ops.v_missing")}`);
  else if (name.validity.patternMismatch) issues.push(`${label("name")}: ${T("ops.v_name_pattern")}`);
  else if (destinations.get(name.value)) issues.push(`${label("name")}: ${T("ops.v_name_taken", { name: name.value })}`);
  const url = field("url");
  if (url.validity.valueMissing) issues.push(`${label("url")}: ${T("ops.v_missing")}`);
  else if (url.value && !/^(rtmps?|srt|file):/i.test(url.value.trim())) issues.push(`${label("url")}: ${T("ops.v_url_scheme")}`);
  if (field("key_env").validity.patternMismatch) issues.push(`${label("key_env")}: ${T("ops.v_key_env")}`);
  const key = field("key").value.trim();
  if (key && !/^\S{4,}$/.test(key)) issues.push(`${label("key")}: ${T("ops.v_key")}`);
  else if (key && field("key_env").value.trim()) issues.push(`${label("key")}: ${T("ops.v_key_both")}`);
  return issues;
}

$("dest-add-open").addEventListener("click", () => {
  showIssues([]);
  platformChosen();
  profileChosen();
  $("dest-dialog").showModal();
  field("name").focus();
});
$("dest-dialog").addEventListener("close", () => { field("key").value = ""; }); // a typed key never lingers
field("platform").addEventListener("change", platformChosen);
field("profile").addEventListener("change", profileChosen);
form.addEventListener("submit", async (event) => {
  if (event.submitter?.value !== "save") return; // Cancel closes the dialog
  event.preventDefault();
  const issues = localIssues();
  showIssues(issues);
  if (issues.length) {
    form.querySelector("[aria-invalid]")?.focus();
    return;
  }
  const body = { name: field("name").value.trim(), platform: field("platform").value, profile: field("profile").value,
    autostart: field("autostart").checked };
  if (field("url").value.trim()) body.url = field("url").value.trim();
  if (field("key_env").value.trim()) body.key_env = field("key_env").value.trim();
  if (field("key").value.trim()) body.key = field("key").value.trim();
  $("dest-save").disabled = true;
  try {
    const entry = await api("POST", "/api/destinations", body);
    $("dest-dialog").close("save");
    form.reset();
    destinations.upsert(entry);
    destinations.arrange();
    toast(T("ops.added", { name: entry.name }), "info");
  } catch (error) {
    showIssues(issueLines(error));
    form.querySelector("[aria-invalid]")?.focus();
  } finally {
    $("dest-save").disabled = false;
  }
});

// ---- viewers ----------------------------------------------------------------------------------------------------

let viewers = data.viewers || { sources: [], total: 0 };

function renderViewers() {
  setText($("viewers-total"), number(viewers.total));
  const top = Math.max(1, ...viewers.sources.map((s) => s.viewers || 0));
  $("viewers-list").replaceChildren(...viewers.sources.map((s) => {
    const bar = el("span", { class: "bar" });
    bar.style.setProperty("--share", String((s.viewers || 0) / top));
    return el("li", {},
      el("span", { class: "name", title: s.name }, platformBadge(s.platform), el("span", { class: "label", text: s.name }),
        s.manual ? el("span", { class: "badge", text: T("ops.manual"), title: T("ops.manual_title") }) : null),
      bar, el("strong", { class: "num", text: number(s.viewers) }));
  }));
  setHidden($("viewers-empty"), viewers.sources.length > 0);
  for (const entry of sources.values()) updateSource(entry);
}

// ---- audience sources -----------------------------------------------------------------------------------------


function sourceView(s) {
  const v = {};
  let viewersCell;
  if (TAKES_READINGS.includes(s.platform)) {
    v.input = el("input", { type: "number", name: "viewers", min: "0", step: "1", inputmode: "numeric", required: true,
      class: "reading-input", placeholder: T("ops.viewers_placeholder"), "aria-label": T("ops.viewers_for", { name: s.name }) });
    v.send = el("button", { class: "mini accent", type: "submit", text: T("ops.set_viewers") });
    v.readingError = el("div", { class: "error small", role: "alert", hidden: true });
    viewersCell = el("td", { class: "viewers-cell" },
      el("form", { class: "reading", novalidate: true, onsubmit: (event) => sendReading(s.name, event) }, v.input, v.send),
      v.last = el("div", { class: "last" }), v.readingError);
  } else {
    viewersCell = el("td", { class: "viewers-cell" }, v.count = el("strong", { class: "num" }), v.last = el("div", { class: "last" }));
  }
  v.body = el("tbody", { class: "item-body", dataset: { name: s.name } },
    el("tr", { class: "main" },
      el("th", { scope: "row", class: "name-cell" },
        el("div", { class: "name-line" }, platformBadge(s.platform), el("span", { class: "name", text: s.name, title: s.name })),
        el("div", { class: "sub", text: Tor(`aplatform.${s.platform}`, s.platform) })),
      el("td", { class: "state-cell" }, v.state = el("span", { class: "badge" }), v.since = el("span", { class: "since" })),
      v.activity = el("td", { class: "activity" }),
      v.comments = el("td", { class: "num" }),
      v.quota = el("td", { class: "quota" }),
      viewersCell,
      v.controls = el("td", { class: "controls" })),
    el("tr", { class: "notes-row", hidden: true }, el("td", { colspan: "7" }, v.notes = el("ul", { class: "notes" }))));
  return v;
}

// ---- changing one source while running: its token, its video id, on or off (the others are not touched) --------

// The key that names what a platform's source reads, as PATCH /api/audience/{name} takes it.
const SOURCE_ID = { youtube: "video_id", facebook: "live_video_id", tiktok: "unique_id", twitch: "channel" };
const NO_CREDENTIAL = ["manual", "simulated"];

function sourceControls(entry) {
  const { item: s } = entry;
  const cfg = s.config || { name: s.name, platform: s.platform };
  const button = (text, label, style, onclick) => el("button", { class: `mini ${style}`, text, disabled: entry.busy,
    "aria-label": label, onclick });
  const out = [];
  if (!NO_CREDENTIAL.includes(cfg.platform)) {
    out.push(button(T("ops.new_token"), T("ops.token_title", { name: cfg.name }), "ghost", () => askSource(cfg, "credential")));
  }
  const key = SOURCE_ID[cfg.platform];
  if (key) {
    out.push(button(T(`ops.id.${key}`), T("ops.id_title", { name: cfg.name, what: T(`ops.id.${key}`) }), "ghost",
      () => askSource(cfg, key, s.settings?.[key])));
  }
  const on = s.enabled !== false;
  out.push(button(T(on ? "ops.disable" : "ops.enable"), `${T(on ? "ops.disable" : "ops.enable")} ${cfg.name}`,
    on ? "ghost" : "accent", () => switchSource(cfg, !on)));
  return out;
}

async function switchSource(cfg, enabled) {
  if (!enabled && !(await confirmDialog(T("ops.confirm_disable_title", { name: cfg.name }),
    T("ops.confirm_disable", { name: cfg.name }), T("ops.disable")))) return;
  try {
    await api("PATCH", `/api/audience/${encodeURIComponent(cfg.name)}`, { enabled });
    await loadSources();
    toast(T(enabled ? "ops.source_enabled" : "ops.source_disabled", { name: cfg.name }), "info");
  } catch (error) {
    toast(`${cfg.name}: ${error.message}`);
  }
}

let sourceAsk = null;

function askSource(cfg, what, current) {
  sourceAsk = { cfg, what };
  const secret = what === "credential";
  const label = secret ? T("ops.token") : T(`ops.id.${what}`);
  setText($("src-dialog-title"), secret ? T("ops.token_title", { name: cfg.name }) : T("ops.id_title", { name: cfg.name, what: label }));
  setText($("src-label"), label);
  setText($("src-hint"), T(secret ? "ops.token_hint" : "ops.id_hint", { name: cfg.name }));
  setText($("src-save"), T(secret ? "ops.use_token" : "ops.use_id"));
  $("src-input").type = secret ? "password" : "text";
  $("src-input").value = secret ? "" : current || "";
  setHidden($("src-form-error"), true);
  $("src-dialog").showModal();
  $("src-input").focus();
}

$("src-form").addEventListener("submit", async (event) => {
  if (event.submitter?.value !== "save" || !sourceAsk) return;
  event.preventDefault();
  const { cfg, what } = sourceAsk;
  const value = $("src-input").value.trim();
  const fail = (message) => { setText($("src-form-error"), message); setHidden($("src-form-error"), false); };
  if (!value || /\s/.test(value)) { fail(T("ops.v_source_value")); return; }
  $("src-save").disabled = true;
  try {
    const name = encodeURIComponent(cfg.name);
    if (what === "credential") await api("PUT", `/api/audience/${name}/credential`, { credential: value });
    else await api("PATCH", `/api/audience/${name}`, { [what]: value });
    $("src-input").value = "";
    $("src-dialog").close("save");
    await loadSources();
    toast(T(what === "credential" ? "ops.token_replaced" : "ops.id_changed", { name: cfg.name, value }), "info");
  } catch (error) {
    fail(issueLines(error).join(" "));
  } finally {
    $("src-save").disabled = false;
  }
});
$("src-dialog").addEventListener("close", () => { $("src-input").value = ""; sourceAsk = null; });

function quotaLines(q) {
  if (!q) return [el("span", { class: "muted", text: T("ops.no_quota") })];
  const meter = el("span", { class: "meter", title: T("ops.quota_share", { n: decimal((100 * q.used) / Math.max(1, q.daily), 0) }) });
  meter.style.setProperty("--share", String(Math.min(1, q.used / Math.max(1, q.daily))));
  const runsOut = q.runs_out_at
    ? el("span", { class: "warn", text: T("ops.quota_runs_out", { time: clock(q.runs_out_at) }) })
    : el("span", { text: T("ops.quota_lasts") });
  return [
    el("div", {}, T("ops.quota_used", { used: number(q.used), daily: number(q.daily) }), " ", meter, " ",
      el("strong", { text: T("ops.quota_left_short", { left: number(q.left) }) })),
    el("div", { class: "sub" }, T("ops.quota_every", { n: decimal(q.interval_s, 1) }), " · ", runsOut),
  ];
}

function lastReading(name) {
  return viewers.sources.find((x) => x.name === name) || null;
}

function updateSource(entry) {
  const { item: s, v } = entry;
  setBadge(v.state, "sstate", s.state);
  setText(v.since, s.since ? clock(s.since) : "");
  const activity = [];
  if (!TAKES_READINGS.includes(s.platform)) activity.push([T("ops.last_ok"), clock(s.last_ok) || "–"]);
  if (s.platform !== "manual") activity.push([T("ops.last_message"), clock(s.last_message_at) || "–"]);
  replaceIfChanged(v.activity, JSON.stringify(activity), () => (activity.length ? activity.map(([label, time]) =>
    el("div", { class: "pair" }, el("span", { class: "muted", text: label }), " ", el("span", { class: "time", text: time })))
    : [el("span", { class: "muted", text: "–" })]));
  setText(v.comments, s.comments == null ? "–" : number(s.comments));
  replaceIfChanged(v.quota, JSON.stringify([s.quota, data.lang]), () => quotaLines(s.quota));
  const last = lastReading(s.name);
  if (v.count) setText(v.count, number(last?.viewers ?? s.viewers));
  const figures = last && { n: number(last.viewers), time: clock(last.at) };
  const lastText = last ? (last.manual ? T("ops.last_typed", figures) : T("ops.last_reading", figures)) : "";
  setText(v.last, v.input ? lastText || T("ops.no_reading") : last ? T("ops.reading_at", { time: clock(last.at) }) : "");
  const failing = G.source_failing.includes(s.state);
  noteItems(v.notes, s.error ? [[failing ? "error" : "muted", T("ops.error"), reason(s)]] : []);
  replaceIfChanged(v.controls, `${s.state}|${s.enabled}|${entry.busy}|${data.lang}`, () => sourceControls(entry));
}

const sources = new Rows($("aud-table"), $("aud-empty"), $("aud-count"), sourceView, updateSource);

async function loadSources() {
  const answer = await api("GET", "/api/audience").catch(() => null);
  if (answer) sources.show(answer.sources);
}

async function sendReading(name, event) {
  event.preventDefault();
  const entry = sources.get(name);
  if (!entry) return;
  const { input, send, readingError } = entry.v;
  const raw = input.value.trim();
  const fail = (message) => { setText(readingError, message); setHidden(readingError, false); input.setAttribute("aria-invalid", ""); };
  if (!/^\d{1,12}$/.test(raw)) return fail(T("ops.viewers_invalid"));
  setHidden(readingError, true);
  input.removeAttribute("aria-invalid");
  send.disabled = true;
  try {
    const answer = await api("POST", `/api/viewers/${encodeURIComponent(name)}`, { viewers: Number(raw) });
    input.value = "";
    toast(T("ops.viewers_recorded", { name, n: number(answer.viewers) }), "info");
    loadViewers(); // the stored figure (and its time) as every page sees it
  } catch (error) {
    fail(error.message);
  } finally {
    send.disabled = false;
  }
}

async function loadViewers() {
  const answer = await api("GET", "/api/viewers").catch(() => null);
  if (answer) { viewers = answer; renderViewers(); }
}

// ---- alerts -------------------------------------------------------------------------------------------------------
// Stored by the server, one per failure (repeats count up), newest first; the socket sends each change whole.

const alerts = new Map((data.alerts || []).map((alert) => [alert.id, alert]));
const alertText = (alert) => alert.texts?.[data.lang] ?? alert.text ?? "";

function alertItem(alert) {
  const level = String(alert.level || "info").replace(/[^a-z]/g, "");
  const meta = [];
  if (alert.count > 1) meta.push(T("alerts.times", { n: number(alert.count), time: clock(alert.last_at) }));
  if (alert.resolved_at && !alert.recovery) meta.push(T("alerts.resolved", { time: clock(alert.resolved_at) }));
  let action = null;
  if (alert.acknowledged_by) action = el("span", { class: "acked muted", text: T("alerts.acked", { name: alert.acknowledged_by }) });
  else if (!alert.recovery) {
    action = el("button", { class: "mini ack", type: "button", text: T("alerts.ack"),
      "aria-label": `${T("alerts.ack")}: ${alert.source}`, onclick: () => acknowledge(alert.id) });
  }
  return el("li", { class: `alert level-${level}${alert.recovery ? " recovery" : ""}${alert.resolved_at && !alert.recovery ? " resolved" : ""}`,
    dataset: { id: String(alert.id), code: alert.code } },
    el("time", { datetime: alert.at, text: clock(alert.at) }),
    el("span", { class: "level", text: alert.recovery ? T("alerts.recovered") : Tor(`alert.${level}`, level) }),
    el("span", { class: "source", text: alert.source || "", title: alert.source || "" }),
    el("span", { class: "message", text: alertText(alert) }),
    meta.length ? el("span", { class: "meta muted", text: meta.join(" · ") }) : null,
    action);
}

function renderAlerts() {
  const newest = [...alerts.values()].sort((a, b) => b.id - a.id).slice(0, MAX_ALERTS);
  // Keyed by what the list shows (an alert's params may hold the raw error, which stays out of the page).
  const shown = newest.map((a) => [a.id, a.count, a.last_at, a.resolved_at, a.acknowledged_by, alertText(a)]);
  replaceIfChanged($("alerts"), JSON.stringify([shown, data.lang]), () => newest.map(alertItem));
  setHidden($("alerts-empty"), newest.length > 0);
  const open = newest.filter((alert) => !alert.recovery && !alert.acknowledged_by).length;
  setText($("alerts-count"), open ? String(open) : "");
  renderRefused();
}

function alertStored(alert) {
  alerts.set(alert.id, alert);
  renderAlerts();
  if (alert.code === "destination.rules") reloadDestinations(); // a rule warning changed
}

async function acknowledge(id) {
  const answer = await api("POST", `/api/alerts/${id}/ack`).catch((error) => { toast(error.message); return null; });
  if (answer) alertStored({ ...alerts.get(id), ...answer });
}

async function loadAlerts() {
  const answer = await api("GET", "/api/alerts").catch(() => null);
  if (!answer) return;
  for (const alert of answer.alerts) alerts.set(alert.id, alert);
  renderAlerts();
}

// The latest refused publisher (a wrong stream key or app) on the ingest card: who, when, why.
function renderRefused() {
  const refused = [...alerts.values()].filter((a) => a.code === "ingest.refused" && !a.recovery).sort((a, b) => b.id - a.id)[0];
  const p = refused?.params || {};
  setHidden($("ingest-refused-row"), !refused || Boolean(refused.resolved_at));
  setText($("ingest-refused"), refused ? T("ingest.refused_line", { address: p.address || "?", time: clock(refused.last_at),
    reason: reason(p, "reason") }) : "");
}

// ---- the strip: program on air, destinations live, sources reading, viewers -----------------------------------------

function renderStrip(status) {
  if (!status) return;
  $("strip-program").dataset.state = status.state;
  setText($("strip-program-value"), T(`strip.${status.program || "none"}`));
  setText($("strip-destinations-value"), T("strip.destinations", { live: number(status.destinations_live), total: number(status.destinations) }));
  $("strip-destinations").classList.toggle("warn", status.destinations_live < status.destinations);
  setText($("strip-sources-value"), T("strip.sources", { reading: number(status.sources_reading), total: number(status.sources) }));
  $("strip-sources").classList.toggle("warn", status.sources_reading < status.sources);
  setText($("strip-viewers-value"), number(status.viewers));
}

// ---- live ---------------------------------------------------------------------------------------------------------

function onEvent(event) {
  switch (event.type) {
    case "DestinationStateChanged":
      destinations.upsert({ name: event.name, platform: event.platform, state: event.new, error: event.error,
        error_key: event.error_key,
        since: iso(event.at), ...(destinations.get(event.name) ? {} : { health: {}, rule_warnings: [] }) });
      destinations.arrange();
      if (!destinations.get(event.name).item.url) reloadDestinations(); // one added elsewhere: fetch the rest
      break;
    case "DestinationHealth": {
      const entry = destinations.get(event.name);
      if (entry) {
        entry.item.health = { ...entry.item.health, ...event.health };
        updateDestination(entry);
      }
      break;
    }
    case "PlatformHealthChanged": {
      const entry = destinations.get(event.name);
      if (entry) {
        if (event.broadcast && Object.keys(event.broadcast).length) entry.item.broadcast = event.broadcast;
        entry.item.platform_health = Object.keys(event.health || {}).length ? event.health : null;
        updateDestination(entry);
      }
      break;
    }
    case "DestinationRemoved":
      destinations.remove(event.name);
      break;
    case "IngestStateChanged": ingestChanged(event); break;
    case "ProgramLevels": levelsArrived(event); break;
    case "SourceStateChanged":
      if (event.status?.name === event.name) {
        sources.upsert(event.status);
        sources.arrange();
      } else {
        reloadSources();
      }
      break;
    case "ViewersStored": viewers = { sources: event.sources, total: event.total }; renderViewers(); break;
    case "AlertStored": alertStored(event.alert); break;
    case "ProgramStatus": renderStrip(event.status); break;
  }
}

const reloadSources = batched(loadSources);

async function loadStatus() {
  const answer = await api("GET", "/api/status").catch(() => null);
  if (answer) renderStrip(answer);
}

async function catchUp() {
  await Promise.all([loadIngest(), loadDestinations(), loadSources(), loadViewers(), loadAlerts(), loadStatus()]);
}

renderIngest();
destinations.show(data.destinations || []);
renderViewers();
sources.show(data.sources || []);
renderAlerts();
renderStrip(data.status);
live(onEvent, catchUp);
setInterval(renderIngestSince, 1000);
setInterval(fallSilent, 500);
renderMeters(data.ingest?.audio?.peak_db || [], data.ingest?.audio?.rms_db || []);
startPreview();
setInterval(loadSources, 30000); // quota figures move without events
