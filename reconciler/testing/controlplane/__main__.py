"""``python -m reconciler.testing.controlplane up|down DIR``: what ``scripts/kube-up``/``kube-down`` run.

Why a CLI: a developer (or a dev script) can keep one control plane running across many test runs and point
``kubectl``/``KUBECONFIG`` at it, instead of paying the start-up for each pytest session. ``up`` also starts the
simulated controllers (nmstate, KubeVirt with KubeMacPool and virt-api's restart) unless ``--no-simulate``, so
``virtnet apply`` against it sees policies become Available and VMs get VMIs, as on a cluster.
"""

from __future__ import annotations

import argparse
import sys
import time

from reconciler.testing.controlplane.cluster import ControlPlane, stop_dir
from reconciler.testing.controlplane.errors import ControlPlaneError, ControlPlaneUnavailable
from reconciler.testing.controlplane.launch import DEFAULT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reconciler.testing.controlplane")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("dir", help="state directory: pki, etcd data, logs, pids, kubeconfig")
    parser.add_argument("--no-simulate", action="store_true", help="up: start no simulated controllers")
    parser.add_argument("--controllers", default=",".join(DEFAULT), help="up: simulated controllers to start")
    args = parser.parse_args(argv)
    if args.action == "down":
        stopped = stop_dir(args.dir)
        print(f"control plane in {args.dir} {'stopped' if stopped else 'was not running'}", file=sys.stderr)
        return 0
    started = time.monotonic()
    try:
        simulate = () if args.no_simulate else tuple(c for c in args.controllers.split(",") if c)
        cp = ControlPlane.start(args.dir, simulate=simulate, detach=True)
    except ControlPlaneUnavailable as exc:
        print(f"kube-up: unavailable here: {exc.reason}", file=sys.stderr)
        return 3
    except ControlPlaneError as exc:
        print(f"kube-up: {exc}", file=sys.stderr)
        return 1
    print(f"kube-up: {cp.server} ready in {time.monotonic() - started:.1f} s; logs and pids in {cp.dir}",
          file=sys.stderr)
    print(cp.kubeconfig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
