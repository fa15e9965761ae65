"""Pre-merge safety: blast radius and the danger checks ("would this cut a node off?") for every plan.

Pure: the pipeline reads Nodes and NodeNetworkStates (``reconciler.pipeline.read_nodes``). ``analysis``
builds the report, ``radius`` says which nodes, VMs and Services a change reaches, ``checks`` holds the
per-node danger checks (shared with the node agent), ``refs`` finds the repository line behind a finding
(``reconciler.output.safety`` prints it for terminals and PR comments). What a node policy means
(interfaces, ports, selector, ``maxUnavailable``) is ``reconciler.nmstate``.
"""

from reconciler.safety.analysis import analyze, needs_node_facts
from reconciler.safety.radius import batches
from reconciler.safety.report import ACCEPT_ANNOTATION, SafetyReport

__all__ = ["ACCEPT_ANNOTATION", "SafetyReport", "analyze", "batches", "needs_node_facts"]
