"""Reads a config repository's YAML files safely and remembers where every value came from.

Side effects: reads files under the repository root, nothing else.

Why not ``yaml.safe_load``: users must be told ``file:line: field`` for every problem, so each value's
line is kept (``Document.line_of``). And a repository is untrusted input (it arrives through pull
requests, and ``virtnet run`` validates every pull request's head), so the loader refuses what could hurt
the reconciler before any of it is interpreted: aliases (the "billion laughs" bomb and its smaller
cousins), duplicate keys (the second silently wins in most parsers), non-UTF-8 text, symlinks that leave
the repository or loop, and anything beyond the bounds of ``reconciler.model.limits`` (sizes, counts,
nesting, number widths). Every refusal is a :class:`Problem`, never an exception or a signal.

libyaml's parser (``CParser``; PyYAML's pure-Python parser where it is missing) turns the text into
events, and ``reconciler.model.compose`` builds the data and lines from them in one iterative pass,
checking as it goes; ``reconciler.model.scalars`` gives each scalar its one meaning (plain decimal numbers,
``true``/``false`` booleans, no silent YAML 1.1 readings, no unknown tags). Refusals of the text (syntax,
aliases, merge keys, duplicate or complex keys, nesting, sizes) are ``file:line: message`` and end the
file; refused values are ``file:line: field: message``, all of a file's are listed, and their document
is left out.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import StreamEndEvent

from reconciler.errors import Problem, SourceRef
from reconciler.model import limits
from reconciler.model.compose import Composer, Lines, Path_, Refused
from reconciler.model.limits import MAX_FILE_BYTES

try:  # libyaml makes large repositories several times faster to parse
    from yaml._yaml import CParser as _Parser

    _BYTE_POSITIONS = True  # libyaml reports reader errors at a byte offset of the UTF-8 text
except ImportError:  # pragma: no cover - depends on how PyYAML was built

    class _Parser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        """PyYAML's pure-Python parser; like libyaml's it keeps its state on a list, not the call stack."""

        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)

    _BYTE_POSITIONS = False

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Document:
    """One YAML document: its data, and the line of every mapping key and sequence item in it."""

    file: str  # relative to the repository root, with forward slashes
    index: int  # position of the document in its file, from 0
    line: int  # line of the document's first node
    data: Any
    lines: Lines = field(default_factory=dict, repr=False)

    def line_of(self, path: Path_) -> int:
        """Line of the deepest part of ``path`` that exists (a missing field points at its parent)."""
        path = tuple(path)
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[: end - 1], {}).get(path[end - 1])
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

    Before it resumes, what exists is moved to the collector's permanent generation (``gc.freeze``):
    otherwise the first collections after ``gc.enable`` scan the whole new heap, twice (0.5 s at 10,000 VMs),
    to find nothing. Frozen objects are still freed by reference counting when the last reference goes;
    only a reference cycle among them would outlive its use, and nothing built here makes one.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


@functools.lru_cache(maxsize=4096)  # the same paths recur in every VM document (``spec.interfaces[0].mac``)
def format_path(path: Path_) -> str:
    """``("spec", "interfaces", 1, "mac")`` → ``spec.interfaces[1].mac``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_at(text: str, position: int) -> int:
    """Line of a reader error's position (a byte offset of the UTF-8 text for libyaml)."""
    if _BYTE_POSITIONS:
        return text.encode("utf-8", "surrogatepass")[:position].count(b"\n") + 1
    return text[:position].count("\n") + 1


@dataclass
class _Budget:
    """What the repository may still hold (:data:`limits.MAX_DOCUMENTS`, :data:`limits.MAX_VALUES`)."""

    documents: int
    values: int
    spent: str = ""  # the limit that ended the reading, once one did


def parse_text(text: str, file: str) -> tuple[list[Document], list[Problem]]:
    """Parse every document of one file. A refusal of the text ends the file (later documents are unknowable);
    a document with refused values is left out and the next one is read."""
    return _parse(text, file, _Budget(limits.MAX_DOCUMENTS, limits.MAX_VALUES))


def _parse(text: str, file: str, budget: _Budget) -> tuple[list[Document], list[Problem]]:
    docs: list[Document] = []
    problems: list[Problem] = []
    parser = _Parser(text)
    composer = Composer(parser.get_event)
    try:
        parser.get_event()  # StreamStartEvent
        index = 0
        while type(parser.get_event()) is not StreamEndEvent:  # a DocumentStartEvent
            if index >= limits.MAX_DOCUMENTS_PER_FILE or budget.documents <= 0:
                line = parser.peek_event().start_mark.line + 1  # type: ignore[union-attr]
                where = f"{limits.MAX_DOCUMENTS_PER_FILE} in this file"
                if budget.documents <= 0:
                    where = budget.spent = f"{limits.MAX_DOCUMENTS} in the repository"
                problems.append(Problem(SourceRef(file, line), f"too many documents: more than {where}"))
                break
            data, lines, line, values = composer.document()
            parser.get_event()  # DocumentEndEvent
            budget.documents -= 1
            budget.values -= values
            if composer.problems:
                problems += [Problem(SourceRef(file, n, format_path(p)), m) for n, p, m in composer.problems]
                composer.problems = []
            elif data is not None:  # an empty document ("---" alone) is allowed and ignored
                docs.append(Document(file, index, line, data, lines))
            if budget.values < 0:
                budget.spent = f"more than {limits.MAX_VALUES} values (mapping keys and sequence items)"
                problems.append(Problem(SourceRef(file, line), f"the repository has {budget.spent}"))
                break
            index += 1
    except Refused as refused:
        problems += [Problem(SourceRef(file, n, format_path(p)), m) for n, p, m in composer.problems]
        problems.append(Problem(SourceRef(file, refused.line), refused.message))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problems.append(Problem(SourceRef(file, line), f"YAML syntax error: {exc.problem or exc}"))
    except yaml.reader.ReaderError as exc:
        problems.append(Problem(SourceRef(file, _line_at(text, exc.position)), f"YAML error: {exc.reason}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(SourceRef(file), f"YAML error: {exc}"))
    finally:
        parser.dispose()
    return docs, problems


# ---- files -----------------------------------------------------------------------------------------------


def _decode(raw: bytes, file: str) -> tuple[str | None, list[Problem]]:
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(SourceRef(file, line), f"file is not valid UTF-8 (byte {exc.start})")]


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Whether a symlink leads to a folder; a loop or a broken link does not (``_read`` reports loops)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def iter_yaml_files(root: Path, problems: list[Problem] | None = None) -> Iterator[Path]:
    """Every ``*.yaml``/``*.yml`` below ``root`` in a stable order (each folder's files, then its folders, by
    name), skipping hidden files and folders like ``.git``; symlinked folders are yielded (not followed) so
    the caller can check where they point. Iterative; folders deeper than :data:`limits.MAX_DIR_DEPTH` are a
    problem in ``problems`` and not entered."""
    pending: list[tuple[Path, int]] = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted((e for e in scan if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as exc:
            if problems is not None:
                rel = folder.relative_to(root).as_posix()
                problems.append(Problem(SourceRef(rel), f"cannot read the folder: {exc.strerror or exc}"))
            continue
        folders: list[Path] = []
        linked: list[Path] = []
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                folders.append(path)
            elif entry.is_symlink() and _is_dir(entry):
                linked.append(path)
            elif entry.name.endswith(YAML_SUFFIXES):
                yield path
        yield from linked
        if folders and depth >= limits.MAX_DIR_DEPTH:
            if problems is not None:
                rel = folders[0].relative_to(root).as_posix()
                problems.append(Problem(SourceRef(rel), f"folders nested deeper than {limits.MAX_DIR_DEPTH} levels"))
            continue
        pending += [(f, depth + 1) for f in reversed(folders)]


def _read(path: Path, root: Path, rel: str, limit: int) -> tuple[bytes | None, list[Problem]]:
    """The file's bytes, or the problem that stops it from being read (nothing outside ``root`` is read)."""
    if path.is_symlink():
        try:
            target = path.resolve()
        except (RuntimeError, OSError):  # a loop: RuntimeError up to Python 3.12, OSError(ELOOP) after
            return None, [Problem(SourceRef(rel), "symlink loop: the link never reaches a file")]
        if not target.is_relative_to(root):
            return None, [Problem(SourceRef(rel), "symlink points outside the repository")]
        if target.is_dir():
            return None, []  # its files are reached through their real path
        if not target.exists():
            return None, [Problem(SourceRef(rel), "symlink points to a file that does not exist")]
    try:
        if not path.is_file():
            return None, []
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            raw = stream.read(limit + 1) if size <= limit else b""
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, [Problem(SourceRef(rel), "symlink loop: the link never reaches a file")]
        return None, [Problem(SourceRef(rel), f"cannot read the file: {exc.strerror or exc}")]
    if size > limit or len(raw) > limit:
        return None, [Problem(SourceRef(rel), f"file is {max(size, len(raw))} bytes; the limit is {limit} bytes")]
    return raw, []


@dataclass
class _FileParse:
    docs: list[Document]
    problems: list[Problem]
    documents: int  # of the repository's budget this file used
    values: int


@dataclass
class ParseCache:
    """Parsed files by git blob id (``sha1("blob <size>\\0" + bytes)``: the id git gives the same bytes), so
    a commit that changes one file parses one file (``virtnet run`` keeps one across reconciles).

    ``parsed`` holds what a later stage derived from one cached document (``reconciler.model.load``:
    its schema check), by the document's identity; both keep only what the last load used.
    """

    files: dict[tuple[str, str], _FileParse] = field(default_factory=dict)
    parsed: dict[int, Any] = field(default_factory=dict)
    #: the VM rules' findings of the last load (a ``reconciler.model.vmrules.VmMemo``, set by ``load``; not typed
    #: here, since the loader is below the rules and may not import them), so an unchanged VM document is not
    #: checked again either
    rules: Any = None
    hits: int = 0
    misses: int = 0

    def _parse(
        self, rel: str, raw: bytes, text: str, budget: _Budget, used: dict[tuple[str, str], _FileParse]
    ) -> tuple[list[Document], list[Problem]]:
        key = (rel, hashlib.sha1(b"blob %d\0" % len(raw) + raw, usedforsecurity=False).hexdigest())
        hit = self.files.get(key)
        if hit is not None and budget.documents >= hit.documents and budget.values >= hit.values:
            self.hits += 1
            budget.documents -= hit.documents
            budget.values -= hit.values
            used[key] = hit
            return hit.docs, hit.problems
        self.misses += 1
        before = (budget.documents, budget.values)
        docs, problems = _parse(text, rel, budget)
        if not budget.spent:  # a file cut short by the repository's limits depends on what came before it
            used[key] = _FileParse(docs, problems, before[0] - budget.documents, before[1] - budget.values)
        return docs, problems

    def keep(self, used: dict[tuple[str, str], _FileParse]) -> None:
        self.files = used
        alive = {id(doc) for entry in used.values() for doc in entry.docs}
        self.parsed = {k: v for k, v in self.parsed.items() if k in alive}


def read_documents(
    root: Path, max_file_bytes: int = MAX_FILE_BYTES, cache: ParseCache | None = None
) -> tuple[list[Document], list[Problem]]:
    """Load every YAML document of the repository; problems are collected, not raised.

    The repository's limits (files, bytes, documents, values; ``reconciler.model.limits``) end the
    reading with one problem at the first file beyond them. With ``cache``, a file whose bytes were
    parsed before is not parsed again.
    """
    root = root.resolve()
    docs: list[Document] = []
    problems: list[Problem] = []
    budget = _Budget(limits.MAX_DOCUMENTS, limits.MAX_VALUES)
    used: dict[tuple[str, str], _FileParse] = {}
    total = files = 0
    for path in iter_yaml_files(root, problems):
        rel = path.relative_to(root).as_posix()
        raw, bad = _read(path, root, rel, max_file_bytes)
        problems += bad
        if raw is None:
            continue
        files += 1
        total += len(raw)
        if files > limits.MAX_FILES:
            problems.append(Problem(SourceRef(rel), f"more than {limits.MAX_FILES} YAML files in the repository"))
            break
        if total > limits.MAX_REPO_BYTES:
            message = f"the YAML files pass {limits.MAX_REPO_BYTES} bytes in total here (the limit)"
            problems.append(Problem(SourceRef(rel), message))
            break
        text, bad = _decode(raw, rel)
        problems += bad
        if text is None:
            continue
        if cache is None:
            file_docs, file_problems = _parse(text, rel, budget)
        else:
            file_docs, file_problems = cache._parse(rel, raw, text, budget, used)
        docs += file_docs
        problems += file_problems
        if budget.spent:
            break
    if cache is not None:
        cache.keep(used)
    return docs, problems
