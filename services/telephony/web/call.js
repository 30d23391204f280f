// One call: facts, cost, trace link, voicemail, and every turn with its latency waterfall. While
// the call is live the page follows its events and reloads the record (not the page) as turns land.
"use strict";

const $ = (id) => document.getElementById(id);
const callId = decodeURIComponent(location.pathname.split("/").pop());
let live = null, refetch = null, state = "";

function fact(name, html) { return `<dt>${name}</dt><dd>${html}</dd>`; }

function bars(turn, scale) {
  if (!turn.waterfall.length) return turn.speaker === "caller" && turn.latency_ms.end_of_turn != null ?
    `<span class="muted">end of turn after ${Math.round(turn.latency_ms.end_of_turn)} ms</span>` : "";
  const parts = turn.waterfall.map((b) => `<span class="bar ${b.stage}" style="left:${b.start_ms / scale * 100}%;` +
    `width:${Math.max(b.ms, 0) / scale * 100}%" title="${b.stage} ${Math.round(b.ms)} ms"></span>`).join("");
  const label = turn.waterfall.map((b) => `${b.stage} ${Math.round(b.ms)}`).join(" · ");
  return `<div class="waterfall">${parts}</div><div class="wflabel">${turn.total_ms != null ?
    `<b>${Math.round(turn.total_ms)} ms</b> ` : ""}${label}</div>`;
}

function render(view) {
  const c = view.call;
  document.title = `Ringline call ${c.call_id}`;
  $("title").textContent = `Call ${c.call_id}`;
  const trace = c.trace_url ? `<a href="${Ringline.esc(c.trace_url)}" target="_blank" rel="noopener">${c.trace_id}</a>` :
    Ringline.esc(c.trace_id || "-");
  $("facts").innerHTML = fact("agent", Ringline.esc(c.agent_id)) + fact("caller", Ringline.esc(c.caller || "-")) +
    fact("called", Ringline.esc(c.callee || "-")) + fact("direction", Ringline.esc(c.direction)) +
    fact("started", Ringline.clock(c.started_at)) +
    fact("duration", c.duration_s != null ? Ringline.duration(c.duration_s) : `<span class="state">${state || "live"}</span>`) +
    fact("ended", Ringline.esc(c.end_reason || "-")) +
    fact("cost", `${Ringline.money(c.cost, c.currency)} <span class="muted">${Object.entries(c.cost_detail)
      .map(([k, v]) => `${k} ${Ringline.money(v, c.currency)}`).join(" · ")}</span>`) +
    fact("median mouth-to-ear", Ringline.ms(c.median_total_ms)) + fact("trace", trace) +
    (c.transfer ? fact("transfer", Ringline.esc(`${c.transfer.target} (${c.transfer.outcome})`)) : "");
  if (c.voicemail) {
    $("voicemail").hidden = false;
    $("vmtext").textContent = `${c.voicemail.reason ? c.voicemail.reason + ": " : ""}${c.voicemail.text || "(no words)"}` +
      ` (${(c.voicemail.duration_s || 0).toFixed(1)} s)`;
    const src = Ringline.withToken(`/dashboard/api/calls/${encodeURIComponent(c.call_id)}/voicemail.wav`);
    $("vmaudio").hidden = !c.voicemail.has_audio;
    if (c.voicemail.has_audio && $("vmaudio").dataset.src !== src) { $("vmaudio").src = src; $("vmaudio").dataset.src = src; }
  }
  $("summary").hidden = !c.summary;
  $("summary").textContent = c.summary ? "Summary: " + c.summary : "";
  const scale = Math.max(1000, ...view.turns.map((t) => t.waterfall.reduce((m, b) => Math.max(m, b.start_ms + b.ms), 0)));
  $("turns").tBodies[0].innerHTML = view.turns.map((t) => {
    const marks = t.marks.map((m) => `<span class="badge ${m.kind.replace(/\W/g, "")}">${Ringline.esc(m.label)}</span>`).join(" ");
    const heard = t.interrupted && t.heard_text ? `<div class="muted">heard: “${Ringline.esc(t.heard_text)}”</div>` : "";
    return `<tr class="${t.speaker}${t.interrupted ? " cut" : ""}" data-turn="${Ringline.esc(t.turn_id)}">` +
      `<td>${t.at_s != null ? t.at_s.toFixed(1) + " s" : ""}</td><td>${t.speaker}${t.kind && t.kind !== "answer" ?
      `<div class="muted">${Ringline.esc(t.kind)}</div>` : ""}</td>` +
      `<td>${Ringline.esc(t.text) || "<span class='muted'>(nothing)</span>"} ${marks}${heard}</td>` +
      `<td class="wf">${bars(t, scale)}</td><td>${t.cost ? Ringline.money(t.cost, c.currency) : ""}</td></tr>`;
  }).join("");
  $("marks").innerHTML = view.marks.map((m) => `<li><b>${Ringline.esc(m.name)}</b> at ${m.at_s.toFixed(1)} s ` +
    `${Ringline.esc(m.stage)} ${Ringline.esc(m.detail)}</li>`).join("");
  if (c.ended_at && live) setTimeout(() => { if (live) { live.close(); live = null; $("feed").textContent = "ended"; } }, 5000);
}

async function load() {
  try {
    render(await Ringline.getJSON(`/dashboard/api/calls/${encodeURIComponent(callId)}`));
    return true;
  } catch (err) {
    if (err instanceof Ringline.AuthError) { Ringline.askToken($("app"), err.message); return false; }
    $("title").textContent = `Call ${callId}: ${err.message}`;
    return true;
  }
}

function soon() {  // the memory service saves a turn as it completes: read it a moment later
  clearTimeout(refetch);
  refetch = setTimeout(load, 600);
}

function onUpdate(u) {
  if (u.type === "call") {
    state = u.call.state;
    if (state === "ended") soon();
  } else if (u.type === "transcript") {
    $("interim").textContent = u.final ? "" : "caller: " + u.text + "…";
    if (u.final) soon();
  } else if (u.type === "reply" && u.final) soon();
  else if (u.type === "event" && ["turn.first_audio", "tts.turn", "turn.barge_in", "turn.resumed", "stage.takeover",
    "edge.takeover", "voicemail.message", "call.summary"].includes(u.name)) soon();
}

load().then((ok) => {
  if (ok) live = Ringline.follow(`/dashboard/api/calls/${encodeURIComponent(callId)}/live`, onUpdate,
    (s) => { $("feed").textContent = s; });
});
