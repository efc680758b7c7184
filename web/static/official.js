// /official: the forwarded queue for the hall, large and calm; the question on air stands out. Read-only.
import { api, batched, data, el, live, number, platformBadge, S, T } from "./console.js";

const Q = S.question;

const questions = new Map();
const $ = (id) => document.getElementById(id);
const mine = (q) => !data.assignee || q.assigned_to === data.assignee;

function upsert(q) {
  // Every new pending question reaches this screen as "hidden": nothing here changes, so nothing is redrawn.
  if (q.state === "hidden") {
    if (!questions.delete(q.id)) return;
  } else {
    questions.set(q.id, q);
  }
  render();
}

const render = batched(() => {
  const all = [...questions.values()].filter(mine);
  const onAir = all.find((q) => q.state === Q.on_air);
  $("on-air-card").hidden = !onAir;
  $("on-air-empty").hidden = Boolean(onAir);
  if (onAir) {
    $("on-air-card").dataset.id = onAir.id;
    $("on-air-text").textContent = onAir.text;
    $("on-air-author").textContent = onAir.author;
    $("on-air-platform").replaceChildren(platformBadge(onAir.platform), ` ${onAir.platform}`);
    $("on-air-count").textContent = onAir.merged_count > 1 ? T("questions.asked_by", { n: onAir.merged_count }) : "";
    $("on-air-assignee").textContent = onAir.assigned_to ? `→ ${onAir.assigned_to}` : "";
  }
  const next = all.filter((q) => q.state === Q.forwarded).sort((a, b) => (a.order ?? 1e9) - (b.order ?? 1e9) || a.id - b.id);
  $("next").replaceChildren(...next.map((q, i) => el("li", { class: "hall-question", dataset: { id: q.id } },
    el("span", { class: "pos", "aria-hidden": "true", text: String(i + 1) }),
    el("div", {},
      el("p", { class: "q-text", text: q.text }),
      el("p", { class: "q-meta" },
        el("span", { class: "author", text: q.author }), " ",
        el("span", { class: "platform" }, platformBadge(q.platform), ` ${q.platform}`),
        q.merged_count > 1 ? el("span", { class: "asked", text: ` · ${T("questions.asked_by", { n: q.merged_count })}` }) : null,
        q.assigned_to ? el("span", { class: "assignee", text: ` → ${q.assigned_to}` }) : null)))));
  $("next-count").textContent = next.length ? `(${number(next.length)})` : "";
  $("next-empty").hidden = next.length > 0;
  $("answered-count").textContent = number(all.filter((q) => q.state === Q.answered).length);
});

function tick() {
  const options = { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: data.timezone || undefined };
  $("clock").textContent = new Intl.DateTimeFormat(data.lang === "en" ? "en-GB" : "vi-VN", options).format(new Date());
}

async function catchUp() {
  const current = await api("GET", "/api/questions").catch(() => null);
  if (!current) return;
  questions.clear();
  for (const q of current.questions) upsert(q);
  render();
}

for (const q of data.questions) upsert(q);
tick();
setInterval(tick, 10000);
live((event) => { if (event.type === "QuestionChanged") upsert(event.question); }, catchUp);
