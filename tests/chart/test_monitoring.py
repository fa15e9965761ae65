"""The chart's monitoring: alerts and a dashboard that name only metrics virtnet exports, agent probes and
metrics, and the Lease timings' relations refused at install time (and by the controller's config)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler import labels
from reconciler.agent.health import AgentHealth
from reconciler.server.config import LeaderConfig
from reconciler.server.metrics import Metrics
from tests.chart import CI_VALUES, find, one, render, template

MONITORING = CI_VALUES / "ha-ingress-monitoring-values.yaml"
REQUIRED = {"config": {"clusterName": "c", "repo": {"url": "https://git.example/cfg.git"}}}
_METRIC = re.compile(r"\b((?:virtnet|process|python)_[a-z0-9_]+)\b")


def exported() -> set[str]:
    """Every series name the controller and the agent expose, once each metric has a sample."""
    m = Metrics()
    m.observe_reconcile(1.0, labels.APPLIED)
    m.record_changes("create")
    m.set_revision("a" * 40, 1.0)
    m.set_switches(True, "b" * 40)
    m.webhook("github", "push", "accepted")
    agent = AgentHealth(60.0)
    agent.observe("ok", drift=1, writes=1, seconds=0.5)
    names = set()
    for registry in (m.registry, agent.registry):
        for family in registry.collect():
            names |= {s.name for s in family.samples}
    return names


def rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rule = one(docs, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_alerts_cover_failing_stale_blocked_and_drift_with_exported_metrics_only() -> None:
    found = rules(render([MONITORING]))
    alerts = {r["alert"]: r["expr"] for r in found}
    assert {"VirtnetReconcileFailing", "VirtnetLastSuccessStale", "VirtnetPlanBlocked", "VirtnetNodeDrift"} <= set(
        alerts
    )
    names = exported()
    for alert, expr in alerts.items():
        used = set(_METRIC.findall(expr))
        assert used, alert
        assert used <= names, f"{alert} names metrics nobody exports: {used - names}"
        for words in re.findall(r'result=~?"([^"]+)"', expr):  # the shared vocabulary, spelled the same
            assert set(words.split("|")) <= {*labels.RESULTS, "ok", "failed", "error"}, (alert, words)
        assert 'namespace="virtnet-system"' in expr  # this release's series only
    assert "> 1800" in alerts["VirtnetLastSuccessStale"]  # staleAfter: 30m, in seconds
    assert not find(render(), "PrometheusRule")  # off by default


def test_the_dashboard_is_json_and_plots_exported_metrics() -> None:
    docs = render([MONITORING])
    [cm] = [d for d in find(docs, "ConfigMap") if "virtnet.json" in d.get("data", {})]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["virtnet.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in _METRIC.findall(e)}
    names = exported()
    assert used and used <= names, used - names
    assert {"virtnet_last_success_timestamp_seconds", "virtnet_suspended", "virtnet_agent_passes_total"} <= used


def test_agents_have_probes_and_a_pod_monitor() -> None:
    docs = render([MONITORING])
    pod = one(docs, "DaemonSet")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][-2:] == ["--http-port", "9465"]
    assert container["ports"] == [{"name": "http", "containerPort": 9465, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    monitor = one(docs, "PodMonitor")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "agent"


def test_agent_probes_follow_its_passes() -> None:
    clock = [1000.0]
    health = AgentHealth(interval=60.0, lock_wait=30.0, clock=lambda: clock[0])

    def get(path: str) -> tuple[str, bytes]:
        answer: list[str] = []
        body = b"".join(health.app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda s, h: answer.append(s)))
        return answer[0], body

    assert get("/healthz")[0].startswith("200") and get("/readyz")[0].startswith("503")  # starting up
    health.observe("failed", drift=2, seconds=1.0)
    assert get("/readyz")[0].startswith("200") and get("/healthz")[0].startswith("200")  # a failed pass still ended
    clock[0] += 3 * 60 + 30 + 1  # no pass ended for three intervals plus the lock's wait: wedged
    assert get("/healthz")[0].startswith("503")
    status, metrics = get("/metrics")
    assert status.startswith("200") and b'virtnet_agent_passes_total{result="failed"} 1.0' in metrics
    assert b"virtnet_agent_drift_items 2.0" in metrics and b"process_resident_memory_bytes" in metrics


@pytest.mark.parametrize(
    ("timings", "message"),
    [
        ({"leaseDurationSeconds": 15, "renewDeadlineSeconds": 15}, "renewDeadlineSeconds (15) must be less than"),
        ({"leaseDurationSeconds": 15, "renewDeadlineSeconds": 20}, "renewDeadlineSeconds (20) must be less than"),
        ({"renewDeadlineSeconds": 10, "retryPeriodSeconds": 9}, "must be more than 1.2 x retryPeriodSeconds (9)"),
    ],
)
def test_lease_timings_that_would_crash_the_controller_are_refused(timings: dict[str, int], message: str) -> None:
    result = template(values={**REQUIRED, "controller": {"leaderElection": timings}})
    assert result.returncode != 0 and message in result.stderr, result.stderr
    python = {
        "leaseDurationSeconds": "lease_duration_seconds",
        "renewDeadlineSeconds": "renew_deadline_seconds",
        "retryPeriodSeconds": "retry_period_seconds",
    }
    with pytest.raises(ValidationError, match=re.escape(message)):
        LeaderConfig(**{python[k]: v for k, v in timings.items()})  # type: ignore[arg-type]
    assert template(values=REQUIRED).returncode == 0  # the defaults hold the relations


def test_notification_providers_with_one_name_are_refused_by_the_chart() -> None:
    """Two providers named alike would mount two volumes of one name: the API server refuses the Deployment."""
    twice = [
        {"name": "ops", "type": "slack", "existingSecret": "a"},
        {"name": "ops", "type": "generic", "existingSecret": "b"},
    ]
    config = {**REQUIRED["config"], "notifications": {"providers": twice}}
    result = template(values={**REQUIRED, "config": config})
    message = "notification provider names must be unique: ops given twice"
    assert result.returncode != 0 and message in result.stderr, result.stderr
    once = {**config, "notifications": {"providers": twice[:1]}}
    assert template(values={**REQUIRED, "config": once}).returncode == 0
