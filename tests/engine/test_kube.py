"""``Kube`` against the API double: pagination, 404 handling, dry-run, and the static paths it uses."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import labels
from reconciler.clients.kube import Kube, resource_of
from reconciler.errors import ApplyError
from reconciler.testing import ApiDouble


def cm(name: str, ns: str = "default", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {labels.MANAGED_BY: labels.MANAGER}},
        "data": data,
    }


def test_list_follows_continue_tokens_and_returns_every_item_once(api: ApiDouble, kube: Kube) -> None:
    for i in range(7):
        kube.apply(cm(f"cm-{i}", ns="default" if i % 2 else "kube-system"))
    kube.apply({**cm("unlabelled"), "metadata": {"name": "unlabelled", "namespace": "default"}})
    api.reset_counts()
    items = kube.list("ConfigMap", f"{labels.MANAGED_BY}={labels.MANAGER}", page_size=3)
    assert sorted(i["metadata"]["name"] for i in items) == [f"cm-{i}" for i in range(7)]
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in items)  # list items lack them
    assert api.counts == {("list", "configmaps"): 3}  # 3 + 3 + 1
    pages = [r for r in api.requests if r.verb == "list"]
    assert [r.query.get("limit") for r in pages] == ["3", "3", "3"]
    assert [bool(r.query.get("continue")) for r in pages] == [False, True, True]


def test_list_of_one_page_is_one_request(api: ApiDouble, kube: Kube) -> None:
    kube.apply(cm("only"))
    api.reset_counts()
    assert [i["metadata"]["name"] for i in kube.list("ConfigMap", "app.kubernetes.io/managed-by")] == ["only"]
    assert api.counts == {("list", "configmaps"): 1}


def test_get_of_a_missing_object_is_none(api: ApiDouble, kube: Kube) -> None:
    assert kube.get("ConfigMap", "nope", "default") is None
    assert kube.get("NodeNetworkConfigurationPolicy", "nope") is None
    assert api.counts == {("get", "configmaps"): 1, ("get", "nmstate.io/nodenetworkconfigurationpolicies"): 1}


def test_delete_of_a_missing_object_is_ignored(api: ApiDouble, kube: Kube) -> None:
    kube.delete(cm("nope"))
    kube.apply(cm("there"))
    kube.delete(cm("there"))
    assert kube.get("ConfigMap", "there", "default") is None
    assert api.counts[("delete", "configmaps")] == 2
    deletes = [r for r in api.requests if r.verb == "delete"]
    assert [r.status for r in deletes] == [404, 200]
    assert {r.query.get("propagationPolicy") for r in deletes} == {"Foreground"}


def test_dry_run_apply_stores_nothing(api: ApiDouble, kube: Kube) -> None:
    returned = kube.apply(cm("dry", a="1"), dry_run=True)
    assert returned["data"] == {"a": "1"}
    assert kube.get("ConfigMap", "dry", "default") is None
    assert api.writes() == 0
    [request] = [r for r in api.requests if r.verb == "apply"]
    assert request.dry_run and request.query["dryRun"] == "All" and request.query["fieldManager"] == "virtnet"


def test_apply_sends_server_side_apply_as_virtnet_and_records_our_fields(api: ApiDouble, kube: Kube) -> None:
    kube.apply(cm("ssa", a="1"))
    live = kube.get("ConfigMap", "ssa", "default")
    assert live is not None
    managers = {(m["manager"], m["operation"]) for m in live["metadata"]["managedFields"]}
    assert managers == {("virtnet", "Apply")}
    [request] = [r for r in api.requests if r.verb == "apply"]
    assert request.method == "PATCH" and "force" not in request.query


def test_apply_error_names_the_object_and_the_status(kube: Kube) -> None:
    bad = cm("bad")
    bad["metadata"]["name"] = "Not_A_Valid_Name"
    with pytest.raises(ApplyError) as err:
        kube.apply(bad)
    assert "ConfigMap/default/Not_A_Valid_Name" in str(err.value) and "HTTP 4" in str(err.value)


def test_unknown_kind_is_refused_before_any_request(api: ApiDouble, kube: Kube) -> None:
    with pytest.raises(ApplyError, match="does not know how to reach"):
        resource_of({"apiVersion": "v9", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(ApplyError):
        kube.apply({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}})
    assert api.requests == []
