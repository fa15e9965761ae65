"""Issue #13: where the API double used to differ from kube-apiserver, both must now answer the same.

Each test runs against the double and a real kube-apiserver (``backend``, see ``conftest.py``): list semantics
of server-side apply from the schemas, strict/warn field validation and pruning, names per kind, the
namespace and finalizer lifecycle, and the protocol details kubectl relies on (OpenAPI v3, paged tables, 415
for strategic merge patches of custom resources, field selectors, unconditional updates).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from tests.testing.conftest import Backend
from tests.testing.test_apiserver_contract import apply_nncp, cm, nncp, status_of, vm

APPLY = {"Content-Type": "application/apply-patch+yaml"}
KUBECTL = shutil.which("kubectl")


def vm_path(ns: str, name: str = "") -> str:
    return f"/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachines" + (f"/{name}" if name else "")


def with_nics(body: dict[str, Any], nics: list[str]) -> dict[str, Any]:
    spec = body["spec"]["template"]["spec"]
    spec["domain"]["devices"]["interfaces"] = [{"name": "default", "masquerade": {}}] + [
        {"name": n, "bridge": {}} for n in nics]
    spec["networks"] = [{"name": "default", "pod": {}}] + [{"name": n, "multus": {"networkName": n}} for n in nics]
    body["spec"]["template"]["metadata"] = {"labels": {"app": "x"}}
    return body


# ---- server-side apply: list types from the schemas ------------------------------------------------------------


def test_vm_interfaces_are_an_atomic_list(backend: Backend) -> None:
    ns = backend.ns
    code, _, _ = backend.raw("PATCH", vm_path(ns, "a") + "?fieldManager=a", APPLY, with_nics(vm("a", ns), ["n1"]))
    assert code == 201
    code, out, _ = backend.raw("PATCH", vm_path(ns, "a") + "?fieldManager=a", APPLY, with_nics(vm("a", ns), []))
    template = out["spec"]["template"]
    assert [i["name"] for i in template["spec"]["domain"]["devices"]["interfaces"]] == ["default"]
    assert template["metadata"]["labels"] == {"app": "x"}
    entry = next(m for m in out["metadata"]["managedFields"] if m["manager"] == "a")
    assert entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:domain"]["f:devices"] == {"f:interfaces": {}}
    assert entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:networks"] == {}


def test_built_in_map_lists_and_sets_are_keyed(backend: Backend) -> None:
    ns = backend.ns
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    code, out, _ = backend.raw("PATCH", f"/api/v1/namespaces/{ns}/services/s?fieldManager=m", APPLY, svc)
    assert code == 201
    fields = out["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]
    assert fields == {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}, "f:selector": {}}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a.io/b"]},
            "data": {"k": "v"}}
    code, out, _ = backend.raw("PATCH", f"/api/v1/namespaces/{ns}/configmaps/c?fieldManager=m", APPLY, body)
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:data": {"f:k": {}}, "f:metadata": {"f:finalizers": {'v:"a.io/b"': {}}}}
    body["metadata"]["finalizers"] = ["c.io/d"]
    code, out, _ = backend.raw("PATCH", f"/api/v1/namespaces/{ns}/configmaps/c?fieldManager=other", APPLY, body)
    assert code == 200, out
    assert out["metadata"]["finalizers"] == ["a.io/b", "c.io/d"]  # a set merges by value


# ---- fields: validation and pruning ------------------------------------------------------------------------------


def _bogus_vm(ns: str, name: str) -> dict[str, Any]:
    body = with_nics(vm(name, ns), ["n1"])
    body["spec"]["bogus"] = 1
    body["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][1]["bridge"] = {"x": 1}
    return body


@pytest.mark.upstream_schemas
def test_strict_field_validation_refuses_unknown_fields(backend: Backend) -> None:
    code, out, _ = backend.raw("POST", vm_path(backend.ns) + "?fieldValidation=Strict", None,
                               _bogus_vm(backend.ns, "strict"))
    assert (code, out["reason"]) == (400, "BadRequest")
    assert 'unknown field "spec.bogus"' in out["message"]
    assert 'unknown field "spec.template.spec.domain.devices.interfaces[1].bridge.x"' in out["message"]
    code, out, _ = backend.raw("POST", f"/api/v1/namespaces/{backend.ns}/configmaps?fieldValidation=Strict", None,
                               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}, "bogus": 1})
    assert (code, out["reason"]) == (400, "BadRequest") and 'unknown field "bogus"' in out["message"]


@pytest.mark.upstream_schemas
def test_default_validation_prunes_unknown_fields_with_a_warning(backend: Backend) -> None:
    code, out, headers = backend.raw("POST", vm_path(backend.ns), None, _bogus_vm(backend.ns, "warn"))
    assert code == 201
    assert '299 - "unknown field \\"spec.bogus\\""' in headers["Warning"]
    assert "bogus" not in out["spec"]
    assert out["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][1]["bridge"] == {}
    code, out, headers = backend.raw("POST", vm_path(backend.ns) + "?fieldValidation=Ignore", None,
                                     _bogus_vm(backend.ns, "ignore"))
    assert code == 201 and "Warning" not in headers and "bogus" not in out["spec"]


@pytest.mark.upstream_schemas
def test_apply_with_an_unknown_field_fails(backend: Backend) -> None:
    code, out, _ = backend.raw("PATCH", vm_path(backend.ns, "a") + "?fieldManager=a", APPLY,
                               _bogus_vm(backend.ns, "a"))
    assert code == 500
    assert "failed to create typed patch object" in out["message"]
    assert ".spec.bogus: field not declared in schema" in out["message"]


@pytest.mark.upstream_schemas
def test_schema_errors_are_invalid(backend: Backend) -> None:
    body = vm("typed", backend.ns, runStrategy=5)
    code, out, _ = backend.raw("POST", vm_path(backend.ns), None, body)
    assert (code, out["reason"]) == (422, "Invalid")
    assert out["details"]["causes"][0]["field"] == "spec.runStrategy"
    body = vm("untemplated", backend.ns)
    del body["spec"]["template"]
    code, out, _ = backend.raw("POST", vm_path(backend.ns), None, body)
    assert (code, out["reason"]) == (422, "Invalid") and "spec.template" in out["message"]


@pytest.mark.parametrize(("plural", "name", "ok"), [
    ("services", "1abc.def", False), ("services", "a.b", False), ("services", "1abc", True),
    ("services", "abc-1", True), ("configmaps", "Bad_Name", False), ("configmaps", "a.b", True),
    ("configmaps", "a..b", False), ("namespaces", "a.b", False), ("namespaces", "1-a", True),
])
def test_names_are_validated_per_kind(backend: Backend, plural: str, name: str, ok: bool) -> None:
    name = name if plural != "namespaces" or not ok else backend.name(name)
    path = "/api/v1/namespaces" if plural == "namespaces" else f"/api/v1/namespaces/{backend.ns}/{plural}"
    body: dict[str, Any] = {"metadata": {"name": name}}
    if plural == "services":
        body["spec"] = {"ports": [{"port": 80}]}
    code, out, _ = backend.raw("POST", path, None, body)
    if ok:
        assert code == 201, out
    else:
        assert (code, out["reason"], out["details"]["causes"][0]["field"]) == (422, "Invalid", "metadata.name")


@pytest.mark.parametrize("extra", [0, 1])
@pytest.mark.parametrize("method", ["POST", "APPLY"])
def test_annotations_are_limited_to_256_kib_in_bytes(backend: Backend, method: str, extra: int) -> None:
    """apimachinery counts the UTF-8 bytes of keys and values (``render.checks`` keeps room below this)."""
    value = "é" * 1000 + "x" * (256 * 1024 - 1 - 2000 + extra)  # with the key "a": 262,144 bytes (+ extra)
    name = f"big-{method.lower()}-{extra}"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "annotations": {"a": value}}}
    path = f"/api/v1/namespaces/{backend.ns}/configmaps"
    if method == "POST":
        code, out, _ = backend.raw("POST", path, None, body)
    else:
        code, out, _ = backend.raw("PATCH", f"{path}/{name}?fieldManager=t", APPLY, json.dumps(body))
    if not extra:
        assert code in (200, 201), out
        return
    assert (code, out["reason"], out["details"]["causes"][0]["field"]) == (422, "Invalid", "metadata.annotations")
    assert "metadata.annotations: Too long: may not be more than 262144 bytes" in out["message"]


# ---- lifecycle ---------------------------------------------------------------------------------------------------


def test_create_in_a_missing_namespace_is_404(backend: Backend) -> None:
    missing = backend.name("missing")
    for method, path, headers, body in (
        ("POST", f"/api/v1/namespaces/{missing}/configmaps", None, cm("x")),
        ("POST", vm_path(missing), None, vm("x", missing)),
        ("PATCH", f"/api/v1/namespaces/{missing}/configmaps/x?fieldManager=m", APPLY,
         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    ):
        code, out, _ = backend.raw(method, path, headers, body)
        assert (code, out["reason"], out["message"]) == (404, "NotFound", f'namespaces "{missing}" not found')


def test_finalizers_hold_a_deleted_object(backend: Backend) -> None:
    v1, ns = client.CoreV1Api(backend.client), backend.ns
    v1.create_namespaced_config_map(ns, {"metadata": {"name": "f", "finalizers": ["x.io/keep"]}})
    code, out, _ = backend.raw("DELETE", f"/api/v1/namespaces/{ns}/configmaps/f")
    assert code == 200 and out["kind"] == "ConfigMap"
    stamp = out["metadata"]["deletionTimestamp"]
    assert out["metadata"]["deletionGracePeriodSeconds"] == 0
    again = backend.raw("DELETE", f"/api/v1/namespaces/{ns}/configmaps/f")[1]
    assert again["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as exc:
        v1.patch_namespaced_config_map("f", ns, {"metadata": {"finalizers": ["x.io/keep", "y.io/new"]}})
    assert status_of(exc) == (422, "Invalid") and "no new finalizers" in exc.value.body
    changed = v1.patch_namespaced_config_map("f", ns, {"data": {"a": "b"}})  # still writable
    assert changed.data == {"a": "b"} and changed.metadata.deletion_timestamp.strftime("%Y") == stamp[:4]
    code, _, _ = backend.raw("PATCH", f"/api/v1/namespaces/{ns}/configmaps/f", {
        "Content-Type": "application/merge-patch+json"}, {"metadata": {"finalizers": None}})
    assert code == 200
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_config_map("f", ns)
    assert exc.value.status == 404


def test_a_deleted_custom_resource_bumps_its_generation(backend: Backend) -> None:
    body = vm("f", backend.ns)
    body["metadata"]["finalizers"] = ["x.io/keep"]
    backend.raw("POST", vm_path(backend.ns), None, body)
    code, out, _ = backend.raw("DELETE", vm_path(backend.ns, "f"))
    assert code == 200 and out["metadata"]["generation"] == 2 and out["metadata"]["deletionTimestamp"]


def test_a_deleted_namespace_is_terminating_and_refuses_new_content(backend: Backend) -> None:
    v1 = client.CoreV1Api(backend.client)
    doomed = backend.name("doomed")
    created = v1.create_namespace({"metadata": {"name": doomed}})
    assert (created.status.phase, created.spec.finalizers) == ("Active", ["kubernetes"])
    assert created.metadata.labels == {"kubernetes.io/metadata.name": doomed}
    v1.create_namespaced_config_map(doomed, {"metadata": {"name": "held", "finalizers": ["x.io/keep"]}})
    code, out, _ = backend.raw("DELETE", f"/api/v1/namespaces/{doomed}")
    assert code == 200 and out["status"]["phase"] == "Terminating" and out["metadata"]["deletionTimestamp"]
    assert v1.read_namespace(doomed).status.phase == "Terminating"
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_config_map(doomed, cm("late"))
    assert status_of(exc) == (403, "Forbidden")
    assert json.loads(exc.value.body)["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    code, out, _ = backend.raw("PATCH", f"/api/v1/namespaces/{doomed}/configmaps/late2?fieldManager=m", APPLY,
                               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late2"}})
    assert (code, out["reason"]) == (403, "Forbidden")


# ---- protocol ----------------------------------------------------------------------------------------------------


def test_unconditional_update_of_a_custom_resource_is_invalid(backend: Backend) -> None:
    v1, custom, ns = client.CoreV1Api(backend.client), client.CustomObjectsApi(backend.client), backend.ns
    v1.create_namespaced_config_map(ns, cm("c", a="1"))
    assert v1.replace_namespaced_config_map("c", ns, cm("c", a="2")).data == {"a": "2"}  # built-in: allowed
    custom.create_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", vm("v", ns))
    with pytest.raises(ApiException) as exc:
        custom.replace_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", "v", vm("v", ns))
    assert status_of(exc) == (422, "Invalid") and "must be specified for an update" in exc.value.body


def test_strategic_merge_patch_of_a_custom_resource_is_415(backend: Backend) -> None:
    custom = client.CustomObjectsApi(backend.client)
    custom.create_namespaced_custom_object("kubevirt.io", "v1", backend.ns, "virtualmachines", vm("v", backend.ns))
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object("kubevirt.io", "v1", backend.ns, "virtualmachines", "v",
                                              {"spec": {"runStrategy": "Always"}},
                                              _content_type="application/strategic-merge-patch+json")
    assert status_of(exc) == (415, "UnsupportedMediaType")


def test_field_selectors_are_limited_per_kind(backend: Backend) -> None:
    custom, v1 = client.CustomObjectsApi(backend.client), client.CoreV1Api(backend.client)
    with pytest.raises(ApiException) as exc:
        custom.list_namespaced_custom_object("kubevirt.io", "v1", backend.ns, "virtualmachines",
                                             field_selector="spec.runStrategy=Halted")
    assert status_of(exc) == (400, "BadRequest")
    assert json.loads(exc.value.body)["message"] == "field label not supported: spec.runStrategy"
    with pytest.raises(ApiException) as exc:
        v1.list_namespaced_config_map(backend.ns, field_selector="data.a=1")
    assert json.loads(exc.value.body)["message"] == (
        '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"')
    assert v1.list_namespaced_secret(backend.ns, field_selector="type=Opaque").items == []


def test_openapi_v3_documents_declare_server_side_field_validation(backend: Backend) -> None:
    code, index, _ = backend.raw("GET", "/openapi/v3")
    assert code == 200 and {"api/v1", "apis/nmstate.io/v1", "apis/kubevirt.io/v1"} <= set(index["paths"])
    code, doc, _ = backend.raw("GET", index["paths"]["apis/nmstate.io/v1"]["serverRelativeURL"])
    assert code == 200
    kind = "NodeNetworkConfigurationPolicy"
    patches = [op["patch"] for op in doc["paths"].values()
               if "patch" in op and op["patch"].get("x-kubernetes-group-version-kind", {}).get("kind") == kind]
    assert patches
    names = {p.get("name") or p.get("$ref", "").rsplit("/", 1)[-1] for p in patches[0]["parameters"]}
    assert any("fieldValidation" in n for n in names)


def _kubectl(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KUBECTL), "--kubeconfig", str(backend.kubeconfig_file), *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.upstream_schemas
@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_apply_validates_on_the_server(backend: Backend, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    bad = nncp(backend.name("p"), [{"name": "br1"}], bogus=1)
    manifest.write_text(yaml.safe_dump(bad))
    out = _kubectl(backend, "apply", "-f", str(manifest))  # --validate=strict is kubectl's default
    assert out.returncode != 0 and 'unknown field "spec.bogus"' in out.stderr
    del bad["spec"]["bogus"]
    manifest.write_text(yaml.safe_dump(bad))
    out = _kubectl(backend, "apply", "-f", str(manifest))
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_create_sends_protobuf(backend: Backend) -> None:
    """``kubectl create namespace/configmap/secret/serviceaccount`` send protobuf bodies (no JSON fallback)."""
    ns = backend.name("pb")
    for args in (("namespace", ns), ("configmap", "c", "-n", ns, "--from-literal=a=1", "--from-literal=b=2"),
                 ("secret", "generic", "s", "-n", ns, "--from-literal=p=secret"), ("serviceaccount", "sa", "-n", ns)):
        out = _kubectl(backend, "create", *args)
        assert out.returncode == 0, out.stderr
    v1 = client.CoreV1Api(backend.client)
    namespace = v1.read_namespace(ns)
    assert (namespace.spec.finalizers, namespace.status.phase) == (["kubernetes"], "Active")
    assert v1.read_namespaced_config_map("c", ns).data == {"a": "1", "b": "2"}
    secret = v1.read_namespaced_secret("s", ns)
    assert secret.data == {"p": "c2VjcmV0"} and not secret.metadata.generate_name
    assert v1.read_namespaced_service_account("sa", ns).metadata.name == "sa"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_get_pages_through_tables(backend: Backend) -> None:
    v1 = client.CoreV1Api(backend.client)
    for i in range(23):
        v1.create_namespaced_config_map(backend.ns, cm(f"c{i:02d}"))
    out = _kubectl(backend, "get", "configmaps", "-n", backend.ns, "--chunk-size=5", "--no-headers")
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("c")]
    assert names == [f"c{i:02d}" for i in range(23)]


def test_ssa_owned_list_survives_other_managers(backend: Backend) -> None:
    """A keyed list shared by two appliers keeps both managers' items (built-in map list)."""
    ns = backend.ns
    for manager, port in (("one", 80), ("two", 443)):
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"ports": [{"port": port, "name": manager}]}}
        code, out, _ = backend.raw("PATCH", f"/api/v1/namespaces/{ns}/services/s?fieldManager={manager}", APPLY, svc)
        assert code in (200, 201), out
    assert sorted(p["port"] for p in out["spec"]["ports"]) == [80, 443]
    apply_nncp(client.CustomObjectsApi(backend.client), nncp(backend.name("q"), [{"name": "a"}]))
