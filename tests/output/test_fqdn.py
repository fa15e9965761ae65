"""The FQDNs the status document gives a VM: ``<iface>.<vm>.<namespace>.vm.<the cluster's base domain>``, for
secondary interfaces only, and only where secondary DNS is deployed."""

from __future__ import annotations

from pathlib import Path

from repos import CLUSTER, write_repo

from reconciler.model import load_repo
from reconciler.output.summary import vm_access

VMI = {
    "metadata": {"namespace": "apps", "name": "web-1"},
    "status": {"interfaces": [{"name": "vlan100", "ipAddress": "192.168.100.10"}, {"name": "default"}]},
}


def _interfaces(root: Path, cluster: str) -> list[dict[str, object]]:
    repo = load_repo(write_repo(root, {"cluster.yaml": cluster}))
    [vm] = vm_access(repo, [VMI], [])
    return vm["interfaces"]  # type: ignore[no-any-return]


def test_fqdn_uses_the_base_domain_and_skips_the_pod_network(tmp_path: Path) -> None:
    cluster = CLUSTER + "  baseDomain: prod.example.com\n  secondaryDNS: {nameServerIP: 192.0.2.53, publish: false}\n"
    default, vlan100 = _interfaces(tmp_path / "a", cluster)
    assert vlan100["fqdn"] == "vlan100.web-1.apps.vm.prod.example.com"
    assert "fqdn" not in default


def test_no_fqdn_without_secondary_dns(tmp_path: Path) -> None:
    disabled = CLUSTER + "  baseDomain: prod.example.com\n  secondaryDNS: {nameServerIP: 192.0.2.53, enabled: false}\n"
    for i, cluster in enumerate((CLUSTER + "  baseDomain: prod.example.com\n", disabled)):
        assert all("fqdn" not in iface for iface in _interfaces(tmp_path / str(i), cluster))
