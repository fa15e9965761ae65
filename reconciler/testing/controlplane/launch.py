"""Starting and stopping the simulators process (:mod:`.simulate`) beside a control plane.

Why apart from :mod:`.simulate`: the control plane imports this to offer ``ControlPlane.start(dir,
simulate=(...))``; importing the process's own module from the package would make ``python -m
reconciler.testing.controlplane.simulate`` run a module the package had already imported. The process is
started by module name, detached like etcd and kube-apiserver (pid file ``DIR/simulate.pid``, log
``DIR/simulate.log``), so ``scripts/kube-down`` stops it first, and it unregisters its webhook and APIService
on SIGTERM before the apiserver goes.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from reconciler.testing.controlplane import procs
from reconciler.testing.controlplane.errors import ControlPlaneError
from reconciler.testing.controlplane.pki import Pki
from reconciler.testing.controlplane.rest import poll

NAME = "simulate"
MODULE = "reconciler.testing.controlplane.simulate"
DEFAULT = ("nmstate", "kubevirt", "gc")


class ControlPlane(Protocol):
    """What starting the simulators needs of :class:`~.cluster.ControlPlane` (which imports this module)."""

    dir: Path
    pki: Pki
    on_stop: list[Callable[[], None]]

    @property
    def kubeconfig(self) -> Path: ...


def argv(cp: ControlPlane, names: Sequence[str], *, interval: float, admission: bool) -> list[str]:
    out = [sys.executable, "-m", MODULE, "--kubeconfig", str(cp.kubeconfig), "--controllers", ",".join(names),
           "--interval", str(interval), "--pki", str(cp.pki.dir), "--ready-file", str(cp.dir / f"{NAME}.ready")]
    return out if admission else [*out, "--no-admission"]


def start(cp: ControlPlane, names: Sequence[str] = DEFAULT, *, interval: float = 0.2, admission: bool = True,
          timeout: float = 90.0) -> dict[str, Any]:
    """Spawn the simulators for ``cp`` and wait until they are registered; returns what they wrote as ready.

    Registers an ``on_stop`` callback on ``cp`` so :meth:`ControlPlane.stop` ends them before the apiserver.
    """
    ready = cp.dir / f"{NAME}.ready"
    ready.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(procs.REPO),
                                                                      os.environ.get("PYTHONPATH")]))}
    child = procs.spawn(NAME, argv(cp, names, interval=interval, admission=admission), cp.dir, env=env)
    cp.on_stop.append(functools.partial(_stop_started, cp.dir, child))

    def died() -> str | None:
        code = child.poll()
        return None if code is None else f"{NAME} exited with {code}:\n{procs.log_tail(NAME, cp.dir)}"

    try:
        info: dict[str, Any] = poll(f"{NAME} ready", lambda: json.loads(ready.read_text()) if ready.exists()
                                    else None, timeout=timeout, interval=0.1, alive=died)
    except ControlPlaneError:
        stop(cp.dir, child)
        raise
    return info


def stop(directory: Path, child: Any = None) -> bool:
    """SIGTERM the simulators of ``directory`` (they unregister), reap ``child`` if this process started it."""
    stopped = procs.stop(NAME, directory)
    if child is not None:
        procs.end_child(child)
    (directory / f"{NAME}.ready").unlink(missing_ok=True)
    return stopped


def _stop_started(directory: Path, child: Any) -> None:
    """The ``on_stop`` callback of :func:`start` (whether it was still running does not matter there)."""
    stop(directory, child)


def simulators(names: Sequence[str] = DEFAULT, *, interval: float = 0.2,
               admission: bool = True) -> Callable[[ControlPlane], None]:
    """A ``ControlPlane.start`` hook: ``hooks=[simulators(("nmstate",))]``."""

    def hook(cp: ControlPlane) -> None:
        start(cp, names, interval=interval, admission=admission)

    return hook
