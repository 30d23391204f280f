"""What a call costs: a price table and pure functions from usage to money.

Every stage reports what it consumed (`Usage`: audio seconds streamed to STT, LLM tokens, TTS
characters) with the provider or model that consumed it; `turn_cost` prices one turn's usage
and `call_cost` sums a call. A turn that fell back mid-way reports one `Usage` per provider.

Default prices are public list prices in USD (pay-as-you-go, no volume discount, no promotion),
checked in 2025 and again in November 2026 (sources beside each table); load your contract prices
over them with `load_prices` (a JSON or YAML file, or JSON in an environment variable). Local
providers cost nothing per use.

Unknown providers or models are priced at zero and listed in `Cost.unpriced`, so a missing
price shows up on the call record instead of silently reading as free.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PRICES_FILE_ENV = "RINGLINE_PRICES_FILE"
"""Environment variable naming a JSON or YAML price file (merged over the defaults)."""
PRICES_JSON_ENV = "RINGLINE_PRICES"
"""Environment variable holding JSON price overrides (merged last)."""

_PER_MTOK = 1_000_000


class TokenPrice(BaseModel):
    """USD per million tokens of one model."""

    model_config = ConfigDict(frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float = Field(default=0.0, ge=0)
    """Prompt tokens read from the cache (Anthropic: 0.1x input)."""
    cache_write: float = Field(default=0.0, ge=0)
    """Prompt tokens written to the cache (Anthropic, 5-minute TTL: 1.25x input)."""

    @classmethod
    def anthropic(cls, input_per_mtok: float, output_per_mtok: float) -> TokenPrice:
        """Anthropic's rule: cache reads cost 0.1x and 5-minute cache writes 1.25x the input price."""
        return cls(
            input=input_per_mtok,
            output=output_per_mtok,
            cache_read=round(input_per_mtok * 0.1, 6),
            cache_write=round(input_per_mtok * 1.25, 6),
        )


def _default_llm() -> dict[str, TokenPrice]:
    # platform.claude.com/docs/en/about-claude/pricing (list price per million tokens; checked
    # 2026-11): Haiku 4.5 $1 in, $1.25 5-minute cache write, $0.10 cache hit, $5 out; Sonnet 4.5
    # and 4.6 $3, $3.75, $0.30, $15. (1-hour cache writes, 2x input, are not used here.)
    haiku_45 = TokenPrice.anthropic(1.00, 5.00)  # Claude Haiku 4.5: $1 in / $5 out
    sonnet_45 = TokenPrice.anthropic(3.00, 15.00)  # Claude Sonnet 4.5: $3 in / $15 out (<= 200k context)
    return {
        "claude-haiku-4-5": haiku_45,
        "claude-sonnet-4-5": sonnet_45,
        "claude-sonnet-4-6": sonnet_45,  # same list price as 4.5
        "local": TokenPrice(input=0, output=0),  # llama.cpp on our own box
    }


def _default_stt() -> dict[str, float]:
    return {
        # deepgram.com/pricing, Pay As You Go, Nova-3 monolingual *streaming*: $0.0077/min
        # (pre-recorded is $0.0043/min). Deepgram bills every second streamed, silence included.
        # In 2026 the page lists streaming at $0.0048/min, which the notes quoting it describe
        # as a limited-time rate (regular $0.0077); we keep the regular rate. Set the lower one
        # with RINGLINE_PRICES while it lasts.
        "deepgram": 0.0077,
        "deepgram-nova-3": 0.0077,
        "whisper-tiny.en": 0.0,  # local faster-whisper
        "whisper-base": 0.0,  # local faster-whisper (RINGLINE_STT_WHISPER_MODEL=base)
    }


def _default_tts() -> dict[str, float]:
    return {
        # docs.cartesia.ai/pricing: TTS costs ~1 credit per character, on every TTS endpoint.
        # cartesia.ai/pricing (as of 2026-10): Pro $5 for 100K credits = $50 per million
        # characters (Startup $49/1.25M = $39.2/M, Scale $299/8M = $37.4/M); past the included
        # credits Pro bills $65/M, Startup $45/M, Scale $38/M. We default to the Pro plan's
        # included rate; a busy Pro account pays the overage rate (set it with RINGLINE_PRICES).
        "cartesia": 0.00005,
        "piper": 0.0,  # local Piper voice
    }


class PriceTable(BaseModel):
    """Prices by provider (STT, TTS) and by model (LLM)."""

    currency: str = "USD"
    stt_per_minute: dict[str, float] = Field(default_factory=_default_stt)
    """Provider name -> price per minute of audio streamed."""
    llm_per_mtok: dict[str, TokenPrice] = Field(default_factory=_default_llm)
    """Model id (or a prefix of dated ids: "claude-haiku-4-5" prices "claude-haiku-4-5-20251001")."""
    tts_per_character: dict[str, float] = Field(default_factory=_default_tts)
    """Provider name -> price per character of text synthesized."""

    def llm_price(self, model: str) -> TokenPrice | None:
        """Exact model id first, else the longest key that prefixes it."""
        if model in self.llm_per_mtok:
            return self.llm_per_mtok[model]
        keys = [key for key in self.llm_per_mtok if model.startswith(key)]
        return self.llm_per_mtok[max(keys, key=len)] if keys else None


class Usage(BaseModel):
    """What one provider consumed in one turn (or one call). Zero quantities are ignored.

    Token counts follow Anthropic's usage block: `input_tokens` excludes the tokens read from
    or written to the prompt cache, which are counted (and priced) separately.
    """

    stt_provider: str = ""
    stt_seconds: float = Field(default=0.0, ge=0)
    llm_model: str = ""
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cache_creation_input_tokens: int = Field(default=0, ge=0)
    tts_provider: str = ""
    tts_characters: int = Field(default=0, ge=0)


class Cost(BaseModel):
    """Money by stage, in the price table's currency."""

    currency: str = "USD"
    stt: float = 0.0
    llm: float = 0.0
    tts: float = 0.0
    unpriced: list[str] = Field(default_factory=list)
    """Providers/models that consumed something but have no price (counted as zero)."""

    @property
    def total(self) -> float:
        return self.stt + self.llm + self.tts

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            currency=self.currency,
            stt=self.stt + other.stt,
            llm=self.llm + other.llm,
            tts=self.tts + other.tts,
            unpriced=sorted(set(self.unpriced) | set(other.unpriced)),
        )

    def rounded(self, digits: int = 6) -> dict[str, Any]:
        """For records and logs: `{"stt": .., "llm": .., "tts": .., "total": .., ...}`."""
        return {
            "currency": self.currency,
            "stt": round(self.stt, digits),
            "llm": round(self.llm, digits),
            "tts": round(self.tts, digits),
            "total": round(self.total, digits),
            "unpriced": list(self.unpriced),
        }


def usage_cost(usage: Usage, prices: PriceTable) -> Cost:
    """The cost of one provider's usage."""
    cost = Cost(currency=prices.currency)
    if usage.stt_seconds > 0:
        per_minute = prices.stt_per_minute.get(usage.stt_provider)
        if per_minute is None:
            cost.unpriced.append(f"stt:{usage.stt_provider}")
        else:
            cost.stt = usage.stt_seconds / 60.0 * per_minute
    tokens = (usage.input_tokens, usage.output_tokens,
              usage.cache_read_input_tokens, usage.cache_creation_input_tokens)
    if any(tokens):
        price = prices.llm_price(usage.llm_model)
        if price is None:
            cost.unpriced.append(f"llm:{usage.llm_model}")
        else:
            cost.llm = (
                usage.input_tokens * price.input
                + usage.output_tokens * price.output
                + usage.cache_read_input_tokens * price.cache_read
                + usage.cache_creation_input_tokens * price.cache_write
            ) / _PER_MTOK
    if usage.tts_characters > 0:
        per_char = prices.tts_per_character.get(usage.tts_provider)
        if per_char is None:
            cost.unpriced.append(f"tts:{usage.tts_provider}")
        else:
            cost.tts = usage.tts_characters * per_char
    return cost


def turn_cost(usage: Usage | Iterable[Usage], prices: PriceTable) -> Cost:
    """One turn: a single `Usage`, or one per provider when the turn fell back mid-way."""
    usages = [usage] if isinstance(usage, Usage) else list(usage)
    return sum_costs((usage_cost(u, prices) for u in usages), prices.currency)


def sum_costs(costs: Iterable[Cost], currency: str = "USD") -> Cost:
    total = Cost(currency=currency)
    for cost in costs:
        total = total + cost
    return total


def call_cost(turns: Iterable[Usage | Iterable[Usage]], prices: PriceTable) -> Cost:
    """A whole call: the sum of its turns' costs."""
    return sum_costs((turn_cost(turn, prices) for turn in turns), prices.currency)


# -- loading ----------------------------------------------------------------------------------

def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Override tables key by key, so a file can change one price and keep the other defaults."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def read_price_file(path: str | Path) -> dict[str, Any]:
    """A JSON or YAML (.yaml/.yml) file with any of PriceTable's fields."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a price file holds a mapping, not {type(data).__name__}")
    return data


def load_prices(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> PriceTable:
    """Defaults, then the file (`path`, else `$RINGLINE_PRICES_FILE`), then `$RINGLINE_PRICES`
    (JSON), then `overrides`. Pass `env` explicitly from settings code; it defaults to os.environ."""
    env = os.environ if env is None else env
    data: dict[str, Any] = PriceTable().model_dump()
    file = path or env.get(PRICES_FILE_ENV)
    if file:
        data = _merge(data, read_price_file(file))
    inline = env.get(PRICES_JSON_ENV)
    if inline:
        data = _merge(data, json.loads(inline))
    if overrides:
        data = _merge(data, overrides)
    return PriceTable.model_validate(data)


DEFAULT_PRICES = PriceTable()
