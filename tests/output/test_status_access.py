"""The status commit's access section: an SSH config block per VM (virtctl port-forward as ProxyCommand), and
FQDNs only where they can resolve (secondary DNS on, the guest agent connected, an address reported)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from reconciler.model import load_repo
from reconciler.output import summary

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "repo"


def vmi(ns: str, name: str, interfaces: list[dict[str, Any]], agent: bool) -> dict[str, Any]:
    conditions = [{"type": "AgentConnected", "status": "True"}] if agent else []
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"namespace": ns, "name": name},
        "status": {"interfaces": interfaces, "conditions": conditions},
    }


def web_1(access: list[dict[str, Any]]) -> dict[str, Any]:
    return next(v for v in access if v["vm"] == "apps/web-1")


def test_every_vm_gets_a_port_forward_host_block_in_the_status_files() -> None:
    repo = load_repo(EXAMPLES)
    access = summary.vm_access(repo, [], [])
    names = sorted(f"{vm.meta.namespace}/{vm.name}" for vm in repo.of("VM"))
    assert sorted(v["vm"] for v in access) == names and len(names) >= 2
    doc = summary.status_document("prod", "abc", "Synced", "", [], [], access)
    config = summary.status_files(doc)["ssh_config"]
    for vm in repo.of("VM"):
        target = f"vmi/{vm.name}.{vm.meta.namespace}"
        block = f"Host {target}\n  User {vm.spec.user}\n  ProxyCommand virtctl port-forward --stdio=true {target} %p\n"
        assert block in config
    assert config.count("Host ") == len(names)
    assert "ProxyCommand virtctl port-forward --stdio=true vmi/web-1.apps %p" in summary.status_markdown(doc)


def test_fqdn_only_with_the_guest_agent_and_an_address() -> None:
    repo = load_repo(EXAMPLES)  # secondary DNS on, domain prod.example.com
    reported = [{"name": "vlan100", "ipAddress": "192.168.100.11", "ipAddresses": ["192.168.100.11"]}]
    with_agent = web_1(summary.vm_access(repo, [vmi("apps", "web-1", reported, agent=True)], []))
    vlan = next(i for i in with_agent["interfaces"] if i["name"] == "vlan100")
    assert vlan["fqdn"] == "vlan100.web-1.apps.vm.prod.example.com" and "fqdnUnavailable" not in vlan
    quiet = next(i for i in with_agent["interfaces"] if i["name"] == "tenant-l2")  # no address reported
    assert "fqdn" not in quiet and "no address" in quiet["fqdnUnavailable"]

    without = web_1(summary.vm_access(repo, [vmi("apps", "web-1", reported, agent=False)], []))
    vlan = next(i for i in without["interfaces"] if i["name"] == "vlan100")
    assert "fqdn" not in vlan and "guest agent" in vlan["fqdnUnavailable"]
    user = next(vm.spec.user for vm in repo.of("VM") if vm.name == "web-1")
    assert f"ssh {user}@192.168.100.11" in without["ssh"]  # the address still works without a name

    by_source = [{**reported[0], "infoSource": "domain, guest-agent"}]
    agent_known = web_1(summary.vm_access(repo, [vmi("apps", "web-1", by_source, agent=False)], []))
    assert next(i for i in agent_known["interfaces"] if i["name"] == "vlan100").get("fqdn")


def test_no_fqdn_without_secondary_dns(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "repo")
    cluster = tmp_path / "repo" / "clusters" / "prod.yaml"
    text = cluster.read_text()
    start = text.index("  secondaryDNS:")
    end = text.index("  # MetalLB")
    cluster.write_text(text[:start] + text[end:])
    repo = load_repo(tmp_path / "repo")
    reported = [{"name": "vlan100", "ipAddress": "192.168.100.11"}]
    access = web_1(summary.vm_access(repo, [vmi("apps", "web-1", reported, agent=True)], []))
    assert all("fqdn" not in i and "fqdnUnavailable" not in i for i in access["interfaces"])
