"""Cost per turn and per call from provider usage (`ringline.contracts.pricing`)."""

from __future__ import annotations

import json

import pytest

from ringline.contracts.pricing import PriceTable, TokenPrice, Usage, call_cost, load_prices, turn_cost

pytestmark = pytest.mark.unit

PRICES = PriceTable()


def test_default_prices_are_the_public_list_prices():
    haiku = PRICES.llm_price("claude-haiku-4-5")
    assert (haiku.input, haiku.output, haiku.cache_read, haiku.cache_write) == (1.0, 5.0, 0.1, 1.25)
    sonnet = PRICES.llm_price("claude-sonnet-4-5")
    assert (sonnet.input, sonnet.output, sonnet.cache_read, sonnet.cache_write) == (3.0, 15.0, 0.3, 3.75)
    assert PRICES.stt_per_minute["deepgram"] == 0.0077
    assert PRICES.tts_per_character["cartesia"] == 0.00005
    assert PRICES.stt_per_minute["whisper-tiny.en"] == 0 and PRICES.tts_per_character["piper"] == 0


def test_a_cloud_turn_is_priced_by_stage():
    usage = Usage(stt_provider="deepgram", stt_seconds=30, llm_model="claude-haiku-4-5-20251001",
                  input_tokens=200, output_tokens=40, cache_read_input_tokens=1000,
                  cache_creation_input_tokens=0, tts_provider="cartesia", tts_characters=120)
    cost = turn_cost(usage, PRICES)
    assert cost.stt == pytest.approx(0.5 * 0.0077)
    assert cost.llm == pytest.approx((200 * 1 + 40 * 5 + 1000 * 0.1) / 1e6)  # a dated id uses its family
    assert cost.tts == pytest.approx(120 * 0.00005)
    assert cost.total == pytest.approx(cost.stt + cost.llm + cost.tts) and not cost.unpriced


def test_cache_writes_cost_more_than_input_and_reads_much_less():
    write = turn_cost(Usage(llm_model="claude-sonnet-4-5", cache_creation_input_tokens=1_000_000), PRICES)
    read = turn_cost(Usage(llm_model="claude-sonnet-4-5", cache_read_input_tokens=1_000_000), PRICES)
    assert write.llm == pytest.approx(3.75) and read.llm == pytest.approx(0.30)


def test_a_turn_that_fell_back_is_the_sum_of_its_providers():
    cost = turn_cost([Usage(tts_provider="cartesia", tts_characters=50),
                      Usage(tts_provider="piper", tts_characters=70)], PRICES)
    assert cost.tts == pytest.approx(50 * 0.00005)


def test_a_call_sums_its_turns_and_lists_what_has_no_price():
    turns = [Usage(llm_model="claude-haiku-4-5", input_tokens=1000, output_tokens=100),
             [Usage(llm_model="mystery-model", input_tokens=10), Usage(stt_provider="deepgram", stt_seconds=60)]]
    cost = call_cost(turns, PRICES)
    assert cost.llm == pytest.approx((1000 * 1 + 100 * 5) / 1e6)
    assert cost.stt == pytest.approx(0.0077)
    assert cost.unpriced == ["llm:mystery-model"]
    assert cost.rounded()["total"] == round(cost.total, 6)


def test_local_providers_cost_nothing():
    usage = Usage(stt_provider="whisper-tiny.en", stt_seconds=600, llm_model="local", input_tokens=10_000,
                  output_tokens=500, tts_provider="piper", tts_characters=5000)
    assert turn_cost(usage, PRICES).total == 0


def test_prices_load_from_a_file_and_the_environment(tmp_path):
    file = tmp_path / "prices.yaml"
    file.write_text("stt_per_minute:\n  deepgram: 0.0065\nllm_per_mtok:\n  my-model: {input: 2, output: 8}\n")
    prices = load_prices(file, env={})
    assert prices.stt_per_minute["deepgram"] == 0.0065
    assert prices.stt_per_minute["whisper-tiny.en"] == 0  # the other defaults stay
    assert prices.llm_price("my-model") == TokenPrice(input=2, output=8)
    overrides = json.dumps({"tts_per_character": {"cartesia": 0.00004}})
    env = {"RINGLINE_PRICES_FILE": str(file), "RINGLINE_PRICES": overrides}
    prices = load_prices(env=env)
    assert prices.stt_per_minute["deepgram"] == 0.0065 and prices.tts_per_character["cartesia"] == 0.00004
    json_file = tmp_path / "prices.json"
    json_file.write_text(json.dumps({"currency": "EUR"}))
    assert load_prices(json_file, env={}).currency == "EUR"
