"""The render stage as a whole, on examples/repo: every kind, schema-valid, cross-consistent, deterministic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import schemas
from click.testing import CliRunner
from repos import CLUSTER, write_repo

from reconciler import labels
from reconciler.cli import main
from reconciler.errors import ModelError
from reconciler.render import render_path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "repo"
EXPECTED_KINDS = {
    "Namespace",
    "NodeNetworkConfigurationPolicy",
    "SriovNetworkNodePolicy",
    "NetworkAttachmentDefinition",
    "SriovNetwork",
    "IPAddressPool",
    "L2Advertisement",
    "HyperConverged",
    "ConfigMap",
    "Secret",
    "VirtualMachine",
    "Service",
}


@pytest.fixture(scope="module")
def example() -> list[dict[str, Any]]:
    return render_path(EXAMPLE)


def test_example_uses_every_kind(example: list[dict[str, Any]]) -> None:
    assert {o["kind"] for o in example} == EXPECTED_KINDS


@pytest.mark.skipif(not schemas.available(), reason=schemas.skip_reason())
def test_example_objects_are_strictly_schema_valid(example: list[dict[str, Any]]) -> None:
    failures = {f"{o['kind']}/{o['metadata']['name']}": schemas.errors(o) for o in example}
    assert {k: v for k, v in failures.items() if v} == {}


@pytest.mark.skipif(not schemas.available(), reason=schemas.skip_reason())
def test_strict_schema_check_catches_unknown_fields(example: list[dict[str, Any]]) -> None:
    """The schema check itself can fail: an unknown field in each kind is reported."""
    for obj in example:
        broken = json.loads(json.dumps(obj))
        broken.setdefault("spec", {})["notAField"] = (
            1 if obj["kind"] not in ("ConfigMap", "Secret", "Namespace") else None
        )
        if obj["kind"] in ("ConfigMap", "Secret"):
            broken["notAField"] = 1
        assert schemas.errors(broken), f"{obj['kind']} accepted an unknown field"


def test_cross_consistency(example: list[dict[str, Any]]) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in example:
        by_kind.setdefault(o["kind"], []).append(o)
    nads = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in by_kind["NetworkAttachmentDefinition"]}
    sriov_nads = {(o["spec"]["networkNamespace"], o["metadata"]["name"]) for o in by_kind["SriovNetwork"]}
    # every VM multus reference has its NAD (directly, or through a SriovNetwork)
    for vm in by_kind["VirtualMachine"]:
        ns = vm["metadata"]["namespace"]
        for net in vm["spec"]["template"]["spec"]["networks"]:
            if "multus" in net:
                ref = (ns, net["multus"]["networkName"])
                assert ref in nads or ref in sriov_nads, f"{vm['metadata']['name']}: {ref} has no NAD"
    # every bridge NAD's bridge is created by an NNCP
    bridges = {
        iface["name"]
        for p in by_kind["NodeNetworkConfigurationPolicy"]
        for iface in p["spec"]["desiredState"].get("interfaces", [])
        if iface["type"] == "linux-bridge"
    }
    for nad in nads.values():
        config = json.loads(nad["spec"]["config"])
        if config["type"] == "bridge":
            assert config["bridge"] in bridges
    # every SriovNetwork has a policy with its resource name
    resources = {p["spec"]["resourceName"] for p in by_kind["SriovNetworkNodePolicy"]}
    assert all(n["spec"]["resourceName"] in resources for n in by_kind["SriovNetwork"])
    # every Service selects a VM's launcher pod
    vm_labels = [
        (v["metadata"]["namespace"], v["spec"]["template"]["metadata"]["labels"]) for v in by_kind["VirtualMachine"]
    ]
    for svc in by_kind["Service"]:
        selector = svc["spec"]["selector"]
        if svc["metadata"]["namespace"] == "openshift-cnv":  # the secondary DNS name server, published
            assert selector == {"k8s-app": "secondary-dns"}, svc["metadata"]["name"]
            continue
        assert any(ns == svc["metadata"]["namespace"] and selector.items() <= lab.items() for ns, lab in vm_labels), (
            svc["metadata"]["name"]
        )


def test_ownership_marks(example: list[dict[str, Any]]) -> None:
    for obj in example:
        meta = obj["metadata"]
        assert meta["annotations"][labels.SOURCE].split(":")[0].endswith(".yaml")
        if obj["kind"] == "HyperConverged":
            assert "labels" not in meta
        else:
            assert meta["labels"][labels.MANAGED_BY] == "virtnet"
            assert meta["labels"][labels.CLUSTER] == "prod"


def test_render_is_deterministic_and_byte_identical(tmp_path: Path) -> None:
    first = CliRunner().invoke(main, ["render", str(EXAMPLE)])
    copy = tmp_path / "copy"
    shutil.copytree(EXAMPLE, copy)
    second = CliRunner().invoke(main, ["render", str(copy)])
    assert first.exit_code == 0 and second.exit_code == 0
    assert first.stdout == second.stdout
    as_json = CliRunner().invoke(main, ["render", str(EXAMPLE), "-o", "json", "--revision", "abc123"])
    items = json.loads(as_json.stdout)["items"]
    assert all(i["metadata"]["annotations"][labels.REVISION] == "abc123" for i in items)


def test_several_clusters_in_one_repository(tmp_path: Path) -> None:
    lab = CLUSTER.replace("name: test", "name: lab")
    only_lab = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lab-only\n  namespace: apps\n"
        "  annotations: {virtnet.io/clusters: lab}\n"
    )
    repo = write_repo(tmp_path / "repo", {"lab.yaml": lab, "raw/cm.yaml": only_lab})
    with pytest.raises(ModelError, match="several clusters defined"):
        render_path(repo)
    lab_objs = render_path(repo, cluster="lab")
    test_objs = render_path(repo, cluster="test")
    assert any(o["metadata"]["name"] == "lab-only" for o in lab_objs)
    assert not any(o["metadata"]["name"] == "lab-only" for o in test_objs)
    assert {o["metadata"]["labels"][labels.CLUSTER] for o in lab_objs if "labels" in o["metadata"]} == {"lab"}
    with pytest.raises(ModelError, match="no Cluster named 'prod'"):
        render_path(repo, cluster="prod")


def test_validate_command_summary() -> None:
    result = CliRunner().invoke(main, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0
    assert "valid for cluster prod: 36 objects" in result.stdout


def test_example_shows_the_networking_chapter_in_full(example: list[dict[str, Any]]) -> None:
    """What issue #15 asks examples/repo to show, each as rendered (and strictly valid, see above)."""

    def one(kind: str, name: str) -> dict[str, Any]:
        [found] = [o for o in example if o["kind"] == kind and o["metadata"]["name"] == name]
        return found

    vrouter = one("VirtualMachine", "vrouter-1")["spec"]["template"]["spec"]
    assert vrouter["domain"]["cpu"]["model"] == "host-passthrough"
    assert vrouter["domain"]["cpu"]["numa"] == {"guestMappingPassthrough": {}}
    assert one("HyperConverged", "kubevirt-hyperconverged")["spec"]["defaultRuntimeClass"] == "performance-dpdk"
    selector = one("SriovNetworkNodePolicy", "fast-net")["spec"]["nicSelector"]
    assert selector["vendor"] == "8086" and selector["deviceID"] == "1592"
    assert json.loads(one("SriovNetwork", "fast-net-nfv")["spec"]["capabilities"]) == {"mac": True}
    tenant = [o for o in example if o["kind"] == "NetworkAttachmentDefinition" and o["metadata"]["name"] == "tenant-l2"]
    assert tenant and all(json.loads(n["spec"]["config"])["allowPersistentIPs"] is True for n in tenant)
    assert one("Namespace", "apps")["metadata"]["labels"]["istio-injection"] == "enabled"
    web = one("VirtualMachine", "web-1")["spec"]["template"]["spec"]
    [credential] = web["accessCredentials"]
    assert "qemuGuestAgent" in credential["sshPublicKey"]["propagationMethod"]
    migration = json.loads(one("NetworkAttachmentDefinition", "migration")["spec"]["config"])
    assert migration["ipam"]["type"] == "whereabouts" and "disableContainerInterface" not in migration
