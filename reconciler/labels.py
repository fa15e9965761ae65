"""Ownership marks virtnet puts on every object it renders.

Prune safety rests on these: an object is ours only if it carries ``MANAGED_BY=virtnet`` *and* the
cluster label of the cluster being reconciled. Names alone never make an object ours.
The annotations are informational (where the object came from); the diff ignores them so that moving a
line in a file or a new commit does not rewrite every object.
"""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "virtnet"
CLUSTER = "virtnet.io/cluster"
SOURCE = "virtnet.io/source"
REVISION = "virtnet.io/revision"
PRUNE = "virtnet.io/prune"  # "disabled" opts an object out of pruning
RESTART = "virtnet.io/restart"  # on a rendered VM: "allowed" lets the engine restart it for a change
HOTPLUG = "virtnet.io/hotplug"  # on a rendered VM: interfaces that may be plugged/unplugged while it runs

FIELD_MANAGER = "virtnet"

#: annotations that describe provenance only and never count as a difference
PROVENANCE_ANNOTATIONS = frozenset({SOURCE, REVISION})


def selector(cluster: str) -> str:
    """The label selector that lists exactly the objects virtnet owns in ``cluster``."""
    return f"{MANAGED_BY}={MANAGER},{CLUSTER}={cluster}"


#: every object any virtnet instance manages, whatever its cluster label (to refuse taking one over)
ANY_CLUSTER = f"{MANAGED_BY}={MANAGER}"
