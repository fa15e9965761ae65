"""The virtnet node agent (a DaemonSet in production).

It reads the kernel's real network state and maps it to nmstate's ``currentState`` (``netlink``,
``state``), screens the NNCPs (``validate``: a malformed one fails alone), reads what the ones that
select the node ask for (``desired``), turns the difference into ordered steps (``steps``) or drift rows
(``drift``), and in enforce mode applies the steps with pre-checks (``safety``, ``capabilities``),
probes (``probes``) and an exact rollback (``enforce``, ``rollback``). ``runner`` runs a pass and the
loop, publishing NodeNetworkState and enactments (``publish``) and taking ``maxUnavailable`` slots
through the Kubernetes API (``api``); an enforce pass holds the node's writer lock (``nodelock``);
``cli`` exposes ``virtnet agent``. What a policy means is ``reconciler.nmstate``, shared with the
controller.

Only ``netlink``, ``enforce``, ``rollback``, ``probes``, ``capabilities``, ``api``, ``nodelock`` and
``runner`` touch the world; ``state``, ``validate``, ``desired``, ``steps``, ``drift``, ``safety`` and
``publish`` are pure. This package re-exports nothing: import the module that defines a name.
"""
