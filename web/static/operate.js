// /operate: ingest, every destination with live health and controls, audience sources, viewers, alerts.
import { api, attempt, batched, clock, data, el, live, number, platformBadge, T, toast } from "./console.js";

const $ = (id) => document.getElementById(id);
const destinations = new Map();
let sources = [];
let viewers = data.viewers;

const fixed = (value, digits = 0) => (value == null ? "–" : Number(value).toFixed(digits));
function duration(seconds) {
  if (seconds == null) return "–";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}` : `${m}:${String(s % 60).padStart(2, "0")}`;
}
const stateBadge = (state) => el("span", { class: `badge st-${String(state || "unknown").replace(/[^a-z_]/g, "")}`,
  text: T(`dstate.${state}`) === `dstate.${state}` ? String(state || "–") : T(`dstate.${state}`) });

// ---- destinations --------------------------------------------------------------------------------------

function control(name, verb) {
  return el("button", { class: `mini${verb === "stop" ? " danger" : ""}`, text: T(`ops.${verb}`),
    onclick: () => destinationAction(name, verb) });
}

function destinationRow(d) {
  const h = d.health || {};
  return el("tr", { dataset: { name: d.name } },
    el("th", { scope: "row" }, platformBadge(d.platform), " ", d.name),
    el("td", {}, stateBadge(d.state)),
    el("td", { class: "url", text: d.url || "" }),
    el("td", { class: "num", text: fixed(h.bitrate_kbps) }),
    el("td", { class: "num", text: fixed(h.fps, 1) }),
    el("td", { class: "num", text: h.speed == null ? "–" : `${fixed(h.speed, 2)}×` }),
    el("td", { class: "num", text: duration(h.uptime_s) }),
    el("td", { class: "num", text: h.reconnects == null ? "–" : String(h.reconnects) }),
    el("td", { class: "error small", text: h.last_error || d.error || "" }),
    el("td", { class: "controls" },
      ["stopped", "failed"].includes(d.state) ? control(d.name, "start") : control(d.name, "stop"),
      control(d.name, "restart"),
      el("button", { class: "mini ghost", text: T("ops.remove"), onclick: () => removeDestination(d.name) })));
}

const renderDestinations = batched(() => {
  const rows = [...destinations.values()].sort((a, b) => a.name.localeCompare(b.name)).map(destinationRow);
  $("dest-rows").replaceChildren(...rows);
  $("dest-empty").hidden = rows.length > 0;
});

async function loadDestinations() {
  const answer = await api("GET", "/api/destinations").catch(() => null);
  if (!answer) return;
  destinations.clear();
  for (const d of answer.destinations) destinations.set(d.name, d);
  renderDestinations();
}

async function destinationAction(name, verb) {
  if (await attempt(api("POST", `/api/destinations/${encodeURIComponent(name)}/${verb}`))) {
    toast(T("ops.done", { name, verb: T(`ops.${verb}`) }), "info");
    loadDestinations();
  }
}

function confirmDialog(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm-dialog");
    $("confirm-text").textContent = text;
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function removeDestination(name) {
  if (!(await confirmDialog(T("ops.confirm_remove", { name })))) return;
  if (await attempt(api("DELETE", `/api/destinations/${encodeURIComponent(name)}`))) {
    destinations.delete(name);
    renderDestinations();
  }
}

$("dest-add-open").addEventListener("click", () => { $("dest-form-error").hidden = true; $("dest-dialog").showModal(); });
$("dest-form").addEventListener("submit", async (event) => {
  const choice = event.submitter?.value;
  if (choice !== "save") return;
  event.preventDefault();
  const form = new FormData($("dest-form"));
  const body = { name: form.get("name"), platform: form.get("platform"), url: form.get("url"),
    profile: form.get("profile") || "copy", autostart: form.get("autostart") === "on" };
  if (form.get("key_env")) body.key_env = form.get("key_env");
  try {
    await api("POST", "/api/destinations", body);
    $("dest-dialog").close("save");
    $("dest-form").reset();
    loadDestinations();
  } catch (error) {
    $("dest-form-error").hidden = false;
    $("dest-form-error").textContent = error.message;
  }
});

// ---- ingest, audience, viewers, alerts ------------------------------------------------------------------

function renderIngest(ingest) {
  $("ingest-state").replaceWith(Object.assign(stateBadge(ingest.state), { id: "ingest-state" }));
  const probe = ingest.probe || {};
  const facts = Object.entries(probe).filter(([, v]) => v != null && typeof v !== "object");
  $("ingest-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  $("ingest-error").hidden = !ingest.error;
  $("ingest-error").textContent = ingest.error || "";
}

function quotaText(quota) {
  if (!quota) return "–";
  return T("ops.quota_left", { used: number(quota.used), left: number(quota.left) });
}

const renderSources = batched(() => {
  $("aud-rows").replaceChildren(...sources.map((s) => el("tr", {},
    el("th", { scope: "row", text: s.name }),
    el("td", {}, platformBadge(s.platform), ` ${s.platform}`),
    el("td", {}, stateBadge(s.state)),
    el("td", { text: clock(s.last_ok) || "–" }),
    el("td", { text: clock(s.last_message_at) || "–" }),
    el("td", { class: "num", text: s.comments == null ? "–" : number(s.comments) }),
    el("td", { text: quotaText(s.quota) }),
    el("td", { class: "error small", text: s.error || "" }))));
  $("aud-empty").hidden = sources.length > 0;
});

async function loadSources() {
  const answer = await api("GET", "/api/audience").catch(() => null);
  if (answer) { sources = answer.sources; renderSources(); }
}

function renderViewers() {
  $("viewers-total").textContent = number(viewers.total);
  const top = Math.max(1, ...viewers.sources.map((s) => s.viewers || 0));
  $("viewers-list").replaceChildren(...viewers.sources.map((s) => {
    const bar = el("span", { class: "bar" });
    bar.style.setProperty("--share", String((s.viewers || 0) / top));
    return el("li", {}, el("span", { class: "name" }, platformBadge(s.platform), ` ${s.name}`), bar,
      el("strong", { class: "num", text: number(s.viewers) }), s.manual ? el("span", { class: "badge muted", text: T("ops.manual") }) : null);
  }));
}

function addAlert(alert) {
  $("alerts-empty").hidden = true;
  $("alerts").prepend(el("li", { class: `alert ${alert.level}` },
    el("time", { text: clock(new Date(alert.at * 1000).toISOString()) }), " ",
    el("strong", { text: alert.source }), " ", alert.message));
  while ($("alerts").children.length > 50) $("alerts").lastElementChild.remove();
}

const reloadSources = batched(loadSources);

function onEvent(event) {
  switch (event.type) {
    case "DestinationStateChanged": {
      const d = destinations.get(event.name) || { name: event.name, platform: event.platform, health: {} };
      d.state = event.new;
      d.error = event.error;
      destinations.set(event.name, d);
      renderDestinations();
      break;
    }
    case "DestinationHealth": {
      const d = destinations.get(event.name);
      if (d) { d.health = { ...d.health, ...event.health }; renderDestinations(); }
      break;
    }
    case "DestinationRemoved": destinations.delete(event.name); renderDestinations(); break;
    case "IngestStateChanged": renderIngest(event); break;
    case "SourceStateChanged": reloadSources(); break;
    case "ViewersStored": viewers = { sources: event.sources, total: event.total }; renderViewers(); break;
    case "Alert": addAlert(event); break;
  }
}

async function catchUp() {
  const ingest = await api("GET", "/api/ingest").catch(() => null);
  if (ingest) renderIngest(ingest.ingest || ingest);
  await Promise.all([loadDestinations(), loadSources()]);
  const current = await api("GET", "/api/viewers").catch(() => null);
  if (current) { viewers = current; renderViewers(); }
}

renderViewers();
live(onEvent, catchUp);
setInterval(loadSources, 30000); // quota figures move without events
