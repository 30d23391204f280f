"""`ringline config`: every setting of every service, with its environment variable and default.

Generated from the services' own pydantic-settings classes, so it cannot drift from the code.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import AliasChoices, SecretStr
from pydantic_settings import BaseSettings

from ringline.contracts.runtime import ServiceSettings

SETTINGS = {
    "telephony": "ringline.services.telephony.settings:TelephonySettings",
    "stt": "ringline.services.stt.settings:SttSettings",
    "brain": "ringline.services.brain.settings:BrainSettings",
    "tts": "ringline.services.tts.settings:TtsSettings",
    "memory": "ringline.services.memory.settings:MemorySettings",
}


def _load(path: str) -> type[BaseSettings]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _env_name(cls: type[BaseSettings], name: str, field: Any) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"{cls.model_config.get('env_prefix', '')}{name}".upper()


def _shared_env_name(name: str, field: Any) -> str:
    """A shared setting read without a prefix keeps its name; the others take each service's."""
    if field.validation_alias is not None:
        return _env_name(ServiceSettings, name, field)
    return f"RINGLINE_<SERVICE>_{name.upper()}"


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    text = str(value)
    return text if len(text) <= 48 else text[:45] + "…"


def rows() -> list[tuple[str, str, str, str]]:
    """(service, env var, default, description); settings shared by every service come first."""
    shared = set(ServiceSettings.model_fields)
    out = [("all", _shared_env_name(n, f), _default(f), f.description or "")
           for n, f in ServiceSettings.model_fields.items()]
    for service, path in SETTINGS.items():
        cls = _load(path)
        for name, field in cls.model_fields.items():
            if name in shared and name != "port":
                continue
            out.append((service, _env_name(cls, name, field), _default(field), field.description or ""))
    return out


def markdown() -> str:
    lines = ["| service | variable | default | meaning |", "|---|---|---|---|"]
    for service, env, default, description in rows():
        description = description.replace("|", "/").replace("\n", " ")
        lines.append(f"| {service} | `{env}` | `{default}` | {description} |")
    return "\n".join(lines)
