// The softphone: microphone -> 8 kHz mu-law frames over the Media Streams protocol to the edge;
// the agent's audio played with its marks echoed once really played and `clear` honoured (so the
// caller can talk over the agent); the live transcript of both sides; mouth-to-ear per turn as
// heard here (the caller's last voiced frame -> the first sample of the answer played).
"use strict";

const VOICED_DBFS = -45;
const $ = (id) => document.getElementById(id);

// Everything the page knows about the call; also read by the browser tests.
const phone = window.softphone = {
  status: "idle", callId: "", muted: false, dbfs: -100, voiced: false, framesSent: 0,
  marksEchoed: 0, marksCleared: 0, clears: 0, cutWhilePlaying: 0, flushedMs: 0, playedMs: 0, playing: false,
  bursts: 0, mouthToEar: [], turns: [], endReason: "", feedReady: false,
  heard: [], unheard: [],  // names of the marks echoed as played / sent back by a `clear` (the last 200)
};
const remember = (list, name) => { list.push(name); if (list.length > 200) list.shift(); };

let ws = null, ctx = null, mic = null, capture = null, player = null, feed = null;
let streamSid = "", seq = 0, chunk = 0;
let lastVoicedAt = 0, lastBurstAt = 0, pendingM2E = null;
// The caller has the floor: spoke while the agent was silent, or the agent yielded to them (a
// `clear`). A burst of agent audio that starts then is an answer and gets a mouth-to-ear; one that
// only resumes after a gap in the agent's own audio does not.
let callerTurn = false;
const MIN_SILENCE_MS = 200;  // an answer never starts while the caller is still talking
const entries = new Map();  // utterance or turn id -> transcript entry

const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0")).join("");
const b64 = (bytes) => btoa(String.fromCharCode.apply(null, bytes));
const unb64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

function setStatus(text) { phone.status = text; $("status").textContent = text; }
function send(msg) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); }
function nextSeq() { seq += 1; return String(seq); }

async function loadAgents() {
  try {
    const data = await Ringline.getJSON("/phone/agents");
    for (const a of data.agents) {
      const opt = new Option(a.name === a.id ? a.id : `${a.name} (${a.id})`, a.id);
      opt.selected = a.id === data.default;
      $("agent").add(opt);
    }
    $("call").disabled = false;
    setStatus("ready");
  } catch (err) {
    if (err instanceof Ringline.AuthError) Ringline.askToken($("app"), err.message);
    else setStatus("cannot load agents: " + err.message);
  }
}

// ------------------------------------------------------------------------------ transcript

function entry(id, who) {
  let e = entries.get(id);
  if (!e) {
    e = { id, who, text: "", final: false, notes: [], m2e: null, stages: null };
    entries.set(id, e);
    phone.turns.push(e);
    const li = document.createElement("li");
    li.className = who;
    e.el = li;
    $("transcript").appendChild(li);
  }
  return e;
}

function render(e) {
  const who = e.who === "caller" ? "You" : "Agent";
  let html = `<b>${who}</b> <span class="${e.final ? "" : "interim"}">${Ringline.esc(e.text) || "…"}</span>`;
  if (e.m2e != null) html += ` <span class="badge m2e" title="your last word to the agent's first sound, heard here">` +
    `${(e.m2e / 1000).toFixed(2)} s</span>`;
  if (e.stages) html += ` <span class="stages">${["stt", "brain", "tts", "edge"].filter((k) => k in e.stages)
    .map((k) => `${k} ${Math.round(e.stages[k])}`).join(" · ")} ms</span>`;
  for (const n of e.notes) html += ` <span class="badge ${n.replace(/\W/g, "")}">${Ringline.esc(n)}</span>`;
  e.el.innerHTML = html;
  $("transcript").parentElement.scrollTop = 1e9;
}

function note(turnId, text) {
  if (!turnId || !entries.has(turnId)) return;
  const e = entries.get(turnId);
  if (!e.notes.includes(text)) e.notes.push(text);
  render(e);
}

function onUpdate(u) {
  if (u.type === "hello") { phone.feedReady = true; return; }
  if (u.type === "transcript") {
    const e = entry(u.utterance_id, "caller");
    e.text = u.text; e.final = u.final; render(e);
  } else if (u.type === "reply") {
    const e = entry(u.turn_id, "agent");
    e.chunks = e.chunks || {};
    if (u.text) e.chunks[u.seq] = u.text;
    e.text = Object.keys(e.chunks).sort((a, b) => a - b).map((k) => e.chunks[k]).join(" ");
    e.final = e.final || u.final; render(e);
  } else if (u.type === "event") {
    if (u.name === "turn.first_audio") {
      const e = entry(u.turn_id, "agent");
      e.stages = u.stages;
      $("stages").textContent = u.stages.total != null ? `${Math.round(u.stages.total)} ms (stt ` +
        `${Math.round(u.stages.stt || 0)}, brain ${Math.round(u.stages.brain || 0)}, tts ${Math.round(u.stages.tts || 0)}, ` +
        `edge ${Math.round(u.stages.edge || 0)})` : "-";
      render(e);
    } else if (u.name === "turn.barge_in") note(u.turn_id, "interrupted");
    else if (u.name === "turn.paused") note(u.turn_id, "paused");
    else if (u.name === "turn.resumed") note(u.turn_id, "went on");
  } else if (u.type === "control" && u.action === "interrupt") note(u.turn_id, "cut off");
}

// ----------------------------------------------------------------------------------- audio

function onPlayer(msg) {
  if (msg.type === "mark") {
    phone.marksEchoed += 1;
    remember(phone.heard, msg.name);
    send({ event: "mark", streamSid, sequenceNumber: nextSeq(), mark: { name: msg.name } });
    const turnId = msg.name.split(":")[0].split("~")[0];
    if (pendingM2E != null) {  // the first mark played after a burst began names its turn
      const e = entry(turnId, "agent");
      if (e.m2e == null) { e.m2e = pendingM2E; render(e); }
      pendingM2E = null;
    }
  } else if (msg.type === "start") {
    phone.playing = true;
    phone.bursts += 1;
    const now = performance.now() + (ctx.outputLatency || ctx.baseLatency || 0) * 1000;
    if (callerTurn && lastVoicedAt > lastBurstAt && now - lastVoicedAt >= MIN_SILENCE_MS) {
      pendingM2E = now - lastVoicedAt;
      phone.mouthToEar.push(Math.round(pendingM2E));
      $("m2e").textContent = (pendingM2E / 1000).toFixed(2) + " s";
    }
    lastBurstAt = now;
    callerTurn = false;
  } else if (msg.type === "idle") {
    phone.playing = false;
    phone.playedMs = Math.round(msg.playedMs);
    showPlayback();
  } else if (msg.type === "cleared") {
    phone.clears += 1;
    if (lastVoicedAt > lastBurstAt) callerTurn = true;
    phone.flushedMs += Math.round(msg.flushedMs);
    if (msg.wasPlaying && msg.flushedMs > 0) phone.cutWhilePlaying += 1;
    for (const name of msg.marks) {  // Twilio sends the pending marks back on `clear`
      phone.marksCleared += 1;
      remember(phone.unheard, name);
      send({ event: "mark", streamSid, sequenceNumber: nextSeq(), mark: { name } });
    }
    showPlayback();
  }
}

function showPlayback() {
  $("playback").textContent = `${(phone.playedMs / 1000).toFixed(1)} s heard, ${phone.clears} clear(s), ` +
    `${(phone.flushedMs / 1000).toFixed(1)} s cut`;
}

function onFrame({ frame, dbfs }) {
  phone.dbfs = dbfs;
  const voiced = !phone.muted && dbfs > VOICED_DBFS;
  phone.voiced = voiced;
  if (voiced) {
    lastVoicedAt = performance.now();
    if (!phone.playing) callerTurn = true;
  }
  $("level").style.width = Math.max(0, Math.min(100, (dbfs + 70) * 1.6)) + "%";
  if (phone.muted) frame.fill(0xff);  // mu-law silence: the line stays open, the agent hears nothing
  chunk += 1;
  phone.framesSent += 1;
  send({ event: "media", streamSid, sequenceNumber: nextSeq(),
    media: { track: "inbound", chunk: String(chunk), timestamp: String(chunk * 20), payload: b64(frame) } });
}

// ------------------------------------------------------------------------------- the call

async function call() {
  $("call").disabled = true;
  setStatus("starting audio…");
  try {
    ctx = new AudioContext({ latencyHint: "interactive" });
    await ctx.audioWorklet.addModule("/web/capture-worklet.js");
    await ctx.audioWorklet.addModule("/web/player-worklet.js");
    mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true,
      autoGainControl: true, channelCount: 1 } });
  } catch (err) {
    setStatus("no microphone: " + err.message);
    return finish();
  }
  phone.callId = "BR" + hex(16);
  streamSid = "MZ" + hex(16);
  seq = 0; chunk = 0; lastVoicedAt = 0; lastBurstAt = 0; pendingM2E = null; callerTurn = false;
  // Follow the call's events before it starts, so the greeting's text is not missed.
  setStatus("connecting…");
  await new Promise((ready) => {
    feed = Ringline.follow(`/dashboard/api/calls/${phone.callId}/live`, (u) => {
      onUpdate(u);
      if (u.type === "hello") ready();
    }, (s) => { $("feed").textContent = s; });
    setTimeout(ready, 3000);  // no transcript is better than no call
  });
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(Ringline.withToken(`${proto}//${location.host}/phone/stream`));
  ws.onopen = () => {
    send({ event: "connected", protocol: "Call", version: "1.0.0" });
    send({ event: "start", sequenceNumber: nextSeq(), streamSid, start: {
      streamSid, callSid: phone.callId, accountSid: "", tracks: ["inbound"],
      mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
      customParameters: { agent: $("agent").value, caller: $("caller").value.trim() || "browser", callee: "",
        client: "browser" } } });
    capture = new AudioWorkletNode(ctx, "ringline-capture");
    player = new AudioWorkletNode(ctx, "ringline-player", { outputChannelCount: [1] });
    capture.port.onmessage = (e) => onFrame(e.data);
    player.port.onmessage = (e) => onPlayer(e.data);
    ctx.createMediaStreamSource(mic).connect(capture);
    player.connect(ctx.destination);
    $("hangup").disabled = false;
    setStatus("in call");
  };
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.event === "media") player.port.postMessage({ type: "media", bytes: unb64(msg.media.payload) });
    else if (msg.event === "mark") player.port.postMessage({ type: "mark", name: msg.mark.name });
    else if (msg.event === "clear") player.port.postMessage({ type: "clear" });
  };
  ws.onclose = (e) => {
    phone.endReason = e.reason || (e.code === 1000 ? "call ended" : `connection closed (${e.code})`);
    finish();
  };
}

function hangup() {
  send({ event: "stop", sequenceNumber: nextSeq(), streamSid, stop: { accountSid: "", callSid: phone.callId } });
  phone.endReason = "you hung up";
  if (ws) ws.close(1000, "caller hung up");
  finish();
}

function finish() {
  if (mic) mic.getTracks().forEach((t) => t.stop());
  if (ctx) ctx.close();
  if (feed) setTimeout(((f) => () => f.close())(feed), 3000);  // the last transcript may still come
  ws = ctx = mic = capture = player = feed = null;
  phone.playing = false;
  setStatus(phone.callId ? "ended: " + (phone.endReason || "call ended") : "ready");
  $("call").disabled = false;
  $("hangup").disabled = true;
}

$("call").onclick = call;
$("hangup").onclick = hangup;
$("mute").onclick = () => {
  phone.muted = !phone.muted;
  $("mute").textContent = phone.muted ? "Unmute" : "Mute";
  $("mute").classList.toggle("on", phone.muted);
};
loadAgents();
