"""The desired-state model: typed documents of a config repository, loaded and validated as a whole.

``load_repo(path, cluster)`` is the stage's entry point. It returns a ``Repo`` or raises ``ModelError``
with every problem found (schema, references, conflicts), each located by file, line and field.
"""

from reconciler.model.load import load_repo
from reconciler.model.loader import ParseCache
from reconciler.model.repo import API_VERSION, Entry, Raw, Repo

__all__ = ["API_VERSION", "Entry", "ParseCache", "Raw", "Repo", "load_repo"]
