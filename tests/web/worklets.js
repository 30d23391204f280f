// Runs the softphone's two AudioWorklet processors in plain node (no browser): the audio thread's
// globals are stubbed, the processors are fed blocks as Chrome would feed them. Prints JSON.
//
//   node worklets.js RATE   -> {decode, captured, played, messages, cleared}
"use strict";

const fs = require("fs");
const path = require("path");
const vm = require("vm");

const rate = Number(process.argv[2] || 48000);
const web = path.join(__dirname, "..", "..", "services", "telephony", "web");

function load(file) {
  const classes = {};
  const posted = [];
  const context = {
    sampleRate: rate, currentTime: 0, Math, Float32Array, Uint8Array, Array,
    registerProcessor: (name, cls) => { classes[name] = cls; },
    AudioWorkletProcessor: class { constructor() { this.port = { postMessage: (m) => posted.push(m), onmessage: null }; } },
  };
  vm.createContext(context);
  vm.runInContext(fs.readFileSync(path.join(web, file), "utf8") + "\n;this.__exports = { " +
    (file.startsWith("player") ? "mulawToLinear" : "linearToMulaw") + " };", context);
  return { classes, posted, context };
}

// Capture: one second of a 440 Hz tone at half scale, in 128-sample blocks.
const cap = load("capture-worklet.js");
const capture = new cap.classes["ringline-capture"]();
for (let n = 0; n < rate; n += 128) {
  const block = new Float32Array(128);
  for (let i = 0; i < 128; i++) block[i] = 0.5 * Math.sin(2 * Math.PI * 440 * (n + i) / rate);
  capture.process([[block]]);
}
const captured = [];
for (const m of cap.posted) captured.push(...m.frame);

// Player: the captured tone back, a mark after it, played in 128-sample blocks; then a second
// piece and a mark that a `clear` flushes half-way.
const pl = load("player-worklet.js");
const player = new pl.classes["ringline-player"]();
player.port.onmessage({ data: { type: "media", bytes: Uint8Array.from(captured) } });
player.port.onmessage({ data: { type: "mark", name: "t1:0" } });
const played = [];
for (let n = 0; n < rate * 1.1; n += 128) {
  const out = [new Float32Array(128)];
  player.process([], [out]);
  played.push(...out[0]);
}
const afterFirst = pl.posted.length;
player.port.onmessage({ data: { type: "media", bytes: Uint8Array.from(captured) } });
player.port.onmessage({ data: { type: "mark", name: "t2:0" } });
for (let n = 0; n < rate * 0.25; n += 128) player.process([], [[new Float32Array(128)]]);
player.port.onmessage({ data: { type: "clear" } });

const decode = [];
for (let u = 0; u < 256; u++) decode.push(Math.round(pl.context.__exports.mulawToLinear(u) * 32768));
console.log(JSON.stringify({
  decode, captured, played: played.map((x) => Math.round(x * 32768)),
  messages: pl.posted.slice(0, afterFirst), cleared: pl.posted.slice(afterFirst),
}));
