"""Speech in voices Ringline never speaks with, as a phone line delivers it, and word error rate.

Voices come from Debian packages (`apt-get install espeak-ng flite festival festvox-kallpc16k
festvox-kdlpc16k festvox-us-slt-hts`; MBROLA's us1-us3 need Debian's contrib `mbrola-us*`).
Each utterance is rendered at the voice's own rate, resampled to 8 kHz, mu-law encoded and decoded
again: what the stt receives from Twilio. A voice whose program or data is missing is skipped
with the reason (`Voice.missing`).

WER: both sides are normalized the same way (lowercase, no punctuation, "Dr." -> doctor, numbers
said in words or written in digits -> one digit string per run of number words, so "five five
five, two one eight" and "555-218" both read "555218"), then words are aligned by edit distance.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ringline.contracts.audio import mulaw_decode, mulaw_encode, resample

PHONE_RATE = 8000


@dataclass(frozen=True)
class Voice:
    name: str
    engine: str  # espeak-ng | flite | festival
    voice: str

    def missing(self) -> str:
        """Why this voice cannot speak here ("" when it can)."""
        program = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}[self.engine]
        if shutil.which(program) is None:
            return f"{program} is not installed"
        if self.engine == "espeak-ng" and self.voice.startswith("mb-"):
            if shutil.which("mbrola") is None or not Path(f"/usr/share/mbrola/{self.voice[3:]}").exists():
                name = self.voice[3:]
                return f"mbrola and its {name} voice are not installed (Debian contrib: mbrola-{name})"
        if self.engine == "festival" and not any(Path("/usr/share/festival/voices").glob(f"*/{self.voice}")):
            return f"festival voice {self.voice} is not installed"
        if self.engine == "flite":
            listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
            if self.voice not in listed:
                return f"flite has no voice {self.voice}"
        return ""

    def render(self, text: str, cache: Path) -> np.ndarray:
        """`text` in this voice as 8 kHz int16 after a mu-law round trip (cached by voice and text)."""
        key = hashlib.sha256(f"{self.engine}/{self.voice}/{text}".encode()).hexdigest()[:20]
        cached = cache / f"{key}.npy"
        if cached.is_file():
            return np.load(cached)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            if self.engine == "espeak-ng":
                subprocess.run(["espeak-ng", "-v", self.voice, "-w", str(out), text], check=True, capture_output=True)
            elif self.engine == "flite":
                subprocess.run(["flite", "-voice", self.voice, "-t", text, "-o", str(out)], check=True,
                               capture_output=True)
            else:
                script = Path(tmp) / "in.txt"
                script.write_text(text)
                subprocess.run(["text2wave", "-eval", f"(voice_{self.voice})", str(script), "-o", str(out)],
                               check=True, capture_output=True)
            with wave.open(str(out)) as wav:
                rate = wav.getframerate()
                pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        peak = float(np.max(np.abs(pcm))) or 1.0
        pcm = (pcm.astype(np.float32) * min(1.0, 16000.0 / peak)).astype(np.int16)  # a phone's level
        phone = mulaw_decode(mulaw_encode(resample(pcm, rate, PHONE_RATE).astype(np.int16)))
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cached, phone)
        return phone


# -- word error rate ----------------------------------------------------------------------------

_UNITS = "zero one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
             "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
             "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
             "nineteenth": 19, "twentieth": 20, "thirtieth": 30}
_NUMBER = {w: i for i, w in enumerate(_UNITS)} | {w: 10 + i for i, w in enumerate(_TEENS)} | {
    w: 20 + 10 * i for i, w in enumerate(_TENS)}
_SAME = {"dr": "doctor", "mr": "mister", "mrs": "missus", "st": "street", "ave": "avenue", "ok": "okay",
         "gonna": "going to", "alright": "all right"}


def _spoken_digits(words: list[str]) -> str:
    """A run of number words as digits: "twenty one" -> 21, "five five" -> 55, "seven fifteen" -> 715,
    "twenty first" -> 21th (every ordinal ends in "th", as "21st" is normalized)."""
    out, i = "", 0
    while i < len(words):
        word, following = words[i], words[i + 1] if i + 1 < len(words) else ""
        i += 1
        if word in _ORDINALS:
            out += f"{_ORDINALS[word]}th"
        elif word[:1].isdigit():
            out += word
        elif _NUMBER[word] >= 20 and following in _UNITS[1:]:
            out += str(_NUMBER[word] + _NUMBER[following])
            i += 1
        elif _NUMBER[word] >= 20 and following in _ORDINALS and _ORDINALS[following] < 10:
            out += f"{_NUMBER[word] + _ORDINALS[following]}th"
            i += 1
        else:
            out += str(_NUMBER[word])
    return out


def _is_number(word: str, in_run: bool) -> bool:
    if word in _NUMBER or re.fullmatch(r"\d+(th)?", word):
        return True
    return word in _ORDINALS and (in_run or word != "second")  # "wait a second"


def normalize(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    text = re.sub(r"\$(\d+)", r"\1 dollars", text)
    text = re.sub(r"(?<=\d)[-:,.](?=\d)", "", text)  # 555-0142, 3:30, 4,000
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1th", text)  # 21st -> 21th
    text = re.sub(r"(\d)(?!th\b)([a-z])", r"\1 \2", text)  # 3b -> 3 b
    text = re.sub(r"[^a-z0-9' ]+", " ", text.replace("-", " "))
    words: list[str] = []
    for raw in text.split():
        word = raw.strip("'").replace("'", "")
        words.extend(_SAME.get(word, word).split())
    merged: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if word and _is_number(word, bool(run)):
            run.append(word)
            continue
        if run:
            merged.append(_spoken_digits(run))
            run = []
        if word:
            merged.append(word)
    return merged


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference words): substitutions + deletions + insertions after `normalize`."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)], len(ref)
