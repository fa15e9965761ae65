"""NADs for bridge, OVN layer2/localnet and live migration; SR-IOV policies and networks."""

from __future__ import annotations

from pathlib import Path

from repos import BRIDGE, CLUSTER

from render.helpers import cni, pick, render_files


def test_bridge_nad_per_namespace(tmp_path: Path) -> None:
    objs = render_files(tmp_path, {"networks/bridge.yaml": BRIDGE.replace("[apps]", "[apps, db]") + "  mtu: 1400\n"})
    for ns in ("apps", "db"):
        nad = pick(objs, "NetworkAttachmentDefinition", "vlan100", ns)
        assert nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"] == "bridge.network.kubevirt.io/br1"
        assert cni(nad) == {
            "cniVersion": "0.3.1",
            "name": "vlan100",
            "type": "bridge",
            "bridge": "br1",
            "vlan": 100,
            "mtu": 1400,
            "macspoofchk": True,
            "disableContainerInterface": True,
            "preserveDefaultVlan": False,
        }


def test_ovn_layer2_and_localnet(tmp_path: Path) -> None:
    ovn = (
        "apiVersion: virtnet.io/v1alpha1\nkind: OvnNetwork\nmetadata:\n  name: l2\nspec:\n  topology: layer2\n"
        "  subnets: [10.100.0.0/24]\n  excludeSubnets: [10.100.0.0/29]\n  mtu: 1300\n  namespaces: [apps, db]\n"
        "---\napiVersion: virtnet.io/v1alpha1\nkind: OvnNetwork\nmetadata:\n  name: dc\nspec:\n"
        "  topology: localnet\n  vlan: 33\n  namespaces: [apps]\n"
        "---\napiVersion: virtnet.io/v1alpha1\nkind: NodeNetwork\nmetadata:\n  name: maps\nspec:\n"
        "  ovnBridgeMappings: [{localnet: dc}]\n"
    )
    objs = render_files(tmp_path, {"networks/ovn.yaml": ovn})
    l2_db = cni(pick(objs, "NetworkAttachmentDefinition", "l2", "db"))
    assert l2_db == {
        "cniVersion": "0.3.1",
        "name": "l2",
        "type": "ovn-k8s-cni-overlay",
        "topology": "layer2",
        "subnets": "10.100.0.0/24",
        "excludeSubnets": "10.100.0.0/29",
        "mtu": 1300,
        "netAttachDefName": "db/l2",
    }
    assert cni(pick(objs, "NetworkAttachmentDefinition", "l2", "apps"))["netAttachDefName"] == "apps/l2"
    local = cni(pick(objs, "NetworkAttachmentDefinition", "dc", "apps"))
    assert local["topology"] == "localnet" and local["vlanID"] == 33 and local["physicalNetworkName"] == "dc"


def test_sriov_policy_and_network_per_namespace(tmp_path: Path) -> None:
    sriov = (
        "apiVersion: virtnet.io/v1alpha1\nkind: SriovNetwork\nmetadata:\n  name: fast\nspec:\n"
        "  resourceName: fastnic\n  pfNames: ['ens5f0#0-3']\n  numVfs: 8\n  vlan: 400\n  mtu: 9000\n"
        "  trust: true\n  namespaces: [apps, db]\n"
    )
    objs = render_files(tmp_path, {"networks/sriov.yaml": sriov})
    policy = pick(objs, "SriovNetworkNodePolicy", "fast", "openshift-sriov-network-operator")
    assert policy["spec"] == {
        "resourceName": "fastnic",
        "nodeSelector": {"feature.node.kubernetes.io/network-sriov.capable": "true"},
        "numVfs": 8,
        "nicSelector": {"pfNames": ["ens5f0#0-3"]},
        "deviceType": "vfio-pci",
        "priority": 99,
        "mtu": 9000,
    }
    net = pick(objs, "SriovNetwork", "fast-db", "openshift-sriov-network-operator")
    assert net["spec"] == {
        "resourceName": "fastnic",
        "networkNamespace": "db",
        "spoofChk": "on",
        "trust": "on",
        "vlan": 400,
    }


def test_live_migration_network_and_hyperconverged_patch(tmp_path: Path) -> None:
    cluster = CLUSTER + (
        "  liveMigration:\n    network: vlan100\n    ipRange: 10.250.0.0/24\n"
        "  baseDomain: example.com\n  secondaryDNS:\n    nameServerIP: 192.0.2.53\n"
    )
    objs = render_files(tmp_path, {"cluster.yaml": cluster})
    nad = pick(objs, "NetworkAttachmentDefinition", "vlan100", "openshift-cnv")
    # virt-handler pods get addresses on it: IPAM, so no disableContainerInterface (the bridge plugin
    # refuses the pair at pod attach) and no VM-only MAC spoof check
    assert cni(nad) == {
        "cniVersion": "0.3.1",
        "name": "vlan100",
        "type": "bridge",
        "bridge": "br1",
        "vlan": 100,
        "preserveDefaultVlan": False,
        "ipam": {"type": "whereabouts", "range": "10.250.0.0/24"},
    }
    hco = pick(objs, "HyperConverged", "kubevirt-hyperconverged", "openshift-cnv")
    assert hco["spec"] == {
        "liveMigrationConfig": {"network": "vlan100"},
        "featureGates": {"deployKubeSecondaryDNS": True},
        "kubeSecondaryDNSNameServerIP": "192.0.2.53",
        "kubeMacPoolConfiguration": {"rangeStart": "02:00:00:00:00:00", "rangeEnd": "02:00:00:00:ff:ff"},
    }
    assert "labels" not in hco["metadata"]  # patched, never owned: no ownership labels, never pruned


def test_metallb_pool_and_advertisement(tmp_path: Path) -> None:
    objs = render_files(tmp_path, {})
    pool = pick(objs, "IPAddressPool", "public", "metallb-system")
    assert pool["spec"] == {"addresses": ["192.0.2.100-192.0.2.110"], "autoAssign": True}
    assert pick(objs, "L2Advertisement", "public", "metallb-system")["spec"] == {"ipAddressPools": ["public"]}
