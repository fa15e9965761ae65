"""The bounds on repository input the loader enforces, and why each is what it is.

A repository arrives through pull requests, and ``virtnet run`` validates every pull request's head, so no
input may crash or exhaust the reconciler. Each bound is what the format legitimately needs with a wide
margin, and tight enough that the worst input inside all of them costs seconds and a few hundred MB.
For scale, the 10,000-VM benchmark repository (``bench/``, size L) is 103 files, 5 MB, 10,501 documents,
255,000 values (mapping keys and sequence items), nesting depth 5, at most 7 keys per mapping and 100
items per sequence; validate+render peaks at about 250 MB, which the chart's default memory limit (512Mi)
holds about twice.

The loader checks every bound while it reads, before anything is interpreted, and reports the first one
crossed as a ``file:line`` problem. Pure constants: importing this module does nothing.
"""

from __future__ import annotations

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Bytes in one file: far more than a hand-written file, 50 times the largest file of L."""

MAX_REPO_BYTES = 16 * 1024 * 1024
"""Bytes in all YAML files together: three L repositories; reading and parsing them takes seconds."""

MAX_FILES = 20_000
"""YAML files in the repository: one VM per file, twice L's VMs."""

MAX_DIR_DEPTH = 32
"""Folders nested below the repository root (no layout needs more than a few)."""

MAX_DOCUMENTS_PER_FILE = 20_000
"""Documents in one file, empty ones included: twice L's whole repository."""

MAX_DOCUMENTS = 100_000
"""Documents in the repository, empty ones included: ten L repositories."""

MAX_VALUES = 1_000_000
"""Mapping keys and sequence items in the repository: four L repositories. Memory grows with values, not
bytes: 4 MB of ``[{}, {}, ...]`` is 840,000 values and about 200 MB, 4 MB of VMs about 200,000."""

MAX_DEPTH = 64
"""Mappings and sequences nested in one document (the document's own mapping is level 1). A virtnet
document nests 5 deep, the deepest plain manifest allowed here (a VirtualMachine) about 15. PyYAML's
composer recursed: about 1,000 levels raised RecursionError, 40,000 crashed the process (SIGSEGV)."""

MAX_MAPPING_KEYS = 10_000
"""Keys in one mapping: a ConfigMap's data or a node selector needs far fewer."""

MAX_SEQUENCE_ITEMS = 10_000
"""Items in one sequence: every VLAN id (4,094) fits twice."""

MAX_KEY_CHARS = 1_024
"""Characters in one mapping key: YAML's own limit for implicit keys; Kubernetes keys have at most 317."""

MAX_SCALAR_CHARS = 1024 * 1024
"""Characters in one value: Kubernetes stores at most 1 MiB in a ConfigMap or Secret, so a longer value
could not be applied anyway."""

MAX_INT_DIGITS = 19
"""Digits of an integer: Kubernetes integers are 64-bit (Python refuses to even parse 4,300 digits)."""

MAX_PROBLEMS_PER_FILE = 50
"""Value problems listed for one file before the rest of the file is skipped."""
