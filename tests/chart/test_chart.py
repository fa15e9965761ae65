"""The Helm chart: lint, render with several value sets, strict Kubernetes validation, schema, security, RBAC.

Why: the chart is how virtnet gets onto a cluster, and its mistakes (a typo'd value silently ignored, a
wildcard verb, a root container, a Secret with data in it) only show on a real cluster otherwise. Every
assertion here works on what ``helm`` actually renders; the RBAC rules are read from the rendered Roles,
never restated in Python.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import pytest
import yaml

from tests.chart import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    Manifest,
    config_map,
    find,
    helm,
    notes,
    one,
    permissions,
    rbac_rules,
    render,
    template,
)

VALUE_SETS = sorted(p.name for p in CI_VALUES.glob("*-values.yaml"))
DEFAULT = CI_VALUES / "default-values.yaml"
HA = CI_VALUES / "ha-ingress-monitoring-values.yaml"
OPENSHIFT = CI_VALUES / "openshift-values.yaml"
ENFORCE = CI_VALUES / "enforce-values.yaml"
NAMESPACED = CI_VALUES / "namespaced-rbac-values.yaml"

#: kinds kubernetes-validate has no schema for (CRDs of other projects); checked structurally instead
NON_CORE = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),  # its expressions: tests/chart/test_monitoring.py
    ("route.openshift.io/v1", "Route"),
}
#: validate against the oldest Kubernetes the chart declares (kubeVersion >=1.27) and the newest known
K8S_VERSIONS = ("1.27.0", kv_utils.latest_version())

NAMESPACED_KINDS = {
    ("k8s.cni.cncf.io", "network-attachment-definitions"),
    ("sriovnetwork.openshift.io", "sriovnetworknodepolicies"),
    ("sriovnetwork.openshift.io", "sriovnetworks"),
    ("sriovnetwork.openshift.io", "sriovnetworknodestates"),
    ("kubevirt.io", "virtualmachines"),
    ("kubevirt.io", "virtualmachineinstances"),
    ("kubevirt.io", "virtualmachineinstancemigrations"),
    ("subresources.kubevirt.io", "virtualmachines/restart"),
    ("", "services"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "events"),
    ("metallb.io", "ipaddresspools"),
    ("metallb.io", "l2advertisements"),
    ("hco.kubevirt.io", "hyperconvergeds"),
}


@pytest.fixture(scope="module", params=VALUE_SETS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    return request.param, render([CI_VALUES / request.param])


def test_expected_value_sets_exist() -> None:
    for f in (DEFAULT, HA, OPENSHIFT, ENFORCE, NAMESPACED):
        assert f.name in VALUE_SETS


@pytest.mark.parametrize("values_file", VALUE_SETS)
def test_helm_lint_strict(values_file: str) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(CI_VALUES / values_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_lint_without_required_values_fails_naming_them() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "/config/repo/url" in out
    assert "/config/clusterName" in out


def test_values_schema_is_valid_and_matches_values_yaml() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    # the shipped defaults break only the two "required on install" rules
    errors = {"/".join(map(str, e.absolute_path)) for e in jsonschema.Draft7Validator(schema).iter_errors(defaults)}
    assert errors == {"config/clusterName", "config/repo/url"}
    # every top-level key of values.yaml is described by the schema, and nothing else is allowed
    assert set(defaults) <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_every_manifest_is_strictly_valid(rendered: tuple[str, list[Manifest]]) -> None:
    name, docs = rendered
    assert docs, f"{name}: nothing rendered"
    skipped = []
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        for version in K8S_VERSIONS:
            if key in NON_CORE:
                with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                    kubernetes_validate.validate(doc, version, strict=True)
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']} @ {version}: {path}: {exc.message}")
        if key in NON_CORE:
            skipped.append(f"{doc['kind']}/{doc['metadata']['name']}")
    # only the documented non-core kinds may skip validation; they get structural checks below
    assert all(s.split("/")[0] in {k for _, k in NON_CORE} for s in skipped)


def test_every_object_is_labelled_and_namespaced_in_the_release(rendered: tuple[str, list[Manifest]]) -> None:
    _, docs = rendered
    allowlist = set()
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/instance"] == "rel"
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            assert "namespace" not in doc["metadata"]
        elif doc["kind"] in ("Role", "RoleBinding") and doc["metadata"]["namespace"] != NAMESPACE:
            allowlist.add(doc["metadata"]["namespace"])
        else:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]
    if allowlist:
        assert allowlist == set(yaml.safe_load(NAMESPACED.read_text())["rbac"]["namespaces"])


def test_no_secret_is_ever_created_and_references_are_by_name(rendered: tuple[str, list[Manifest]]) -> None:
    name, docs = rendered
    assert not find(docs, "Secret"), f"{name}: the chart must never create a Secret"
    values = yaml.safe_load((CI_VALUES / name).read_text())
    cfg = values["config"]
    expected = {
        cfg.get(section, {}).get("existingSecret")
        for section in ("repo", "forge", "webhook", "signing", "decryption")
    } - {None, ""}
    expected |= {p["existingSecret"] for p in cfg.get("notifications", {}).get("providers", [])}
    deploy = one(docs, "Deployment")
    mounted = {v["secret"]["secretName"] for v in deploy["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert mounted == expected
    for v in deploy["spec"]["template"]["spec"]["volumes"]:
        if "secret" in v:
            assert set(v["secret"]) <= {"secretName", "defaultMode"}, "mount whole Secrets by name only"


def _controller(docs: list[Manifest]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def _agent(docs: list[Manifest]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = one(docs, "DaemonSet")["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_controller_is_non_root_read_only_and_capability_free(rendered: tuple[str, list[Manifest]]) -> None:
    name, docs = rendered
    pod, c = _controller(docs)
    psc, csc = pod["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and csc["runAsNonRoot"] is True
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert csc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc.get("privileged", False) is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    if name == OPENSHIFT.name:
        for key in ("runAsUser", "runAsGroup", "fsGroup"):
            assert key not in psc and key not in csc, f"{key} must be left to the OpenShift SCC"
    else:
        assert psc["runAsUser"] == 65532 and psc["runAsGroup"] == 65532
    assert not pod.get("hostNetwork", False)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in ("/tmp", "/var/cache/virtnet"):
        assert "emptyDir" in volumes[mounts[path]], f"{path} must be an emptyDir"


def test_controller_args_probes_and_replicas(rendered: tuple[str, list[Manifest]]) -> None:
    name, docs = rendered
    values = yaml.safe_load((CI_VALUES / name).read_text())
    replicas = values.get("controller", {}).get("replicas", 2)
    deploy = one(docs, "Deployment")
    assert deploy["spec"]["replicas"] == replicas
    _, c = _controller(docs)
    assert c["args"] == [
        "run", "--config", "/etc/virtnet/config.yaml",
        "--leader-elect", "--leader-namespace", NAMESPACE, "--http-port", "8080",
    ]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    pdbs = find(docs, "PodDisruptionBudget")
    if replicas > 1:
        assert len(pdbs) == 1 and pdbs[0]["spec"]["minAvailable"] == 1
        assert pdbs[0]["spec"]["selector"] == deploy["spec"]["selector"]
    else:
        assert not pdbs


def test_agent_host_network_and_exactly_net_admin_net_raw(rendered: tuple[str, list[Manifest]]) -> None:
    name, docs = rendered
    values = yaml.safe_load((CI_VALUES / name).read_text())
    agent_values = values.get("agent", {})
    pod, c = _agent(docs)
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    csc = c["securityContext"]
    assert csc["capabilities"]["drop"] == ["ALL"]
    assert sorted(csc["capabilities"]["add"]) == ["NET_ADMIN", "NET_RAW"]
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["privileged"] is False
    assert csc["seccompProfile"] == {"type": "RuntimeDefault"}
    mode = agent_values.get("mode", "observe")
    assert c["args"] == [
        "agent", "--node", "$(NODE_NAME)", "--mode", mode, "--lease-namespace", NAMESPACE, "--http-port", "9465",
    ]
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    if "nodeSelector" in agent_values:
        assert pod["nodeSelector"] == agent_values["nodeSelector"]
    if "tolerations" in agent_values:
        assert pod["tolerations"] == agent_values["tolerations"]


def test_the_default_agent_mode_is_observe() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert values["agent"]["mode"] == "observe"
    assert schema["properties"]["agent"]["properties"]["mode"]["default"] == "observe"
    assert "mode" not in (yaml.safe_load(DEFAULT.read_text()).get("agent") or {})  # the CI set keeps the default
    _, c = _agent(render([DEFAULT]))
    assert c["args"][3:5] == ["--mode", "observe"]


def test_enforce_value_set_really_enforces() -> None:
    _, c = _agent(render([ENFORCE]))
    assert c["args"][3:5] == ["--mode", "enforce"]


def test_config_map_holds_the_reconciler_config(rendered: tuple[str, list[Manifest]]) -> None:
    name, docs = rendered
    values = yaml.safe_load((CI_VALUES / name).read_text())["config"]
    cm = config_map(docs)
    cfg = yaml.safe_load(cm["data"]["config.yaml"])
    assert cfg["cluster"] == values["clusterName"]
    assert cfg["repo"]["url"] == values["repo"]["url"]
    assert set(cfg) == {
        "cluster", "repo", "intervalSeconds", "status", "prune", "apply", "forge", "webhook", "signing",
        "sshKeys", "leaderElection", "http", "logging", "namespaces", "decryption", "notifications",
    }
    for provider, want in zip(cfg["notifications"]["providers"], values.get("notifications", {}).get("providers", []),
                              strict=True):  # fmt: skip
        assert provider["addressFile"] == f"/etc/virtnet/notify/{want['name']}/address"
        secret = f"/etc/virtnet/notify/{want['name']}/secret" if want["type"] == "generic" else ""
        assert provider["secretFile"] == secret
    sops = values.get("decryption", {}).get("existingSecret")
    assert cfg["decryption"]["ageKeyFile"] == ("/etc/virtnet/sops/age.agekey" if sops else "")
    if sops:  # the key file the config names is where the Secret is mounted
        pod = one(docs, "Deployment")["spec"]["template"]["spec"]
        [volume] = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == sops]
        [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["mountPath"] == "/etc/virtnet/sops" and mount["readOnly"] is True
    assert cfg["apply"] == {"parallel": values.get("apply", {}).get("parallel", 12)}
    assert cfg["repo"]["credentialsDir"] == ("/etc/virtnet/git" if values["repo"].get("existingSecret") else "")
    assert (cfg["webhook"]["secretFile"] != "") == bool(values.get("webhook", {}).get("existingSecret"))
    # the config names mount paths, never secret material
    assert "password" not in cm["data"]["config.yaml"].lower()
    deploy = one(docs, "Deployment")
    assert deploy["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_exposure_is_webhook_path_only() -> None:
    docs = render([HA])
    ingress = one(docs, "Ingress")
    paths = [p for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/webhooks", "Prefix")]
    assert ingress["spec"]["tls"][0]["secretName"] == "virtnet-tls"
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = one(docs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert not find(docs, "Route")

    route = one(render([OPENSHIFT]), "Route")
    assert route["spec"]["path"] == "/webhooks"
    assert route["spec"]["to"] == {"kind": "Service", "name": service["metadata"]["name"], "weight": 100}
    assert route["spec"]["port"] == {"targetPort": "http"}
    assert route["spec"]["tls"]["termination"] == "edge"

    defaults = render([DEFAULT])
    assert not find(defaults, "Ingress") and not find(defaults, "Route") and not find(defaults, "ServiceMonitor")


def test_notes_tell_how_to_connect_and_the_webhook_url() -> None:
    text = notes([HA])
    assert "https://virtnet.prod-west.example.com/webhooks/github" in text
    assert "virtnet-webhook" in text
    text = notes([DEFAULT])
    assert "create secret generic" in text
    assert "/webhooks/" in text


# ---------------------------------------------------------------------------------------------- RBAC


def test_rbac_has_no_wildcards_and_hyperconverged_is_never_created_or_deleted(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, docs = rendered
    roles = rbac_rules(docs)
    assert roles
    for role in roles:
        for rule in role.rules:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{role.kind}/{role.name}: wildcard in {field}"
            assert not rule.get("nonResourceURLs"), f"{role.kind}/{role.name}: nonResourceURLs"
    perms = permissions(roles)
    hco = {verb for g, r, verb in perms if (g, r) == ("hco.kubevirt.io", "hyperconvergeds")}
    assert hco == {"get", "patch"}
    # the controller may create namespaces but never delete them
    assert ("", "namespaces", "delete") not in perms
    # nobody may escalate
    for _, _, verb in perms:
        assert verb not in {"escalate", "bind", "impersonate"}
    for g, _r, _ in perms:
        assert g != "rbac.authorization.k8s.io"


def test_leases_are_only_granted_in_the_release_namespace(rendered: tuple[str, list[Manifest]]) -> None:
    _, docs = rendered
    for role in rbac_rules(docs):
        has_leases = any("leases" in rule.get("resources", []) for rule in role.rules)
        if has_leases:
            assert role.kind == "Role" and role.namespace == NAMESPACE, role.name
    controller_lease = [
        rule for role in rbac_rules(docs, "controller") for rule in role.rules if "leases" in rule["resources"]
    ]
    assert {v for rule in controller_lease for v in rule["verbs"]} == {"get", "create", "update"}
    # get/update only on the configured lease; create cannot be restricted by name in Kubernetes
    cfg = yaml.safe_load(config_map(docs)["data"]["config.yaml"])
    for rule in controller_lease:
        if set(rule["verbs"]) != {"create"}:
            assert rule["resourceNames"] == [cfg["leaderElection"]["leaseName"]]


def test_agent_rbac_is_read_mostly(rendered: tuple[str, list[Manifest]]) -> None:
    _, docs = rendered
    perms = permissions(rbac_rules(docs, "agent"))
    nncp = {v for g, r, v in perms if r == "nodenetworkconfigurationpolicies"}
    assert nncp == {"list"}
    assert {v for g, r, v in perms if r == "nodes"} == {"get", "list"}
    assert not {r for g, r, v in perms if v == "delete"} - {"leases"}
    # nothing of kubernetes-nmstate's is written: its handler owns NodeNetworkStates and enactments
    assert {(g, r) for g, r, v in perms if g == "nmstate.io"} == {("nmstate.io", "nodenetworkconfigurationpolicies")}
    assert not {r for g, r, v in perms if r.endswith("/status")}
    # the agent's report: its own ConfigMap, in the release namespace only (a Role, not a ClusterRole)
    assert {v for g, r, v in perms if r == "configmaps"} == {"create", "patch"}
    cluster_wide = permissions([r for r in rbac_rules(docs, "agent") if r.namespace is None])
    assert not {r for g, r, v in cluster_wide if r == "configmaps"}
    assert not {(g, r) for g, r, v in perms} & (NAMESPACED_KINDS - {("", "configmaps")})


def test_every_binding_points_at_a_rendered_role_and_service_account(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, docs = rendered
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs
             if d["kind"] in ("Role", "ClusterRole")}
    accounts = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in find(docs, "ServiceAccount")}
    bindings = find(docs, "RoleBinding") + find(docs, "ClusterRoleBinding")
    assert bindings
    bound = set()
    for b in bindings:
        ns = b["metadata"].get("namespace") if b["roleRef"]["kind"] == "Role" else None
        ref = (b["roleRef"]["kind"], ns, b["roleRef"]["name"])
        assert ref in roles, f"{b['metadata']['name']} refers to a missing {ref}"
        bound.add(ref)
        for s in b["subjects"]:
            assert s["kind"] == "ServiceAccount" and (s["namespace"], s["name"]) in accounts
    assert bound == roles, "every role is bound"
    pod, _ = _controller(docs)
    assert (NAMESPACE, pod["serviceAccountName"]) in accounts


def test_namespace_allowlist_moves_namespaced_kinds_into_roles() -> None:
    cluster_wide = render([DEFAULT])
    allowlisted = render([NAMESPACED])
    namespaces = yaml.safe_load(NAMESPACED.read_text())["rbac"]["namespaces"]

    def controller_perms(docs: list[Manifest], kind: str, namespace: str | None = None) -> set[Any]:
        return permissions(
            r for r in rbac_rules(docs, "controller")
            if r.kind == kind and (namespace is None or r.namespace == namespace)
            and not any("leases" in rule["resources"] or "clustersyncs" in rule["resources"] for rule in r.rules)
        )

    default_cluster = controller_perms(cluster_wide, "ClusterRole")
    assert {(g, r) for g, r, _ in default_cluster} & NAMESPACED_KINDS == NAMESPACED_KINDS
    assert not controller_perms(cluster_wide, "Role")

    allow_cluster = controller_perms(allowlisted, "ClusterRole")
    assert not {(g, r) for g, r, _ in allow_cluster} & NAMESPACED_KINDS, "namespaced kinds left the ClusterRole"
    for ns in namespaces:
        in_ns = controller_perms(allowlisted, "Role", ns)
        assert {(g, r) for g, r, _ in in_ns} == NAMESPACED_KINDS
        # the same rules as cluster-wide, only placed differently
        assert allow_cluster | in_ns == default_cluster
        binding = [b for b in find(allowlisted, "RoleBinding") if b["metadata"]["namespace"] == ns]
        assert len(binding) == 1
        assert binding[0]["subjects"][0]["namespace"] == NAMESPACE


def test_ssh_key_secret_permission_follows_the_toggle() -> None:
    on = permissions(rbac_rules(render([DEFAULT]), "controller"))
    off = permissions(rbac_rules(render([ENFORCE]), "controller"))  # sshKeys.manageSecrets: false
    assert {v for g, r, v in on if r == "secrets"} == {"get", "list", "watch", "create", "patch", "delete"}
    assert not {v for g, r, v in off if r == "secrets"}
    assert {x for x in on if x[1] != "secrets"} == off


# ---------------------------------------------------------------------------------------------- schema

REQUIRED = {"config": {"clusterName": "prod", "repo": {"url": "https://git.example.com/net.git"}}}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


BAD_VALUES = [
    pytest.param({"agent": {"mode": "audit"}}, "/agent/mode", id="agent-mode-enum"),
    pytest.param({"controller": {"replicas": 0}}, "/controller/replicas", id="replicas-below-1"),
    pytest.param({"controller": {"replicas": "3"}}, "/controller/replicas", id="replicas-wrong-type"),
    pytest.param({"bogus": True}, "'bogus'", id="unknown-top-level-key"),
    pytest.param({"config": {"repo": {"url": ""}}}, "/config/repo/url", id="missing-repo-url"),
    pytest.param({"config": {"repo": {"url": "ftp://x/y"}}}, "/config/repo/url", id="bad-repo-url"),
    pytest.param({"config": {"clusterName": ""}}, "/config/clusterName", id="missing-cluster-name"),
    pytest.param(
        {"controller": {"replicas": 2, "leaderElection": {"enabled": False}}},
        "/controller/leaderElection/enabled",
        id="replicas-without-leader-election",
    ),
    pytest.param({"config": {"forge": {"provider": "bitbucket"}}}, "/config/forge/provider", id="forge-enum"),
    pytest.param(
        {"config": {"forge": {"provider": "github"}}}, "/config/forge", id="forge-without-token-secret"
    ),
    pytest.param({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", id="pull-policy-enum"),
    pytest.param({"agent": {"enabled": "yes"}}, "/agent/enabled", id="bool-wrong-type"),
    pytest.param({"rbac": {"namespaces": ["Not_A_Namespace"]}}, "/rbac/namespaces/0", id="bad-namespace"),
    pytest.param({"controller": {"tuning": 1}}, "'tuning'", id="unknown-nested-key"),
    pytest.param({"config": {"webhook": {"existingSecret": "Bad Name"}}}, "/config/webhook/existingSecret",
                 id="bad-secret-name"),
]


@pytest.mark.parametrize(("extra", "field"), BAD_VALUES)
def test_schema_rejects_bad_values(extra: dict[str, Any], field: str) -> None:
    result = template(values=_merge(REQUIRED, extra))
    assert result.returncode != 0, f"helm accepted {extra}"
    assert "schema" in result.stderr
    assert field in result.stderr, result.stderr


def test_schema_accepts_the_minimal_required_values() -> None:
    result = template(values=REQUIRED)
    assert result.returncode == 0, result.stderr


def test_defaults_file_is_the_minimal_required_values() -> None:
    assert yaml.safe_load(Path(DEFAULT).read_text())["config"].keys() == {"clusterName", "repo"}
