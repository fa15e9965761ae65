"""Reads a config repository's YAML files safely and remembers where every value came from.

Side effects: reads files under the repository root, nothing else.

Why not ``yaml.safe_load``: users must be told ``file:line: field`` for every problem, so each value's
line is kept (``Document.line_of``). And a repository is untrusted input (it arrives through pull
requests), so the loader refuses what could hurt the reconciler before any of it is interpreted:
aliases (the "billion laughs" bomb and its smaller cousins), duplicate keys (the second silently wins in
most parsers), non-UTF-8 text, oversized files, and symlinks that leave the repository.
Parsing uses libyaml (``CSafeLoader``) when available; construction and line tracking walk the node tree
once.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import Problem, SourceRef

try:  # libyaml makes large repositories several times faster to parse
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DOCUMENTS_PER_FILE = 20_000
YAML_SUFFIXES = (".yaml", ".yml")

Path_ = tuple[str | int, ...]
_STR = "tag:yaml.org,2002:str"


@dataclass
class Document:
    """One YAML document: its data, and the line of every mapping key and sequence item in it."""

    file: str  # relative to the repository root, with forward slashes
    index: int  # position of the document in its file, from 0
    line: int  # line of the document's first node
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict, repr=False)

    def line_of(self, path: Path_) -> int:
        """Line of the deepest part of ``path`` that exists (a missing field points at its parent)."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return self.line

    def ref(self, path: Path_ = ()) -> SourceRef:
        return SourceRef(self.file, self.line_of(path), format_path(path))


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large acyclic structure.

    Loading and rendering allocate millions of small objects and free almost none; CPython's collector
    then re-scans the growing heap again and again (half the time of a 10,000-VM render). Nothing built
    here forms reference cycles, so reference counting alone frees it; the collector resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def format_path(path: Path_) -> str:
    """``("spec", "interfaces", 1, "mac")`` → ``spec.interfaces[1].mac``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message


class _Builder:
    """Turns a composed node tree into Python data, recording lines and refusing aliases and duplicates."""

    def __init__(self) -> None:
        self._constructor = yaml.constructor.SafeConstructor()
        self.lines: dict[Path_, int] = {}
        self._seen: set[int] = set()

    def build(self, node: yaml.Node, path: Path_) -> Any:
        """Scalars first and cheapest: they are most of the nodes of a large repository."""
        if id(node) in self._seen:  # the same node twice: an alias; report where it is used
            line = node.start_mark.line + 1
            where = next((self.lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in self.lines), line)
            raise _Refused(where, "YAML aliases/anchors are not allowed (they can expand without bound)")
        self._seen.add(id(node))
        if type(node) is yaml.ScalarNode:
            return node.value if node.tag == _STR else self._constructor.construct_object(node, deep=True)
        if path:
            self.lines.setdefault(path, node.start_mark.line + 1)
        if type(node) is yaml.MappingNode:
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Refused(key_node.start_mark.line + 1, "YAML merge keys (<<) are not allowed")
                key = self.build(key_node, ())
                if not isinstance(key, str | int | bool | float) and key is not None:
                    raise _Refused(key_node.start_mark.line + 1, "mapping keys must be plain scalars")
                if key in out:
                    raise _Refused(key_node.start_mark.line + 1, f"duplicate key {key!r}")
                child = (*path, key) if isinstance(key, str | int) else (*path, str(key))
                self.lines[child] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, child)
            return out
        items = []
        for i, item in enumerate(node.value):  # a sequence: each item's own line (block lists span lines)
            here = (*path, i)
            items.append(self.build(item, here))  # first: an alias must be reported where it is used
            self.lines.setdefault(here, item.start_mark.line + 1)
        return items


class _CachedResolver(_Loader):
    """libyaml's composer asks the Python resolver for every scalar's tag; the same few thousand
    values (keys, names, booleans) repeat across a repository, so the answer is memoized."""

    _tags: dict[tuple[str, tuple[bool, bool]], str] = {}

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode or not isinstance(value, str) or len(value) > 64:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._tags) < 100_000:
                self._tags[key] = tag
        return tag


def parse_text(text: str, file: str) -> tuple[list[Document], list[Problem]]:
    """Parse every document of one file. A syntax error ends the file (later documents are unknowable)."""
    docs: list[Document] = []
    loader = _CachedResolver(text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            if index >= MAX_DOCUMENTS_PER_FILE:
                return docs, [Problem(SourceRef(file, node.start_mark.line + 1), "too many documents")]
            builder = _Builder()
            try:
                data = builder.build(node, ())
            except _Refused as refused:
                return docs, [Problem(SourceRef(file, refused.line), refused.message)]
            if data is not None:  # an empty document ("---" alone) is allowed and ignored
                docs.append(Document(file, index, node.start_mark.line + 1, data, builder.lines))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        return docs, [Problem(SourceRef(file, line), f"YAML syntax error: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return docs, [Problem(SourceRef(file), f"YAML error: {exc}")]
    finally:
        loader.dispose()
    return docs, []


def _decode(raw: bytes, file: str) -> tuple[str | None, list[Problem]]:
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(SourceRef(file, line), f"file is not valid UTF-8 (byte {exc.start})")]


def iter_yaml_files(root: Path) -> Iterator[Path]:
    """Every ``*.yaml``/``*.yml`` below ``root`` in a stable order, skipping hidden folders like ``.git``."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(YAML_SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name
        # symlinked directories are listed in dirnames but not followed; report them as files below
        for d in dirnames:
            if (Path(dirpath) / d).is_symlink():
                yield Path(dirpath) / d


def read_documents(root: Path, max_file_bytes: int = MAX_FILE_BYTES) -> tuple[list[Document], list[Problem]]:
    """Load every YAML document of the repository; problems are collected, not raised."""
    root = root.resolve()
    docs: list[Document] = []
    problems: list[Problem] = []
    for path in iter_yaml_files(root):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                problems.append(Problem(SourceRef(rel), "symlink points outside the repository"))
                continue
            if target.is_dir():
                continue  # its files are reached through their real path
        if not path.is_file():
            continue
        size = path.stat().st_size
        if size > max_file_bytes:
            problems.append(Problem(SourceRef(rel), f"file is {size} bytes; the limit is {max_file_bytes} bytes"))
            continue
        text, bad = _decode(path.read_bytes(), rel)
        problems += bad
        if text is None:
            continue
        file_docs, file_problems = parse_text(text, rel)
        docs += file_docs
        problems += file_problems
    return docs, problems
