"""Markdown that text from the repository cannot break out of (pure).

Why: a PR comment quotes the repository (object and file names, field values in diffs, problem messages
that quote values), and the repository arrives through the pull request being commented on. Pasted into
Markdown as is, such text can close a code block and go on as Markdown of its own: a fake "Reviewed:
safe" heading, a link, an HTML comment hiding the rest of the comment. Every piece of repository text in
``comment``, ``text`` (Markdown) and ``safety`` (Markdown) goes through one of these functions:

* :func:`code` -- an inline code span whose backtick fence is longer than any backtick run inside it;
  line breaks become spaces; in a table cell ``|`` is escaped (GFM splits cells before code spans).
* :func:`text` -- running text: every character that can start an inline construct is backslash-escaped
  (emphasis, code, links and images, HTML tags and comments, entities, strikethrough, table pipes, math),
  and so is a first character that could start a block (heading, quote, list, thematic break); line
  breaks become spaces and leading blanks go, so nothing starts a block of its own. Ordinary words,
  hyphens, dots and colons stay as they are, so the Markdown source stays readable.
* :func:`block` -- a fenced code block whose fence is longer than any backtick run in its content.
* :func:`html` -- text inside raw HTML (``<summary>``): entities, on one line.
* :func:`link_path` -- a repository path in a link target, percent-encoded.

Control characters (C0, C1, Unicode line and paragraph separators, bidirectional overrides) become U+FFFD:
they could hide or reorder what a reviewer sees.
"""

from __future__ import annotations

import html as _html
import re
from urllib.parse import quote

_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile(r"\r\n|[\r\n\t]")
_INLINE = re.compile(r"([\\`*_\[\]<>!&~|$])")  # what can open an inline construct anywhere in a line
_BLOCK_START = re.compile(r"^(\d{1,9})([.)])|^([-+=*>#])")  # what opens a block at a line's (or item's) start


def _one_line(value: object) -> str:
    return _BREAKS.sub(" ", _clean_keep_breaks(value))


def _clean_keep_breaks(value: object) -> str:
    """Control characters out, but tabs and line breaks kept (for code blocks)."""
    return _INVISIBLE.sub("\ufffd", str(value).replace("\r\n", "\n"))


def _longest_run(value: str, char: str = "`") -> int:
    return max((len(m) for m in re.findall(re.escape(char) + "+", value)), default=0)


def code(value: object, *, cell: bool = False) -> str:
    """``value`` as an inline code span nothing inside can close; ``cell=True`` inside a table row."""
    content = _one_line(value)
    if cell:
        content = content.replace("|", "\\|")
    fence = "`" * (_longest_run(content) + 1)
    if not content.strip() or content.startswith("`") or content.endswith("`"):
        content = f" {content} "  # one space each side is stripped again by the renderer
    return f"{fence}{content}{fence}"


def text(value: object) -> str:
    """``value`` as running text that renders exactly as written and starts no Markdown construct."""
    escaped = _INLINE.sub(r"\\\1", _one_line(value).lstrip())
    return _BLOCK_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", escaped, count=1)


def block(value: object, info: str = "") -> str:
    """``value`` as a fenced code block (no final newline); ``info`` is the language (ours, never the repo's)."""
    content = _clean_keep_breaks(value).rstrip("\n")
    fence = "`" * max(3, _longest_run(content) + 1)
    return f"{fence}{info}\n{content}\n{fence}"


def html(value: object) -> str:
    """``value`` inside raw HTML: on one line (a blank line would end the HTML block), entities escaped."""
    return _html.escape(_one_line(value), quote=True)


def link_path(path: str) -> str:
    """A repository path for a link target: percent-encoded, so ``)``, spaces or ``<`` cannot end the link."""
    return quote(_one_line(path), safe="/")
