// /moderate: the merged comment stream, the question desk and the hall queue, live for several moderators.
import { api, attempt, batched, clock, data, el, fold, live, number, platformBadge, S, setHidden, setText, T, toast, typing } from "./console.js";

const Q = S.question;
const G = S.groups;

const MAX_ROWS = 400;        // comments kept on the page; older ones are a search away
const CHUNK_ROWS = 40;       // comments drawn into one block (see drawComments)
const WINDOW = 50;           // question cards (groups) drawn per lane at first; the end of the list draws more
const PAGE = 200;            // questions fetched per page further back
const LOCK_RENEW_MS = 20000; // the server holds an edit lock for 60 s

const comments = new Map();   // id -> comment, newest rendered first
const questions = new Map();  // id -> question
const notes = new Map();      // "platform:author_id" -> note
let lastCommentId = 0;
let paused = false;
let held = [];                // comments that arrived while paused
let tab = Q.pending;
let order = "newest";
let search = "";
let mergeSource = null;
let activePane = "questions";
const selected = { comments: null, questions: null, queue: null };

const $ = (id) => document.getElementById(id);
const lists = { comments: $("comments"), questions: $("question-lanes"), queue: $("queue") };
const filters = { platform: $("f-platform"), q: $("f-q"), questions: $("f-questions") };

// ---- comments ------------------------------------------------------------------------------------------

const noteKey = (platform, authorId) => `${platform}:${authorId}`;

function matches(c) {
  if (filters.platform.value && c.platform !== filters.platform.value) return false;
  if (filters.questions.checked && !c.is_question) return false;
  const words = fold(filters.q.value).split(" ").filter(Boolean);
  if (!words.length) return true;
  const haystack = fold(`${c.author} ${c.text}`);
  return words.every((w) => haystack.includes(w));
}

// Rows carry no buttons and no listeners of their own: hundreds arrive each second. One action bar moves to
// the row being pointed at or selected, and the list handles clicks for all its rows.
function commentRow(c) {
  const note = notes.get(noteKey(c.platform, c.author_id));
  return el("li", { class: `item comment${c.hidden ? " hidden" : ""}${c.is_question ? " is-question" : ""}`,
    dataset: { id: c.id }, tabindex: "-1" },
    el("div", { class: "meta" },
      platformBadge(c.platform),
      el("time", { datetime: c.published_at, text: clock(c.published_at) }),
      el("span", { class: "author", text: c.author }),
      note ? el("span", { class: "note-badge", title: note.note, text: note.note }) : null,
      c.amount ? el("span", { class: "badge paid", text: c.amount }) : null,
      c.is_question ? el("span", { class: "badge q", title: T("comments.flagged"), text: "?" }) : null,
      c.hidden ? el("span", { class: "badge muted", text: T("comments.hidden") }) : null),
    el("p", { class: "text", text: c.text }));
}

const rowId = (row) => Number(row.dataset.id);
const commentActions = el("div", { class: "actions" },
  el("button", { class: "mini", "aria-keyshortcuts": "q", text: T("action.make_question"),
    onclick: () => makeQuestion(rowId(commentActions.parentElement)) }),
  el("button", { class: "mini", "aria-keyshortcuts": "h", text: T("action.hide"),
    onclick: () => hide(rowId(commentActions.parentElement)) }),
  el("button", { class: "mini", "aria-keyshortcuts": "n", text: T("action.note"),
    onclick: () => openNote(rowId(commentActions.parentElement)) }));

function showActions(row) {
  if (!row) { commentActions.remove(); return; }
  const c = comments.get(rowId(row));
  commentActions.children[1].textContent = c?.hidden ? T("action.unhide") : T("action.hide");
  if (commentActions.parentElement !== row) row.append(commentActions);
}

const commentRows = lists.comments.getElementsByClassName("comment"); // live, newest first
const findItem = (pane, id) => lists[pane].querySelector(`.item[data-id="${id}"]`);
const selectedRow = () => (selected.comments == null ? null : findItem("comments", selected.comments));
lists.comments.addEventListener("mouseover", (event) => {
  const row = event.target.closest(".comment");
  if (row && row !== commentActions.parentElement) showActions(row);
});
lists.comments.addEventListener("mouseleave", () => showActions(selectedRow()));
lists.comments.addEventListener("click", (event) => {
  const row = event.target.closest(".comment");
  if (row && !event.target.closest("button")) select("comments", row);
});

// Rows sit in blocks of up to CHUNK_ROWS, each contained for layout and paint: a new comment on top then
// moves a few blocks down instead of every row (which the browser would lay out and paint again, hundreds
// of times a second). The blocks are invisible to assistive technology: the rows stay items of one list.
function chunk(rows) {
  return el("li", { class: "chunk", role: "none" }, el("ol", { role: "none" }, rows));
}

function prependRows(rows) {
  const first = lists.comments.firstElementChild;
  const room = first ? CHUNK_ROWS - first.firstElementChild.children.length : 0;
  if (room > 0) first.firstElementChild.prepend(...rows.slice(-room));
  const rest = rows.slice(0, Math.max(0, rows.length - room));
  const chunks = [];
  for (let end = rest.length; end > 0; end -= CHUNK_ROWS) chunks.unshift(chunk(rest.slice(Math.max(0, end - CHUNK_ROWS), end)));
  lists.comments.prepend(...chunks);
}

// Comments are drawn once per animation frame, however many messages came in it; a burst larger than the
// list only draws the newest MAX_ROWS (the rest stay a search away, as older rows do).
let unrendered = [];
const drawComments = batched(() => {
  const batch = unrendered;
  unrendered = [];
  const rows = [];
  for (let i = batch.length - 1; i >= 0 && rows.length < MAX_ROWS; i -= 1) {
    if (matches(batch[i])) rows.push(commentRow(batch[i]));
  }
  if (rows.length) prependRows(rows);
  trimComments();
  updateCommentsMeta();
});

function addComments(batch) {
  for (const c of batch) {
    comments.set(c.id, c);
    lastCommentId = Math.max(lastCommentId, c.id);
  }
  if (paused) {
    held.push(...batch);
    setHidden($("paused-note"), false);
    setText($("paused-note"), T("comments.held", { n: held.length }));
    return;
  }
  unrendered.push(...batch);
  if (unrendered.length > MAX_ROWS * 2) unrendered = unrendered.slice(-MAX_ROWS);
  forgetOldComments(); // here, not when drawing: a hidden tab draws no frames
  drawComments();
}

function trimComments() {
  let extra = commentRows.length - MAX_ROWS;
  while (extra > 0) {
    const rows = lists.comments.lastElementChild.firstElementChild;
    if (rows.children.length <= extra) {
      extra -= rows.children.length;
      lists.comments.lastElementChild.remove();
    } else {
      // One range removal instead of a removal per row.
      const range = document.createRange();
      range.setStartBefore(rows.children[rows.children.length - extra]);
      range.setEndAfter(rows.lastElementChild);
      range.deleteContents();
      extra = 0;
    }
  }
}

function forgetOldComments() {
  if (comments.size > MAX_ROWS * 3) {
    const keep = new Set(unrendered.map((c) => c.id).concat(held.map((c) => c.id)));
    for (const row of commentRows) keep.add(rowId(row));
    for (const id of comments.keys()) if (!keep.has(id)) comments.delete(id);
  }
}

function rerenderComments() {
  unrendered = [];
  const rows = [...comments.values()].filter(matches).sort((a, b) => b.id - a.id).slice(0, MAX_ROWS);
  lists.comments.replaceChildren();
  prependRows(rows.map(commentRow));
  restoreSelection("comments");
  updateCommentsMeta();
}

function updateCommentsMeta() {
  setText($("comments-count"), number(commentRows.length));
  setHidden($("comments-empty"), commentRows.length > 0);
}

function replaceComment(id) {
  const row = findItem("comments", id);
  if (row) {
    const fresh = commentRow(comments.get(id));
    const hadActions = commentActions.parentElement === row;
    if (row.classList.contains("selected")) fresh.classList.add("selected");
    row.replaceWith(fresh);
    if (hadActions) showActions(fresh);
  }
}

async function makeQuestion(id) {
  const answer = await attempt(api("POST", "/api/questions", { comment_id: id }));
  if (answer) { upsertQuestion(answer.question, answer.created ? "create" : null); toast(T("toast.question_made"), "info"); }
}

async function hide(id) {
  const c = comments.get(id);
  if (c) await attempt(api("POST", `/api/comments/${id}/${c.hidden ? "unhide" : "hide"}`));
}

function togglePause() {
  paused = !paused;
  $("pause").setAttribute("aria-pressed", String(paused));
  $("pause").textContent = paused ? T("comments.resume") : T("comments.pause");
  if (!paused) {
    const batch = held;
    held = [];
    $("paused-note").hidden = true;
    addComments(batch);
  }
}

// ---- questions -----------------------------------------------------------------------------------------

function lockedByOther(q) {
  return q.locked_by && q.locked_by !== data.user && (q.lockUntil || 0) > Date.now();
}

// The desk holds thousands of questions: the page keeps what it has loaded, draws a window of each lane, and
// pages further back from the server. Two lanes per tab: questions moderators made, and the auto-flagged ones.
const LANES = ["moderator", "auto"];
const laneLists = { moderator: $("questions-moderator"), auto: $("questions") };
const counts = data.counts;   // origin -> state -> how many the server has, kept current from events
const windows = { moderator: WINDOW, auto: WINDOW };
// `${state}:${origin}:${order}` -> { next, loading }: `next` is the server's cursor and also the edge of what is
// loaded without a gap (newest: ids from it up; oldest: ids up to it); null when the lane is all here.
const cursors = {};
for (const [key, next] of Object.entries(data.lanes)) cursors[`${key}:newest`] = { next, loading: false };
const groupOthers = new Map(); // id of a drawn card -> the likely duplicates drawn under it

function bump(q, delta) {
  const row = (counts[q.origin] ||= {});
  row[q.state] = Math.max(0, (row[q.state] || 0) + delta);
}

function upsertQuestion(q, action) {
  if (q.lock_expires_in) {
    q.lockUntil = Date.now() + q.lock_expires_in * 1000;
    setTimeout(renderQuestions, q.lock_expires_in * 1000 + 50);
  }
  const old = questions.get(q.id);
  if (old && (old.state !== q.state || old.origin !== q.origin)) { bump(old, -1); bump(q, 1); }
  else if (!old && action === "create") bump(q, 1);
  questions.set(q.id, q);
  renderQuestions();
}

const cursorOf = (origin) => cursors[`${tab}:${origin}:${order}`];

function laneQuestions(origin) {
  const words = fold(search).split(" ").filter(Boolean);
  const edge = cursorOf(origin)?.next;
  const out = [];
  for (const q of questions.values()) {
    if (q.state !== tab || q.origin !== origin) continue;
    if (words.length) {
      q.folded ??= fold(`${q.author} ${q.text} ${q.original_text}`);
      if (!words.every((w) => q.folded.includes(w))) continue;
    } else if (edge != null && (order === "newest" ? q.id < edge : q.id > edge)) continue;
    out.push(q);
  }
  return out;
}

// Likely duplicates (each question's `similar`) drawn as one card: the question most asked (the first asker
// among equals) with the others under it, merged into it with one click.
function groupsOf(list) {
  const parent = new Map(list.map((q) => [q.id, q.id]));
  const find = (x) => { while (parent.get(x) !== x) { parent.set(x, parent.get(parent.get(x))); x = parent.get(x); } return x; };
  for (const q of list) {
    for (const other of q.similar || []) {
      if (!parent.has(other)) continue;
      const a = find(q.id), b = find(other);
      if (a !== b) parent.set(a, b);
    }
  }
  const members = new Map();
  for (const q of list) {
    const root = find(q.id);
    if (!members.has(root)) members.set(root, []);
    members.get(root).push(q);
  }
  const groups = [];
  for (const group of members.values()) {
    group.sort((a, b) => b.merged_count - a.merged_count || a.id - b.id);
    let newest = 0, oldest = Infinity;
    for (const q of group) { newest = Math.max(newest, q.id); oldest = Math.min(oldest, q.id); }
    groups.push({ leader: group[0], others: group.slice(1).sort((a, b) => b.id - a.id), newest, oldest });
  }
  return groups.sort(order === "newest" ? (a, b) => b.newest - a.newest : (a, b) => a.oldest - b.oldest);
}

async function loadMore(origin) {
  const key = `${tab}:${origin}:${order}`;
  const cursor = (cursors[key] ||= { next: order === "newest" ? null : 0, loading: false });
  if (cursor.loading || cursor.next == null) return;
  cursor.loading = true;
  const params = new URLSearchParams({ state: tab, origin, order, limit: String(PAGE) });
  if (cursor.next) params.set(order === "newest" ? "before" : "after", String(cursor.next));
  const answer = await attempt(api("GET", `/api/questions?${params}`));
  cursor.loading = false;
  if (!answer) return;
  for (const q of answer.questions) if (!questions.has(q.id)) questions.set(q.id, q);
  cursor.next = answer[order === "newest" ? "next_before" : "next_after"];
  Object.assign(counts, answer.counts);
  windows[origin] += WINDOW;
  renderQuestions();
}

// The first page of a lane in an order not loaded yet (oldest first), and search results from the server.
function ensureLoaded() {
  for (const origin of LANES) if (!cursorOf(origin)) loadMore(origin);
}

const searchQuestions = batched(async () => {
  if (!search) { renderQuestions(); return; }
  const asked = search;
  const found = await Promise.all(LANES.map((origin) => api("GET", `/api/questions?${new URLSearchParams({
    state: tab, origin, order, q: asked, limit: String(PAGE) })}`).catch(() => null)));
  if (asked !== search) return;
  for (const answer of found) for (const q of answer?.questions || []) if (!questions.has(q.id)) questions.set(q.id, q);
  renderQuestions();
});

async function mergeGroup(id, ids) {
  const answer = await attempt(api("POST", `/api/questions/${id}/merge_group`, { ids }));
  if (!answer) return;
  upsertQuestion(answer.question);
  // Why, in the moderator's language (the server's English reason is for the log and scripts).
  if (answer.skipped.length) toast(T("questions.merge_skipped", { n: answer.skipped.length, reason: T("error.question") }));
  else toast(T("toast.merged", { n: answer.merged.length }), "info");
}

function button(label, key, action, extra = {}) {
  return el("button", { class: "mini", "aria-keyshortcuts": key || null, text: label, onclick: action, ...extra });
}

// Cards are rebuilt only when what they show changed: hundreds of pending questions re-sort every frame.
const cards = new Map(); // id -> { key, node }
function cachedCard(q, position, others = []) {
  const key = [q.updated_at, q.state, q.locked_by, lockedByOther(q), mergeSource === q.id, mergeSource != null,
    position, q.merged_count, q.assigned_to, q.text, others.map((o) => o.id).join(",")].join("|");
  const hit = cards.get(q.id);
  if (hit && hit.key === key) return hit.node;
  const node = questionCard(q, position, others);
  cards.set(q.id, { key, node });
  return node;
}

function questionCard(q, position, others = []) {
  const taken = lockedByOther(q);
  const actions = [];
  const act = (name, payload) => () => questionAction(q.id, name, payload);
  if (mergeSource && mergeSource !== q.id && !G.question_closed.includes(q.state)) {
    actions.push(button(T("action.merge_here"), "m", () => mergeInto(q.id), { class: "mini accent" }));
  }
  if (q.state === Q.pending) actions.push(button(T("action.approve"), "a", act("approve")));
  if (G.question_editable.includes(q.state)) {
    actions.push(button(T("action.forward"), "f", act("forward"), { class: "mini accent" }));
    actions.push(button(T("action.edit"), "e", () => openEdit(q.id)));
  }
  if (q.state === Q.forwarded) actions.push(button(T("action.on_air"), "o", act("on_air"), { class: "mini onair" }));
  if (q.state === Q.on_air) actions.push(button(T("action.off_air"), "o", act("off_air")));
  if (G.question_queue.includes(q.state)) {
    actions.push(button(T("action.answered"), "x", act("answered")));
    actions.push(button("↑", "Shift+K", () => move(q, -1), { title: T("action.move_up"), "aria-label": T("action.move_up") }));
    actions.push(button("↓", "Shift+J", () => move(q, 1), { title: T("action.move_down"), "aria-label": T("action.move_down") }));
    actions.push(button(T("action.assign"), "t", () => openAssign(q.id)));
  }
  if (others.length && G.question_mergeable.includes(q.state)) {
    actions.unshift(button(T("action.merge_group", { n: others.length }), "g",
      () => mergeGroup(q.id, others.map((o) => o.id)), { class: "mini accent merge-group" }));
  }
  if (G.question_mergeable.includes(q.state)) {
    actions.push(button(T("action.merge"), "m", () => startMerge(q.id)));
    actions.push(button(T("action.dismiss"), "d", act("dismiss"), { class: "mini danger" }));
  }
  if (G.question_closed.includes(q.state)) actions.push(button(T("action.restore"), "u", act("restore")));
  if (taken) for (const b of actions) b.disabled = true;

  const card = el("li", { class: `item card state-${q.state}${taken ? " taken" : ""}${mergeSource === q.id ? " merging" : ""}`,
    dataset: { id: q.id, members: others.length ? others.map((o) => o.id).join(" ") : null }, tabindex: "-1" },
    el("div", { class: "meta" },
      position ? el("span", { class: "pos", text: String(position) }) : null,
      q.state === Q.on_air ? el("span", { class: "badge onair", text: T("state.on_air") }) : null,
      platformBadge(q.platform),
      el("span", { class: "author", text: q.author }),
      el("time", { datetime: q.asked_at, text: clock(q.asked_at) }),
      q.merged_count > 1 ? el("span", { class: "badge count", title: T("questions.asked_by", { n: q.merged_count }),
        text: `×${q.merged_count}` }) : null,
      q.edited ? el("span", { class: "badge muted", title: q.original_text, text: T("questions.edited") }) : null,
      q.merged_into ? el("span", { class: "badge muted", text: T("questions.merged_into", { id: q.merged_into }) }) : null,
      q.assigned_to ? el("span", { class: "badge assignee", text: `→ ${q.assigned_to}` }) : null,
      taken ? el("span", { class: "badge lock", text: T("questions.taken", { name: q.locked_by }) }) : null),
    el("p", { class: "text", text: q.text }),
    q.edited ? el("p", { class: "original", text: `${T("edit.original")}: ${q.original_text}` }) : null,
    others.length ? el("div", { class: "similar" },
      el("p", { class: "similar-head", text: T("questions.similar", { n: others.length }) }),
      el("ul", { class: "similar-list" }, others.slice(0, 3).map((o) => el("li", { dataset: { id: o.id } },
        el("span", { class: "author", text: o.author }), " ", el("span", { text: o.text })))),
      others.length > 3 ? el("p", { class: "similar-more", text: T("questions.more", { n: others.length - 3 }) }) : null) : null,
    el("div", { class: "actions" }, actions));
  card.addEventListener("click", (event) => {
    if (event.target.closest("button")) return;
    select(card.closest("#queue") ? "queue" : "questions", card);
  });
  return card;
}

// Puts `nodes` in `list` in order, moving only what changed: a new card is one insert, not 200 reinserted
// cards to restyle and lay out again.
function setChildren(list, nodes) {
  const current = list.children;
  if (current.length === nodes.length && nodes.every((node, i) => current[i] === node)) return;
  const wanted = new Set(nodes);
  for (const child of [...current]) if (!wanted.has(child)) child.remove();
  let at = list.firstElementChild;
  for (const node of nodes) {
    if (node === at) at = at.nextElementSibling;
    else list.insertBefore(node, at);
  }
}

const byId = (a, b) => a.id - b.id;
const byOrder = (a, b) => (a.order ?? 1e9) - (b.order ?? 1e9) || a.id - b.id;

// The end of a lane: a button that draws the next window of what is loaded, or loads the next page from the
// server (a button, not a scroll trigger: cards must not move under a moderator's pointer on their own).
const moreNodes = {};
for (const origin of LANES) {
  moreNodes[origin] = el("li", { class: "more" }, el("button", { class: "chip", onclick: () => {
    const node = moreNodes[origin];
    if (node.dataset.kind === "window") { windows[origin] += WINDOW; renderQuestions(); } else loadMore(origin);
  } }));
}

const renderQuestions = batched(() => {
  for (const s of [Q.pending, Q.approved, Q.dismissed]) {
    const n = LANES.reduce((sum, origin) => sum + (counts[origin]?.[s] || 0), 0);
    setText(document.querySelector(`[data-count="${s}"]`), n ? number(n) : "");
  }
  groupOthers.clear();
  let shown = 0;
  for (const origin of LANES) {
    const groups = tab === Q.dismissed ? laneQuestions(origin).sort(order === "newest" ? (a, b) => b.id - a.id : byId)
      .map((q) => ({ leader: q, others: [] })) : groupsOf(laneQuestions(origin));
    const nodes = groups.slice(0, windows[origin]).map((g) => {
      if (g.others.length) groupOthers.set(g.leader.id, g.others.map((o) => o.id));
      return cachedCard(g.leader, null, g.others);
    });
    const more = moreNodes[origin];
    const cursor = cursorOf(origin);
    if (groups.length > windows[origin]) {
      more.dataset.kind = "window";
      setText(more.firstElementChild, T("questions.more", { n: groups.length - windows[origin] }));
      nodes.push(more);
    } else if (!search && cursor?.next != null) {
      more.dataset.kind = "page";
      setText(more.firstElementChild, T("questions.load_older"));
      nodes.push(more);
    }
    setChildren(laneLists[origin], nodes);
    setText($(`lane-count-${origin}`), number(counts[origin]?.[tab] || 0));
    shown += groups.length;
  }
  setHidden($("questions-empty"), shown > 0);

  const all = [...questions.values()];
  const queue = all.filter((q) => G.question_queue.includes(q.state)).sort(byOrder);
  setChildren(lists.queue, queue.map((q, i) => cachedCard(q, i + 1)));
  setText($("queue-count"), queue.length ? number(queue.length) : "");
  setHidden($("queue-empty"), queue.length > 0);

  const answered = all.filter((q) => q.state === Q.answered).sort((a, b) => (b.answered_at || "").localeCompare(a.answered_at || ""));
  setChildren($("answered"), answered.slice(0, 50).map((q) => cachedCard(q)));
  setText($("answered-count"), answered.length ? number(answered.length) : "");
  restoreSelection("questions");
  restoreSelection("queue");
});

async function questionAction(id, action, payload) {
  const answer = await attempt(api("POST", `/api/questions/${id}/${action}`, payload));
  if (answer) upsertQuestion(answer.question);
  return answer;
}

function move(q, step) {
  const queue = [...questions.values()].filter((x) => G.question_queue.includes(x.state)).sort(byOrder);
  const index = queue.findIndex((x) => x.id === q.id);
  const target = index + step;
  if (index < 0 || target < 0 || target >= queue.length) return;
  questionAction(q.id, "move", { order: target + 1 });
}

function startMerge(id) {
  mergeSource = id;
  $("merge-note").hidden = false;
  $("merge-note").textContent = T("questions.merge_pick", { id });
  renderQuestions();
}

function stopMerge() {
  mergeSource = null;
  $("merge-note").hidden = true;
  renderQuestions();
}

async function mergeInto(target) {
  const source = mergeSource;
  stopMerge();
  if (source && source !== target) await questionAction(source, "merge", { into: target });
}

// ---- dialogs -------------------------------------------------------------------------------------------

let editing = null;
let renewTimer = null;

async function openEdit(id) {
  const q = questions.get(id);
  if (!q || !G.question_editable.includes(q.state)) return;
  const locked = await questionAction(id, "lock");
  if (!locked) return;
  editing = id;
  $("edit-original").textContent = q.original_text;
  $("edit-text").value = q.text;
  renewTimer = setInterval(() => api("POST", `/api/questions/${id}/lock`).catch(() => {}), LOCK_RENEW_MS);
  $("edit-dialog").showModal();
  $("edit-text").focus();
}

$("edit-dialog").addEventListener("close", async () => {
  clearInterval(renewTimer);
  const id = editing;
  editing = null;
  if (id == null) return;
  if ($("edit-dialog").returnValue === "save") {
    if (!(await questionAction(id, "edit", { text: $("edit-text").value }))) await questionAction(id, "unlock");
  } else {
    await questionAction(id, "unlock");
  }
});
$("edit-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); $("edit-dialog").close("save"); }
});
$("edit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("edit-dialog").close(event.submitter?.value || "save");
});

let noting = null;
function openNote(commentId) {
  const c = comments.get(commentId);
  if (!c) return;
  noting = c;
  $("note-author").textContent = `${c.author} · ${c.platform}`;
  $("note-text").value = notes.get(noteKey(c.platform, c.author_id))?.note || "";
  $("note-dialog").showModal();
}
$("note-dialog").addEventListener("close", async () => {
  const c = noting;
  noting = null;
  if (c && $("note-dialog").returnValue === "save") {
    await attempt(api("POST", "/api/notes", { platform: c.platform, author_id: c.author_id, note: $("note-text").value }));
  }
});

let assigning = null;
function openAssign(id) {
  assigning = id;
  $("assign-to").value = questions.get(id)?.assigned_to || "";
  $("assign-dialog").showModal();
}
$("assign-dialog").addEventListener("close", async () => {
  const id = assigning;
  assigning = null;
  if (id != null && $("assign-dialog").returnValue === "save") await questionAction(id, "assign", { to: $("assign-to").value });
});

// ---- selection and keys --------------------------------------------------------------------------------

function select(pane, item) {
  activePane = pane;
  for (const [name, list] of Object.entries(lists)) list.closest(".pane").classList.toggle("active", name === pane);
  lists[pane].querySelectorAll(".selected").forEach((x) => x.classList.remove("selected"));
  if (!item) { selected[pane] = null; return; }
  item.classList.add("selected");
  selected[pane] = Number(item.dataset.id);
  if (pane === "comments") showActions(item);
  item.focus({ preventScroll: true });
  item.scrollIntoView({ block: "nearest" });
}

function restoreSelection(pane) {
  if (selected[pane] == null) return;
  const item = findItem(pane, selected[pane]);
  if (item) {
    item.classList.add("selected");
    if (pane === "comments") showActions(item);
    if (activePane === pane && !document.querySelector("dialog[open]") && !typing({ target: document.activeElement })) {
      item.focus({ preventScroll: true });
    }
  }
}

function step(delta) {
  const items = [...lists[activePane].querySelectorAll(".item")];
  if (!items.length) return;
  const index = items.findIndex((x) => Number(x.dataset.id) === selected[activePane]);
  const next = index < 0 ? 0 : Math.max(0, Math.min(items.length - 1, index + delta));
  select(activePane, items[next]);
}

function switchPane(pane) {
  const item = selected[pane] != null ? findItem(pane, selected[pane]) : null;
  select(pane, item || lists[pane].querySelector(".item"));
}

const PANES = ["comments", "questions", "queue"];
const QUESTION_KEYS = { a: "approve", d: "dismiss", f: "forward", x: "answered", u: "restore" };

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && mergeSource) { stopMerge(); return; }
  if (typing(event) || document.querySelector("dialog[open]") || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  const id = selected[activePane];
  const q = activePane !== "comments" && id != null ? questions.get(id) : null;
  let handled = true;
  if (key === "j" || key === "ArrowDown") step(1);
  else if (key === "k" || key === "ArrowUp") step(-1);
  else if (key === "ArrowRight") switchPane(PANES[Math.min(2, PANES.indexOf(activePane) + 1)]);
  else if (key === "ArrowLeft") switchPane(PANES[Math.max(0, PANES.indexOf(activePane) - 1)]);
  else if (["1", "2", "3"].includes(key)) switchPane(PANES[Number(key) - 1]);
  else if (key === "/") filters.q.focus();
  else if (key === "?") $("help-dialog").showModal();
  else if (key === "p") togglePause();
  else if (activePane === "comments" && id != null && key === "q") makeQuestion(id);
  else if (activePane === "comments" && id != null && key === "h") hide(id);
  else if (activePane === "comments" && id != null && key === "n") openNote(id);
  else if (q && key in QUESTION_KEYS) questionAction(q.id, QUESTION_KEYS[key]);
  else if (q && key === "e") openEdit(q.id);
  else if (q && key === "o") questionAction(q.id, q.state === Q.on_air ? "off_air" : "on_air");
  else if (q && key === "m") (mergeSource ? mergeInto(q.id) : startMerge(q.id));
  else if (q && key === "g" && groupOthers.has(q.id)) mergeGroup(q.id, groupOthers.get(q.id));
  else if (q && key === "t") openAssign(q.id);
  else if (q && key === "J") move(q, 1);
  else if (q && key === "K") move(q, -1);
  else handled = false;
  if (handled) event.preventDefault();
});

// ---- filters, tabs, audit ------------------------------------------------------------------------------

filters.q.addEventListener("input", batched(rerenderComments));
filters.platform.addEventListener("change", rerenderComments);
filters.questions.addEventListener("change", rerenderComments);
filters.q.addEventListener("keydown", (event) => { if (event.key === "Escape") filters.q.blur(); });
$("pause").addEventListener("click", togglePause);
$("help-open").addEventListener("click", () => $("help-dialog").showModal());
for (const button of document.querySelectorAll("[data-tab]")) {
  button.addEventListener("click", () => {
    tab = button.dataset.tab;
    for (const b of document.querySelectorAll("[data-tab]")) b.setAttribute("aria-selected", String(b === button));
    windows.moderator = windows.auto = WINDOW;
    ensureLoaded();
    searchQuestions();
    renderQuestions();
  });
}
$("q-order").addEventListener("change", () => {
  order = $("q-order").value;
  windows.moderator = windows.auto = WINDOW;
  ensureLoaded();
  searchQuestions();
  renderQuestions();
});
let searchTimer = null;
$("q-search").addEventListener("input", () => {
  search = $("q-search").value.trim();
  renderQuestions();
  clearTimeout(searchTimer);
  searchTimer = setTimeout(searchQuestions, 250);
});
$("q-search").addEventListener("keydown", (event) => { if (event.key === "Escape") $("q-search").blur(); });

// People's actions by default; the desk's own ("auto" made a question of a flagged comment) on request.
const refreshAudit = batched(async () => {
  if (!$("audit-box").open) return;
  const answer = await api("GET", `/api/audit${$("audit-auto").checked ? "?auto=1" : ""}`).catch(() => null);
  if (!answer) return;
  $("audit").replaceChildren(...answer.audit.slice(0, 60).map((a) => el("li", {},
    el("time", { datetime: a.at, text: clock(a.at) }), " ",
    el("strong", { text: a.actor }), " ",
    el("span", { text: `${T(`audit.${a.action}`)} ${a.target_type === "question" ? "#" : ""}${a.target_id ?? ""}` }))));
});
$("audit-box").addEventListener("toggle", refreshAudit);
$("audit-auto").addEventListener("change", refreshAudit);

// ---- live ----------------------------------------------------------------------------------------------

// A new problem (not a repeat, not a recovery) as a toast, in the moderator's language.
function alertToast(alert) {
  if (alert.count !== 1 || alert.recovery || alert.level === "info") return;
  toast(`${alert.source}: ${alert.texts?.[data.lang] ?? ""}`, alert.level === "error" ? "error" : "info");
}

function onEvent(event) {
  switch (event.type) {
    case "CommentsStored": addComments(event.comments); break;
    case "CommentsHidden":
      for (const id of event.ids) {
        const c = comments.get(id);
        if (c) { c.hidden = event.hidden; replaceComment(id); }
      }
      break;
    case "QuestionChanged": upsertQuestion(event.question, event.action); refreshAudit(); break;
    case "AuthorNoted":
      if (event.note) notes.set(noteKey(event.platform, event.author_id), event);
      else notes.delete(noteKey(event.platform, event.author_id));
      for (const c of comments.values()) if (c.platform === event.platform && c.author_id === event.author_id) replaceComment(c.id);
      break;
    case "ViewersStored": setText($("viewers-total"), number(event.total)); break;
    case "AlertStored": alertToast(event.alert); break;
  }
}

// After every (re)connect: what happened while the socket was not there.
async function catchUp() {
  const params = new URLSearchParams({ after: String(lastCommentId), limit: "500" });
  if (filters.platform.value) params.set("platform", filters.platform.value);
  const missed = await api("GET", `/api/comments?${params}`).catch(() => null);
  if (missed?.comments?.length) addComments(missed.comments.filter((c) => !comments.has(c.id)));
  // The hall queue and the newest page of the lanes on screen; what is further back is paged as it was.
  const fresh = await Promise.all([
    api("GET", `/api/questions?state=${[...G.question_queue, Q.answered].join(",")}`),
    ...LANES.map((origin) => api("GET", `/api/questions?state=${tab}&origin=${origin}&order=newest&limit=${PAGE}`)),
  ]).catch(() => null);
  if (fresh) {
    for (const answer of fresh) for (const q of answer.questions) upsertQuestion(q);
    Object.assign(counts, fresh[0].counts);
    renderQuestions();
  }
}

for (const n of data.notes) notes.set(noteKey(n.platform, n.author_id), n);
for (const q of data.questions) upsertQuestion(q);
addComments(data.comments);
$("viewers-total").textContent = number(data.viewers.total);
select("questions", null);
live(onEvent, catchUp);
