"""The chart's narrow modes work with the code: ``rbac.namespaces`` (per-namespace Roles) together with
``sshKeys.manageSecrets: false``. A controller confined to those namespaces and without Secrets syncs
``examples/repo`` (SSH keys through cloud-init), changes and prunes it, and plans a PR; every request it
makes must be allowed by the chart rendered with the same settings, and nothing outside them is touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gitutil import isolate_git, make_remote, push_commit

from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.server.webhooks import PullRequestEvent
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
from tests.chart import render
from tests.chart.test_rbac_coverage import ENFORCE, _attrs, _example_files, _ticking, denied, grants, users

SCOPE = ("apps", "db", "nfv", "openshift-cnv", "metallb-system", "openshift-sriov-network-operator", "default")


def test_confined_controller_without_secrets_is_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(monkeypatch, tmp_path / "home")
    docs = render([ENFORCE], values={"rbac": {"namespaces": list(SCOPE)}})
    controller_user, _ = users(docs)
    files = _example_files()
    files["vms/db.yaml"] = files["vms/db.yaml"].replace("  sshKeyDelivery: accessCredentials\n", "")
    files["vms/web.yaml"] = files["vms/web.yaml"].replace("  sshKeyDelivery: guestAgent\n", "")
    remote = make_remote(tmp_path, files)
    settings = Settings(
        repo_url=remote.as_uri(),
        cache_root=tmp_path / "cache",
        apply=ApplyOptions(poll=0.02, timeout=30),
        manage_secrets=False,
        namespaces=SCOPE,
    )
    api = ApiDouble(
        controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=1), tick_interval=None
    )
    with api, _ticking(api):
        seed_hyperconverged(api.store)
        ctl = Controller(settings, Kube(api.api_client(user=controller_user)), Metrics())
        assert ctl.reconcile("sync").ok
        head = push_commit(remote, {"vms/db.yaml": None}, "remove db-1")
        assert ctl.reconcile("prune").ok
        event = PullRequestEvent("github", "opened", 1, head, "main", remote.as_uri(), "main", "infra/net", "d1")
        assert ctl.plan_pull_request(event).plan is not None
        attrs = [a for a in _attrs(api) if a.user == controller_user]
    assert attrs, "the flows made requests"
    assert not [a for a in attrs if a.resource.startswith("secrets")], "Secrets were touched with management off"
    assert not [a for a in attrs if a.across_namespaces], "a namespaced kind was listed across namespaces"
    refused = denied(attrs, grants(docs))
    assert not refused, f"{len(refused)} denied; the first:\n  {refused[0]}"


def test_a_repository_reaching_outside_the_scope_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(monkeypatch, tmp_path / "home")
    remote = make_remote(tmp_path, _example_files())
    settings = Settings(repo_url=remote.as_uri(), cache_root=tmp_path / "cache", namespaces=("apps",))
    with ApiDouble() as api:
        outcome = Controller(settings, Kube(api.api_client()), Metrics()).reconcile("sync")
        assert (
            outcome.failed == "PlanBlocked"
            and "outside the controller's scope: db, metallb-system, nfv, openshift-cnv" in outcome.message
        )
        assert api.writes() == 0
