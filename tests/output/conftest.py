"""A generated 1,000-VM change (``bench.comment.blocked_change`` of size M): planned against an empty
cluster whose third worker lacks half the uplink NICs, every object is created and the safety checks block
the plan. Built once per session (about ten seconds): the PR-comment and picture tests measure on it."""

from __future__ import annotations

import pytest

from bench.comment import blocked_change
from reconciler.pipeline import Outcome


@pytest.fixture(scope="session")
def big_change(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    outcome = blocked_change("M", tmp_path_factory.mktemp("repo-M"))
    assert outcome.safety is not None and outcome.safety.blocking, "the fixture must block: worker-2 lacks uplinks"
    return outcome
