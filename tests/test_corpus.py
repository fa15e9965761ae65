"""The bad-input corpus (``tests/corpus/<case>/``): every malformed repository is refused the same way everywhere.

For each case: ``virtnet apply --kubeconfig <double>`` exits 1 and prints the problem as ``file:line: field:
message``; the API double saw no write request; and the same problem is in the status document and in the
pull-request comment built from the reconcile's Outcome. A few cases also go through the GitOps loop with a
real git remote, where the problem must land in the committed ``status.json``. See tests/corpus/README.md.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gitutil import git, isolate_git, make_remote, push_commit

from reconciler.cli import main
from reconciler.clients.kube import Kube
from reconciler.clients.status import read_status
from reconciler.model.limits import MAX_FILE_BYTES
from reconciler.output import comment, summary
from reconciler.pipeline import reconcile
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.testing import ApiDouble
from reconciler.testing.faults import WRITE_VERBS

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
LOC = re.compile(r"^(?P<file>[^:]+?)(?::(?P<line>\d+))?(?:: (?P<field>.+))?$")
HEAD = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class Expect:
    loc: str
    file: str
    line: int
    field: str
    fragment: str

    def matches(self, problem: dict[str, Any]) -> bool:
        where = (problem["file"], problem["line"], problem["field"])
        return where == (self.file, self.line, self.field) and self.fragment in problem["message"]


def expect_of(case: Path) -> Expect:
    loc, fragment = (case / "expect.txt").read_text().splitlines()[:2]
    m = LOC.match(loc)
    assert m and fragment, f"{case.name}/expect.txt is malformed"
    return Expect(loc, m["file"], int(m["line"] or 0), m["field"] or "", fragment)


def materialize(name: str, tmp_path: Path) -> Path:
    """The case folder itself, or a copy with the files too big to commit written into it.

    ``.oversize``: file names, each written as one comment line a few bytes over the limit. ``.repeat``:
    lines ``FILE COUNT TEXT``: TEXT (with ``\\n`` escapes, and ``{i}`` replaced by 0, 1, ...) appended
    COUNT times to FILE, e.g. ``vms/deep.yaml 40000 [`` for a line of 40,000 brackets.
    """
    case = CORPUS / name
    oversize, repeat = case / ".oversize", case / ".repeat"
    if not oversize.exists() and not repeat.exists():
        return case
    copy = tmp_path / name
    shutil.copytree(case, copy, symlinks=True)
    for rel in oversize.read_text().split() if oversize.exists() else []:
        (copy / rel).write_text("# " + "x" * MAX_FILE_BYTES + "\n")  # one comment line, a few bytes too many
    for line in repeat.read_text().splitlines() if repeat.exists() else []:
        rel, count, text = line.split(" ", 2)
        text = text.encode().decode("unicode_escape")
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        with (copy / rel).open("a") as out:
            out.write("".join(text.replace("{i}", str(i)) for i in range(int(count))))
    return copy


def cluster_args(case: Path) -> list[str]:
    args = case / "args.txt"
    return args.read_text().split() if args.exists() else []


@pytest.fixture(scope="module")
def api() -> Iterator[ApiDouble]:
    with ApiDouble() as double:
        yield double


@pytest.fixture(scope="module")
def kubeconfig(api: ApiDouble, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return api.kubeconfig(tmp_path_factory.mktemp("kube") / "config")


def test_corpus_is_big_and_complete() -> None:
    assert len(CASES) >= 60
    for name in CASES:
        expect_of(CORPUS / name)
    symlinks = [p for p in CORPUS.rglob("*") if p.is_symlink()]
    assert len(symlinks) >= 3, "the symlink cases lost their links (checked out without symlink support?)"


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_refused_everywhere(name: str, api: ApiDouble, kubeconfig: Path, tmp_path: Path) -> None:
    case = materialize(name, tmp_path)
    expect = expect_of(CORPUS / name)
    args = cluster_args(case)
    api.reset_counts()

    result = CliRunner().invoke(main, ["apply", str(case), "--kubeconfig", str(kubeconfig), *args])
    assert result.exit_code == 1, result.output
    lines = [ln.strip() for ln in result.stderr.splitlines()]
    assert any(ln.startswith(f"{expect.loc}: ") and expect.fragment in ln for ln in lines), result.stderr
    assert "several clusters defined ()" not in result.stderr
    assert api.writes() == 0
    assert [r for r in api.requests if r.verb in WRITE_VERBS] == []

    kube = Kube(api.api_client())
    try:
        outcome = reconcile(case, kube, cluster=args[1] if args else None, revision=HEAD)
    finally:
        kube.api.close()
    assert outcome.failed == "ValidationFailed" and outcome.plan is None and outcome.changes is None
    assert api.writes() == 0

    cluster = outcome.cluster or "default"
    problems = [p.as_dict() for p in outcome.problems]
    doc = summary.status_document(cluster, HEAD, outcome.failed, outcome.message, [], problems, [])
    files = summary.status_files(doc)
    status = json.loads(files["status.json"])
    assert status["result"] == "ValidationFailed"
    assert any(expect.matches(p) for p in status["problems"]), status["problems"]
    assert expect.fragment in files["README.md"]

    body = comment.pull_request_comment(outcome, cluster, HEAD)
    where = f"`{expect.file}:{expect.line}`" if expect.line else f"`{expect.file}`"
    shown = [re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", ln) for ln in body.splitlines()]  # what a reader sees: \< is <
    row = next((ln for ln in shown if ln.startswith(f"- {where}") and expect.fragment in ln), None)
    assert row is not None, body
    assert not expect.field or f"`{expect.field}`" in row
    assert "nothing will be applied" in body


#: cases that also go through the loop: bytes, unsafe YAML, a forbidden kind, a cross-file conflict
LOOP_CASES = ["non-utf8-latin1", "yaml-billion-laughs", "raw-clusterrolebinding", "vm-duplicate-mac"]


def _tree(case: Path) -> dict[str, str | bytes | None]:
    out: dict[str, str | bytes | None] = {}
    for path in sorted(case.rglob("*")):
        rel = path.relative_to(case).as_posix()
        if path.is_file() and rel not in ("expect.txt", "args.txt"):
            out[rel] = path.read_bytes()
    return out


@pytest.mark.parametrize("name", LOOP_CASES)
def test_bad_commit_reaches_the_status_branch(
    name: str, api: ApiDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(monkeypatch, tmp_path / "home")
    expect = expect_of(CORPUS / name)
    remote = make_remote(tmp_path, {"README.md": "config\n"})
    sha = push_commit(remote, _tree(CORPUS / name), f"corpus case {name}")
    api.reset_counts()
    ctl = Controller(Settings(repo_url=remote.as_uri(), cache_root=tmp_path / "cache"), Kube(api.api_client()))
    ctl.metrics = Metrics()
    outcome = ctl.reconcile("poll")
    assert outcome.failed == "ValidationFailed" and outcome.revision == sha
    assert api.writes() == 0
    doc = json.loads(read_status(remote.as_uri(), "default", cache_root=tmp_path / "cache")["status.json"])
    assert doc["revision"] == sha and doc["result"] == "ValidationFailed"
    assert any(expect.matches(p) for p in doc["problems"]), doc["problems"]
    log = git("log", "--format=%s", "virtnet-status", cwd=remote)
    assert log.splitlines() == [f"virtnet: default ValidationFailed at {sha[:12]}"]
