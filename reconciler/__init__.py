"""virtnet: a GitOps reconciler for virtual-machine networking on OpenShift Virtualization / KubeVirt.

The package is laid out as the pipeline it runs: ``source -> model -> render -> diff -> apply -> status``,
plus the node ``agent`` and the ``server`` (scheduler, webhooks, metrics).
"""

__version__ = "0.1.0"
