"""``Kube`` against the API double: pagination, 404 handling, dry-run, and the static paths it uses."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from reconciler import labels
from reconciler.clients.kube import RESOURCES, Kube, _transient, resource_of
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


HOSTILE_NAMES = [
    "x/../../../kube-system/configmaps/evil",  # dot segments: a client would resolve them to another path
    "x?dryRun=All",  # would start the query string
    "x#frag",
    "x%2F..%2Fevil",  # already escaped: must not be decoded into slashes by the server
    "..",
    ".",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_name_stays_in_its_own_path_even_without_validation(api: ApiDouble, kube: Kube, name: str) -> None:
    """Kube is called directly, as if validation had been bypassed: the server must see the name as one
    segment of the path it belongs to, with our query untouched, and nothing may land anywhere else."""
    obj = cm("ok", ns="apps", a="1")
    obj["metadata"]["name"] = name
    with contextlib.suppress(ApplyError):  # refusing the name is fine; reaching another object is not
        kube.apply(obj)
    with contextlib.suppress(ApplyError):
        kube.apply(obj, dry_run=True)
    with contextlib.suppress(ApplyError):
        kube.delete(obj)
    kube.get("ConfigMap", name, "apps")
    assert [r.path for r in api.requests] == [f"/api/v1/namespaces/apps/configmaps/{name}"] * 4
    queries = [r.query for r in api.requests]
    strict = {"fieldManager": "virtnet", "fieldValidation": "Strict"}
    assert queries[:2] == [strict, {**strict, "dryRun": "All"}]
    assert queries[2:] == [{"propagationPolicy": "Foreground"}, {}]
    assert [o["metadata"]["name"] for o in kube.list("ConfigMap")] in ([], [name])
    assert kube.get("ConfigMap", "evil", "kube-system") is None


def test_paths_escape_every_segment() -> None:
    res = RESOURCES["VirtualMachine"]
    expected = "/apis/kubevirt.io/v1/namespaces/a%2Fb/virtualmachines/c%3Fd%3De/status"
    assert res.path("a/b", "c?d=e", "status") == expected
    assert RESOURCES["ConfigMap"].path("ns", "..") == "/api/v1/namespaces/ns/configmaps/%2E%2E"


def test_an_empty_name_is_refused_before_any_request(api: ApiDouble, kube: Kube) -> None:
    obj = cm("x")
    obj["metadata"]["name"] = ""
    with pytest.raises(ApplyError, match=r"metadata\.name is empty"):
        kube.apply(obj)
    with pytest.raises(ApplyError, match=r"metadata\.name is empty"):
        kube.delete(obj)
    assert api.requests == []


@pytest.mark.parametrize(
    ("status", "message", "retried"),
    [
        (500, 'admission webhook "mutatevirtualmachines.kubemacpool.io" denied the request: MAC in use', False),
        (500, 'Internal error occurred: failed calling webhook "mutatevirtualmachines.kubemacpool.io": timeout', True),
        (500, "etcdserver: leader changed", True),
        (503, "the server is currently unable to handle the request", True),
        (422, "spec.template: Invalid value", False),
    ],
)
def test_a_webhook_refusal_is_an_answer_and_an_unreachable_webhook_a_fault(
    status: int, message: str, retried: bool
) -> None:
    """A 500 is retried unless a webhook answered no: asking KubeMacPool again hands out the same refusal."""
    exc = ApiException(status=status, reason="x")
    exc.body = json.dumps({"kind": "Status", "code": status, "message": message}).encode()
    assert _transient(exc) is retried
