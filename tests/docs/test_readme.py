"""The README cannot drift from the code: its configuration table is `ringline config`'s output,
and it names the local model the install really ships."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ringline.config_doc import README_MARKER, rows, with_table
from ringline.services.brain.llm.local_gguf import MODEL_NAME

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_configuration_table_is_the_settings_classes():
    text = README.read_text(encoding="utf-8")
    assert README_MARKER in text
    assert with_table(text) == text, "README's configuration table is stale: run `ringline config --readme README.md`"


def test_every_setting_of_every_service_is_in_the_table():
    text = README.read_text(encoding="utf-8")
    for service, env, _default, _meaning in rows():
        assert f"| {service} | `{env}` |" in text


def test_a_setting_added_to_a_service_makes_the_table_stale(monkeypatch):
    from pydantic import Field

    from ringline.services.stt.settings import SttSettings

    text = README.read_text(encoding="utf-8")
    fields = dict(SttSettings.model_fields)
    fields["brand_new_ms"] = Field(default=5, description="a knob nobody documented")
    monkeypatch.setattr(SttSettings, "model_fields", fields)
    assert with_table(text) != text
    assert "RINGLINE_STT_BRAND_NEW_MS" in with_table(text)


def test_the_readme_names_the_local_model_the_install_ships():
    text = README.read_text(encoding="utf-8")
    assert MODEL_NAME in text
    # "Qwen2.5-0.5B-Instruct" is another model (the general one, not the Coder one we ship)
    assert not re.search(r"Qwen2\.5-0\.5B", text)
