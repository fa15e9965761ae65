"""Fixtures of the loop's tests: an API double with simulated nmstate and KubeVirt on two workers, and a
git remote holding the base repository (``repos.BASE``) on ``main``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gitutil import isolate_git, make_remote
from repos import BASE

from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged


@pytest.fixture
def api() -> Iterator[ApiDouble]:
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=0)) as double:
        seed_hyperconverged(double.store)
        yield double


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate_git(monkeypatch, tmp_path / "home")
    return make_remote(tmp_path, dict(BASE))
