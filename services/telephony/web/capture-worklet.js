// The microphone side of the softphone, on the audio thread: the context's rate down to 8 kHz
// (a box filter over each output sample's span), G.711 mu-law, 160-byte (20 ms) frames. Each frame
// goes to the page with its level, so the page can tell speech from silence.
"use strict";

function linearToMulaw(sample) {
  const BIAS = 0x84, CLIP = 32635;
  let x = Math.round(Math.max(-1, Math.min(1, sample)) * 32767);
  const sign = x < 0 ? 0x80 : 0;
  if (sign) x = -x;
  if (x > CLIP) x = CLIP;
  x += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (x & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (x >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / 8000;
    this.next = this.step;
    this.t = 0;
    this.acc = 0;
    this.n = 0;
    this.frame = new Uint8Array(160);
    this.energy = 0;
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.acc += channel[i];
      this.n++;
      this.t++;
      if (this.t < this.next) continue;
      const s = this.acc / this.n;
      this.acc = 0;
      this.n = 0;
      this.next += this.step;
      this.energy += s * s;
      this.frame[this.filled++] = linearToMulaw(s);
      if (this.filled === 160) {
        const dbfs = 10 * Math.log10(this.energy / 160 + 1e-12);
        this.port.postMessage({ frame: this.frame, dbfs }, [this.frame.buffer]);
        this.frame = new Uint8Array(160);
        this.filled = 0;
        this.energy = 0;
      }
    }
    if (this.t > 1e9) { this.t -= 1e9; this.next -= 1e9; }
    return true;
  }
}

registerProcessor("ringline-capture", Capture);
