"""The agents file as an operator writes it: routing, allow-lists, hours, clear errors, reloads."""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ringline.contracts.agents import (
    AgentBook,
    AgentsFileError,
    WatchedAgentBook,
    load_agents,
)

pytestmark = pytest.mark.unit

GOOD = """
default_agent: front
agents:
  - id: front
    name: Ava
    numbers: ["+1 (555) 010-0001"]
  - id: family
    numbers: ["+15550100002", "+447700900001"]
    allow: ["+1555*", "+44 7700 900123"]
    hours: {timezone: Europe/London, open: {mon-fri: "09:00-17:30", sat: "22:00-02:00"}}
"""


def write(tmp_path: Path, text: str, name: str = "agents.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_calls_are_routed_by_the_dialled_number_in_any_spelling(tmp_path):
    book = load_agents(write(tmp_path, GOOD))
    assert book.for_number("+15550100001").id == "front"
    assert book.for_number("+44 7700 900001").id == "family"
    assert book.for_number("+19990000000").id == "front", "an unknown number goes to the default agent"
    assert book.for_number("anonymous").id == "front"


def test_allow_list_takes_numbers_and_patterns_and_refuses_withheld_numbers(tmp_path):
    family = load_agents(write(tmp_path, GOOD)).agent("family")
    assert family.allows("+15551234567") and family.allows("+447700900123")
    assert not family.allows("+447700900124") and not family.allows("") and not family.allows("anonymous")


def test_business_hours_follow_the_agents_time_zone_and_may_pass_midnight(tmp_path):
    hours = load_agents(write(tmp_path, GOOD)).agent("family").hours
    assert hours is not None
    monday_9_30_london = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # GMT in November
    assert hours.is_open(monday_9_30_london)
    assert not hours.is_open(datetime(2026, 11, 23, 8, 59, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 11, 22, 12, 0, tzinfo=UTC)), "Sunday is closed"
    assert hours.is_open(datetime(2026, 11, 22, 1, 30, tzinfo=UTC)), "Saturday's late span runs into Sunday"
    assert hours.is_open(datetime(2026, 7, 6, 16, 15, tzinfo=UTC)), "17:15 BST in summer"


def test_admission_names_the_reason_a_call_goes_to_voicemail(tmp_path):
    family = load_agents(write(tmp_path, GOOD)).agent("family")
    open_now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert family.admit("+15551234567", open_now) == ""
    assert family.admit("+4915100000", open_now) == "caller not on the allow-list"
    assert family.admit("+15551234567", datetime(2026, 11, 23, 20, 0, tzinfo=UTC)) == "outside business hours"


def test_every_problem_is_reported_with_its_place(tmp_path):
    bad = """
    agents:
      - id: front
        numbers: ["555-not-a-number"]
        hours: {timezone: Mars/Olympus, open: {funday: "9-5"}}
      - id: front
        tools: [{name: "has space", description: "", url: "ftp://x"}]
        surprise: true
    """
    with pytest.raises(AgentsFileError) as error:
        load_agents(write(tmp_path, bad))
    text = str(error.value)
    assert "agents[0] (agent 'front').numbers:" in text and "not a phone number" in text
    assert "unknown time zone 'Mars/Olympus'" in text and "funday" in text
    assert "agents[1] (agent 'front').tools[0].name" in text and "surprise" in text


def test_duplicate_ids_and_numbers_are_refused(tmp_path):
    twice = "agents:\n  - {id: a, numbers: ['+15550100001']}\n  - {id: b, numbers: ['+1 555 010 0001']}\n"
    with pytest.raises(AgentsFileError, match=r"number \+15550100001 belongs to both 'a' and 'b'"):
        load_agents(write(tmp_path, twice))
    with pytest.raises(AgentsFileError, match="not valid YAML"):
        load_agents(write(tmp_path, "agents: [\n"))
    with pytest.raises(AgentsFileError, match="cannot read it"):
        load_agents(tmp_path / "missing.yaml")


def test_an_edited_file_is_reloaded_and_a_broken_edit_keeps_the_last_good_agents(tmp_path):
    path = write(tmp_path, GOOD)
    watched = WatchedAgentBook(path, interval_s=0.0)
    assert watched.book.agent("front").name == "Ava"
    path.write_text(GOOD.replace("name: Ava", "name: Bea"))
    os.utime(path, (1, 1))  # a new stamp even within the same clock tick
    assert watched.book.agent("front").name == "Bea"
    path.write_text("agents: [{id: 'Bad Id'}]")
    assert watched.book.agent("front").name == "Bea" and "agents[0]" in watched.error


def test_without_a_file_there_is_one_default_agent_that_takes_everyone():
    book = WatchedAgentBook(None).book
    assert [a.id for a in book.agents] == ["default"] and book.for_number("+15550100001").id == "default"
    assert AgentBook().fallback.admit("", datetime.now(UTC)) == ""


def test_ringline_agents_lists_a_good_file_and_explains_a_bad_one(tmp_path, capsys):
    from ringline.cli import main

    assert main(["agents", str(write(tmp_path, GOOD))]) == 0
    out = capsys.readouterr().out
    assert "2 agent(s)" in out and "front  (Ava)" in out and "+1555*, +447700900123" in out
    assert main(["agents", str(write(tmp_path, "agents:\n  - {id: x, numbers: ['12']}\n", "bad.yaml"))]) == 1
    assert "agents[0] (agent 'x').numbers: '12' is not a phone number" in capsys.readouterr().err


def test_turn_taking_is_per_agent_and_split_between_the_stt_and_the_brain(tmp_path):
    book = load_agents(write(tmp_path, """
        agents:
          - id: patient
            turn_taking: {end_silence_ms: 1000, backstop_silence_ms: 2500, barge_in_min_ms: 400,
                          preemptive_generation: true}
          - id: plain
    """))
    patient, plain = book.get("patient"), book.get("plain")
    assert patient.turn_taking.stt_options() == {"stt_end_silence_ms": "1000", "stt_backstop_silence_ms": "2500"}
    assert patient.turn_taking.brain_settings() == {"barge_in_min_ms": 400, "preemptive_generation": True}
    assert plain.turn_taking.stt_options() == {} and plain.turn_taking.brain_settings() == {}
    with pytest.raises(AgentsFileError) as error:
        load_agents(write(tmp_path, """
            agents:
              - id: hasty
                turn_taking: {end_silence_ms: 20, barge_in: 100}
        """, "bad.yaml"))
    assert "end_silence_ms" in str(error.value) and "barge_in" in str(error.value)
