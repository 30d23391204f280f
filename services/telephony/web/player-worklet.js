// The speaker side of the softphone, on the audio thread: the agent's 8 kHz mu-law, decoded and
// brought up to the context's rate, played in order with the marks between the pieces. A mark is
// reported when everything queued before it has been played (as Twilio echoes it); `clear` drops
// what is queued and reports every pending mark at once, flagged as cleared.
"use strict";

function mulawToLinear(u) {
  u = ~u & 0xff;
  const sign = u & 0x80, exponent = (u >> 4) & 7, mantissa = u & 0x0f;
  const x = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return (sign ? -x : x) / 32768;
}

class Player extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];          // {samples: Float32Array, at: 0} or {mark: name}
    this.queued = 0;          // samples waiting
    this.ratio = 8000 / sampleRate;
    this.pos = 0;             // fractional read position into the 8 kHz stream, for interpolation
    this.last = 0;            // the last 8 kHz sample of the previous piece
    this.playing = false;
    this.played = 0;          // samples played in all
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === "media") {
      const src = msg.bytes;
      const pcm = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) pcm[i] = mulawToLinear(src[i]);
      // Linear interpolation up to the context rate, continuous across pieces.
      const out = [];
      let p = this.pos;
      while (p < pcm.length) {
        const i = Math.floor(p), f = p - i;
        const a = i === 0 ? this.last : pcm[i - 1];  // lerp(x[i-1], x[i]): half a sample late, seamless
        out.push(a + (pcm[i] - a) * f);
        p += this.ratio;
      }
      this.pos = p - pcm.length;
      this.last = pcm[pcm.length - 1];
      const samples = Float32Array.from(out);
      this.queue.push({ samples, at: 0 });
      this.queued += samples.length;
    } else if (msg.type === "mark") {
      this.queue.push({ mark: msg.name });
    } else if (msg.type === "clear") {
      const marks = this.queue.filter((q) => q.mark !== undefined).map((q) => q.mark);
      const flushed = this.queued;
      this.queue = [];
      this.queued = 0;
      this.port.postMessage({ type: "cleared", marks, flushedMs: flushed / sampleRate * 1000,
        wasPlaying: this.playing });
      if (this.playing) {
        this.playing = false;
        this.port.postMessage({ type: "idle", playedMs: this.played / sampleRate * 1000 });
      }
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.queue.length) {
      const head = this.queue[0];
      if (head.mark !== undefined) {
        this.queue.shift();
        this.port.postMessage({ type: "mark", name: head.mark });
        continue;
      }
      if (!this.playing) {
        this.playing = true;
        this.port.postMessage({ type: "start", time: currentTime + i / sampleRate });
      }
      const n = Math.min(out.length - i, head.samples.length - head.at);
      out.set(head.samples.subarray(head.at, head.at + n), i);
      head.at += n;
      i += n;
      this.queued -= n;
      this.played += n;
      if (head.at >= head.samples.length) this.queue.shift();
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (this.playing && !this.queue.length) {
      this.playing = false;
      this.port.postMessage({ type: "idle", playedMs: this.played / sampleRate * 1000 });
    }
    return true;
  }
}

registerProcessor("ringline-player", Player);
