"""Contract tests of the Kubernetes API double, driven by the unmodified ``kubernetes`` client and kubectl."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes import client, dynamic, watch
from kubernetes.client import ApiException

from reconciler.testing import ApiDouble
from reconciler.testing.faults import FaultPlan

NNCP = ("nmstate.io", "v1", "nodenetworkconfigurationpolicies")
SSA = {"field_manager": "virtnet"}


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data}


def nncp(name: str, interfaces: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "nmstate.io/v1", "kind": "NodeNetworkConfigurationPolicy", "metadata": {"name": name},
            "spec": {"desiredState": {"interfaces": interfaces}}}


def apply_nncp(custom: client.CustomObjectsApi, body: dict[str, Any], manager: str = "virtnet",
               force: bool | None = None, dry_run: str | None = None) -> dict[str, Any]:
    """Server-side apply through the dynamic client (the typed one maps only 200, not 201 Created)."""
    dyn = dynamic.DynamicClient(custom.api_client)
    res = dyn.resources.get(api_version="nmstate.io/v1", kind="NodeNetworkConfigurationPolicy")
    kwargs: dict[str, Any] = {"field_manager": manager, "force_conflicts": force}
    if dry_run:
        kwargs["dry_run"] = dry_run
    out: dict[str, Any] = res.server_side_apply(body=body, **kwargs).to_dict()
    return out


def raw(api: ApiDouble, method: str, path: str, headers: dict[str, str] | None = None,
        body: Any = None) -> tuple[int, Any]:
    """A request the typed client cannot express (custom Accept, no fieldManager)."""
    resp = urllib3.request(method, api.url + path, headers={"Authorization": "Bearer user:raw", **(headers or {})},
                           body=None if body is None else json.dumps(body))
    ctype = resp.headers.get("Content-Type", "")
    return resp.status, json.loads(resp.data) if "json" in ctype else resp.data.decode()


def test_discovery_through_dynamic_client(kube_client: client.ApiClient, tmp_path: Path) -> None:
    dyn = dynamic.DynamicClient(kube_client, cache_file=str(tmp_path / "discovery.json"))
    nncp_res = dyn.resources.get(api_version="nmstate.io/v1", kind="NodeNetworkConfigurationPolicy")
    assert (nncp_res.name, nncp_res.namespaced) == ("nodenetworkconfigurationpolicies", False)
    assert nncp_res.subresources["status"].name == "nodenetworkconfigurationpolicies/status"
    assert dyn.resources.get(api_version="v1", kind="ConfigMap").short_names == ["cm"]
    assert dyn.resources.get(api_version="hco.kubevirt.io/v1", kind="HyperConverged").namespaced is True
    vm = dyn.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")
    created = vm.create(namespace="default", body={"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                                                   "metadata": {"name": "vm1"}, "spec": {"runStrategy": "Halted"}})
    assert created.metadata.name == "vm1"
    assert vm.get(namespace="default", name="vm1").spec.runStrategy == "Halted"
    assert client.VersionApi(kube_client).get_code().git_version.startswith("v1.")


def test_aggregated_discovery_accept_gets_plain_form(kube_api: ApiDouble, kube_client: client.ApiClient) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    code, data = raw(kube_api, "GET", "/apis", {"Accept": accept})
    assert code == 200
    assert data["kind"] == "APIGroupList"
    assert "nmstate.io" in [g["name"] for g in data["groups"]]


def test_core_crud_and_errors(kube_api: ApiDouble, kube_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(kube_client)
    created = v1.create_namespaced_config_map("default", cm("a", k="1"))
    assert created.metadata.uid and created.metadata.generation == 1
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_config_map("default", cm("a"))
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_config_map("missing", "default")
    body = json.loads(exc.value.body)
    assert (exc.value.status, body["kind"], body["reason"], body["code"]) == (404, "Status", "NotFound", 404)
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_config_map("default", cm("Bad_Name"))
    assert exc.value.status == 422 and json.loads(exc.value.body)["reason"] == "Invalid"

    created.data = {"k": "2"}
    replaced = v1.replace_namespaced_config_map("a", "default", created)
    assert replaced.data == {"k": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    created.data = {"k": "stale"}
    with pytest.raises(ApiException) as exc:
        v1.replace_namespaced_config_map("a", "default", created)  # stale resourceVersion
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "Conflict"

    v1.create_namespace({"metadata": {"name": "other"}})
    v1.create_namespaced_config_map("other", cm("b"))
    names = {(i.metadata.namespace, i.metadata.name) for i in v1.list_config_map_for_all_namespaces().items}
    assert names == {("default", "a"), ("other", "b")}
    assert [i.metadata.name for i in v1.list_namespaced_config_map("other").items] == ["b"]
    v1.delete_namespaced_config_map("a", "default", propagation_policy="Foreground")
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_config_map("a", "default")
    assert exc.value.status == 404
    v1.delete_namespace("other")
    assert v1.list_config_map_for_all_namespaces().items == []


def test_generate_name(kube_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(kube_client)
    one = v1.create_namespaced_secret("default", {"metadata": {"generateName": "tok-"}, "stringData": {}})
    two = v1.create_namespaced_secret("default", {"metadata": {"generateName": "tok-"}})
    assert one.metadata.name.startswith("tok-") and len(one.metadata.name) == len("tok-") + 5
    assert one.metadata.name != two.metadata.name


def test_custom_objects_crud_cluster_scoped(kube_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_client)
    custom.create_cluster_custom_object(*NNCP, nncp("br1", [{"name": "br1", "type": "linux-bridge"}]))
    got = custom.get_cluster_custom_object(*NNCP, "br1")
    assert got["apiVersion"] == "nmstate.io/v1" and got["metadata"]["generation"] == 1
    patched = custom.patch_cluster_custom_object(*NNCP, "br1", {"spec": {"maxUnavailable": 1}})
    assert patched["spec"]["maxUnavailable"] == 1 and patched["metadata"]["generation"] == 2
    listed = custom.list_cluster_custom_object(*NNCP)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["br1"]
    custom.delete_cluster_custom_object(*NNCP, "br1")
    assert custom.list_cluster_custom_object(*NNCP)["items"] == []


@pytest.mark.parametrize(("selector", "expected"), [
    ("tier=web", {"a", "b"}),
    ("tier==web", {"a", "b"}),
    ("tier!=web", {"c", "d"}),
    ("tier in (web,db)", {"a", "b", "c"}),
    ("tier notin (web)", {"c", "d"}),
    ("env", {"a", "c"}),
    ("!env", {"b", "d"}),
    ("tier=web,env=prod", {"a"}),
])
def test_label_selectors(kube_api: ApiDouble, kube_client: client.ApiClient, selector: str,
                         expected: set[str]) -> None:
    v1 = client.CoreV1Api(kube_client)
    for name, labels in {"a": {"tier": "web", "env": "prod"}, "b": {"tier": "web"},
                         "c": {"tier": "db", "env": "dev"}, "d": {}}.items():
        kube_api.store.put({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": name, "namespace": "default", "labels": labels}})
    got = {i.metadata.name for i in v1.list_namespaced_config_map("default", label_selector=selector).items}
    assert got == expected


def test_field_selector(kube_api: ApiDouble, kube_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(kube_client)
    for ns in ("default", "kube-system"):
        kube_api.store.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": ns}})
    items = v1.list_config_map_for_all_namespaces(field_selector="metadata.namespace=kube-system").items
    assert [(i.metadata.namespace, i.metadata.name) for i in items] == [("kube-system", "x")]
    assert v1.list_config_map_for_all_namespaces(field_selector="metadata.name=nope").items == []


def test_pagination_returns_each_item_once_from_one_snapshot(kube_api: ApiDouble,
                                                             kube_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(kube_client)
    for i in range(23):
        kube_api.store.put({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": f"cm-{i:02d}", "namespace": "default"}})
    seen: list[str] = []
    page = v1.list_namespaced_config_map("default", limit=5)
    snapshot_rv = page.metadata.resource_version
    v1.create_namespaced_config_map("default", cm("zz-added-during-paging"))
    while True:
        seen += [i.metadata.name for i in page.items]
        assert page.metadata.resource_version == snapshot_rv
        if not page.metadata._continue:
            break
        page = v1.list_namespaced_config_map("default", limit=5, _continue=page.metadata._continue)
    assert seen == [f"cm-{i:02d}" for i in range(23)]
    assert kube_api.counts[("list", "configmaps")] == 5


def test_server_side_apply_ownership(kube_api: ApiDouble, kube_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_client)
    two = [{"name": "br1", "type": "linux-bridge"}, {"name": "br2", "type": "linux-bridge"}]
    first = apply_nncp(custom, nncp("p", two))
    entry = first["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("virtnet", "Apply", "FieldsV1")
    ifaces = entry["fieldsV1"]["f:spec"]["f:desiredState"]["f:interfaces"]
    assert ifaces['k:{"name":"br1"}'] == {".": {}, "f:name": {}, "f:type": {}}

    # (0) re-apply of the same config is a no-op: no new resourceVersion, no watch event
    w = watch.Watch()
    events = []
    again = apply_nncp(custom, nncp("p", two))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    for e in w.stream(custom.list_cluster_custom_object, *NNCP,
                      resource_version=first["metadata"]["resourceVersion"], timeout_seconds=1):
        events.append(e)
    assert events == []

    # (1) another manager changing a field owned by virtnet conflicts, naming field and manager
    other = nncp("p", [{"name": "br1", "type": "ovs-bridge"}])
    with pytest.raises(ApiException) as exc:
        apply_nncp(custom, other, manager="intruder")
    body = json.loads(exc.value.body)
    assert exc.value.status == 409 and body["reason"] == "Conflict"
    assert 'conflict with "virtnet"' in body["message"] and '[name="br1"].type' in body["message"]
    # same value: shared ownership, no conflict
    shared = apply_nncp(custom, nncp("p", [{"name": "br1", "type": "linux-bridge"}]), manager="intruder")
    assert {e["manager"] for e in shared["metadata"]["managedFields"]} == {"virtnet", "intruder"}
    # force takes ownership
    forced = apply_nncp(custom, other, manager="intruder", force=True)
    assert forced["spec"]["desiredState"]["interfaces"][0] == {"name": "br1", "type": "ovs-bridge"}
    with pytest.raises(ApiException) as exc:
        apply_nncp(custom, nncp("p", two))  # virtnet lost .type of br1 and now conflicts itself
    assert exc.value.status == 409 and 'conflict with "intruder"' in json.loads(exc.value.body)["message"]

    # (2) an interface virtnet applied before and omits now is removed (nobody else owns it)
    after = apply_nncp(custom, nncp("p", [{"name": "br1", "type": "ovs-bridge"}]))
    assert [i["name"] for i in after["spec"]["desiredState"]["interfaces"]] == ["br1"]


def test_ssa_requires_field_manager_and_dry_run_stores_nothing(kube_api: ApiDouble,
                                                               kube_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_client)
    code, body = raw(kube_api, "PATCH", "/apis/nmstate.io/v1/nodenetworkconfigurationpolicies/p",
                     {"Content-Type": "application/apply-patch+yaml"}, nncp("p", []))
    assert (code, body["reason"]) == (400, "BadRequest")
    assert kube_api.writes() == 1  # a refused write attempt is still a write request
    kube_api.reset_counts()
    rv_before = kube_api.store.rv
    dry = apply_nncp(custom, nncp("p", [{"name": "br1"}]), dry_run="All")
    assert dry["metadata"]["name"] == "p"
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_config_map("default", cm("dry"), dry_run="All")
    assert kube_api.store.rv == rv_before
    assert custom.list_cluster_custom_object(*NNCP)["items"] == []
    assert v1.list_namespaced_config_map("default").items == []
    assert kube_api.writes() == 0  # dry runs are not writes
    assert kube_api.counts[("apply", "nmstate.io/nodenetworkconfigurationpolicies")] == 1


def test_update_records_update_manager_from_user_agent(kube_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_config_map("default", cm("m", k="1"))
    patched = v1.patch_namespaced_config_map("m", "default", {"data": {"j": "2"}}, field_manager="editor")
    managers = {(e.manager, e.operation) for e in patched.metadata.managed_fields}
    assert managers == {("OpenAPI-Generator", "Update"), ("editor", "Update")}
    editor = next(e for e in patched.metadata.managed_fields if e.manager == "editor")
    assert editor.fields_v1 == {"f:data": {"f:j": {}}}


def test_merge_strategic_and_json_patch(kube_api: ApiDouble, kube_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_client)
    body = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm"},
            "spec": {"template": {"spec": {"networks": [{"name": "default", "pod": {}}],
                                           "domain": {"devices": {"interfaces": [
                                               {"name": "default", "masquerade": {}}]}}}}}}
    custom.create_namespaced_custom_object("kubevirt.io", "v1", "default", "virtualmachines", body)

    def patch(ctype: str, data: Any) -> dict[str, Any]:
        out: dict[str, Any] = custom.patch_namespaced_custom_object(
            "kubevirt.io", "v1", "default", "virtualmachines", "vm", data, _content_type=ctype)
        return out

    smp = patch("application/strategic-merge-patch+json",
                {"spec": {"template": {"spec": {"networks": [{"name": "blue", "multus": {"networkName": "b"}}]}}}})
    assert [n["name"] for n in smp["spec"]["template"]["spec"]["networks"]] == ["default", "blue"]
    merged = patch("application/merge-patch+json", {"spec": {"template": {"spec": {"networks": [
        {"name": "red", "pod": {}}]}}, "runStrategy": "Always"}})
    assert [n["name"] for n in merged["spec"]["template"]["spec"]["networks"]] == ["red"]
    jp = patch("application/json-patch+json", [{"op": "replace", "path": "/spec/runStrategy", "value": "Halted"}])
    assert jp["spec"]["runStrategy"] == "Halted"
    with pytest.raises(ApiException) as exc:
        patch("application/json-patch+json", [{"op": "remove", "path": "/spec/nope"}])
    assert exc.value.status == 422
    assert kube_api.counts[("patch", "kubevirt.io/virtualmachines")] == 4


def test_status_subresource_isolation(kube_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_client)
    body = nncp("p", []) | {"status": {"conditions": [{"type": "Available", "status": "True"}]}}
    created = custom.create_cluster_custom_object(*NNCP, body)
    assert "status" not in created  # status is dropped on create
    st = custom.patch_cluster_custom_object_status(*NNCP, "p", {"status": {"x": 1}, "spec": {"maxUnavailable": 3}})
    assert st["status"] == {"x": 1} and "maxUnavailable" not in st["spec"]
    main = custom.patch_cluster_custom_object(*NNCP, "p", {"status": {"x": 2}, "spec": {"maxUnavailable": 2}})
    assert main["status"] == {"x": 1} and main["spec"]["maxUnavailable"] == 2


def test_watch_stream_events_and_bookmarks(kube_api: ApiDouble, kube_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(kube_client)
    start = v1.list_namespaced_config_map("default").metadata.resource_version
    v1.create_namespaced_config_map("default", cm("w", {"app": "x"}))
    v1.patch_namespaced_config_map("w", "default", {"data": {"a": "b"}})
    v1.create_namespaced_config_map("default", cm("other", {"app": "y"}))
    v1.delete_namespaced_config_map("w", "default")
    w = watch.Watch()
    got = [(e["type"], e["raw_object"]["metadata"].get("name"))
           for e in w.stream(v1.list_namespaced_config_map, "default", resource_version=start,
                             label_selector="app=x", timeout_seconds=1, allow_watch_bookmarks=True)]
    assert got[:3] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert ("BOOKMARK", None) in got[3:]


def test_watch_receives_live_events(kube_api: ApiDouble, kube_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_config_map("default", cm("pre"))
    received: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for e in w.stream(v1.list_namespaced_config_map, "default", timeout_seconds=5):
            received.append((e["type"], e["object"].metadata.name))
            if e["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    wait_for(lambda: received == [("ADDED", "pre")])
    v1.create_namespaced_config_map("default", cm("live"))
    v1.delete_namespaced_config_map("live", "default")
    t.join(timeout=5)
    assert received == [("ADDED", "pre"), ("ADDED", "live"), ("DELETED", "live")]


def test_watch_too_old_resource_version_is_gone(kube_api: ApiDouble, kube_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(kube_client)
    old = v1.list_namespaced_config_map("default").metadata.resource_version
    v1.create_namespaced_config_map("default", cm("x"))
    kube_api.store.events.compact()
    with pytest.raises(ApiException) as exc:
        list(watch.Watch().stream(v1.list_namespaced_config_map, "default", resource_version=old,
                                  timeout_seconds=1))
    assert exc.value.status == 410


def test_request_counts_and_users(kube_api: ApiDouble) -> None:
    admin = kube_api.api_client(user="alice")
    v1 = client.CoreV1Api(admin)
    v1.create_namespaced_config_map("default", cm("c"))
    v1.read_namespaced_config_map("c", "default")
    v1.list_namespaced_config_map("default")
    v1.patch_namespaced_config_map("c", "default", {"data": {"a": "b"}})
    v1.delete_namespaced_config_map("c", "default")
    assert kube_api.counts == {("create", "configmaps"): 1, ("get", "configmaps"): 1, ("list", "configmaps"): 1,
                               ("patch", "configmaps"): 1, ("delete", "configmaps"): 1}
    assert kube_api.writes() == 3
    assert {r.user for r in kube_api.requests} == {"alice"}
    assert [r.status for r in kube_api.requests] == [201, 200, 200, 200, 200]
    kube_api.reset_counts()
    assert kube_api.writes() == 0 and not kube_api.counts and not kube_api.requests


def run_faulted(seed: int) -> tuple[list[str], list[str]]:
    """Five creates under a 50 % fault plan; returns (outcomes, names stored)."""
    with ApiDouble() as api:
        api.faults = FaultPlan(rate=0.5, seed=seed, kinds=["500", "503", "429", "409"])
        v1 = client.CoreV1Api(api.api_client())
        outcomes = []
        for i in range(8):
            try:
                v1.create_namespaced_config_map("default", cm(f"c{i}"))
                outcomes.append("ok")
            except ApiException as e:
                outcomes.append(str(e.status))
        stored = [o["metadata"]["name"] for o in api.store.objects("v1", "ConfigMap")]
        faulted = sum(api.fault_counts.values())
        assert api.counts[("create", "configmaps")] + faulted == 8
        assert api.writes() == 8 - faulted
        return outcomes, stored


def test_fault_injection_is_deterministic_and_leaves_store_unchanged() -> None:
    first, stored = run_faulted(7)
    again, _ = run_faulted(7)
    assert first == again
    assert {"ok"} < set(first)  # some succeeded, some failed
    assert stored == [f"c{i}" for i, o in enumerate(first) if o == "ok"]
    assert run_faulted(8)[0] != first


def test_fault_429_carries_retry_after(kube_api: ApiDouble, kube_client: client.ApiClient) -> None:
    kube_api.faults = FaultPlan(rate=1.0, seed=1, kinds=["429"], retry_after=3)
    with pytest.raises(ApiException) as exc:  # a write: the client retries only reads on Retry-After
        client.CoreV1Api(kube_client).create_namespaced_config_map("default", cm("x"))
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "3"
    assert kube_api.fault_counts == {("429", "create", "configmaps"): 1} and not kube_api.counts
    assert kube_api.requests[-1].fault == "429" and kube_api.store.objects("v1", "ConfigMap") == []


def test_health_endpoints(kube_api: ApiDouble) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        assert raw(kube_api, "GET", path) == (200, "ok")
    assert raw(kube_api, "GET", "/openapi/v2")[0] == 404


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_apply_server_side_get_and_diff(kube_api: ApiDouble, tmp_path: Path) -> None:
    kubeconfig = kube_api.kubeconfig(tmp_path / "kubeconfig")
    manifest = tmp_path / "m.yaml"
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "k", "namespace": "default"},
             "data": {"a": "1"}}, nncp("br1", [{"name": "br1", "type": "linux-bridge"}])]
    manifest.write_text(yaml.safe_dump_all(docs))

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), *args], capture_output=True,
                              text=True, timeout=60)

    out = kubectl("apply", "--server-side", "--validate=false", "-f", str(manifest))
    assert out.returncode == 0, out.stderr
    assert "serverside-applied" in out.stdout
    got = json.loads(kubectl("get", "configmap", "k", "-o", "json", "--show-managed-fields").stdout)
    assert got["data"] == {"a": "1"}
    assert got["metadata"]["managedFields"][0]["manager"] == "kubectl"
    assert kubectl("diff", "--server-side", "-f", str(manifest)).returncode == 0  # no difference
    docs[0]["data"] = {"a": "2"}
    manifest.write_text(yaml.safe_dump_all(docs))
    diff = kubectl("diff", "--server-side", "-f", str(manifest))
    assert diff.returncode == 1 and "+  a: \"2\"" in diff.stdout
    assert kube_api.store.find("v1", "ConfigMap", "k", "default")["data"] == {"a": "1"}  # diff is a dry run
    assert {r.user for r in kube_api.requests} == {"virtnet"}
    assert kube_api.counts[("apply", "configmaps")] == 3 and kube_api.writes() == 2  # diffs are dry runs


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached in time")
