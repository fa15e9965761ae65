"""Why a control plane could not be had: unavailable here (skip the test) versus broken (fail the test)."""

from __future__ import annotations


class ControlPlaneUnavailable(Exception):
    """This machine cannot run a real control plane (no Go toolchain to build it, no ``cryptography``, no
    upstream CRDs in ``../shared/crds`` to install into it).

    Tests turn it into ``pytest.skip(exc.reason)``; it is not a failure of the code under test.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ControlPlaneError(Exception):
    """The control plane was buildable but did not come up (bad flags, a crashed process, a CRD refused)."""
