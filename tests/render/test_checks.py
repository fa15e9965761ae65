"""The last validation step (``reconciler.render.checks``): a repository that validates renders objects that
serialise and that the API server accepts, and every refusal names the document's file, line and field."""

from __future__ import annotations

import base64
import datetime
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import schemas
from click.testing import CliRunner
from repos import VM, write_repo

from reconciler import labels
from reconciler.cli import main
from reconciler.errors import ModelError
from reconciler.model import load_repo
from reconciler.objects import API_RESOURCES, MANAGED_KINDS, PATCH_ONLY_KINDS
from reconciler.render import render, render_path
from reconciler.render.checks import ANNOTATIONS_ROOM, check_object
from reconciler.render.syntax import quantity

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo"


def messages(obj: dict[str, Any], plain: bool = True) -> list[str]:
    return [f"{'.'.join(map(str, f.path))}: {f.message}" for f in check_object(obj, plain)]


def cm(**data: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "apps"}, "data": data}


def vm_obj(**domain: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"template": {"spec": {"domain": domain}}},
    }


def nncp(*interfaces: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": "p"},
        "spec": {"desiredState": {"interfaces": list(interfaces)}},
    }


def test_every_object_of_the_example_passes_even_as_plain_data() -> None:
    """Objects rendered from virtnet documents are built from typed fields; checking them as plain data too
    proves it (only plain manifests get the full type walk in production)."""
    objects = render_path(EXAMPLE)
    assert {o["kind"]: messages(o) for o in objects if messages(o)} == {}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (datetime.date(2024, 1, 1), "is a date"),
        (datetime.datetime(2024, 1, 1, 12, 0), "is a datetime"),
        (b"\x00\x01", "is a bytes"),
        ({"a", "b"}, "is a set"),
        (("a", "b"), "is a tuple"),
    ],
)
def test_values_json_cannot_carry_are_refused_at_their_field(value: object, fragment: str) -> None:
    [message] = messages(cm(A="1", WHEN=value))
    assert message.startswith("data.WHEN: ") and fragment in message and "quote it" in message


def test_numbers_keys_and_strings_where_the_api_wants_them() -> None:
    assert messages(cm(PORT=8080)) == ["data.PORT: data.PORT is a number; the API takes only strings here: quote it"]
    assert messages(cm(X=math.nan))[0].startswith("data.X: nan is not a number JSON can carry")
    assert "does not fit in 64 bits" in messages({**cm(), "spec": {"n": 2**64}})[0]
    bad_key = cm()
    bad_key["data"] = {1: "x"}
    assert messages(bad_key)[0].startswith("data: key 1 is a int, not a string")
    assert messages(cm(**{"bad/key": "x"}))[0].startswith("data.bad/key: key 'bad/key' must be letters")
    secret = {**cm(), "kind": "Secret", "data": {"k": "not base64!"}}
    assert messages(secret) == ["data.k: data.k is not base64 (use stringData for plain text)"]
    assert messages({**secret, "data": {}, "stringData": {"k": "plain text is fine"}}) == []


def test_kind_and_api_version_must_be_ones_the_engine_sends() -> None:
    wrong = messages({**cm(), "apiVersion": "v2"})
    assert wrong == ["apiVersion: apiVersion 'v2' is not the one virtnet sends ConfigMap as: use v1"]
    old = vm_obj(memory={"guest": "1Gi"})
    old["apiVersion"] = "kubevirt.io/v1alpha3"
    assert messages(old)[0].startswith("apiVersion: apiVersion 'kubevirt.io/v1alpha3' is not the one")
    assert messages({**cm(), "kind": "Pod"})[0].startswith("kind: virtnet cannot apply kind 'Pod'")
    assert messages({**cm(), "kind": "Node", "metadata": {"name": "n"}})[0].startswith("kind: virtnet cannot apply")
    meta = {"name": "h", "namespace": "n"}
    hco = {"apiVersion": "hco.kubevirt.io/v1beta1", "kind": "HyperConverged", "metadata": meta}
    assert messages(hco) == []  # patched, never created
    owned = {**hco, "metadata": {**hco["metadata"], "labels": {labels.MANAGED_BY: labels.MANAGER}}}
    assert messages(owned)[0].startswith("kind: virtnet cannot apply kind 'HyperConverged'")


@pytest.mark.parametrize(
    ("kind", "api_version", "name", "fragment"),
    [
        ("Service", "v1", "1web-svc", "is not a DNS-1035 label"),
        ("Service", "v1", "web-" + "x" * 60, "is not a DNS-1035 label"),
        ("Namespace", "v1", "a.b", "is not a DNS-1123 label"),
        ("ConfigMap", "v1", "Web", "is not a DNS-1123 subdomain"),
        ("ConfigMap", "v1", "x/../../../kube-system/configmaps/evil", "is not a DNS-1123 subdomain"),
        ("ConfigMap", "v1", "x?dryRun=All", "is not a DNS-1123 subdomain"),
        ("VirtualMachine", "kubevirt.io/v1", "a" * 254, "is not a DNS-1123 subdomain"),
    ],
)
def test_names_as_kubernetes_validates_them_per_kind(kind: str, api_version: str, name: str, fragment: str) -> None:
    meta: dict[str, Any] = {"name": name} if kind == "Namespace" else {"name": name, "namespace": "apps"}
    [message] = messages({"apiVersion": api_version, "kind": kind, "metadata": meta})
    assert message.startswith("metadata.name: name ") and fragment in message


def test_names_that_are_valid_for_their_kind_pass() -> None:
    assert messages({**cm(), "metadata": {"name": "web.settings-1", "namespace": "apps"}}) == []
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-" + "x" * 59, "namespace": "apps"}}
    assert messages(svc) == []


def test_scope_and_namespace() -> None:
    assert messages({**cm(), "metadata": {"name": "cm"}}) == ["metadata.namespace: ConfigMap needs metadata.namespace"]
    policy = nncp()
    policy["metadata"]["namespace"] = "apps"
    assert "is cluster-scoped" in messages(policy)[0]
    assert "is not a DNS-1123 label" in messages({**cm(), "metadata": {"name": "cm", "namespace": "Apps"}})[0]


def test_labels_annotations_and_selectors() -> None:
    obj = cm()
    obj["metadata"]["labels"] = {"bad key": "x", "ok": "bad value!", "example.com/fine": "v1.2_3"}
    obj["metadata"]["annotations"] = {"-nope": "x", "Example.com/Caps": "ok?"}
    assert messages(obj) == [
        "metadata.labels.bad key: label key 'bad key' is not a qualified name (at most 63 letters, digits, '-', '_' "
        "or '.', starting and ending with a letter or digit, with an optional DNS subdomain prefix and '/')",
        "metadata.labels.ok: label 'ok': value 'bad value!' is not a label value (at most 63 letters, digits, "
        "'-', '_' or '.', starting and ending with a letter or digit, or empty)",
        "metadata.annotations.-nope: annotation key '-nope' is not a qualified name (at most 63 letters, digits, "
        "'-', '_' or '.', starting and ending with a letter or digit, with an optional DNS subdomain prefix and '/')",
    ]
    big = cm()
    big["metadata"]["annotations"] = {"a": "é" * 10 + "x" * (ANNOTATIONS_ROOM - 20)}  # bytes, not characters: 1 over
    assert messages(big) == [
        f"metadata.annotations: annotations total {ANNOTATIONS_ROOM + 1} bytes; at most {ANNOTATIONS_ROOM} fit (the "
        "API server takes 262144, virtnet adds up to 105: virtnet.io/revision, virtnet.io/adopted)"
    ]
    big["metadata"]["annotations"]["virtnet.io/revision"] = "abc"  # replaced at the write: counted in the room
    big["metadata"]["annotations"]["a"] = "é" * 10 + "x" * (ANNOTATIONS_ROOM - 21)
    assert messages(big) == []
    machine = vm_obj(memory={"guest": "1Gi"})
    machine["spec"]["template"]["spec"]["nodeSelector"] = {"-bad": "x"}
    assert messages(machine)[0].startswith("spec.template.spec.nodeSelector.-bad: nodeSelector key '-bad'")


def test_service_ports() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {
            "selector": {labels.VM: "web"},
            "ports": [
                {"name": "much-too-long-port-name", "port": 80},
                {"name": "b", "port": 0, "targetPort": "Not_A_Name", "protocol": "ICMP"},
                {"port": 81},
            ],
        },
    }
    assert [m.split(":")[0] for m in messages(svc)] == [
        "spec.ports.0.name",
        "spec.ports.1.port",
        "spec.ports.1.targetPort",
        "spec.ports.1.protocol",
        "spec.ports.2.name",
    ]
    assert "is not an IANA service name" in messages(svc)[0]


@pytest.mark.parametrize(("memory", "fragment"), [("0Mi", "must be more than zero"), ("lots", "not a Kubernetes")])
def test_vm_memory_and_disk_sizes(memory: str, fragment: str) -> None:
    [message] = messages(vm_obj(memory={"guest": memory}))
    assert message.startswith("spec.template.spec.domain.memory.guest: memory ") and fragment in message
    machine = vm_obj(memory={"guest": "1Gi"})
    dv = {"metadata": {"name": "root"}, "spec": {"storage": {"resources": {"requests": {"storage": "0"}}}}}
    machine["spec"]["dataVolumeTemplates"] = [dv]
    assert messages(machine) == [
        "spec.dataVolumeTemplates.0.spec.storage.resources.requests.storage: size '0' must be more than zero"
    ]


def test_vm_memory_must_be_whole_hugepages() -> None:
    """KubeVirt's validateHugepagesMemoryRequests: the memory request (else the guest memory) is at least one
    page and a whole number of pages."""
    pages = {"hugepages": {"pageSize": "1Gi"}}
    assert messages(vm_obj(memory={"guest": "1536Mi", **pages})) == [
        "spec.template.spec.domain.memory.guest: memory 1536Mi is not a whole number of 1Gi hugepages: "
        "KubeVirt refuses it"
    ]
    requested = vm_obj(memory={"guest": "2Gi", **pages}, resources={"requests": {"memory": "512Mi"}})
    assert messages(requested) == [
        "spec.template.spec.domain.resources.requests.memory: memory 512Mi is smaller than one 1Gi hugepage: "
        "KubeVirt refuses it"
    ]
    assert messages(vm_obj(memory={"guest": "3Gi", **pages})) == []
    assert messages(vm_obj(memory={"guest": "3Mi", "hugepages": {"pageSize": "2Mi"}})) != []


def test_inline_cloud_init_over_2048_bytes_is_refused() -> None:
    machine = vm_obj(memory={"guest": "1Gi"})
    fits, big = "#cloud-config\n" + "x" * 2000, "x" * 2049
    volumes = [
        {"name": "a", "cloudInitNoCloud": {"userData": fits, "networkData": big}},
        {"name": "b", "cloudInitConfigDrive": {"userData": "é" * 1025}},  # 2050 bytes in 1025 characters
    ]
    machine["spec"]["template"]["spec"]["volumes"] = volumes
    assert [m.split(" bytes")[0] for m in messages(machine)] == [
        "spec.template.spec.volumes.0.cloudInitNoCloud.networkData: cloud-init networkData is 2049",
        "spec.template.spec.volumes.1.cloudInitConfigDrive.userData: cloud-init userData is 2050",
    ]


def test_quantities() -> None:
    assert quantity("2Gi") == 2 * 2**30 and quantity("1.5G") == 1_500_000_000 and quantity("100m") == Decimal("0.1")
    assert quantity("1e3") == 1000 and quantity(0) == 0
    assert quantity("2 Gi") is None and quantity("Gi") is None and quantity("1e999999999") is None


def test_nmstate_interface_names_the_kernel_takes() -> None:
    policy = nncp(
        {"name": "br-sixteen-chars", "type": "linux-bridge", "bridge": {"port": [{"name": "eth1"}]}},
        {"name": "bond0", "type": "bond", "link-aggregation": {"port": ["eth/2", "eth3"]}},
        {"name": "v.100", "type": "vlan", "vlan": {"base-iface": "a" * 16, "id": 100}},
        {"name": "br1", "type": "linux-bridge", "bridge": {"port": [{"name": "fifteen-chars-x"}]}},
    )
    assert [m.split(": ")[0] for m in messages(policy)] == [
        "spec.desiredState.interfaces.0.name",
        "spec.desiredState.interfaces.1.link-aggregation.port.0",
        "spec.desiredState.interfaces.2.vlan.base-iface",
    ]
    assert "is 16 characters; Linux interface names are 1 to 15 characters" in messages(policy)[0]


@pytest.mark.parametrize("ports", [1, "eth1", {"name": "eth1"}])
def test_nmstate_port_lists_that_are_not_lists_are_refused_not_crashed_on(ports: object) -> None:
    # a fuzz finding: `port: 1` crashed the check with TypeError; nmstate wants a list and no schema says so
    policy = nncp(
        {"name": "br1", "type": "linux-bridge", "bridge": {"port": ports}},
        {"name": "bond0", "type": "bond", "link-aggregation": {"port": ports}},
    )
    found = messages(policy)
    assert [m.split(": ")[0] for m in found] == [
        "spec.desiredState.interfaces.0.bridge.port",
        "spec.desiredState.interfaces.1.link-aggregation.port",
    ]
    assert "bridge.port must be a list, not a" in found[0] and repr(ports) in found[0]


def test_a_spec_or_list_of_another_type_is_a_finding_not_a_crash() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "apps"}}
    assert messages({**service, "spec": [1]}) == ["spec: spec must be a mapping, not a list ([1])"]
    assert messages({**service, "spec": {"ports": "http"}}) == [
        "spec.ports: ports must be a list, not a string ('http')"
    ]
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "n", "namespace": "apps"},
        "spec": {"config": json.dumps({"cniVersion": "0.3.1", "plugins": 3})},
    }
    assert messages(nad) == ["spec.config: config's plugins must be a list, not a number (3)"]
    machine = vm_obj()
    machine["spec"]["template"]["spec"] = ["x"]
    assert messages(machine) == ["spec.template.spec: spec must be a mapping, not a list (['x'])"]
    policy = nncp()
    policy["spec"]["desiredState"]["interfaces"] = "eth0"
    assert messages(policy) == ["spec.desiredState.interfaces: interfaces must be a list, not a string ('eth0')"]
    policy["spec"]["desiredState"] = [1]
    assert messages(policy) == ["spec.desiredState: desiredState must be a mapping, not a list ([1])"]


def _service(**spec: Any) -> dict[str, Any]:
    meta = {"name": "s", "namespace": "apps", "labels": {"app": "web"}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def _nad(config: str) -> dict[str, Any]:
    meta = {"name": "n", "namespace": "apps"}
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": meta,
            "spec": {"config": config}}  # fmt: skip


def _hugepages_vm(memory: str) -> dict[str, Any]:
    return vm_obj(memory={"guest": memory, "hugepages": {"pageSize": "2Mi"}})


@pytest.mark.parametrize(
    ("obj", "expected"),
    [  # each crashed the checks (TypeError, RecursionError, decimal.InvalidOperation) before it was a finding
        (_service(ports=[{"name": ["http"], "port": 80}]), "spec.ports.0.name: port name ['http'] must be a string"),
        (_service(ports=[80]), "spec.ports.0: 0 must be a mapping, not a number (80)"),
        (_service(selector={"app": ["web"]}, ports=[{"port": 80}]), "spec.selector.app: selector 'app': keys and"),
        (_nad("[" * 5000), "spec.config: config is JSON nested deeper than any CNI configuration"),
        (_nad('{"plugins": ["bridge"]}'), "spec.config: config's plugins[0] must be a mapping, not a string"),
        (_hugepages_vm("1e200"), "spec.template.spec.domain.memory.guest: memory 1e200 is more than 2Mi hugepages"),
        (nncp({"name": "br1", "bridge": [1]}), "spec.desiredState.interfaces.0.bridge: bridge must be a mapping"),
        (nncp("eth0"), "spec.desiredState.interfaces.0: interface must be a mapping, not a string ('eth0')"),
    ],
)
def test_a_manifest_of_any_shape_is_a_finding_not_a_crash(obj: dict[str, Any], expected: str) -> None:
    check_object(_service(selector={"app": "web"}, ports=[{"port": 80}]))  # "app" is now a known good key
    found = messages(obj)
    assert any(m.startswith(expected) for m in found), found
    assert len(found) == 1, found  # and nothing else: the rest of the object is fine


def test_big_numbers_of_hugepages_are_counted_exactly() -> None:
    assert messages(_hugepages_vm("1e40")) == []  # 10^40 bytes are a whole number of 2 MiB pages
    assert messages(_hugepages_vm(f"{2**100 + 1}")) == [
        f"spec.template.spec.domain.memory.guest: memory {2**100 + 1} is not a whole number of 2Mi hugepages: "
        "KubeVirt refuses it"
    ]


def test_payload_size_is_counted_as_the_api_server_counts_it() -> None:
    """Bytes of the values (UTF-8 text, decoded base64), keys not counted: ValidateConfigMap, ValidateSecret."""
    limit = 1024 * 1024
    assert messages(cm(a="é" * (limit // 2))) == []
    assert messages(cm(a="é" * (limit // 2) + "x")) == [
        f"data: ConfigMap payload is {limit + 1} bytes; the API server takes at most {limit}"
    ]
    binary = cm()
    del binary["data"]
    binary["binaryData"] = {"blob": base64.b64encode(b"x" * limit).decode()}  # 1.33 MiB of base64, 1 MiB decoded
    assert messages(binary) == []
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "apps"},
              "data": {"k": base64.b64encode(b"x" * limit).decode()}, "stringData": {"k": "short"}}  # fmt: skip
    assert messages(secret) == []  # stringData replaces data of the same key
    secret["stringData"] = {"other": "y"}
    assert messages(secret) == [f"data: Secret payload is {limit + 1} bytes; the API server takes at most {limit}"]


def test_a_lone_surrogate_is_measured_not_crashed_on() -> None:
    obj = cm()
    obj["metadata"]["annotations"] = {"example.com/a": "\ud800" * 100_000}  # the pure-Python YAML reader's
    assert messages(obj)[0].startswith("metadata.annotations: annotations total 300013 bytes")


def test_sriov_and_nad_constraints() -> None:
    policy = {
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": "p", "namespace": "sriov"},
        "spec": {"resourceName": "bad-name", "numVfs": -1, "priority": 100, "deviceType": "vdpa"},
    }
    assert [m.split(": ")[0] for m in messages(policy)] == [
        "spec.resourceName",
        "spec.numVfs",
        "spec.priority",
        "spec.deviceType",
    ]
    net = {**policy, "kind": "SriovNetwork", "spec": {"resourceName": "ok", "vlan": 5000, "networkNamespace": "A"}}
    assert [m.split(": ")[0] for m in messages(net)] == ["spec.vlan", "spec.networkNamespace"]
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "n", "namespace": "apps"},
        "spec": {"config": "{not json"},
    }
    assert messages(nad)[0].startswith("spec.config: config is not JSON")


# ---- through render: the document's file, line and field ---------------------------------------------


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: apps
data:
  LISTEN: "8080"
  WHEN: "2024-01-01"
"""


def test_a_value_the_loader_let_through_is_refused_at_its_line(tmp_path: Path) -> None:
    """Whatever YAML turns a value into, render refuses what cannot be sent, before any write."""
    repo = load_repo(write_repo(tmp_path / "repo", {"raw/cm.yaml": CONFIGMAP}))
    [raw] = repo.raw
    raw.obj["data"]["WHEN"] = datetime.date(2024, 1, 1)  # what yaml.safe_load makes of an unquoted date
    with pytest.raises(ModelError) as err:
        render(repo)
    [problem] = err.value.problems
    assert str(problem).startswith("raw/cm.yaml:8: data.WHEN: ConfigMap/apps/settings: value datetime.date(2024, 1, 1)")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"vms/web.yaml": VM.replace("name: web-1", "name: 1web") + "  expose:\n    - port: 80\n"},
            "vms/web.yaml:4: metadata.name: Service/apps/1web-svc: name '1web-svc' is not a DNS-1035 label",
        ),
        (
            {"vms/web.yaml": VM + "  memory: 0Mi\n"},
            "vms/web.yaml:13: spec.memory: VirtualMachine/apps/web-1: memory '0Mi' must be more than zero",
        ),
        (
            {"vms/web.yaml": VM + "  sshKeys:\n" + "".join(f"    - ssh-rsa {'A' * 400} key{i}@x\n" for i in range(6))},
            "vms/web.yaml:13: spec.sshKeys: VirtualMachine/apps/web-1: cloud-init userData is ",
        ),
        (
            {"vms/web.yaml": VM + "  nodeSelector:\n    bad key: x\n"},
            "vms/web.yaml:14: spec.nodeSelector.bad key: VirtualMachine/apps/web-1: nodeSelector key 'bad key'",
        ),
        (
            {
                "nodes/n.yaml": "apiVersion: virtnet.io/v1alpha1\nkind: NodeNetwork\nmetadata:\n  name: trunks\n"
                "spec:\n  vlans:\n    - base: abcdefghijklmno\n      id: 100\n"
            },
            "nodes/n.yaml:7: spec.vlans[0].base: NodeNetworkConfigurationPolicy/trunks: interface name "
            "'abcdefghijklmno.100' is 19 characters",
        ),
        (
            {"raw/cm.yaml": CONFIGMAP.replace('"8080"', "8080")},
            "raw/cm.yaml:7: data.LISTEN: ConfigMap/apps/settings: data.LISTEN is a number",
        ),
        (
            {"raw/cm.yaml": CONFIGMAP.replace("apiVersion: v1", "apiVersion: v2")},
            "raw/cm.yaml:1: apiVersion: ConfigMap/apps/settings: apiVersion 'v2' is not the one virtnet sends",
        ),
    ],
)
def test_validate_and_render_refuse_what_apply_would_fail_on(
    tmp_path: Path, files: dict[str, str | bytes | None], expected: str
) -> None:
    path = write_repo(tmp_path / "repo", files)
    for command in (["validate", str(path)], ["render", str(path), "-o", "json"], ["render", str(path)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, result.output
        assert any(line.strip().startswith(expected) for line in result.stderr.splitlines()), result.stderr
        assert result.stdout == ""


def test_render_output_is_json_after_the_checks() -> None:
    result = CliRunner().invoke(main, ["render", str(EXAMPLE), "-o", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["kind"] == "List"


# ---- the hand-written constraints agree with the upstream schemas (read by tests only, never at run time) --


@pytest.mark.skipif(not schemas.available(), reason=schemas.skip_reason())
def test_the_allow_list_names_versions_the_upstream_schemas_serve() -> None:
    served = schemas._crd_schemas()
    for kind in (*MANAGED_KINDS, *PATCH_ONLY_KINDS):
        res = API_RESOURCES[kind]
        if kind not in schemas.CORE_KINDS and res.api_version != "kubevirt.io/v1":
            assert (res.api_version, kind) in served, f"{res.api_version} {kind} is not served by its CRD"


SRIOV_POLICY = {
    "apiVersion": "sriovnetwork.openshift.io/v1",
    "kind": "SriovNetworkNodePolicy",
    "metadata": {"name": "p", "namespace": "sriov"},
    "spec": {"resourceName": "fast", "numVfs": 4, "nodeSelector": {}, "nicSelector": {"pfNames": ["ens5f0"]}},
}
SRIOV_NETWORK = {
    "apiVersion": "sriovnetwork.openshift.io/v1",
    "kind": "SriovNetwork",
    "metadata": {"name": "n", "namespace": "sriov"},
    "spec": {"resourceName": "fast", "networkNamespace": "apps"},
}


@pytest.mark.skipif(not schemas.available(), reason=schemas.skip_reason())
@pytest.mark.parametrize(
    ("base", "field", "good", "bad"),
    [
        (SRIOV_POLICY, "numVfs", 0, -1),
        (SRIOV_POLICY, "priority", 99, 100),
        (SRIOV_POLICY, "mtu", 1, 0),
        (SRIOV_POLICY, "deviceType", "vfio-pci", "vdpa"),
        (SRIOV_NETWORK, "vlan", 4094, 4095),
        (SRIOV_NETWORK, "vlanQoS", 7, 8),
        (SRIOV_NETWORK, "spoofChk", "off", "maybe"),
        (SRIOV_NETWORK, "trust", "on", "yes"),
    ],
)
def test_sriov_bounds_are_the_crds_bounds(base: dict[str, Any], field: str, good: object, bad: object) -> None:
    for value, refused in ((good, False), (bad, True)):
        obj = json.loads(json.dumps(base))
        obj["spec"][field] = value
        assert bool(schemas.errors(obj)) is refused, (field, value, schemas.errors(obj))
        assert bool(messages(obj)) is refused, (field, value, messages(obj))


def test_pci_ids_are_lower_case_as_in_the_network_model() -> None:
    """The operator compares nicSelector ids with sysfs's lower-case ones: ``15B3`` would select no NIC; the
    model of a virtnet SriovNetwork refuses it too (one pattern)."""
    obj = json.loads(json.dumps(SRIOV_POLICY))
    obj["spec"]["nicSelector"] = {"vendor": "15b3", "deviceID": "101D"}
    assert messages(obj) == [
        "spec.nicSelector.deviceID: nicSelector.deviceID '101D' must be 4 lower-case hex digits "
        "(as sysfs spells PCI ids)"
    ]
