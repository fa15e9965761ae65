"""``virtnet run --once``: one cycle of the loop from the command line, with the plan's exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from gitutil import isolate_git, make_remote, push_commit
from repos import BASE, VM

from reconciler.cli import main
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged


def test_once_exit_codes_and_json_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(monkeypatch, tmp_path / "home")
    remote = make_remote(tmp_path, dict(BASE))
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=0)) as api:
        seed_hyperconverged(api.store)
        kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig"))
        args = ["run", "--once", "--repo", remote.as_uri(), "--kubeconfig", kubeconfig, "--log-format", "json"]
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 2, first.output  # changes were applied
        assert first.output.splitlines()[-1] == "Applied"
        logged = [json.loads(line) for line in first.stderr.splitlines() if line.startswith("{")]
        assert any(entry["message"].startswith("reconcile finished: Applied") for entry in logged)
        second = CliRunner().invoke(main, args)
        assert second.exit_code == 0 and second.output.splitlines()[-1] == "InSync"
        push_commit(remote, {"vms/web.yaml": VM.replace("vlan100", "vlan404")}, "broken")
        api.reset_counts()
        third = CliRunner().invoke(main, args)
        assert third.exit_code == 1 and "ValidationFailed" in third.output
        assert api.writes() == 0
