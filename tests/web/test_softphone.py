"""The softphone and the dashboard in a real browser (Debian's chromium, driven by playwright-core
from npm) against the whole stack on the local models: one call, spoken by a fake microphone.

The caller joins muted, lets the greeting play, then asks "What is the capital city of France?"
over it: the agent stops talking (a `clear`, honoured by the page's player), hears the question
and answers; the page shows both sides and the mouth-to-ear it heard. A second tab shows the call
live on the dashboard, finds it among past calls by number, and opens its latency waterfall.
Screenshots go to .ringline/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ringline.stack import Stack

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE.parents[1] / ".ringline" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NODE = shutil.which("node")
TOKEN = "browser-test-token-0123456789"
CALLER = "+15550107777"
# A long greeting, so the question lands while the agent is still talking.
GREETING = ("Hi, this is Ava, an AI assistant at Ringline. I can answer questions about places, people and "
            "many other things. Ask me anything you like, and take your time.")
AGENTS = f"""
agents:
  - id: ava
    name: Ava
    greeting: "{GREETING}"
"""


def _missing() -> str:
    if not Path(CHROMIUM).exists():
        return "chromium is not installed (scripts/install.sh installs it as root: apt-get install chromium)"
    if NODE is None:
        return "node is not installed (scripts/install.sh installs nodejs as root)"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (cd tests/web && npm ci)"
    return ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if _missing():
        pytest.skip(_missing())
    data = tmp_path_factory.mktemp("ringline")
    (data / "agents.yaml").write_text(textwrap.dedent(AGENTS))
    env = {"RINGLINE_AGENTS_FILE": str(data / "agents.yaml"), "RINGLINE_TELEPHONY_WEB_TOKEN": TOKEN}
    stack = Stack.on_free_ports(data_dir=data, quiet=True, env=env)
    stack.start(timeout=300)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone says, over and over: the question, then 1.2 s of silence."""
    from ringline.caller.speech import load_synth, write_wav

    synth = load_synth()
    speech = np.concatenate(list(synth.synthesize("What is the capital city of France?")))
    silence = np.zeros(int(1.2 * synth.sample_rate), dtype=speech.dtype)
    return write_wav(tmp_path_factory.mktemp("mic") / "question.wav", np.concatenate([speech, silence]),
                     rate=synth.sample_rate)


@pytest.fixture(scope="module")
def seen(stack: Stack, microphone: Path) -> dict:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([NODE, str(HERE / "drive.js"), stack.edge_url, TOKEN, str(microphone), str(SCREENSHOTS),
                          CALLER], capture_output=True, text=True, timeout=420, cwd=HERE,
                         env={**os.environ, "CHROMIUM": CHROMIUM})
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the browser driver said nothing (exit {run.returncode}):\n{run.stderr[-3000:]}"
    result = json.loads(lines[-1])
    print(json.dumps(result, indent=1))  # shown when a test fails
    return result


def test_the_softphone_hears_the_greeting_and_is_heard_over_it(seen: dict) -> None:
    assert not [e for e in seen["errors"] if not e.startswith("phone console")], seen["errors"]
    phone = seen["phone"]
    greeting = phone["turns"][0]
    assert greeting["who"] == "agent" and "ava" in greeting["text"].lower(), phone["turns"]
    assert phone["framesSent"] > 100 and phone["marksEchoed"] >= 1
    # The caller started talking while the greeting played, and the rest of it never played: the
    # page honoured the `clear`s, and the greeting's last mark was never echoed as heard. (How much
    # queued audio the clear flushed depends on how far ahead of playback the TTS was.)
    assert seen["spoke"]["before"]["playing"], seen["spoke"]
    assert phone["clears"] >= 1, phone
    assert not [m for m in phone["heard"] if m.split(":")[0].split("~")[0] == greeting["id"]], phone["heard"]
    assert {"interrupted", "cut off"} & set(greeting["notes"]), greeting


def test_the_transcript_shows_the_question_and_the_answer_with_mouth_to_ear(seen: dict) -> None:
    turns = seen["phone"]["turns"]
    asked = next(i for i, t in enumerate(turns) if t["who"] == "caller" and t["final"])
    assert "capital" in turns[asked]["text"].lower(), turns
    answer = next(t for t in turns[asked + 1:] if t["who"] == "agent" and t["final"])
    assert "paris" in answer["text"].lower(), answer
    # Heard here: from the caller's last voiced frame to the answer's first sample played.
    assert answer["m2e"] is not None and 100 < answer["m2e"] < 15000, answer
    assert answer["stages"]["total"] > 0 and set(answer["stages"]) >= {"stt", "brain", "tts", "edge"}
    assert "Paris" in seen["phone"]["transcriptText"]


def test_the_dashboard_shows_the_call_live_with_its_waterfall(seen: dict) -> None:
    assert "ava" in seen["dashboardRow"] and CALLER in seen["dashboardRow"], seen["dashboardRow"]
    rows = seen["callPage"]["rows"]
    answer = next(r for r in rows if r["who"].startswith("agent") and "paris" in r["text"].lower())
    assert answer["bars"] == 4 and "stt" in answer["waterfall"] and "edge" in answer["waterfall"], answer
    greeting = rows[0]
    assert greeting["cut"] and "barge-in" in greeting["text"], rows
    assert "ava" in seen["callPage"]["facts"] and CALLER in seen["callPage"]["facts"]


def test_after_the_call_the_dashboard_lists_it_and_keeps_its_turns(seen: dict) -> None:
    assert "ended" in seen["dashboardEnded"], seen["dashboardEnded"]
    assert any(CALLER in row and "caller hung up" in row for row in seen["searchRows"]), seen["searchRows"]
    ended = seen["callPageEnded"]
    assert "caller hung up" in ended["facts"] and ended["rows"] >= 3 and ended["bars"] >= 4, ended


def test_the_pages_are_light(seen: dict) -> None:
    for name, weight in seen["weight"].items():
        assert weight["requests"] <= 6 and weight["bytes"] < 60_000, (name, weight)
