"""The real kube-apiserver as a test backend: one control plane per session with the simulated controllers
beside it, reset between tests (tests/backends.py puts it next to the API double)."""
