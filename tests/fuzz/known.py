"""Findings the fuzzer already found whose fix belongs to another part of the code (not to the fuzz tests).

Each is kept as an input under ``tests/fuzz/crashes/`` and replayed by ``test_known_findings`` as a strict
xfail: when the fix lands the test XPASSes and fails, and the entry is removed here (the input then moves to
``tests/corpus/fuzz-*`` if it has a clean error to expect). While an entry is listed, the fuzz runs tolerate
*that* finding (same exception type raised from the same function), so they go on to find new ones.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass


@dataclass(frozen=True)
class Known:
    input: str  # file name under tests/fuzz/crashes/
    exception: str  # the exception's class name
    module: str  # the file (path suffix) of the innermost frame it is raised from
    function: str  # the innermost frame's function
    reason: str


KNOWN: list[Known] = []


def signature(exc: BaseException) -> tuple[str, str, str]:
    """(exception class, innermost file, innermost function): how a finding is told apart from another."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return type(exc).__name__, last.filename if last else "", last.name if last else ""


def known(exc: BaseException) -> Known | None:
    name, filename, function = signature(exc)
    for k in KNOWN:
        if k.exception == name and filename.endswith(k.module) and k.function == function:
            return k
    return None
