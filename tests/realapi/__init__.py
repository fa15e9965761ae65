"""The real kube-apiserver as a test backend: one control plane per session, reset between tests, and
stand-ins for the controllers a cluster would run (tests/backends.py puts it next to the API double)."""
