"""YAML parser events → Python data and the line of every value, in one iterative pass that checks as it goes.

Pure: it consumes the events a parser hands it. ``reconciler.model.loader`` runs it over each file.

Why not PyYAML's composer: it recurses once per nesting level (RecursionError near 1,000 levels, and
libyaml's C version overflows the C stack and kills the process near 40,000), and it builds a node tree
that is only walked again. Here the open mappings and sequences are a list, each limit of
``reconciler.model.limits`` is checked before a value is stored, and each scalar gets its one meaning from
``reconciler.model.scalars``.

Two kinds of refusal: :class:`Refused` (raised) for what makes the text unreadable or unsafe — aliases,
merge keys, duplicate or complex keys, nesting, sizes — which ends the file; and value problems
(``Composer.problems``) for a scalar or tag that is refused, which are collected, so every one in a
document is reported and the document is then dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from reconciler.model.limits import (
    MAX_DEPTH,
    MAX_KEY_CHARS,
    MAX_MAPPING_KEYS,
    MAX_PROBLEMS_PER_FILE,
    MAX_SCALAR_CHARS,
    MAX_SEQUENCE_ITEMS,
)
from reconciler.model.scalars import MISS, PLAIN, Bad, collection_tag, plain, shown, tagged

Path_ = tuple[str | int, ...]
"""Where a value is in its document: keys and sequence indexes, ``("spec", "interfaces", 1, "mac")``."""

Lines = dict[Path_, dict[str | int, int]]
"""The line of every mapping key and sequence item, by the path of the collection holding it and then by its
key or index: one table per collection, so recording a line costs a store in that table rather than a new
path tuple per value (a fifth of loading 10,000 VMs)."""

_NO_KEY = object()  # in a mapping: the next scalar is a key
_ITEMS = f"more than {MAX_SEQUENCE_ITEMS} items in a sequence"


class Refused(Exception):
    """A refusal of the text at ``line``: it ends the file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


class Composer:
    """Builds one file's documents from its parser's events (``get_event``), one :meth:`document` at a time."""

    def __init__(self, get_event: Callable[[], Any]) -> None:
        self.get_event = get_event
        self.problems: list[tuple[int, Path_, str]] = []  # value problems of the current document
        self.count = 0  # value problems of the file

    def bad(self, line: int, path: Path_, message: str) -> None:
        """Record a value problem; past :data:`MAX_PROBLEMS_PER_FILE` the file ends."""
        if self.count >= MAX_PROBLEMS_PER_FILE:
            raise Refused(line, "too many problems; the rest of the file was not read")
        self.count += 1
        self.problems.append((line, path, message))

    def document(self) -> tuple[Any, Lines, int, int]:
        """The next document's data, lines, first line and number of values (mapping keys and sequence items;
        its DocumentStartEvent was consumed).

        Long because: it is the loop over every event of the repository, the hot path of loading; a call
        per event would cost a tenth of the load time. ``cur`` is the open mapping or sequence (None until
        the root opens), ``path`` its place, ``key`` the mapping key waiting for its value; opening a
        collection pushes them, closing one pops them. A mapping value's line is its key's line, a
        sequence item's its own.
        """
        get_event = self.get_event
        lines: Lines = {}
        here: dict[str | int, int] = {}  # the line table of ``cur``
        values = 0
        stack: list[tuple[Any, Path_, bool, dict[str | int, int]]] = []
        cur: Any = None
        path: Path_ = ()
        is_map = False
        key: Any = _NO_KEY
        root: Any = None
        event = get_event()
        first = event.start_mark.line + 1
        while True:
            cls = type(event)
            if cls is ScalarEvent:
                raw = event.value
                if len(raw) > MAX_SCALAR_CHARS:
                    limit = f"the limit is {MAX_SCALAR_CHARS}"
                    raise Refused(event.start_mark.line + 1, f"a value of {len(raw)} characters; {limit}")
                if event.tag is not None:
                    value = tagged(event.tag, raw)
                elif event.implicit[0]:  # plain
                    value = PLAIN.get(raw, MISS)
                    if value is MISS:
                        value = plain(raw)
                else:  # quoted or block
                    value = raw
                if is_map and key is _NO_KEY:
                    if (
                        value.__class__ is str
                        and raw != "<<"
                        and len(raw) <= MAX_KEY_CHARS
                        and raw not in cur
                        and (len(cur) < MAX_MAPPING_KEYS)
                    ):
                        key = raw  # the common case, inline: every check of ``_key`` passes
                    else:
                        key = self._key(value, raw, event, cur, path)
                    here[key] = event.start_mark.line + 1
                    values += 1
                    event = get_event()
                    continue
                if value.__class__ is Bad:
                    where = (*path, key) if is_map else (*path, len(cur)) if cur is not None else path
                    self.bad(event.start_mark.line + 1, where, value.message)
                    value = raw
                if is_map:
                    cur[key] = value
                    key = _NO_KEY
                elif cur is not None:
                    if len(cur) >= MAX_SEQUENCE_ITEMS:
                        raise Refused(event.start_mark.line + 1, _ITEMS)
                    here[len(cur)] = event.start_mark.line + 1
                    values += 1
                    cur.append(value)
                else:
                    root = value
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                line = event.start_mark.line + 1
                if is_map and key is _NO_KEY:
                    raise Refused(line, "mapping keys must be plain scalars")
                if len(stack) >= MAX_DEPTH:
                    raise Refused(line, f"nested deeper than {MAX_DEPTH} levels of mappings and sequences")
                new: Any = {} if cls is MappingStartEvent else []
                if is_map:
                    child: Path_ = (*path, key)
                    cur[key] = new
                    key = _NO_KEY
                elif cur is not None:
                    if len(cur) >= MAX_SEQUENCE_ITEMS:
                        raise Refused(line, _ITEMS)
                    child = (*path, len(cur))
                    here[len(cur)] = line
                    values += 1
                    cur.append(new)
                else:
                    child = ()
                    root = new
                if event.tag is not None and (why := collection_tag(event.tag, cls is MappingStartEvent)):
                    self.bad(line, child, why)
                stack.append((cur, path, is_map, here))
                here = lines[child] = {}
                cur, path, is_map = new, child, cls is MappingStartEvent
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                cur, path, is_map, here = stack.pop()
            elif cls is AliasEvent:
                message = "YAML aliases/anchors are not allowed (they can expand without bound)"
                raise Refused(event.start_mark.line + 1, message)
            else:  # pragma: no cover - a parser emits only node events inside a document
                raise Refused(event.start_mark.line + 1, f"unexpected YAML event {cls.__name__}")
            if cur is None:  # the root is complete
                return root, lines, first, values
            event = get_event()

    def _key(self, value: Any, raw: str, event: Any, mapping: dict[str, Any], path: Path_) -> str:
        """Check a mapping key and return it: its text. A key that is not a string is a value problem (its
        document is dropped, so its text stands in for it meanwhile)."""
        line = event.start_mark.line + 1
        if raw == "<<" and event.tag is None and event.implicit[0]:
            raise Refused(line, "YAML merge keys (<<) are not allowed")
        if len(raw) > MAX_KEY_CHARS:
            raise Refused(line, f"a mapping key of {len(raw)} characters; the limit is {MAX_KEY_CHARS}")
        if value.__class__ is Bad:
            self.bad(line, path, value.message)
        elif value.__class__ is not str:
            what = "null" if value is None else "a boolean" if value.__class__ is bool else "a number"
            self.bad(line, path, f"mapping key {shown(raw) or '(empty)'} is {what}; keys must be strings: quote it")
        if raw in mapping:
            raise Refused(line, f"duplicate key {raw!r}")
        if len(mapping) >= MAX_MAPPING_KEYS:
            raise Refused(line, f"more than {MAX_MAPPING_KEYS} keys in a mapping")
        return raw
