"""Fixtures for the cluster-engine tests: a simulated cluster, a real client, and editable copies of examples/repo.

The engine is tested through the unmodified ``kubernetes`` client against the API double, with the simulated
nmstate and KubeVirt controllers ticking in the background, because request counts, apply bodies and the order
of writes are exactly what the engine promises; a mocked client could not show them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.objects import Obj
from reconciler.pipeline import Outcome, reconcile
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
from tests.repos import EXAMPLES as EXAMPLES  # the tests here import both from this module
from tests.repos import edit as edit

#: polls every 20 ms, gives up after 10 s: the simulated controllers settle within a few 20 ms ticks
FAST = ApplyOptions(poll=0.02, timeout=10)


@pytest.fixture
def api() -> Iterator[ApiDouble]:
    """The demo cluster: three workers and three masters, simulated nmstate and KubeVirt, a HyperConverged."""
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes()) as double:
        seed_hyperconverged(double.store)
        yield double


@pytest.fixture
def still_api() -> Iterator[ApiDouble]:
    """The demo cluster with controllers that move only when the engine sleeps (see :func:`stepped`).

    With the background thread, whether a controller reacts between two requests of the engine is a matter
    of luck; here it never does, so a test sees the worst case of a race every time.
    """
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(), tick_interval=None) as double:
        seed_hyperconverged(double.store)
        yield double


def stepped(api: ApiDouble) -> ApplyOptions:
    """Apply options whose every poll advances the simulated controllers by exactly one tick."""
    return ApplyOptions(poll=0, timeout=10, sleep=lambda _seconds: api.tick())


@pytest.fixture
def kube(api: ApiDouble) -> Iterator[Kube]:
    k = Kube(api.api_client())
    yield k
    k.api.close()


@pytest.fixture
def fast() -> ApplyOptions:
    return FAST


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A private copy of examples/repo that a test may edit."""
    return Path(shutil.copytree(EXAMPLES, tmp_path / "repo"))


def run(path: Path, kube: Kube, **kwargs: object) -> Outcome:
    """One reconcile with the fast apply options (unless given)."""
    kwargs.setdefault("apply_options", FAST)
    return reconcile(path, kube, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def applied(api: ApiDouble, kube: Kube, repo: Path) -> Path:
    """``repo`` applied to the cluster once and the double's counters reset: the steady state."""
    outcome = run(repo, kube)
    assert outcome.ok, outcome.message
    assert outcome.changes is not None and outcome.changes.ok
    api.reset_counts()
    return repo


def kubevirt_cr(strategy: str) -> Obj:
    """The KubeVirt CR the HyperConverged operator keeps, with the cluster's VM rollout strategy."""
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "KubeVirt",
        "metadata": {"name": "kubevirt-kubevirt-hyperconverged", "namespace": "openshift-cnv"},
        "spec": {"configuration": {"vmRolloutStrategy": strategy}},
    }
