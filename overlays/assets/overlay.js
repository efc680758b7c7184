// On-air graphics: first paint from the page's data, then every change pushed over /ws/overlay (never polled).
const data = JSON.parse(document.getElementById("page-data").textContent);
const root = document.documentElement;
if (data.accent) root.style.setProperty("--accent", data.accent);
root.style.setProperty("--scale", String(data.scale || 1));

const numberFormat = new Intl.NumberFormat(data.lang === "en" ? "en-US" : "vi-VN");

function showQuestion(question) {
  const box = document.getElementById("lower-third");
  if (!box) return;
  if (!question) {
    box.hidden = true;
    box.dataset.questionId = "";
    return;
  }
  // textContent only: audience text never becomes markup.
  document.getElementById("q-text").textContent = question.text;
  document.getElementById("q-author").textContent = question.author;
  document.getElementById("q-platform").textContent = question.platform;
  const count = document.getElementById("q-count");
  count.textContent = question.merged_count > 1 ? `×${question.merged_count}` : "";
  box.dataset.questionId = String(question.id);
  box.hidden = false;
}

function showViewers(total) {
  const number = document.getElementById("viewers-number");
  if (number) number.textContent = total == null ? "–" : numberFormat.format(total);
}

showQuestion(data.on_air);
showViewers(data.viewers);

let delay = 500;
function connect() {
  const token = new URLSearchParams(location.search).get("token") || "";
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws/overlay?token=${encodeURIComponent(token)}`);
  ws.onopen = () => { delay = 500; document.body.dataset.live = "1"; };
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "snapshot") { showQuestion(event.on_air); showViewers(event.viewers); }
    else if (event.type === "on_air") showQuestion(event.question);
    else if (event.type === "viewers") showViewers(event.total);
  };
  ws.onclose = (closed) => {
    if (closed.code === 4401) { // the token was revoked: take the graphic off air, for good
      document.body.replaceChildren();
      return;
    }
    document.body.dataset.live = "0";
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 10000);
  };
}
connect();
