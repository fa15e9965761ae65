"""Every ``virtnet.io/*`` key, the ownership marks virtnet puts on what it renders, the agent contract, and the
one vocabulary of a reconcile's result (status object, status commit, metrics, README, PR).

Prune safety rests on the ownership marks: an object is ours only if it carries ``MANAGED_BY=virtnet``
*and* the cluster label of the cluster being reconciled. Names alone never make an object ours.
The provenance annotations are informational (where the object came from); the diff ignores them so that
moving a line in a file or a new commit does not rewrite every object.

The node agent and the controller meet only through what is spelled here: the agent publishes its
NodeNetworkState labelled ``MANAGED_BY=virtnet-agent`` (:data:`AGENT_SELECTOR` lists them) with its drift
report as JSON under :data:`DRIFT`.
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
VM = "virtnet.io/vm"  # on a VM's pod template (so on its VMI and launcher pod): the VM's name; Services select it
CLUSTERS = "virtnet.io/clusters"  # on a plain manifest in the repository: "a,b" limits it to those clusters
ACCEPT_RISK = "virtnet.io/accept-risk"  # on the Cluster document: safety checks accepted, "disconnect,mtu" or "all"
#: on a document: "true" lets virtnet take over an object that exists but that virtnet did not create
#: (reviewed in the pull request that adds it); without it such an object blocks the plan
ADOPT = "virtnet.io/adopt"
#: set by virtnet on an object it adopted: prune never deletes what virtnet did not create
ADOPTED = "virtnet.io/adopted"
#: on a Namespace manifest: "allowed" lets prune delete the namespace, and only once it holds nothing else;
#: without it a Namespace that leaves the repository is kept (deleting one deletes every VM and disk in it)
PRUNE_NAMESPACE = "virtnet.io/prune-namespace"

#: on a plain Secret in the repository: "true" says its data is committed in clear on purpose; without it
#: plaintext Secret data is refused (encrypt it with sops, ``reconciler.model.sops``)
PLAINTEXT_SECRET = "virtnet.io/plaintext-secret"

FIELD_MANAGER = "virtnet"

#: the node agent: managed-by value and field manager of the NodeNetworkStates and enactments it publishes
AGENT = "virtnet-agent"
#: the NodeNetworkStates our node agents publish (one LIST shows every node's drift)
AGENT_SELECTOR = f"{MANAGED_BY}={AGENT}"
#: on the agent's NodeNetworkState: its drift report as JSON (``reconciler.agent.publish.drift_report``)
DRIFT = "virtnet.io/drift"

#: annotations that describe provenance only and never count as a difference
PROVENANCE_ANNOTATIONS = frozenset({SOURCE, REVISION})


def selector(cluster: str) -> str:
    """The label selector that lists exactly the objects virtnet owns in ``cluster``."""
    return f"{MANAGED_BY}={MANAGER},{CLUSTER}={cluster}"


#: every object any virtnet instance manages, whatever its cluster label (to refuse taking one over)
ANY_CLUSTER = f"{MANAGED_BY}={MANAGER}"


# ---- the sync vocabulary: one word per result, the same in the ClusterSync object, the status commit, the
# ---- metrics, the README and pull requests (a failed run's word is the stage's reason, pipeline.Outcome.failed)

#: this run wrote changes and the cluster now matches the revision
APPLIED = "Applied"
#: nothing to change: the cluster already matched (also the *state* after an Applied run)
IN_SYNC = "InSync"
#: the operator's switch is on (``virtnet suspend``): the run read nothing and wrote nothing
SUSPENDED = "Suspended"
#: the stages' failure reasons: retried by the next run (transient) or waiting for a commit (stalled)
TRANSIENT_FAILURES = ("SourceFailed", "ObserveFailed", "ApplyFailed")
STALLED_FAILURES = ("ValidationFailed", "PlanBlocked")
RESULTS = (APPLIED, IN_SYNC, SUSPENDED, *TRANSIENT_FAILURES, *STALLED_FAILURES)

#: virtnet's status object (``charts/virtnet/crds``): one per cluster, named after it, in the controller's namespace
SYNC_API_VERSION = "virtnet.io/v1alpha1"
SYNC_KIND = "ClusterSync"
SYNC_PLURAL = "clustersyncs"
#: the field manager of the operator's switches (``virtnet suspend``/``resume``/``pin``), not the controller's
OPERATOR_FIELD_MANAGER = "virtnet-operator"
