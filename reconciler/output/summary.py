"""What a status commit says about a cluster: state, not events (pure).

The files describe the cluster *after* the run, so two runs that leave it the same produce the same
bytes and no new commit: applied revision, every object and its health, node drift, errors, and how to
reach each VM (addresses the guest agent reports, the FQDNs secondary DNS serves, Service endpoints and
ready-to-paste ``virtctl ssh`` / ``ssh`` commands). Nothing time-dependent is written.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler import labels
from reconciler.engine.changes import ChangeSet
from reconciler.engine.plan import Action, Plan
from reconciler.model import Repo
from reconciler.objects import Obj


def _by_vm(objs: list[Obj], key: str) -> dict[tuple[str, str], list[Obj]]:
    out: dict[tuple[str, str], list[Obj]] = {}
    for o in objs:
        vm = (o.get("spec", {}).get("selector") or {}).get(key) if o["kind"] == "Service" else None
        if vm:
            out.setdefault((o["metadata"]["namespace"], vm), []).append(o)
    return out


def vm_access(repo: Repo, vmis: list[Obj], services: list[Obj]) -> list[dict[str, Any]]:
    """Per VM: interfaces with observed IPs and FQDNs, Service endpoints, and SSH commands."""
    domain = repo.cluster.spec.fqdn_domain  # vm.<baseDomain>, when secondary DNS is deployed
    observed = {(v["metadata"]["namespace"], v["metadata"]["name"]): v for v in vmis}
    svc_of = _by_vm(services, labels.VM)
    out = []
    for vm in sorted(repo.of("VM"), key=lambda e: (e.meta.namespace, e.name)):
        ns, name, user = vm.meta.namespace or "", vm.name, vm.spec.user  # a VM always has one (model rule)
        status = (observed.get((ns, name)) or {}).get("status") or {}
        reported = {i.get("name"): i for i in status.get("interfaces") or []}
        interfaces = []
        ssh = [f"virtctl ssh -n {ns} {user}@vm/{name}"]
        names = (["default"] if vm.spec.pod_network else []) + [i.ifname for i in vm.spec.interfaces]
        for ifname in names:
            seen = reported.get(ifname, {})
            ips = seen.get("ipAddresses") or ([seen["ipAddress"]] if seen.get("ipAddress") else [])
            entry: dict[str, Any] = {"name": ifname, "ips": ips, "mac": seen.get("mac")}
            if ifname != "default" and domain:  # KubeSecondaryDNS skips the pod network
                entry["fqdn"] = f"{ifname}.{name}.{ns}.{domain}"
            if ifname != "default" and ips:
                ssh.append(f"ssh {user}@{entry.get('fqdn') or ips[0]}")
            interfaces.append(entry)
        endpoints = []
        for svc in sorted(svc_of.get((ns, name), []), key=lambda s: s["metadata"]["name"]):
            spec = svc.get("spec") or {}
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            lb_ips = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
            for port in spec.get("ports") or []:
                ep = {"service": svc["metadata"]["name"], "type": spec.get("type", "ClusterIP"), "port": port["port"]}
                if port.get("nodePort"):
                    ep["nodePort"] = port["nodePort"]
                if lb_ips:
                    ep["loadBalancer"] = lb_ips
                endpoints.append(ep)
                if port.get("targetPort", port["port"]) == 22 or port["port"] == 22:
                    if port.get("nodePort"):
                        ssh.append(f"ssh -p {port['nodePort']} {user}@<any-node-ip>")
                    ssh += [f"ssh -p {port['port']} {user}@{ip}" for ip in lb_ips]
        out.append({"vm": f"{ns}/{name}", "interfaces": interfaces, "endpoints": endpoints, "ssh": ssh})
    return out


def object_states(plan: Plan | None, changes: ChangeSet | None) -> list[dict[str, str]]:
    """Each desired object's state after the run: in-sync, failed (why), or not-applied."""
    if plan is None:
        return []
    failed = {r.name: r.message for r in (changes.results if changes else []) if not r.ok}
    done = {r.name for r in (changes.results if changes else []) if r.ok}
    out = []
    for item in plan.items:
        if item.action == Action.DELETE:
            if item.name in failed:
                out.append({"object": item.name, "state": "prune-failed", "message": failed[item.name]})
            continue
        if item.name in failed:
            state, message = "failed", failed[item.name]
        elif item.action == Action.NOOP or item.name in done:
            state, message = "in-sync", ""
        else:
            state, message = "not-applied", "an earlier step failed" if changes else "plan only"
        entry = {"object": item.name, "state": state}
        if message:
            entry["message"] = message
        if item.vm_change.value == "restart-required" and state == "in-sync":
            entry["message"] = "restart required to take effect"
        out.append(entry)
    return out


def status_document(
    cluster: str,
    revision: str | None,
    result: str,
    message: str,
    objects: list[dict[str, str]],
    problems: list[dict[str, Any]],
    access: list[dict[str, Any]],
    drift: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "revision": revision,
        "result": result,
        "message": message,
        "objects": objects,
        "problems": problems,
        "nodeDrift": drift or [],
        "vms": access,
    }


def status_markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# virtnet status: cluster `{doc['cluster']}`",
        "",
        f"- revision: `{doc['revision']}`",
        f"- result: **{doc['result']}**" + (f" — {doc['message']}" if doc["message"] else ""),
        f"- objects: {sum(1 for o in doc['objects'] if o['state'] == 'in-sync')} in sync of {len(doc['objects'])}",
        "",
    ]
    if doc["problems"]:
        lines += (
            ["## Problems", ""]
            + [f"- `{p['file']}:{p['line']}` {p['field']}: {p['message']}" for p in doc["problems"]]
            + [""]
        )
    bad = [o for o in doc["objects"] if o["state"] != "in-sync" or o.get("message")]
    if bad:
        lines += ["## Objects needing attention", ""]
        lines += [f"- `{o['object']}`: {o['state']}" + (f" — {o['message']}" if o.get("message") else "") for o in bad]
        lines.append("")
    if doc["nodeDrift"]:
        lines += ["## Node drift", ""]
        lines += [
            f"- {d['node']}: {d.get('interface')} {d.get('field')} is `{d.get('actual')}`, wants `{d.get('desired')}`"
            for d in doc["nodeDrift"]
        ]
        lines.append("")
    if doc["vms"]:
        lines += ["## Reaching the VMs", ""]
        for vm in doc["vms"]:
            lines.append(f"### {vm['vm']}")
            for iface in vm["interfaces"]:
                ips = ", ".join(iface["ips"]) or "no address reported yet"
                fqdn = f" — `{iface['fqdn']}`" if iface.get("fqdn") else ""
                lines.append(f"- {iface['name']}: {ips}{fqdn}")
            for ep in vm["endpoints"]:
                extra = f" nodePort {ep['nodePort']}" if ep.get("nodePort") else ""
                extra += f" at {', '.join(ep['loadBalancer'])}" if ep.get("loadBalancer") else ""
                lines.append(f"- Service {ep['service']} ({ep['type']}) port {ep['port']}{extra}")
            lines += ["", "```sh", *vm["ssh"], "```", ""]
    return "\n".join(lines) + "\n"


def status_files(doc: dict[str, Any]) -> dict[str, str]:
    """The files a status commit writes under ``clusters/<cluster>/``."""
    return {
        "status.json": json.dumps(doc, indent=2, sort_keys=True) + "\n",
        "README.md": status_markdown(doc),
    }
