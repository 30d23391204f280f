// The dashboard: calls in progress (live, from the edge's event stream) and past calls (from the
// memory service), searchable by number, agent and day.
"use strict";

const $ = (id) => document.getElementById(id);
const live = new Map();  // call id -> the edge's view of it
let skew = 0;            // server clock - this clock, in seconds
const KEEP_ENDED_S = 20;

const link = (id, text) => `<a href="/dashboard/calls/${encodeURIComponent(id)}">${Ringline.esc(text)}</a>`;

function stateOf(c, now) {
  if (c.state === "agent speaking" && c.speaking_until && now > c.speaking_until) return "listening";
  return c.state;
}

function renderLive() {
  const now = Date.now() / 1000 + skew;
  for (const [id, c] of live) if (c.state === "ended" && now - c.ended_at > KEEP_ENDED_S) live.delete(id);
  const rows = [...live.values()].sort((a, b) => b.started_at - a.started_at).map((c) => {
    const state = stateOf(c, now);
    const secs = (c.ended_at || now) - c.started_at;
    return `<tr data-call="${Ringline.esc(c.call_id)}" class="${state === "ended" ? "ended" : ""}">` +
      `<td>${link(c.call_id, c.agent_id || "?")}</td><td>${Ringline.esc(c.caller || "-")}</td>` +
      `<td>${Ringline.duration(secs)}</td><td><span class="state ${state.replace(/\W/g, "")}">${Ringline.esc(state)}</span>` +
      `${c.interruptions ? ` <span class="badge bargein">${c.interruptions} barge-in</span>` : ""}</td>` +
      `<td>${c.turns}</td><td>${Ringline.ms(c.last_total_ms)}</td></tr>`;
  });
  $("live").tBodies[0].innerHTML = rows.join("");
  $("nolive").hidden = rows.length > 0;
}

function onUpdate(u) {
  if (u.type === "snapshot") {
    skew = u.now - Date.now() / 1000;
    live.clear();
    for (const c of u.calls) live.set(c.call_id, c);
  } else if (u.type === "call") {
    const was = live.get(u.call.call_id);
    live.set(u.call.call_id, u.call);
    if (u.call.state === "ended" && was && was.state !== "ended") setTimeout(search, 1500);
  } else return;
  renderLive();
}

async function search(e) {
  if (e) e.preventDefault();
  const f = $("search");
  const params = new URLSearchParams({ limit: "50" });
  if (f.number.value.trim()) params.set("number", f.number.value.trim());
  if (f.agent.value.trim()) params.set("agent", f.agent.value.trim());
  if (f.day.value) {  // the day as this browser's calendar has it
    const since = new Date(f.day.value + "T00:00:00");
    params.set("since", String(since.getTime() / 1000));
    params.set("until", String(since.getTime() / 1000 + 86400));
  }
  try {
    const data = await Ringline.getJSON("/dashboard/api/calls?" + params);
    $("past").tBodies[0].innerHTML = data.calls.map((c) =>
      `<tr data-call="${Ringline.esc(c.call_id)}"><td>${link(c.call_id, Ringline.clock(c.started_at))}</td>` +
      `<td>${c.ended_at ? Ringline.duration(c.ended_at - c.started_at) : "live"}</td>` +
      `<td>${Ringline.esc(c.agent_id)}</td><td>${Ringline.esc(c.caller || "-")}</td><td>${Ringline.esc(c.callee || "-")}</td>` +
      `<td>${c.turns}</td><td>${Ringline.money(c.cost)}</td><td>${Ringline.esc(c.end_reason || "-")}</td></tr>`).join("");
    $("nopast").textContent = data.calls.length ? "" : "No calls match.";
  } catch (err) {
    if (err instanceof Ringline.AuthError) return Ringline.askToken($("app"), err.message);
    $("nopast").textContent = "Past calls unavailable: " + err.message;
  }
}

$("search").onsubmit = search;
search().then(() => {
  if (!document.querySelector(".token-form")) {
    Ringline.follow("/dashboard/api/live", onUpdate, (s) => { $("feed").textContent = s; });
    setInterval(renderLive, 1000);
  }
});
