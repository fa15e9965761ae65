"""The chart's ClusterSync CRD on a real kube-apiserver: it installs, accepts the controller's status under
strict field validation, takes ``virtnet suspend``, and ``kubectl get`` shows the state at a glance."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from kubernetes import config

from reconciler import labels
from reconciler.cli import main
from reconciler.clients.kube import Kube
from reconciler.clients.syncstatus import SyncObject
from reconciler.output.conditions import RunReport, sync_status
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.testing.controlplane import ControlPlane
from tests.tools import kubectl_binary

pytestmark = pytest.mark.realapi

CRD = Path(__file__).resolve().parents[2] / "charts" / "virtnet" / "crds" / "virtnet.io_clustersyncs.yaml"
NS = "virtnet-sync-test"


def kubectl(cp: ControlPlane, *args: str) -> str:
    proc = subprocess.run(
        [str(kubectl_binary()), "--kubeconfig", str(cp.kubeconfig), *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def installed(control_plane: ControlPlane) -> ControlPlane:
    """The shared control plane with the chart's CRD and a namespace for the objects."""
    kubectl(control_plane, "apply", "--server-side", "-f", str(CRD))
    kubectl(control_plane, "wait", "--for=condition=Established", "crd/clustersyncs.virtnet.io", "--timeout=60s")
    kubectl(control_plane, "create", "namespace", NS)
    return control_plane


def test_kubectl_get_shows_the_clustersync(installed: ControlPlane, tmp_path: Path) -> None:
    control_plane = installed
    kube = Kube(config.new_client_from_config(config_file=str(control_plane.kubeconfig)))
    sync = SyncObject(kube, NS, "prod")
    counts = {"objects": 30, "inSync": 30, "changed": 30, "failed": 0, "drifted": 0, "blocking": 0}
    report = RunReport("prod", labels.APPLIED, revision="a" * 40, source="https://git.example/cfg@main", counts=counts)
    sync.report(sync_status(report, None, "2026-11-30T12:00:00Z"))  # fieldValidation=Strict: the schema fits

    row = kubectl(control_plane, "get", "clustersyncs", "-n", NS, "--no-headers").split()
    assert row[:5] == ["prod", "True", "Applied", "a" * 40, "30"]  # Suspended and Pinned are empty

    # the operator's switch, through the command, then one controller run on the real server
    runner = CliRunner()
    args = ["prod", "-n", NS, "--kubeconfig", str(control_plane.kubeconfig)]
    assert runner.invoke(main, ["suspend", *args, "--reason", "incident"]).exit_code == 0
    settings = Settings(
        repo_url=(tmp_path / "unused.git").as_uri(), cluster="prod", sync_namespace=NS, status_branch=None
    )
    outcome = Controller(settings, kube, Metrics()).reconcile("poll")
    assert outcome.ok and outcome.message == "suspended by the operator: incident"  # nothing was fetched

    table = kubectl(control_plane, "get", "csync", "-n", NS)
    header, line = table.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "APPLIED", "SUSPENDED", "PINNED", "OBJECTS", "LAST-HANDLED"]
    assert line.split()[:5] == ["prod", "True", "Applied", "a" * 40, "true"]
    wide = kubectl(
        control_plane, "get", "csync", "prod", "-n", NS, "-o", "jsonpath={.status.result} {.status.suspended}"
    )
    assert wide == "Suspended true"
    reconciling = kubectl(
        control_plane, "get", "csync", "prod", "-n", NS, "-o",
        'jsonpath={.status.conditions[?(@.type=="Reconciling")].reason}',
    )  # fmt: skip
    assert reconciling == "Suspended"


def test_the_commands_keep_and_drop_fields_as_a_real_server_applies_them(installed: ControlPlane) -> None:
    """The switches are server-side applied as a whole spec: a real server removes a field the operator's
    manager leaves out, so ``resume`` must keep the pin and ``pin --clear`` must drop it (the double's
    ``test_the_commands_set_the_switches`` judged by the real server)."""
    runner = CliRunner()
    args = ["staging", "-n", NS, "--kubeconfig", str(installed.kubeconfig)]
    sync = SyncObject(Kube(config.new_client_from_config(config_file=str(installed.kubeconfig))), NS, "staging")

    def spec() -> dict[str, object]:
        return dict((sync.read() or {}).get("spec") or {})

    assert runner.invoke(main, ["suspend", *args, "--reason", "change freeze"]).exit_code == 0
    assert spec() == {"suspend": True, "suspendReason": "change freeze"}
    assert runner.invoke(main, ["pin", *args, "0123abcd"]).exit_code == 0
    resumed = runner.invoke(main, ["resume", *args])
    assert resumed.exit_code == 0 and resumed.output.endswith("resumed; still pinned at 0123abcd\n")
    assert spec() == {"suspend": False, "pinnedRevision": "0123abcd"}
    assert runner.invoke(main, ["pin", *args, "--clear"]).exit_code == 0
    assert spec() == {"suspend": False}
