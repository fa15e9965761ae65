"""Tests of the benchmark harness (``bench/``).

Why the ``__path__`` line: ``tests/`` has no ``__init__.py``, so pytest imports this directory as the
top-level package ``bench``, shadowing the harness package of the same name. Appending the harness
directory to this package's search path makes ``bench.generate`` and friends resolve to the real modules
either way.
"""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parents[2] / "bench"))
