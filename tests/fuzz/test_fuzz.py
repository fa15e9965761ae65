"""Coverage-guided fuzzing of load → validate → render → dump (#14, class 19). See ``target.py``.

- ``test_fuzz_short``: a bounded run (~60 s) in CI, seeded from examples/repo and tests/corpus;
- ``test_fuzz_soak``: the same for ~30 minutes, behind the ``soak`` marker;
- ``test_seeds_hold_the_contract``: every seed replayed in-process without atheris (fast, deterministic);
- ``test_known_findings``: each finding whose fix is elsewhere, kept under ``crashes/``, as a strict xfail.

The fuzzer runs in a subprocess: a crash, a signal or an RSS blow-up ends that process, not pytest. The test
asserts its exit status and that libFuzzer wrote no ``crash-``/``timeout-``/``oom-`` file.
"""

from __future__ import annotations

import builtins
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.known import KNOWN, Known, known
from fuzz.target import check, make_root, write_seeds

HERE = Path(__file__).parent
TARGET = HERE / "target.py"
CRASHES = HERE / "crashes"
SHORT_SECONDS = 60
SOAK_SECONDS = 30 * 60


def run_fuzzer(tmp_path: Path, seconds: int) -> None:
    seeds, corpus, artifacts = tmp_path / "seeds", tmp_path / "corpus", tmp_path / "artifacts"
    write_seeds(seeds)
    corpus.mkdir()
    artifacts.mkdir()
    cmd = [
        sys.executable,
        str(TARGET),
        f"-max_total_time={seconds}",
        "-rss_limit_mb=2048",
        "-timeout=30",  # one input taking longer than this is a finding (libFuzzer writes timeout-*)
        f"-artifact_prefix={artifacts}/",
        f"-dict={HERE / 'virtnet.dict'}",
        "-print_final_stats=1",
        str(corpus),
        str(seeds),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=seconds + 300)
    found = sorted(p.name for p in artifacts.iterdir())
    tail = "\n".join(proc.stderr.splitlines()[-60:])
    for name in found:  # keep what it found where CI can pick it up
        shutil.copy(artifacts / name, tmp_path / name)
    assert proc.returncode == 0 and not found, f"fuzzer exit {proc.returncode}, artifacts {found}:\n{tail}"


@pytest.mark.timeout(SHORT_SECONDS + 240)
def test_fuzz_short(tmp_path: Path) -> None:
    run_fuzzer(tmp_path, SHORT_SECONDS)


@pytest.mark.soak
@pytest.mark.timeout(SOAK_SECONDS + 600)
def test_fuzz_soak(tmp_path: Path) -> None:
    run_fuzzer(tmp_path, SOAK_SECONDS)


@pytest.mark.timeout(240)
def test_seeds_hold_the_contract(tmp_path: Path) -> None:
    """The seeds alone: each one is refused with located problems, or renders and serialises."""
    seeds = tmp_path / "seeds"
    assert write_seeds(seeds) > 100
    root = make_root(str(tmp_path))
    outcomes: dict[str, int] = {}
    for seed in sorted(seeds.iterdir()):
        try:
            outcome = check(seed.read_bytes(), root)
        except Exception as exc:
            if known(exc) is None:
                raise AssertionError(f"seed {seed.name}") from exc
            outcome = "known finding"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("rendered", 0) > 0 and outcomes.get("invalid", 0) > 0, outcomes


def test_every_crash_input_is_registered() -> None:
    inputs = sorted(p.name for p in CRASHES.iterdir() if p.name != "README.md")
    assert inputs == sorted(k.input for k in KNOWN)


@pytest.mark.parametrize(
    "finding",
    [
        pytest.param(
            k,
            marks=pytest.mark.xfail(strict=True, raises=getattr(builtins, k.exception), reason=k.reason),
            id=k.input,
        )
        for k in KNOWN
    ],
)
def test_known_findings(finding: Known, tmp_path: Path) -> None:
    """Replays the input: fails (xfail) while the finding stands; XPASS (a failure) once it is fixed."""
    check((CRASHES / finding.input).read_bytes(), make_root(str(tmp_path)))
