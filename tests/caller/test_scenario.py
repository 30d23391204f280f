"""Scenario calls: barge-in, backchannels, mid-sentence pauses, key presses and hang-ups, played
against the real edge with a turn-taking agent on the bus, and judged as the caller heard them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ringline.caller import (
    Backchannel,
    Dtmf,
    ExpectHangup,
    Hangup,
    Interrupt,
    Pause,
    Say,
    Scenario,
    ScenarioError,
    Wait,
    Wav,
    load_scenario,
    place_call,
    prepare,
)
from ringline.caller.report import format_result
from ringline.caller.speech import compose, write_wav

pytestmark = pytest.mark.service

QUICK = {"nats_url": None, "reply_timeout": 5.0, "quiet_s": 0.4, "max_reply_s": 15.0}


# ------------------------------------------------------------------------------ scenario files


def test_a_yaml_scenario_reads_into_steps(tmp_path: Path, helpers) -> None:
    write_wav(tmp_path / "hello.wav", helpers.tone(0.5), 8000)
    path = tmp_path / "booking.yaml"
    path.write_text("""
steps:
  - say: ["I'd like to book a table", {pause_ms: 600}, "for Tuesday"]
  - say: {wav: hello.wav}
  - interrupt: {after_ms: 1200, text: "Sorry, stop there."}
  - backchannel: {after_ms: 800}
  - wait: 3000
  - dtmf: "5"
  - hangup: {after_ms: 500}
  - expect_hangup: {timeout_s: 20}
""")
    scenario = load_scenario(path)
    assert scenario.name == "booking"
    assert [s.kind for s in scenario.steps] == ["say", "say", "interrupt", "backchannel", "wait", "dtmf",
                                                 "hangup", "expect_hangup"]
    say, wav, interrupt, backchannel, wait, dtmf, hangup, expect = scenario.steps
    assert say.parts == ("I'd like to book a table", Pause(600), "for Tuesday")
    assert wav.parts == (Wav((tmp_path / "hello.wav").resolve()),)
    assert (interrupt.parts, interrupt.after_ms) == (("Sorry, stop there.",), 1200)
    assert (backchannel.parts, backchannel.after_ms) == (("Uh-huh.",), 800)
    assert (wait.ms, dtmf.digit, hangup.after_ms, expect.timeout_s) == (3000, "5", 500, 20.0)


def test_json_and_python_scenarios_are_the_same(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"say": "Hi"}, {"interrupt": {"after_ms": 800, "text": "Stop"}},
                                {"expect_hangup": {"timeout_s": 5}}]))
    built = Scenario([Say("Hi"), Interrupt("Stop", after_ms=800), ExpectHangup(timeout_s=5)])
    assert load_scenario(path).steps == built.steps


@pytest.mark.parametrize(("steps", "why"), [
    ([{"sing": "la"}], "unknown step 'sing'"),
    ([{"wait": -5}], "not a number of milliseconds"),
    ([{"dtmf": "12"}], "not a key of a phone"),
    ([{"interrupt": {"after": 3, "text": "x"}}], "unknown option(s) ['after']"),
    ([{"say": [{"pause_ms": 300}]}], "nothing to say"),
    ([], "non-empty list of steps"),
])
def test_bad_scenarios_say_which_step_and_why(steps: list, why: str) -> None:
    with pytest.raises(ScenarioError, match=r"step 1|non-empty") as err:
        Scenario.from_data(steps)
    assert why in str(err.value)


def test_an_inner_pause_is_exactly_that_long_and_silent(helpers) -> None:
    first, second = helpers.tone_utterance("a", 0.5), helpers.tone_utterance("b", 0.4)
    joined = compose([first, 600, second])
    ((start, end),) = joined.pauses
    assert (end - start) * 20 == 600
    assert joined.audio[start * 160:end * 160] == b"\xff" * (end - start) * 160
    assert abs(joined.voiced_ms - (500 + 600 + 400)) <= 40  # speech, pause, speech: nothing else
    assert prepare(Scenario([Say([first, Pause(600), second])])).steps[0].utterance.pauses == joined.pauses


# ------------------------------------------------------------------------------ live calls


async def test_an_interruption_is_cleared_quickly_and_nothing_follows(talking_edge, helpers) -> None:
    scenario = Scenario([Say(helpers.tone_utterance("question")),
                         Interrupt(helpers.tone_utterance("stop", 1.0), after_ms=700)])
    result = await place_call(talking_edge.url, scenario, **QUICK)
    assert result.ok, result.problems
    (step,) = result.step("interrupt")
    assert step.clear_received and step.audio_after_clear_ms == 0.0
    # the agent interrupts itself after 250 ms of speech over it; the bus and the edge add little
    assert 200 <= step.barge_in_ms <= 800, step
    # no sooner than asked, and while the 3 s reply played (how late a loaded loop acts is the
    # conversation bench's to measure, not a bound here)
    assert 0.6 <= step.acted_at - step.reply_started_at < 3.0
    interrupted = next(t for t in result.turns if t.speaker == "agent" and t.turn_ids == ["reply1"])
    assert interrupted.interrupted and interrupted.audio_s == 3.0  # all of it was sent, not all heard
    answer = next(t for t in result.turns if t.turn_ids == ["reply2"])
    assert answer.mouth_to_ear_ms is not None and not answer.interrupted
    # the edge told the agent which of its marks were never heard
    cleared = [p.mark for p in talking_edge.agent.playbacks if p.cleared]
    assert cleared and all(m.startswith("reply1:") for m in cleared)
    assert "clear after" in format_result(result)


async def test_a_backchannel_does_not_stop_the_agent(talking_edge, helpers) -> None:
    uh_huh = helpers.tone_utterance("uh-huh", 0.2)
    result = await place_call(talking_edge.url, Scenario([Say(helpers.tone_utterance("question")),
                                                          Backchannel(uh_huh, after_ms=800)]), **QUICK)
    assert result.ok, result.problems
    (step,) = result.step("backchannel")
    assert step.clear_received is False and step.voiced_ms <= 300
    # The reply may reach the phone as more than one stretch of audio on a loaded box: judge them all.
    replies = [t for t in result.turns if "reply1" in t.turn_ids]
    assert replies and not any(t.interrupted for t in replies), format_result(result)
    if all(t.turn_ids == ["reply1"] for t in replies):
        assert sum(t.audio_s for t in replies) == pytest.approx(3.0, abs=0.05), format_result(result)
    assert talking_edge.agent.replies == 1  # and it was no new turn either


@pytest.mark.parametrize(("end_silence_ms", "cut_off"), [(900, False), (200, True)])
async def test_a_mid_sentence_pause_is_judged(talking_edge, helpers, end_silence_ms: int,
                                              cut_off: bool) -> None:
    talking_edge.agent.end_silence_ms = end_silence_ms
    utterance = Say([helpers.tone_utterance("I'd like to book a table", 0.8), Pause(600),
                     helpers.tone_utterance("for Tuesday", 0.5)])
    result = await place_call(talking_edge.url, Scenario([utterance]), **QUICK)
    (step,) = result.step("say")
    assert len(step.pauses) == 1 and abs(step.pauses[0][1] - step.pauses[0][0] - 0.6) < 0.05
    assert step.false_cutoff is cut_off, step
    assert result.false_cutoffs == int(cut_off)


async def test_the_agent_hangs_up_after_its_goodbye_played(talking_edge) -> None:
    result = await place_call(talking_edge.url, Scenario([Dtmf("9"), ExpectHangup(timeout_s=5)]), **QUICK)
    assert result.ok, result.problems
    assert result.ended_by == "agent" and result.step("expect_hangup")[0].agent_hung_up
    assert result.hung_up_after_goodbye is True and result.unplayed_at_hangup_ms == 0.0
    assert [c.digit for c in talking_edge.agent.controls if c.action == "dtmf"] == ["9"]
    assert "after its goodbye had played" in format_result(result)


async def test_an_agent_that_hangs_up_over_its_goodbye_is_caught(talking_edge) -> None:
    talking_edge.agent.hangup_early = True
    result = await place_call(talking_edge.url, Scenario([Dtmf("9"), ExpectHangup(timeout_s=5)]), **QUICK)
    assert result.ended_by == "agent"
    assert result.hung_up_after_goodbye is False and result.unplayed_at_hangup_ms > 300


async def test_expecting_a_hangup_that_never_comes_is_a_problem(talking_edge) -> None:
    result = await place_call(talking_edge.url, Scenario([Wait(200), ExpectHangup(timeout_s=1)]), **QUICK)
    assert result.problems == ["the agent did not hang up within 1 s"]
    assert result.ended_by == "caller" and result.hung_up_after_goodbye is None


async def test_the_caller_hangs_up_mid_reply(talking_edge, helpers) -> None:
    result = await place_call(talking_edge.url, Scenario([Say(helpers.tone_utterance("question")),
                                                          Hangup(after_ms=500), Say("never said")]), **QUICK)
    assert result.ended_by == "caller"
    (step,) = result.step("hangup")
    assert step.note == "while the reply was playing" and 0.45 <= step.acted_at - step.reply_started_at < 3.0
    assert result.problems == ["the caller hung up with 1 step(s) left"]
    assert [e.reason for e in talking_edge.agent.ends] == ["caller hung up"]


def test_the_cli_runs_a_scenario_file(tmp_path: Path, helpers, capsys) -> None:
    from ringline.caller.cli import configure, run

    write_wav(tmp_path / "q.wav", np.concatenate([helpers.tone(0.6), np.zeros(800, np.int16)]), 8000)
    path = tmp_path / "s.yaml"
    path.write_text("steps:\n  - say: {wav: q.wav}\n")
    import argparse

    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--scenario", str(path), "--url", f"http://127.0.0.1:{helpers.free_port()}",
                              "--nats", ""])
    assert run(args) == 1  # nobody answers at that port: reported, not raised
    assert "call failed" in capsys.readouterr().out
    both = parser.parse_args(["--scenario", str(path), "--say", "hi"])
    assert run(both) == 2
    assert "either --scenario or --say" in capsys.readouterr().err


# ------------------------------------------------------------------------------ verdicts


def _timeline(events: list[tuple[float, str, str]]):
    from ringline.caller.timeline import Timeline

    timeline = Timeline()
    for at, kind, name in events:
        if kind == "media":
            timeline.media(at)
        elif kind == "mark":
            timeline.mark(at, name)
        elif kind == "clear":
            timeline.clear(at)
        else:
            raise ValueError(kind)
    return timeline


def test_audio_of_the_interrupted_turn_after_the_clear_is_caught() -> None:
    from ringline.caller.results import CallResult, StepResult
    from ringline.caller.verdicts import judge

    frames = lambda start, n: [(start + i * 0.02, "media", "") for i in range(n)]  # noqa: E731
    timeline = _timeline([*frames(10.0, 50), (10.99, "mark", "t1:0"), (12.3, "clear", ""),
                          *frames(12.4, 5), (12.5, "mark", "t1:1"),  # leaked: the interrupted turn's
                          *frames(14.0, 10), (14.2, "mark", "t2:0")])  # the answer: fine
    step = StepResult(index=2, kind="interrupt", label="stop", reply_started_at=10.0, speech_onset_at=12.0,
                      speech_end_at=13.5)
    result = CallResult(call_sid="CA1", steps=[step])
    judge(result, timeline, playback_end=14.4)
    assert step.clear_received and step.barge_in_ms == pytest.approx(300.0)
    assert step.audio_after_clear_ms == 100.0


def test_a_backchannel_that_paused_the_agent_is_told_from_one_that_stopped_it() -> None:
    from ringline.caller.results import CallResult, StepResult
    from ringline.caller.verdicts import judge

    frames = lambda start, n: [(start + i * 0.02, "media", "") for i in range(n)]  # noqa: E731
    before = [*frames(10.0, 50), (10.99, "mark", "t1:0"), *frames(11.0, 50), (11.99, "mark", "t1:1")]
    resumed = _timeline([*before, (12.3, "clear", ""), *frames(12.9, 50), (13.9, "mark", "t1~1:1")])
    stopped = _timeline([*before, (12.3, "clear", ""), *frames(14.0, 10), (14.2, "mark", "t2:0")])
    outcomes = []
    for timeline in (resumed, stopped):
        step = StepResult(index=1, kind="backchannel", label="okay", reply_started_at=10.0,
                          speech_onset_at=12.0, speech_end_at=12.4, ended_at=12.4)
        judge(CallResult(call_sid="CA1", steps=[step]), timeline, playback_end=15.0)
        outcomes.append((step.clear_received, step.agent_stopped, step.paused_ms))
    assert outcomes == [(True, False, pytest.approx(600.0)), (True, True, None)]


@pytest.mark.parametrize(("rewind_frames", "replayed", "just_in_time"),
                         [(0, 0.0, False), (20, 400.0, False), (20, 400.0, True)])
def test_what_a_backchannel_made_the_caller_hear_twice_is_measured(rewind_frames: int, replayed: float,
                                                                    just_in_time: bool) -> None:
    """The edge replays the very frames it had sent: the caller heard the last `rewind_frames`
    before the clear again after it (0: it went on exactly where it stopped), also when each frame
    came just as the one before finished playing (many short stretches, not one)."""
    from ringline.caller.playback import PlaybackEmulator
    from ringline.caller.results import CallResult, StepResult
    from ringline.caller.verdicts import judge

    speech = [bytes([(7 * i + j) % 120 + 1 for j in range(160)]) for i in range(100)]  # 100 distinct frames
    phone, timeline = PlaybackEmulator(), _timeline([])
    for i in range(50 if just_in_time else 100):  # all sent at t=10, or each just after the one before played
        at = 10.0 + i * 0.0201 if just_in_time else 10.0
        phone.on_media(at, speech[i])
        timeline.media(at)
    timeline.mark(10.0, "t1:0")
    phone.on_clear(11.0)  # 50 frames played
    timeline.clear(11.0)
    for i in range(50 - rewind_frames, 100):  # the resume, 250 ms later
        phone.on_media(11.25, speech[i])
        timeline.media(11.25)
    timeline.mark(11.25, "t1~1:0")
    step = StepResult(index=1, kind="backchannel", label="mm-hmm", reply_started_at=10.0,
                      speech_onset_at=10.6, speech_end_at=11.1, ended_at=11.1)
    judge(CallResult(call_sid="CA1", steps=[step]), timeline, playback_end=13.0, played=phone.pieces)
    assert step.paused_ms == pytest.approx(250.0) and step.replayed_ms == pytest.approx(replayed, abs=20)
    assert step.clears == 1 and not step.agent_stopped


def test_an_interruption_is_timed_to_the_clear_that_stopped_the_agent() -> None:
    """A pause the agent went on from (the first burst went quiet), then the interrupt on the
    words: the caller stopped hearing the agent at the second clear."""
    from ringline.caller.results import CallResult, StepResult
    from ringline.caller.verdicts import judge

    frames = lambda start, n: [(start + i * 0.02, "media", "") for i in range(n)]  # noqa: E731
    timeline = _timeline([*frames(10.0, 50), (10.99, "mark", "t1:0"), (12.3, "clear", ""),
                          *frames(12.6, 20), (12.99, "mark", "t1~1:1"), (13.2, "clear", "")])
    step = StepResult(index=1, kind="interrupt", label="Stop.", reply_started_at=10.0,
                      speech_onset_at=12.0, speech_end_at=12.5, ended_at=12.5)
    judge(CallResult(call_sid="CA1", steps=[step]), timeline, playback_end=15.0)
    assert step.clears == 2 and step.agent_stopped and step.barge_in_ms == pytest.approx(1200.0)


def test_an_agent_hanging_up_before_its_goodbye_mark_came_back_is_caught() -> None:
    from ringline.caller.results import CallResult, TurnResult
    from ringline.caller.verdicts import judge

    timeline = _timeline([(20.0, "media", ""), (20.01, "mark", "bye:0")])
    timeline.echo(21.05, "bye:0", cleared=False)
    timeline.close(21.2, "agent")
    heard = CallResult(call_sid="CA1", turns=[TurnResult(speaker="caller", ended_at=19.0)])
    judge(heard, timeline, playback_end=21.04)
    assert heard.hung_up_after_goodbye is True and heard.unplayed_at_hangup_ms == 0.0

    early = _timeline([(20.0, "media", ""), (20.01, "mark", "bye:0")])
    early.close(20.5, "agent")  # the mark never came back: the goodbye was cut
    cut = CallResult(call_sid="CA1", turns=[TurnResult(speaker="caller", ended_at=19.0)])
    judge(cut, early, playback_end=21.04)
    assert cut.hung_up_after_goodbye is False and cut.unplayed_at_hangup_ms == pytest.approx(540.0)
