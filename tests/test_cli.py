"""The command line's edges: one-line errors without tracebacks, exit codes, colour, progress, ``apply -o json``."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import EXIT_USAGE, Progress, main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "repo"
ANSI = "\x1b["


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``virtnet ARGS`` in its own process, as a user runs it (a traceback would show on stderr)."""
    base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "NO_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "reconciler.cli", *args],
        cwd=ROOT, env={**base, **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_missing_kubeconfig_is_one_line_and_exit_1(tmp_path: Path) -> None:
    given = run("plan", str(EXAMPLE), "--kubeconfig", str(tmp_path / "nope"))
    assert given.returncode == 1 and "Traceback" not in given.stderr
    assert given.stderr.splitlines() == [
        f"Error: kubeconfig {tmp_path / 'nope'}: no such file (give --kubeconfig FILE or set KUBECONFIG)"
    ]
    none = run("plan", str(EXAMPLE), env={"HOME": str(tmp_path)})  # no KUBECONFIG, no ~/.kube/config, no pod
    assert none.returncode == 1 and len(none.stderr.splitlines()) == 1 and "Traceback" not in none.stderr
    assert "no kubeconfig" in none.stderr and str(tmp_path / ".kube" / "config") in none.stderr


def test_a_wrong_context_or_a_file_that_is_not_a_kubeconfig_is_one_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\nusers: [{name: u, user: {}}]\n"
    )
    wrong = run("plan", str(EXAMPLE), "--kubeconfig", str(kubeconfig), "--context", "prod")
    assert wrong.returncode == 1 and wrong.stderr.splitlines() == [f"Error: kubeconfig {kubeconfig}: no context 'prod'"]
    junk = tmp_path / "junk"
    junk.write_text("just words\n")
    bad = run("plan", str(EXAMPLE), "--kubeconfig", str(junk))
    assert bad.returncode == 1 and len(bad.stderr.splitlines()) == 1 and "not a kubeconfig file" in bad.stderr


def test_an_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\nusers: [{name: u, user: {}}]\n"
    )
    down = run("plan", str(EXAMPLE), "--kubeconfig", str(kubeconfig))
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert [ln for ln in down.stderr.splitlines() if ln] == [down.stderr.strip()]
    # secondary DNS is on in the example: the first request reads the cluster's base domain
    assert down.stderr.startswith("ObserveFailed: reading the cluster") and "Connection refused" in down.stderr


@pytest.mark.parametrize(
    "args", [["plan"], ["apply"], ["plan", "no/such/dir"], ["plan", "examples/repo", "--bogus"], ["nosuch"]]
)
def test_usage_errors_exit_64_not_2(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == EXIT_USAGE == 64, result.output
    assert "Usage:" in result.output


def _in_a_terminal(*args: str, env: dict[str, str] | None = None) -> str:
    """What ``virtnet ARGS`` writes to a terminal (a pseudo-terminal), stdout and stderr together."""
    leader, follower = pty.openpty()
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", *args],
        cwd=ROOT, env={**base, **(env or {})}, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=120)
    os.close(leader)
    return out.decode(errors="replace")


def test_colour_on_a_terminal_but_not_with_no_color_or_the_flag() -> None:
    args = ("plan", str(EXAMPLE), "--api-double")
    assert ANSI in _in_a_terminal(*args)
    assert ANSI not in _in_a_terminal(*args, env={"NO_COLOR": "1"})
    assert ANSI not in _in_a_terminal("--no-color", *args)


class FakeStream:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def test_progress_is_a_bar_on_a_terminal_and_periodic_lines_otherwise() -> None:
    now = [0.0]
    log = FakeStream(tty=False)
    progress = Progress(log, interval=5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    for done in range(1, 1001):
        now[0] = done * 0.06  # 60 s in all: twelve 5-second periods
        progress.step("applying", done, 1000)
    lines = log.text.splitlines()
    assert lines[0] == "  applying: 1/1000" and lines[-1] == "  applying: 1000/1000"
    assert 12 <= len(lines) <= 14  # one every 5 s, and the last
    term = FakeStream(tty=True)
    bar = Progress(term)  # type: ignore[arg-type]
    bar.step("applying", 512, 2048)
    bar.say("wave 5: applying 3 object(s)")
    assert term.text.startswith("\rapplying [#######.......................] 512/2048 (25%)\n")


def test_apply_prints_json_and_reports_progress() -> None:
    result = CliRunner().invoke(main, ["apply", str(EXAMPLE), "--api-double", "--timeout", "30", "-o", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["result"] == "Applied" and doc["applied"]["ok"] is True
    writes = len(doc["applied"]["results"])
    assert writes == doc["plan"]["counts"]["create"] + doc["plan"]["counts"]["update"]
    assert f"applying: {writes}/{writes}" in result.stderr and "waiting for health" in result.stderr
