"""Metrics live in their own registry and never carry free text in labels."""

from __future__ import annotations

from prometheus_client import REGISTRY

from reconciler.server.metrics import Metrics


def sample(m: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return m.registry.get_sample_value(name, labels or {})


def test_private_registry_and_two_instances() -> None:
    a, b = Metrics(), Metrics()  # would raise "Duplicated timeseries" on a shared registry
    a.observe_reconcile(1.5, "success")
    assert sample(a, "virtnet_reconcile_results_total", {"result": "success"}) == 1.0
    assert sample(b, "virtnet_reconcile_results_total", {"result": "success"}) is None
    assert REGISTRY.get_sample_value("virtnet_reconcile_results_total", {"result": "success"}) is None


def test_reconcile_and_changes() -> None:
    m = Metrics()
    m.observe_reconcile(0.3, "success")
    m.observe_reconcile(2.0, "failed")
    m.observe_reconcile(1.0, "password=hunter2")  # free text folds into "other"
    assert sample(m, "virtnet_reconcile_duration_seconds_count") == 3.0
    assert sample(m, "virtnet_reconcile_results_total", {"result": "other"}) == 1.0
    m.record_changes("create", 3)
    m.record_changes("delete", 0)
    m.record_changes("https://token@host/", 1)
    assert sample(m, "virtnet_objects_changed_total", {"action": "create"}) == 3.0
    assert sample(m, "virtnet_objects_changed_total", {"action": "delete"}) is None
    assert sample(m, "virtnet_objects_changed_total", {"action": "other"}) == 1.0
    text = m.render().decode()
    assert "hunter2" not in text and "token@" not in text


def test_revision_keeps_one_series() -> None:
    m = Metrics()
    m.set_revision("A" * 40, 100.0)
    m.set_revision("b" * 40, 200.0)
    assert sample(m, "virtnet_last_applied_timestamp_seconds", {"revision": "a" * 40}) is None
    assert sample(m, "virtnet_last_applied_timestamp_seconds", {"revision": "b" * 40}) == 200.0
    m.set_revision("main; rm -rf /", 300.0)
    assert sample(m, "virtnet_last_applied_timestamp_seconds", {"revision": "invalid"}) == 300.0
    assert "rm -rf" not in m.render().decode()


def test_drift_and_webhooks() -> None:
    m = Metrics()
    m.set_drift(4)
    m.set_drift(-1)
    assert sample(m, "virtnet_drift_objects") == 0.0
    m.webhook("github", "push", "accepted")
    m.webhook("evil.example", "Push Hook; x", "who-knows")
    assert (
        sample(m, "virtnet_webhook_deliveries_total", {"provider": "github", "event": "push", "outcome": "accepted"})
        == 1.0
    )
    assert (
        sample(m, "virtnet_webhook_deliveries_total", {"provider": "other", "event": "other", "outcome": "other"})
        == 1.0
    )


def test_heartbeat_success_and_process_metrics() -> None:
    m = Metrics()
    m.observe_reconcile(1.0, "InSync", now=100.0)
    m.observe_reconcile(1.0, "PlanBlocked", now=200.0)
    assert sample(m, "virtnet_last_handled_timestamp_seconds") == 200.0  # every run
    assert sample(m, "virtnet_last_success_timestamp_seconds") == 100.0  # only a run that left the cluster in sync
    text = m.render().decode()
    assert "process_resident_memory_bytes" in text and "process_cpu_seconds_total" in text and "python_info" in text


def test_names_follow_the_prometheus_conventions() -> None:
    """Counters end in _total, timestamps in _timestamp_seconds, durations in _seconds; every name is virtnet_*
    or a standard process/python one (https://prometheus.io/docs/practices/naming/)."""
    m = Metrics()
    m.observe_reconcile(1.0, "Applied")
    m.set_revision("a" * 40, 1.0)
    m.record_changes("create")
    m.webhook("github", "push", "accepted")
    m.notification("ops", "sent")
    stamps = [f.name for f in m.registry.collect() if "unix time" in f.documentation.lower()]
    assert len(stamps) == 3  # applied, handled, success: the check below has something to check
    for family in m.registry.collect():
        name, kind = family.name, family.type
        assert name.startswith(("virtnet_", "process_", "python_")), name
        if kind == "counter":
            assert any(s.name.endswith("_total") for s in family.samples), name
        if "unix time" in family.documentation.lower() or "unix epoch" in family.documentation.lower():
            assert name.endswith(("_timestamp_seconds", "_start_time_seconds")), name
