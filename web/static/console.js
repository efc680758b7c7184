// Shared by the console pages: page data, messages, API calls with the CSRF token, the live socket, DOM helpers.
// Audience text only ever reaches the page through textContent (el's "text" and string children), never as HTML.

export const data = JSON.parse(document.getElementById("page-data").textContent);
// Every state name and group comes from the server (streamctl/states.py): S.question.on_air, S.groups.question_queue.
export const S = data.states;

export function T(key, params) {
  let text = data.messages[key] ?? key;
  for (const [name, value] of Object.entries(params || {})) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

// A message from a family (states, kinds) the server may grow: an unknown member shows as itself, not as a key.
export function Tor(key, fallback) {
  return key in data.messages ? T(key) : String(fallback ?? "–");
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) if (child != null && child !== false) node.append(child);
  return node;
}

// Live counters are written many times a second: writing the same text or flag again would still make the
// browser restyle and lay the page out, so only real changes touch the DOM.
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}

export async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") options.headers["X-CSRF-Token"] = data.csrf;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let payload = null;
  try { payload = await response.json(); } catch { payload = null; }
  if (!response.ok) {
    // The sentence of the answer's catalogue key, in the viewer's language; the English `error` is for scripts.
    const known = payload?.key && payload.key in data.messages;
    const error = new Error(known ? T(payload.key, payload.params) : T("error.request"));
    error.status = response.status;
    error.detail = payload?.error || `HTTP ${response.status}`;
    error.issues = Array.isArray(payload?.issues) ? payload.issues.map(String) : [error.message];
    // What is wrong with each field, as catalogue keys (streamctl/console/issues.py): shown instead of the lines.
    error.fields = Array.isArray(payload?.issue_keys) ? payload.issue_keys : [];
    throw error;
  }
  return payload;
}

// Why something failed, in the viewer's language: the server puts `<field>_key` (streamctl/reasons.py) beside
// each error text; the text itself is for scripts and the log, never shown on a page.
export function reason(item, field = "error") {
  if (!item || !item[field]) return "";
  return T(`reason.${item[`${field}_key`] || "other"}`);
}

export function toast(message, level = "error") {
  const box = document.getElementById("toasts");
  const item = el("div", { class: `toast ${level}`, text: message });
  box.append(item);
  setTimeout(() => item.remove(), level === "error" ? 6000 : 3000);
}

export async function attempt(promise) {
  try { return await promise; } catch (error) { toast(error.message); return null; }
}

// "Hạ Long" and "ha long" fold alike, as the server's search does.
export function fold(text) {
  return String(text).replace(/[đĐ]/g, "d").normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase()
    .replace(/\s+/g, " ").trim();
}

export const locale = data.lang === "en" ? "en-GB" : "vi-VN";
const timeFormat = new Intl.DateTimeFormat(locale, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZone: data.timezone || undefined,
});
export const numberFormat = new Intl.NumberFormat(locale);
export function clock(iso) { return iso ? timeFormat.format(new Date(iso)) : ""; }
export function number(value) { return value == null ? "–" : numberFormat.format(value); }
const decimals = [0, 1, 2].map((n) => new Intl.NumberFormat(locale, { maximumFractionDigits: n }));
// 2.5 as "2.5" (en) or "2,5" (vi), with at most `digits` decimals and none that are zero.
export function decimal(value, digits = 1) { return value == null ? "–" : decimals[digits].format(value); }
const fixedDecimals = [1, 2].map((n) => new Intl.NumberFormat(locale, { minimumFractionDigits: n, maximumFractionDigits: n }));
// Always `digits` decimals (1 or 2), for figures read down a column.
export function fixed(value, digits = 1) { return value == null ? "–" : fixedDecimals[digits - 1].format(value); }

const SHORT = { youtube: "YT", facebook: "FB", tiktok: "TT", twitch: "TW", zalo: "ZL", weibo: "WB",
  webhook: "WH", simulated: "SIM", manual: "MAN", custom: "RTMP" };
export function platformBadge(platform) {
  const name = String(platform || "");
  const kind = name.toLowerCase().replace(/[^a-z0-9]/g, "") || "other";
  return el("span", { class: `plat plat-${kind}`, title: name, text: SHORT[kind] || name.slice(0, 3).toUpperCase() });
}

// ---- the top bar: program on air / off air, unacknowledged alerts, the error sound -------------------------

const MUTE_KEY = "streamctl.alerts.muted";
let audio = null;

export function muted() { return localStorage.getItem(MUTE_KEY) === "1"; }

function showMute() {
  const button = document.getElementById("alerts-mute");
  if (!button) return;
  const off = muted();
  button.setAttribute("aria-pressed", String(off));
  button.classList.toggle("off", off);
  button.title = T(off ? "alerts.unmute" : "alerts.mute");
  button.setAttribute("aria-label", button.title);
}

function beep() {
  if (muted()) return;
  try {
    audio ||= new AudioContext();
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.value = 0.15;
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.3);
  } catch { /* no sound on this machine: the flash still shows */ }
}

export function showProgram(status) {
  const box = document.getElementById("program-status");
  if (!box || !status) return;
  box.dataset.state = status.state;
  setText(box.querySelector(".label"), T(`program.${status.state}`));
}

export function showUnacknowledged(n) {
  const badge = document.getElementById("alerts-badge");
  if (!badge) return;
  badge.dataset.count = String(n);
  setText(document.getElementById("alerts-unacked"), String(n));
  badge.title = T("alerts.count", { n });
  badge.setAttribute("aria-label", badge.title);
}

// A new error (not a repeat, not a recovery) flashes the count and beeps, unless muted.
function alertArrived(alert, unacknowledged) {
  showUnacknowledged(unacknowledged);
  if (alert.level !== "error" || alert.recovery || alert.count !== 1) return;
  const badge = document.getElementById("alerts-badge");
  if (badge) {
    badge.classList.remove("flash");
    void badge.offsetWidth; // restart the animation
    badge.classList.add("flash");
  }
  beep();
}

// After a (re)connect: what changed while the socket was down.
async function catchUpTopBar() {
  if (document.getElementById("program-status")) {
    const answer = await api("GET", "/api/status").catch(() => null);
    if (answer) showProgram(answer);
  }
  if (document.getElementById("alerts-badge")) {
    const answer = await api("GET", "/api/alerts?limit=1").catch(() => null);
    if (answer) showUnacknowledged(answer.unacknowledged);
  }
}

document.getElementById("alerts-mute")?.addEventListener("click", () => {
  localStorage.setItem(MUTE_KEY, muted() ? "0" : "1");
  showMute();
});
showMute();

// The live socket: reconnects with backoff; `onOpen` runs after every (re)connect so the page can catch up.
// Every page keeps the top bar live from it; the page's own `onEvent` sees every event too.
export function live(onEvent, onOpen) {
  const status = document.getElementById("live-status");
  const show = (state) => {
    if (!status) return;
    status.dataset.state = state;
    status.querySelector(".label").textContent = T(`live.${state}`);
  };
  let delay = 500;
  let ping = null;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    ws.onopen = () => {
      delay = 500;
      show("live");
      catchUpTopBar();
      ping = setInterval(() => ws.readyState === 1 && ws.send("ping"), 20000);
      if (onOpen) onOpen();
    };
    ws.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "pong") return;
      if (event.type === "ProgramStatus") showProgram(event.status);
      else if (event.type === "AlertStored") alertArrived(event.alert, event.unacknowledged);
      onEvent(event);
    };
    ws.onclose = (closed) => {
      clearInterval(ping);
      if (closed.code === 4401) { // signed out elsewhere (user removed, token revoked): sign in again
        location.assign("/login");
        return;
      }
      show("offline");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  open();
}

// One render per animation frame however many events arrive in it.
export function batched(render) {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; render(); });
  };
}

export function typing(event) {
  const target = event.target;
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}
