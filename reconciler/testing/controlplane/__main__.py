"""``python -m reconciler.testing.controlplane up|down DIR``: what ``scripts/kube-up``/``kube-down`` run.

Why a CLI: a developer (or a dev script) can keep one control plane running across many test runs and point
``kubectl``/``KUBECONFIG`` at it, instead of paying the start-up for each pytest session.
"""

from __future__ import annotations

import argparse
import sys
import time

from reconciler.testing.controlplane.cluster import ControlPlane, stop_dir
from reconciler.testing.controlplane.errors import ControlPlaneError, ControlPlaneUnavailable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reconciler.testing.controlplane")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("dir", help="state directory: pki, etcd data, logs, pids, kubeconfig")
    args = parser.parse_args(argv)
    if args.action == "down":
        stopped = stop_dir(args.dir)
        print(f"control plane in {args.dir} {'stopped' if stopped else 'was not running'}", file=sys.stderr)
        return 0
    started = time.monotonic()
    try:
        cp = ControlPlane.start(args.dir, detach=True)
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
