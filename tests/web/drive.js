// One call from the browser softphone through a running Ringline, watched on the dashboard.
//
//   node drive.js EDGE_URL TOKEN MIC_WAV SCREENSHOT_DIR CALLER_NUMBER
//
// Debian's chromium (no browser download) with a fake microphone that loops MIC_WAV (one question,
// then silence). The caller starts muted, lets the greeting play, then unmutes at a loop boundary
// so the whole question goes out over the greeting (a barge-in), mutes again, and waits for the
// answer. Meanwhile a second tab shows the dashboard. Prints one JSON object of what was seen;
// the pytest side judges it. Exits non-zero only when the browser could not be driven at all.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const [edge, token, wav, shots, callerNumber] = process.argv.slice(2);
const VOICED = -45;
const seen = { steps: [], errors: [] };
const t0 = Date.now();
const step = (name, extra) => { seen.steps.push({ name, s: (Date.now() - t0) / 1000, ...extra }); };

async function weigh(context, url) {  // bytes of a page and everything it loads (uncompressed)
  const page = await context.newPage();
  const started = Date.now();
  await page.goto(url, { waitUntil: "load" });
  const loadMs = Date.now() - started;
  const weight = await page.evaluate(() => {
    const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
    return { bytes: entries.reduce((n, e) => n + (e.decodedBodySize || 0), 0), requests: entries.length };
  });
  await page.close();
  return { ...weight, loadMs };
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ringline-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 820 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wav}`, "--autoplay-policy=no-user-gesture-required"],
  });
  try {
    await run(context);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function run(context) {
  for (const p of context.pages()) await p.close();
  seen.weight = { phone: await weigh(context, `${edge}/phone`), dashboard: await weigh(context, `${edge}/dashboard`) };

  const board = await context.newPage();
  board.on("pageerror", (e) => seen.errors.push("dashboard: " + e.message));
  await board.goto(`${edge}/dashboard#token=${token}`);
  await board.waitForFunction(() => document.getElementById("feed").textContent === "live", null, { polling: 50, timeout: 15000 });
  step("dashboard live");

  const phone = await context.newPage();
  phone.on("pageerror", (e) => seen.errors.push("phone: " + e.message));
  phone.on("console", (m) => { if (m.type() === "error") seen.errors.push("phone console: " + m.text()); });
  await phone.goto(`${edge}/phone#token=${token}`);
  await phone.waitForFunction(() => !document.getElementById("call").disabled, null, { polling: 50, timeout: 15000 });
  await phone.fill("#caller", callerNumber);
  await phone.click("#mute");  // join muted: the looping question waits for its moment
  await phone.evaluate(() => {  // a timeline of the call as the page saw it, for the report
    const p = window.softphone, t0 = performance.now();
    window.timeline = [];
    setInterval(() => window.timeline.push([Math.round(performance.now() - t0), p.playing ? 1 : 0, p.marksEchoed,
      p.bursts, p.clears, p.turns.length, p.muted ? 1 : 0, Math.round(p.dbfs)]), 250);
  });
  await phone.click("#call");
  await phone.waitForFunction(() => window.softphone.status === "in call", null, { polling: 50, timeout: 20000 });
  const callId = await phone.evaluate(() => window.softphone.callId);
  seen.callId = callId;
  step("in call", { callId });

  // The greeting: its words on screen and its audio playing, marks echoed as it plays.
  await phone.waitForFunction(() => window.softphone.playing &&
    window.softphone.turns.some((t) => t.who === "agent" && t.text), null, { polling: 50, timeout: 90000 });
  step("greeting playing");
  await phone.screenshot({ path: path.join(shots, "phone-greeting.png") });

  // Talk over the greeting: unmute at the loop's boundary, so the question goes out whole.
  seen.spoke = await phone.evaluate(async (voiced) => {
    const p = window.softphone, sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const loud = () => p.dbfs > voiced;
    const quietFor = async (ms) => { let q = 0; while (q < ms) { await sleep(10); q = loud() ? 0 : q + 10; } };
    while (!loud()) await sleep(10);
    await quietFor(300);
    const before = { playing: p.playing, clears: p.clears };
    document.getElementById("mute").click();
    while (!loud()) await sleep(10);
    const began = performance.now();
    await quietFor(500);
    document.getElementById("mute").click();
    return { ms: Math.round(performance.now() - began - 500), before, after: { clears: p.clears, playing: p.playing } };
  }, VOICED);
  step("question asked", seen.spoke);
  await board.waitForFunction((id) => !!document.querySelector(`#live tr[data-call="${id}"]`), callId, { polling: 100, timeout: 10000 });
  seen.dashboardRow = await board.$eval(`#live tr[data-call="${callId}"]`, (tr) => tr.innerText);

  // The agent stopped talking when the caller talked over it.
  await phone.waitForFunction(() => window.softphone.clears > 0, null, { polling: 50, timeout: 15000 }).catch(() => {});
  step("barge-in");
  // The answer: a caller line with the question, then an agent turn heard here with its mouth-to-ear.
  await phone.waitForFunction(() => {
    const turns = window.softphone.turns;
    const asked = turns.findIndex((t) => t.who === "caller" && t.final);
    return asked >= 0 && turns.slice(asked + 1).some((t) => t.who === "agent" && t.final && t.m2e != null);
  }, null, { polling: 50, timeout: 120000 }).catch((e) => seen.errors.push("no answer: " + e.message.split("\n")[0]));
  step("answer heard");
  await board.screenshot({ path: path.join(shots, "dashboard-live.png") });
  // Let the answer play out, then hang up.
  await phone.waitForFunction(() => !window.softphone.playing, null, { polling: 50, timeout: 30000 }).catch(() => {});
  await phone.waitForTimeout(500);
  await phone.screenshot({ path: path.join(shots, "phone-answer.png") });
  seen.phone = await phone.evaluate(() => {
    const p = window.softphone;
    return { status: p.status, framesSent: p.framesSent, marksEchoed: p.marksEchoed, marksCleared: p.marksCleared,
      clears: p.clears, cutWhilePlaying: p.cutWhilePlaying, flushedMs: p.flushedMs, playedMs: p.playedMs,
      mouthToEar: p.mouthToEar, heard: p.heard, unheard: p.unheard,
      turns: p.turns.map((t) => ({ id: t.id, who: t.who, text: t.text, final: t.final, notes: t.notes, m2e: t.m2e,
        stages: t.stages })),
      transcriptText: document.getElementById("transcript").innerText, timeline: window.timeline };
  });
  // The call's page: turns, the waterfall of the answer, the barge-in marked.
  const page = await context.newPage();
  page.on("pageerror", (e) => seen.errors.push("call page: " + e.message));
  await page.goto(`${edge}/dashboard/calls/${callId}#token=${token}`);
  await page.waitForFunction(() => document.querySelectorAll("#turns tbody tr .bar").length >= 3, null, { polling: 50, timeout: 20000 })
    .catch((e) => seen.errors.push("no waterfall: " + e.message.split("\n")[0]));
  seen.record = await page.evaluate(async (id) => {  // what the page drew from
    const r = await fetch(`/dashboard/api/calls/${id}`, { headers: { Authorization: "Bearer " + Ringline.token() } });
    return r.json();
  }, callId);
  seen.callPage = await page.evaluate(() => ({
    facts: document.getElementById("facts").innerText,
    rows: [...document.querySelectorAll("#turns tbody tr")].map((tr) => ({
      who: tr.children[1].innerText, text: tr.children[2].innerText, bars: tr.querySelectorAll(".bar").length,
      waterfall: tr.children[3].innerText, cut: tr.classList.contains("cut") })),
  }));
  await page.screenshot({ path: path.join(shots, "call-live.png"), fullPage: true });
  step("call page");
  await phone.click("#hangup");
  step("hung up");

  // The dashboard lists the call as ended, then finds it among past calls by its number.
  await board.waitForFunction((id) => { const tr = document.querySelector(`#live tr[data-call="${id}"]`);
    return tr && tr.classList.contains("ended"); }, callId, { polling: 100, timeout: 15000 })
    .catch((e) => seen.errors.push("dashboard never showed the end: " + e.message.split("\n")[0]));
  seen.dashboardEnded = await board.$eval(`#live tr[data-call="${callId}"]`, (tr) => tr.innerText).catch(() => "");
  await board.fill("#search input[name=number]", callerNumber.slice(-7));
  await board.click("#search button");
  await board.waitForFunction((id) => !!document.querySelector(`#past tr[data-call="${id}"]`), callId, { polling: 100, timeout: 15000 })
    .catch((e) => seen.errors.push("search did not find the call: " + e.message.split("\n")[0]));
  seen.searchRows = await board.$$eval("#past tbody tr", (rows) => rows.map((r) => r.innerText));
  await board.screenshot({ path: path.join(shots, "dashboard-search.png") });

  // The call page, still open, turns to the finished call without a reload.
  await page.bringToFront();
  await page.waitForFunction(() => /duration\n\d/.test(document.getElementById("facts").innerText), null,
    { polling: 100, timeout: 15000 }).catch((e) => seen.errors.push("call page never showed the end: " + e.message.split("\n")[0]));
  await page.waitForTimeout(1500);
  seen.callPageEnded = await page.evaluate(() => ({ facts: document.getElementById("facts").innerText,
    rows: document.querySelectorAll("#turns tbody tr").length, bars: document.querySelectorAll("#turns .bar").length }));
  await page.screenshot({ path: path.join(shots, "call-waterfall.png"), fullPage: true });
  seen.seconds = (Date.now() - t0) / 1000;
}

main().then(() => console.log(JSON.stringify(seen)), (err) => {
  seen.errors.push("driver: " + (err.stack || err.message));
  console.log(JSON.stringify(seen));
  process.exitCode = 1;
});
