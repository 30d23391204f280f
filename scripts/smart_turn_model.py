"""Install-time: take the Smart Turn v3.2 end-of-turn model (BSD-2) out of the `pipecat-ai` wheel.

    .venv/bin/python scripts/smart_turn_model.py [DEST_DIR]      (default: models/)

Downloads the pipecat-ai 1.14.0 wheel from PyPI without its dependencies, extracts the one ONNX file
into DEST_DIR, checks its sha256 and throws the wheel away. Idempotent: a file already there with
the right checksum is kept. The stt service reads the file; nothing downloads it at run time.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "pipecat-ai==1.14.0"
MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    dest_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "models"
    dest = dest_dir / Path(MEMBER).name
    if dest.is_file() and sha256(dest) == SHA256:
        print(f"{dest} is in place")
        return 0
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", tmp, WHEEL], check=True)
        (wheel,) = Path(tmp).glob("pipecat_ai-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            partial = dest.with_suffix(".part")
            partial.write_bytes(archive.read(MEMBER))
    digest = sha256(partial)
    if digest != SHA256:
        partial.unlink()
        print(f"{MEMBER} has sha256 {digest}, expected {SHA256}; not installed", file=sys.stderr)
        return 1
    partial.replace(dest)
    print(f"end-of-turn model -> {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
