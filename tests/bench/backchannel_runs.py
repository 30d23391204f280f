"""The conversation bench's backchannel run (`conversation_bench.py --backchannels`).

Calls whose agent tells long stories, and a caller who murmurs over them: "uh-huh", "okay",
"right", "mm-hmm" and a cough, each at several lengths of speech (200, 400, 700 ms by default),
in several voices (`backchannel_voices`), four to a reply about 2.4 s apart; then real
interruptions over the agent: long ones ("Sorry, wait, stop. What time do you open?") and
short ones ("Stop.", "Wait, no."). The same script runs on the old turn-taking (`old`: pause at
250 ms of voiced speech, interrupt at 600 ms, resume only on the words, replay 400 ms again)
and the current defaults (`new`), and on any variant given with `--variant`.

Printed per configuration, as the caller's phone line saw it:

  backchannels, by length    `clear`s per backchannel, backchannels that stopped the agent, the
                             pause the caller heard (clear -> agent audio again, p50 / max),
                             how much of what they had heard they heard again (p50 / max), and
                             how many went on within 300 ms
  ... by voice and by word   clears per backchannel
  real interruptions         reaction (speech onset -> the `clear` that stopped the agent, p50 /
                             p95) for long and short ones, and how many stopped the agent
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterable
from typing import Any

from backchannel_voices import Voices, available, cough

from ringline.caller import Backchannel, Interrupt, Say, Scenario, Wait
from ringline.caller.speech import Utterance

WORDS = ["Uh-huh.", "Okay.", "Right.", "Mm-hmm."]
LENGTHS_MS = [200, 400, 700]
VOICES = ["piper", "espeak", "flite-slt", "flite-awb"]
PER_REPLY = 4
FIRST_AFTER_MS, SPACING_MS = 900, 2400
STORIES = [
    "Please tell me a long story about a brave knight and a friendly dragon.",
    "Can you describe, in detail, how to plan a week long trip to Italy?",
    "Tell me everything you know about how bread is baked, step by step.",
    "Please explain at length how the seasons change through the year.",
    "Tell me a long story about a lighthouse keeper and a lost ship.",
]
INTERRUPTIONS = [  # (voice, text, kind)
    ("piper", "Sorry, wait, stop. What time do you open?", "long"),
    ("espeak", "Hold on, stop there. Can I ask something else?", "long"),
    ("piper", "Stop.", "short"),
    ("flite-slt", "Wait, no.", "short"),
]
INTERRUPT_AFTER_MS = [1500, 2500]

OLD_ENV = {"RINGLINE_BRAIN_BARGE_IN_MIN_MS": "250", "RINGLINE_BRAIN_BARGE_IN_CONFIRM_MS": "600",
           "RINGLINE_BRAIN_BACKCHANNEL_MAX_MS": "0", "RINGLINE_TELEPHONY_RESUME_REWIND_AFTER_MS": "0"}
STORYTELLER = ("You are {agent_name}, a storyteller on a phone call. Your replies are spoken aloud. Answer every "
               "request with a long, detailed story of many sentences in plain speech: no lists or markdown.")
BENCH_ENV = {"RINGLINE_BRAIN_PREEMPTIVE_GENERATION": "false", "RINGLINE_BRAIN_MAX_REPLY_TOKENS": "110",
             "RINGLINE_BRAIN_SYSTEM_PROMPT": STORYTELLER}


def configs(variants: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """old, new, and each `NAME:KEY=VALUE,KEY=VALUE` variant (on top of the new defaults)."""
    out = [("old", {**BENCH_ENV, **OLD_ENV}), ("new", dict(BENCH_ENV))]
    for variant in variants:
        name, _, settings = variant.partition(":")
        env = dict(pair.split("=", 1) for pair in settings.split(",") if pair)
        out.append((name, {**BENCH_ENV, **env}))
    return out


def scenarios(voices: list[str], lengths: list[int], calls: int, seed: int = 7) -> list[Scenario]:
    """The same scripted calls for every configuration (text rendered once)."""
    voices = available(voices)
    render = Voices()
    items: list[tuple[str, str, int]] = [(v, w, ms) for v in voices for w in WORDS for ms in lengths]
    items += [("cough", "(cough)", ms) for ms in lengths]
    random.Random(seed).shuffle(items)
    said: list[Utterance] = [cough(ms, seed=ms) if v == "cough" else render.word(v, w, ms) for v, w, ms in items]
    replies = [said[i:i + PER_REPLY] for i in range(0, len(said), PER_REPLY)]
    interruptions = [render.natural(v, text) for v, text, _ in INTERRUPTIONS if v in voices]
    calls = max(1, calls)
    steps: list[list[Any]] = [[] for _ in range(calls)]
    for i, reply in enumerate(replies):
        steps[i % calls].append(Say(STORIES[i % len(STORIES)]))
        for j, utterance in enumerate(reply):
            steps[i % calls].append(Backchannel(utterance, utterance=utterance,
                                                after_ms=FIRST_AFTER_MS + j * SPACING_MS))
    for i, utterance in enumerate(interruptions):
        steps[i % calls].append(Say(STORIES[(i + 2) % len(STORIES)]))
        steps[i % calls].append(Interrupt(utterance, utterance=utterance, after_ms=INTERRUPT_AFTER_MS[i % 2]))
        steps[i % calls].append(Wait(2500))  # for the words to stop an agent that went on after the burst
    return [Scenario(s, name=f"backchannels-{i}") for i, s in enumerate(steps)]


# -- the summary ---------------------------------------------------------------------------------


def _steps(tally: Any, kind: str) -> list[Any]:
    """The steps of `kind` that met the agent talking: not after its reply finished, and not after
    an earlier step stopped that reply (what follows is another reply, or an answer to the murmur)."""
    out = []
    for call in tally.calls:
        stopped: set[float] = set()
        for step in call.steps:
            if step.kind == kind and "finished playing" not in step.note and step.reply_started_at not in stopped:
                out.append(step)
            if step.agent_stopped:
                stopped.add(step.reply_started_at)
    return out


def _target(step: Any, lengths: list[int]) -> int:
    """The length the backchannel was made for (its label says), else the closest to its speech."""
    for ms in lengths:
        if f" {ms} ms]" in step.label:
            return ms
    return min(lengths, key=lambda ms: abs(ms - (step.voiced_ms or 0)))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _dist(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} / {max(values):.0f}" if values else "-"


def _backchannel_cells(steps: list[Any]) -> dict[str, str]:
    clears = [s.clears or 0 for s in steps]
    paused = [s.paused_ms for s in steps if s.paused_ms is not None]
    replayed = [s.replayed_ms for s in steps if s.clear_received and s.replayed_ms is not None]
    on_time = sum(1 for s in steps if not s.clear_received or (s.paused_ms is not None and s.paused_ms <= 300))
    return {
        "n": str(len(steps)),
        "voiced ms p50": f"{statistics.median([s.voiced_ms or 0 for s in steps]):.0f}" if steps else "-",
        "clears / bc": f"{sum(clears) / len(steps):.2f}" if steps else "-",
        "with a clear": f"{sum(1 for c in clears if c)}/{len(steps)}",
        "stopped": f"{sum(1 for s in steps if s.agent_stopped)}/{len(steps)}",
        "pause heard p50/max": _dist(paused),
        "replayed p50/max": _dist(replayed),
        "no pause or <=300 ms": f"{on_time}/{len(steps)}",
    }


def _table(title: str, rows: list[tuple[str, dict[str, str]]]) -> list[str]:
    if not rows:
        return []
    columns = list(rows[0][1])
    width = max(len(title), *(len(name) for name, _ in rows)) + 2
    sizes = [max(len(c), *(len(r[c]) for _, r in rows)) + 2 for c in columns]
    lines = [title.ljust(width) + "".join(c.rjust(n) for c, n in zip(columns, sizes, strict=True))]
    lines += [name.ljust(width) + "".join(r[c].rjust(n) for c, n in zip(columns, sizes, strict=True))
              for name, r in rows]
    return lines


def _grouped(tallies: list[Any], title: str, key: Callable[[Any], str], order: list[str]) -> list[str]:
    rows = []
    for tally in tallies:
        steps = _steps(tally, "backchannel")
        for group in order:
            chosen = [s for s in steps if key(s) == group]
            if chosen:
                rows.append((f"{tally.label} {group}", _backchannel_cells(chosen)))
    return _table(title, rows)


def _kind(step: Any) -> str:
    return next((kind for _, text, kind in INTERRUPTIONS if step.label.startswith(text)), "?")


def _voice(step: Any) -> str:
    if step.label.startswith("(cough)"):
        return "cough"
    return step.label.rsplit("[", 1)[-1].split()[0] if "[" in step.label else "?"


def summary(tallies: list[Any], lengths: list[int]) -> str:
    lines = ["backchannels (clears sent, pauses and replays the caller heard)"]
    lines += _grouped(tallies, "by length (ms)", lambda s: str(_target(s, lengths)), [str(ms) for ms in lengths])
    lines += ["", *_grouped(tallies, "by voice", _voice, [*VOICES, "cough"])]
    lines += ["", *_grouped(tallies, "by word", lambda s: s.label.split(" [")[0], [*WORDS, "(cough)"])]
    rows = []
    for tally in tallies:
        for kind in ("long", "short"):
            steps = [s for s in _steps(tally, "interrupt") if _kind(s) == kind]
            if not steps:
                continue
            reaction = [s.barge_in_ms for s in steps if s.barge_in_ms is not None]
            rows.append((f"{tally.label} {kind}", {
                "n": str(len(steps)),
                "stopped the agent": f"{sum(1 for s in steps if s.agent_stopped)}/{len(steps)}",
                "reaction p50": f"{statistics.median(reaction):.0f}" if reaction else "-",
                "p95": f"{_pct(reaction, 0.95):.0f}" if reaction else "-",
                "max": f"{max(reaction):.0f}" if reaction else "-",
                "clears": f"{sum(s.clears or 0 for s in steps)}",
                "audio after": f"{sum(s.audio_after_clear_ms or 0 for s in steps):.0f} ms",
            }))
    lines += ["", *_table("real interruptions (onset -> clear, ms)", rows)]
    missed = {t.label: sum(1 for c in t.calls for s in c.steps if s.kind == "backchannel")
              - len(_steps(t, "backchannel")) for t in tallies}
    problems = {t.label: sum(len(c.problems) for c in t.calls) for t in tallies}
    lines += ["", f"backchannels left out (the reply had finished, or an earlier one stopped it): {missed}",
              f"call problems: {problems}",
              "targets: no clear for a backchannel; if one pauses, the agent goes on within 300 ms, "
              "nothing replayed; real interruptions still stop the agent"]
    return "\n".join(lines)
