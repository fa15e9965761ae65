"""The server side of virtnet: webhook verification/parsing, the HTTP app, the reconcile scheduler, metrics.

Importing this package has no side effects; the submodules are imported where they are used.
"""
