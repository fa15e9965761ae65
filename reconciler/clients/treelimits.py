"""How big a commit may be before the controller exports and reads it, checked from git's own sizes.

Why: a commit is untrusted input (pull requests are planned too) and the controller runs with bounded
memory and a bounded cache (the chart: 512 Mi memory, a 1 Gi emptyDir for the git cache). A 1 GB blob
was exported as 963 MB per tree, three trees kept; 8 files of 20,000 ConfigMaps took 716 MB to
validate. So before a tree is exported, ``git ls-tree -l`` gives every file's size and the commit is
refused, with every offending path named, when a file is over the loader's per-file limit (whatever its
kind: it would be exported, and a YAML symlink may point at it), the files or their bytes are too many,
or the YAML files together are too large; after the export, and before anything parses it, the YAML
documents are counted from their ``---`` separators. Nothing is exported (or left behind) for a refused
commit.

The limits are sized for the chart's pod: the 10,000-VM benchmark repository (bench/, size L: 103 files,
4.9 MB of YAML, 10,501 documents) renders in about 400 MB, so a repository may be a little larger than
that, and no larger; every number of documents below the cap renders in under 250 MB when the documents
are small. ``reconciler.model.loader`` has its own, wider limits for ``virtnet validate`` on a laptop; the
per-file limit is the loader's.

Side effects: runs ``git ls-tree``; reads exported files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.errors import SourceError
from reconciler.model.loader import MAX_FILE_BYTES, YAML_SUFFIXES

MAX_TREE_FILES = 20_000
"""Files (and symlinks) in a commit: one VM per file at twice the L benchmark."""

MAX_TREE_BYTES = 64 * 1024 * 1024
"""All files of a commit together: with three trees kept in each of the two caches (tracked branch and pull
requests), 384 MB of the 1 Gi cache at most, the rest left for the repositories themselves."""

MAX_YAML_BYTES = 6 * 1024 * 1024
"""All YAML files together: 1.2 times the L benchmark, which renders in about 400 MB."""

MAX_DOCUMENTS = 30_000
"""YAML documents in the commit: three times the L benchmark; 30,000 small ConfigMaps render in about
200 MB."""

_SHOWN = 5  # offending paths named in one error
_SEPARATOR = re.compile(rb"^---(?:[ \t\r]|$)", re.M)
_STARTS_WITH_SEPARATOR = re.compile(rb"\A(?:[ \t]*(?:#[^\n]*)?\r?\n|%[^\n]*\n)*---(?:[ \t\r\n]|\Z)")


@dataclass(frozen=True)
class TreeLimits:
    file_bytes: int = MAX_FILE_BYTES
    tree_files: int = MAX_TREE_FILES
    tree_bytes: int = MAX_TREE_BYTES
    yaml_bytes: int = MAX_YAML_BYTES
    documents: int = MAX_DOCUMENTS


@dataclass(frozen=True)
class Entry:
    """One file of a commit as ``git ls-tree -r -l`` lists it (submodules are not files: never exported)."""

    mode: str
    size: int
    path: str

    @property
    def yaml(self) -> bool:
        name = self.path.rsplit("/", 1)[-1]
        return self.mode != "120000" and name.endswith(YAML_SUFFIXES)


def list_tree(repo: git.Repo, sha: str) -> list[Entry]:
    """Every blob of ``sha`` (files and symlinks) with its size, without reading any of them."""
    raw = repo.git.execute(["git", "ls-tree", "-r", "-l", "-z", "--full-tree", sha], stdout_as_string=False)
    entries = []
    for record in bytes(raw).split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, _obj, size = meta.split()
        if kind == b"blob":
            entries.append(Entry(mode.decode(), int(size), path.decode("utf-8", "surrogateescape")))
    return entries


def _named(entries: list[Entry]) -> str:
    shown = ", ".join(f"{e.path} ({e.size} bytes)" for e in entries[:_SHOWN])
    return shown + (f" and {len(entries) - _SHOWN} more" if len(entries) > _SHOWN else "")


def check_tree(entries: list[Entry], sha: str, limits: TreeLimits) -> None:
    """Raise :class:`SourceError` naming what is too big in commit ``sha``; nothing has been exported yet."""
    where = f"commit {sha[:12]} is refused before export"
    big = sorted((e for e in entries if e.size > limits.file_bytes), key=lambda e: -e.size)
    if big:
        raise SourceError(f"{where}: {_named(big)}: a file may have at most {limits.file_bytes} bytes")
    if len(entries) > limits.tree_files:
        raise SourceError(f"{where}: it has {len(entries)} files; at most {limits.tree_files} are allowed")
    total = sum(e.size for e in entries)
    if total > limits.tree_bytes:
        raise SourceError(f"{where}: its files have {total} bytes together; at most {limits.tree_bytes}")
    yaml = sum(e.size for e in entries if e.yaml)
    if yaml > limits.yaml_bytes:
        raise SourceError(f"{where}: its YAML files have {yaml} bytes together; at most {limits.yaml_bytes}")


def documents(data: bytes) -> int:
    """YAML documents in a file, from its ``---`` lines (a first document needs none). 0 for an empty file."""
    if not data.strip():
        return 0
    return len(_SEPARATOR.findall(data)) + (0 if _STARTS_WITH_SEPARATOR.match(data) else 1)


def check_documents(root: Path, entries: list[Entry], sha: str, limits: TreeLimits) -> None:
    """Raise :class:`SourceError` when the exported YAML files of ``sha`` hold too many documents."""
    total = 0
    for entry in entries:
        if entry.yaml:
            total += documents((root / entry.path).read_bytes())
            if total > limits.documents:
                raise SourceError(
                    f"commit {sha[:12]} is refused before it is read: its YAML files hold more than "
                    f"{limits.documents} documents"
                )
