"""Contract tests of the Kubernetes API double, run against the double and a real kube-apiserver alike.

Every test takes ``backend`` (see ``conftest.py``) and so runs twice, ``[double]`` and ``[real]``: what the
double answers is what kube-apiserver v1.37 answers, through the unmodified ``kubernetes`` client and kubectl.
Tests marked ``double_only`` check what only the double has (request counts, fault injection, event-log
compaction) and say why. The fidelity fixes of issue #13 (schemas, lifecycle, kubectl protocol, KubeMacPool)
have their own differential tests in ``test_apiserver_fidelity.py``; the differences kept on purpose are
listed in docs/testing.md and asserted in ``test_known_differences.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic, watch
from kubernetes.client import ApiException

from reconciler.testing import ApiDouble
from reconciler.testing.faults import FaultPlan
from tests.testing.conftest import Backend

NNCP = ("nmstate.io", "v1", "nodenetworkconfigurationpolicies")
VM = ("kubevirt.io", "v1")


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data}


def nncp(name: str, interfaces: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    desired = {"desiredState": {"interfaces": interfaces}} if interfaces is not None else {}
    return {"apiVersion": "nmstate.io/v1", "kind": "NodeNetworkConfigurationPolicy", "metadata": {"name": name},
            "spec": {**desired, **spec}}


def vm(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name, "namespace": ns},
            "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {}}}}, **spec}}


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


def status_of(exc: pytest.ExceptionInfo[ApiException]) -> tuple[int, str]:
    return exc.value.status, json.loads(exc.value.body).get("reason", "")


def test_discovery_through_dynamic_client(backend: Backend, tmp_path: Path) -> None:
    dyn = dynamic.DynamicClient(backend.client, cache_file=str(tmp_path / "discovery.json"))
    nncp_res = dyn.resources.get(api_version="nmstate.io/v1", kind="NodeNetworkConfigurationPolicy")
    assert (nncp_res.name, nncp_res.namespaced) == ("nodenetworkconfigurationpolicies", False)
    assert nncp_res.subresources["status"].name == "nodenetworkconfigurationpolicies/status"
    assert dyn.resources.get(api_version="v1", kind="ConfigMap").short_names == ["cm"]
    assert dyn.resources.get(api_version="hco.kubevirt.io/v1", kind="HyperConverged").namespaced is True
    vms = dyn.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")
    created = vms.create(namespace=backend.ns, body=vm("vm1", backend.ns))
    assert created.metadata.name == "vm1"
    assert vms.get(namespace=backend.ns, name="vm1").spec.runStrategy == "Halted"
    assert client.VersionApi(backend.client).get_code().git_version.startswith("v1.")


def test_core_crud_and_errors(backend: Backend) -> None:
    v1, ns = client.CoreV1Api(backend.client), backend.ns
    created = v1.create_namespaced_config_map(ns, cm("a", k="1"))
    assert created.metadata.uid and created.metadata.generation is None  # ConfigMaps have no generation
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_config_map(ns, cm("a"))
    assert status_of(exc) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_config_map("missing", ns)
    body = json.loads(exc.value.body)
    assert (exc.value.status, body["kind"], body["reason"], body["message"]) == (
        404, "Status", "NotFound", 'configmaps "missing" not found')
    with pytest.raises(ApiException) as exc:
        client.CustomObjectsApi(backend.client).get_namespaced_custom_object(*VM, ns, "virtualmachines", "nope")
    assert json.loads(exc.value.body)["message"] == 'virtualmachines.kubevirt.io "nope" not found'
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_config_map(ns, cm("Bad_Name"))
    assert status_of(exc) == (422, "Invalid")

    created.data = {"k": "2"}
    replaced = v1.replace_namespaced_config_map("a", ns, created)
    assert replaced.data == {"k": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    created.data = {"k": "stale"}
    with pytest.raises(ApiException) as exc:
        v1.replace_namespaced_config_map("a", ns, created)  # stale resourceVersion
    assert status_of(exc) == (409, "Conflict")

    other = backend.name("other")
    v1.create_namespace({"metadata": {"name": other}})
    v1.create_namespaced_config_map(other, cm("b"))
    names = {(i.metadata.namespace, i.metadata.name) for i in v1.list_config_map_for_all_namespaces().items
             if i.metadata.namespace in (ns, other)}
    assert names == {(ns, "a"), (other, "b")}
    assert [i.metadata.name for i in v1.list_namespaced_config_map(other).items] == ["b"]
    gone = v1.delete_namespaced_config_map("a", ns)
    assert (gone["kind"], gone["status"], gone["details"]["name"]) == ("Status", "Success", "a")
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_config_map("a", ns)
    assert exc.value.status == 404


def test_generate_name(backend: Backend) -> None:
    v1 = client.CoreV1Api(backend.client)
    one = v1.create_namespaced_secret(backend.ns, {"metadata": {"generateName": "tok-"}, "stringData": {}})
    two = v1.create_namespaced_secret(backend.ns, {"metadata": {"generateName": "tok-"}})
    assert one.metadata.name.startswith("tok-") and len(one.metadata.name) == len("tok-") + 5
    assert one.metadata.name != two.metadata.name


def test_custom_objects_crud_cluster_scoped(backend: Backend) -> None:
    custom = client.CustomObjectsApi(backend.client)
    name = backend.name("br1")
    custom.create_cluster_custom_object(*NNCP, nncp(name, [{"name": "br1", "type": "linux-bridge"}]))
    got = custom.get_cluster_custom_object(*NNCP, name)
    assert got["apiVersion"] == "nmstate.io/v1" and got["metadata"]["generation"] == 1
    patched = custom.patch_cluster_custom_object(*NNCP, name, {"spec": {"maxUnavailable": 1}})
    assert patched["spec"]["maxUnavailable"] == 1 and patched["metadata"]["generation"] == 2
    listed = custom.list_cluster_custom_object(*NNCP)
    assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    custom.delete_cluster_custom_object(*NNCP, name)
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
def test_label_selectors(backend: Backend, selector: str, expected: set[str]) -> None:
    v1 = client.CoreV1Api(backend.client)
    for name, labels in {"a": {"tier": "web", "env": "prod"}, "b": {"tier": "web"},
                         "c": {"tier": "db", "env": "dev"}, "d": {}}.items():
        v1.create_namespaced_config_map(backend.ns, cm(name, labels))
    got = {i.metadata.name for i in v1.list_namespaced_config_map(backend.ns, label_selector=selector).items}
    assert got == expected


def test_field_selector(backend: Backend) -> None:
    v1 = client.CoreV1Api(backend.client)
    second = backend.name("second")
    v1.create_namespace({"metadata": {"name": second}})
    for ns in (backend.ns, second):
        v1.create_namespaced_config_map(ns, cm("x"))
    items = v1.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={second}").items
    assert [(i.metadata.namespace, i.metadata.name) for i in items] == [(second, "x")]
    assert v1.list_config_map_for_all_namespaces(field_selector="metadata.name=nope").items == []


def test_pagination_returns_each_item_once_from_one_snapshot(backend: Backend) -> None:
    v1 = client.CoreV1Api(backend.client)
    for i in range(23):
        v1.create_namespaced_config_map(backend.ns, cm(f"cm-{i:02d}"))
    seen: list[str] = []
    page = v1.list_namespaced_config_map(backend.ns, limit=5)
    snapshot_rv = page.metadata.resource_version
    assert page.metadata.remaining_item_count == 18
    v1.create_namespaced_config_map(backend.ns, cm("zz-added-during-paging"))
    pages = 1
    while True:
        seen += [i.metadata.name for i in page.items]
        assert page.metadata.resource_version == snapshot_rv
        if not page.metadata._continue:
            break
        page = v1.list_namespaced_config_map(backend.ns, limit=5, _continue=page.metadata._continue)
        pages += 1
    assert seen == [f"cm-{i:02d}" for i in range(23)]
    assert pages == 5


def test_server_side_apply_ownership(backend: Backend) -> None:
    """NNCP desiredState is free-form (no schema below it): its lists are atomic, owned and merged whole."""
    custom = client.CustomObjectsApi(backend.client)
    name = backend.name("p")
    two = [{"name": "br1", "type": "linux-bridge"}, {"name": "br2", "type": "linux-bridge"}]
    first = apply_nncp(custom, nncp(name, two))
    entry = first["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("virtnet", "Apply", "FieldsV1")
    assert entry["fieldsV1"] == {"f:spec": {"f:desiredState": {"f:interfaces": {}}}}  # one atomic leaf

    # (0) re-apply of the same config is a no-op: no new resourceVersion, no watch event
    again = apply_nncp(custom, nncp(name, two))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    events = list(watch.Watch().stream(custom.list_cluster_custom_object, *NNCP, field_selector=f"metadata.name={name}",
                                       resource_version=first["metadata"]["resourceVersion"], timeout_seconds=1))
    assert [e for e in events if e["type"] != "BOOKMARK"] == []

    # (1) another manager changing the list virtnet owns conflicts, naming the whole list and the manager
    other = nncp(name, [{"name": "br1", "type": "ovs-bridge"}])
    with pytest.raises(ApiException) as exc:
        apply_nncp(custom, other, manager="intruder")
    body = json.loads(exc.value.body)
    assert status_of(exc) == (409, "Conflict")
    assert 'conflict with "virtnet"' in body["message"] and ".spec.desiredState.interfaces" in body["message"]
    # the same value: shared ownership, no conflict
    shared = apply_nncp(custom, nncp(name, two), manager="intruder")
    assert {e["manager"] for e in shared["metadata"]["managedFields"]} == {"virtnet", "intruder"}
    # force takes ownership of the whole list
    forced = apply_nncp(custom, other, manager="intruder", force=True)
    assert forced["spec"]["desiredState"]["interfaces"] == [{"name": "br1", "type": "ovs-bridge"}]
    with pytest.raises(ApiException) as exc:
        apply_nncp(custom, nncp(name, two))  # virtnet lost the list and now conflicts itself
    assert 'conflict with "intruder"' in json.loads(exc.value.body)["message"]

    # (2) a field virtnet applied before and omits now is removed when nobody else owns it
    apply_nncp(custom, nncp(name, two, maxUnavailable=1), force=True)
    after = apply_nncp(custom, nncp(name, two))
    assert "maxUnavailable" not in after["spec"]


def test_ssa_requires_field_manager_and_dry_run_stores_nothing(backend: Backend) -> None:
    custom = client.CustomObjectsApi(backend.client)
    name = backend.name("p")
    code, body, _ = backend.raw("PATCH", f"/apis/nmstate.io/v1/nodenetworkconfigurationpolicies/{name}",
                                {"Content-Type": "application/apply-patch+yaml"}, nncp(name, []))
    assert (code, body["reason"]) == (422, "Invalid") and "fieldManager" in body["message"]
    dry = apply_nncp(custom, nncp(name, [{"name": "br1"}]), dry_run="All")
    assert dry["metadata"]["name"] == name
    v1 = client.CoreV1Api(backend.client)
    v1.create_namespaced_config_map(backend.ns, cm("dry"), dry_run="All")
    assert custom.list_cluster_custom_object(*NNCP)["items"] == []
    assert v1.list_namespaced_config_map(backend.ns).items == []


@pytest.mark.double_only("write and request counts are the double's own accounting")
def test_write_counts_exclude_dry_runs(backend: Backend) -> None:
    api, name = backend.api, backend.name("p")
    api.reset_counts()
    backend.raw("PATCH", f"/apis/nmstate.io/v1/nodenetworkconfigurationpolicies/{name}",
                {"Content-Type": "application/apply-patch+yaml"}, nncp(name, []))
    assert api.writes() == 1  # a refused write attempt is still a write request
    api.reset_counts()
    rv_before = api.store.rv
    apply_nncp(client.CustomObjectsApi(backend.client), nncp(name, [{"name": "br1"}]), dry_run="All")
    client.CoreV1Api(backend.client).create_namespaced_config_map(backend.ns, cm("dry"), dry_run="All")
    assert api.store.rv == rv_before
    assert api.writes() == 0
    assert api.counts[("apply", "nmstate.io/nodenetworkconfigurationpolicies")] == 1


def test_update_records_update_manager_from_user_agent(backend: Backend) -> None:
    v1 = client.CoreV1Api(backend.client)
    v1.create_namespaced_config_map(backend.ns, cm("m", k="1"))
    patched = v1.patch_namespaced_config_map("m", backend.ns, {"data": {"j": "2"}}, field_manager="editor")
    managers = {(e.manager, e.operation) for e in patched.metadata.managed_fields}
    assert managers == {("OpenAPI-Generator", "Update"), ("editor", "Update")}
    editor = next(e for e in patched.metadata.managed_fields if e.manager == "editor")
    assert editor.fields_v1 == {"f:data": {"f:j": {}}}


def test_merge_and_json_patch(backend: Backend) -> None:
    custom = client.CustomObjectsApi(backend.client)
    body = vm("vm", backend.ns)
    body["spec"]["template"]["spec"]["networks"] = [{"name": "default", "pod": {}}]
    custom.create_namespaced_custom_object(*VM, backend.ns, "virtualmachines", body)

    def patch(ctype: str, data: Any) -> dict[str, Any]:
        out: dict[str, Any] = custom.patch_namespaced_custom_object(
            *VM, backend.ns, "virtualmachines", "vm", data, _content_type=ctype)
        return out

    merged = patch("application/merge-patch+json", {"spec": {"template": {"spec": {"networks": [
        {"name": "red", "pod": {}}]}}, "runStrategy": "Always"}})
    assert [n["name"] for n in merged["spec"]["template"]["spec"]["networks"]] == ["red"]
    jp = patch("application/json-patch+json", [{"op": "replace", "path": "/spec/runStrategy", "value": "Halted"}])
    assert jp["spec"]["runStrategy"] == "Halted"
    with pytest.raises(ApiException) as exc:
        patch("application/json-patch+json", [{"op": "remove", "path": "/spec/nope"}])
    assert exc.value.status == 422


def test_strategic_merge_patch_merges_built_in_lists_by_patch_key(backend: Backend) -> None:
    v1 = client.CoreV1Api(backend.client)
    svc = {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80}], "selector": {"a": "b"}}}
    v1.create_namespaced_service(backend.ns, svc)
    out = v1.patch_namespaced_service("web", backend.ns, {"spec": {"ports": [{"name": "https", "port": 443}]}})
    assert [p.port for p in out.spec.ports] == [443, 80]  # merged on the patch key (port): new items first
    out = v1.patch_namespaced_service("web", backend.ns, {"spec": {"ports": [{"name": "web", "port": 80}]}})
    assert [(p.port, p.name) for p in out.spec.ports] == [(443, "https"), (80, "web")]


def test_status_subresource_isolation(backend: Backend) -> None:
    custom = client.CustomObjectsApi(backend.client)
    name = backend.name("p")
    cond = {"type": "Available", "status": "True", "reason": "R", "message": "m",
            "lastTransitionTime": "2025-01-01T00:00:00Z"}
    created = custom.create_cluster_custom_object(*NNCP, nncp(name, []) | {"status": {"conditions": [cond]}})
    assert "status" not in created  # status is dropped on create
    st = custom.patch_cluster_custom_object_status(*NNCP, name, {"status": {"conditions": [cond]},
                                                                  "spec": {"maxUnavailable": 3}})
    assert st["status"] == {"conditions": [cond]} and "maxUnavailable" not in st["spec"]
    main = custom.patch_cluster_custom_object(*NNCP, name, {"status": {"conditions": []},
                                                            "spec": {"maxUnavailable": 2}})
    assert main["status"] == {"conditions": [cond]} and main["spec"]["maxUnavailable"] == 2


def test_watch_stream_events(backend: Backend) -> None:
    v1, ns = client.CoreV1Api(backend.client), backend.ns
    start = v1.list_namespaced_config_map(ns).metadata.resource_version
    v1.create_namespaced_config_map(ns, cm("w", {"app": "x"}))
    v1.patch_namespaced_config_map("w", ns, {"data": {"a": "b"}})
    v1.create_namespaced_config_map(ns, cm("other", {"app": "y"}))
    v1.delete_namespaced_config_map("w", ns)
    got = [(e["type"], e["raw_object"]["metadata"].get("name"))
           for e in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=start,
                                         label_selector="app=x", timeout_seconds=1, allow_watch_bookmarks=True)]
    assert [g for g in got if g[0] != "BOOKMARK"] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


@pytest.mark.double_only("bookmark timing is the double's knob (bookmark_interval); a real server sends them "
                         "about once a minute")
def test_watch_bookmarks(backend: Backend) -> None:
    v1 = client.CoreV1Api(backend.client)
    start = v1.list_namespaced_config_map(backend.ns).metadata.resource_version
    got = [e["type"] for e in watch.Watch().stream(v1.list_namespaced_config_map, backend.ns, resource_version=start,
                                                    timeout_seconds=1, allow_watch_bookmarks=True)]
    assert "BOOKMARK" in got


def test_watch_receives_live_events(backend: Backend) -> None:
    v1, ns = client.CoreV1Api(backend.client), backend.ns
    v1.create_namespaced_config_map(ns, cm("pre"))
    received: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for e in w.stream(v1.list_namespaced_config_map, ns, timeout_seconds=5):
            received.append((e["type"], e["object"].metadata.name))
            if e["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    wait_for(lambda: received == [("ADDED", "pre")])
    v1.create_namespaced_config_map(ns, cm("live"))
    v1.delete_namespaced_config_map("live", ns)
    t.join(timeout=5)
    assert received == [("ADDED", "pre"), ("ADDED", "live"), ("DELETED", "live")]


@pytest.mark.double_only("compacting the watch history on demand is a double hook")
def test_watch_too_old_resource_version_is_gone(backend: Backend) -> None:
    v1 = client.CoreV1Api(backend.client)
    old = v1.list_namespaced_config_map(backend.ns).metadata.resource_version
    v1.create_namespaced_config_map(backend.ns, cm("x"))
    backend.api.store.events.compact()
    with pytest.raises(ApiException) as exc:
        list(watch.Watch().stream(v1.list_namespaced_config_map, backend.ns, resource_version=old,
                                  timeout_seconds=1))
    assert exc.value.status == 410


@pytest.mark.double_only("request counts and users are the double's own accounting")
def test_request_counts_and_users(backend: Backend) -> None:
    api = backend.api
    api.reset_counts()
    v1 = client.CoreV1Api(api.api_client(user="alice"))
    v1.create_namespaced_config_map(backend.ns, cm("c"))
    v1.read_namespaced_config_map("c", backend.ns)
    v1.list_namespaced_config_map(backend.ns)
    v1.patch_namespaced_config_map("c", backend.ns, {"data": {"a": "b"}})
    v1.delete_namespaced_config_map("c", backend.ns)
    assert api.counts == {("create", "configmaps"): 1, ("get", "configmaps"): 1, ("list", "configmaps"): 1,
                          ("patch", "configmaps"): 1, ("delete", "configmaps"): 1}
    assert api.writes() == 3
    assert {r.user for r in api.requests} == {"alice"}
    assert [r.status for r in api.requests] == [201, 200, 200, 200, 200]
    api.reset_counts()
    assert api.writes() == 0 and not api.counts and not api.requests


def run_faulted(seed: int) -> tuple[list[str], list[str]]:
    """Eight creates under a 50 % fault plan; returns (outcomes, names stored)."""
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
    """Double only (fault injection is the double's): takes no ``backend``."""
    first, stored = run_faulted(7)
    again, _ = run_faulted(7)
    assert first == again
    assert {"ok"} < set(first)  # some succeeded, some failed
    assert stored == [f"c{i}" for i, o in enumerate(first) if o == "ok"]
    assert run_faulted(8)[0] != first


@pytest.mark.double_only("fault injection is the double's")
def test_fault_429_carries_retry_after(backend: Backend) -> None:
    api = backend.api
    api.reset_counts()
    api.faults = FaultPlan(rate=1.0, seed=1, kinds=["429"], retry_after=3)
    with pytest.raises(ApiException) as exc:  # a write: the client retries only reads on Retry-After
        client.CoreV1Api(backend.client).create_namespaced_config_map(backend.ns, cm("x"))
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "3"
    assert api.fault_counts == {("429", "create", "configmaps"): 1} and not api.counts
    assert api.requests[-1].fault == "429" and api.store.objects("v1", "ConfigMap") == []


def test_health_endpoints(backend: Backend) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        code, body, _ = backend.raw("GET", path)
        assert (code, body) == (200, "ok")


KUBECTL = shutil.which("kubectl")


def kubectl_runner(kubeconfig: Path) -> Any:
    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), *args], capture_output=True,
                              text=True, timeout=60)
    return kubectl


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_apply_server_side_get_and_diff(backend: Backend, tmp_path: Path) -> None:
    kubectl = kubectl_runner(backend.kubeconfig_file)
    manifest = tmp_path / "m.yaml"
    name = backend.name("br1")
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "k", "namespace": backend.ns},
             "data": {"a": "1"}}, nncp(name, [{"name": "br1", "type": "linux-bridge"}])]
    manifest.write_text(yaml.safe_dump_all(docs))
    out = kubectl("apply", "--server-side", "-f", str(manifest))  # validation on: the server validates
    assert out.returncode == 0, out.stderr
    assert "serverside-applied" in out.stdout
    got = json.loads(kubectl("get", "configmap", "k", "-n", backend.ns, "-o", "json", "--show-managed-fields").stdout)
    assert got["data"] == {"a": "1"}
    assert got["metadata"]["managedFields"][0]["manager"] == "kubectl"
    assert kubectl("diff", "--server-side", "-f", str(manifest)).returncode == 0  # no difference
    docs[0]["data"] = {"a": "2"}
    manifest.write_text(yaml.safe_dump_all(docs))
    diff = kubectl("diff", "--server-side", "-f", str(manifest))
    assert diff.returncode == 1 and "+  a: \"2\"" in diff.stdout
    assert client.CoreV1Api(backend.client).read_namespaced_config_map("k", backend.ns).data == {"a": "1"}
    if backend.double is not None:  # the double's own accounting: diffs are dry runs
        assert backend.double.counts[("apply", "configmaps")] == 3
        assert {r.user for r in backend.double.requests if r.verb} == {"virtnet"}


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached in time")
