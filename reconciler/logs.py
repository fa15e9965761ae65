"""Logging setup for every virtnet process, and the redaction that keeps secrets out of logs.

Why: virtnet handles git tokens, webhook secrets and key material, and its logs end up in terminals,
log aggregators and status commits. Anything that *might* contain a secret (a git error, a URL, an
exception from a client library) is passed through :func:`redact` before it leaves the process.

What:

* :func:`register_secret` -- modules call it as soon as they load a secret (a token file, a webhook
  secret); from then on the exact value is replaced with ``***`` wherever :func:`redact` runs.
* :func:`redact` -- replaces registered secrets and common credential shapes
  (``https://user:token@host``, ``Authorization: Bearer x``, ``token=x``, ``password=x``).
* :class:`Redactor` -- a :class:`logging.Filter` that redacts a record's message, args, extra fields,
  exception and stack text. :func:`setup_logging` attaches it to the handler it installs, so it also
  covers records propagated from third-party loggers (GitPython, urllib3, kubernetes).
* :func:`setup_logging` -- one stderr handler on the root logger, plain text or JSON.

Side effects: :func:`register_secret` mutates a process-wide registry; :func:`setup_logging` replaces
the handler it installed earlier on the root logger and sets the root level. :class:`Redactor` mutates
the records it filters (the redacted message replaces ``msg``/``args``; ``exc_info`` becomes
``exc_text``) so that no later handler or formatter can see the raw values.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

MASK = "***"
#: secrets shorter than this are not registered: redacting e.g. "a" would garble every line
MIN_SECRET_LEN = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None



def _auth_header(m: re.Match[str]) -> str:
    scheme = f"{m.group(2)} " if m.group(2) else ""
    return f"{m.group(1)}{scheme}{MASK}"


_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # scheme://user:password@host  (and scheme://token@host for https)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@"), r"\1" + MASK + "@"),
    (re.compile(r"(?i)\b(https?://)[^/\s:@]+@"), r"\1" + MASK + "@"),
    # Authorization / Proxy-Authorization headers, with or without a scheme word
    (
        re.compile(r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)(?:(basic|bearer|token|digest)\s+)?[^\s,;'\"]+"),
        _auth_header,
    ),
    # key=value / key: value shapes for the usual names
    (
        re.compile(
            r"(?i)\b((?:access_?|auth_?|api_?|private_?|client_?)?(?:token|secret|password|passwd|pwd|api_?key)"
            r"[\"']?\s*[=:]\s*[\"']?)[^\s&,;'\"]+"
        ),
        r"\1" + MASK,
    ),
    # bare bearer tokens
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    # PEM / OpenSSH private key blocks
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
        MASK,
    ),
]
def register_secret(value: str | bytes | None) -> None:
    """Remember ``value`` so that :func:`redact` replaces it with ``***`` from now on.

    ``None``, empty and very short values (under ``MIN_SECRET_LEN`` characters) are ignored. Surrounding
    whitespace is stripped (token files usually end with a newline); each line of a multi-line value
    (key material) is registered as well.
    """
    global _secret_re
    if value is None:
        return
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    candidates = {value.strip(), *(line.strip() for line in value.splitlines())}
    new = {c for c in candidates if len(c) >= MIN_SECRET_LEN}
    if not new:
        return
    with _lock:
        if new <= _secrets:
            return
        _secrets.update(new)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """``text`` with every registered secret and every recognised credential pattern replaced by ``***``."""
    if not text:
        return text
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for rx, repl in _PATTERNS:
        text = rx.sub(repl, text)
    return text


def redact_bytes(data: bytes) -> bytes:
    """:func:`redact` for bytes that are UTF-8 text; other bytes only lose registered secrets."""
    try:
        return redact(data.decode("utf-8")).encode("utf-8")
    except UnicodeDecodeError:
        pass
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        data = data.replace(s.encode("utf-8"), MASK.encode())
    return data


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact_bytes(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_redact_value(v) for v in value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class Redactor(logging.Filter):
    """Redacts a record in place: message (with args merged in), extra fields, exception and stack text.

    Attach it to *handlers* (logger filters do not see records propagated from child loggers).
    It never drops a record.
    """

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__()
        self._fmt = formatter or logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict) and not record.args:
            record.msg = _redact_value(record.msg)
        else:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string must not leak the raw args either
                message = f"{record.msg!s} {record.args!r}"
            record.msg = redact(message)
            record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self._fmt.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact_value(value))
        return True


class _RedactingFormatterMixin:
    """Second line of defence: redacts the final formatted text too."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))  # type: ignore[misc]


class PlainFormatter(_RedactingFormatterMixin, logging.Formatter):
    """``time level logger: message`` with redaction of the final line."""


class JsonLogFormatter(_RedactingFormatterMixin, JsonFormatter):
    """One JSON object per line (``time``, ``level``, ``logger``, ``message`` + extras), redacted."""


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"

_installed: logging.Handler | None = None


def setup_logging(
    level: int | str = "INFO",
    json: bool = False,
    *,
    stream: TextIO | None = None,
    quiet: Iterable[str] = ("git.cmd", "urllib3", "kubernetes"),
) -> logging.Handler:
    """Install one redacting handler on the root logger and return it.

    ``json=True`` writes one JSON object per line (python-json-logger). Calling it again replaces the
    handler installed by the previous call (other handlers are left alone). Loggers named in ``quiet``
    are held at WARNING unless ``level`` is DEBUG.
    """
    global _installed
    lvl = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(lvl, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter: logging.Formatter
    if json:
        formatter = JsonLogFormatter(
            JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}
        )
    else:
        formatter = PlainFormatter(PLAIN_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(Redactor(formatter))
    root = logging.getLogger()
    with _lock:
        if _installed is not None:
            root.removeHandler(_installed)
        root.addHandler(handler)
        _installed = handler
    root.setLevel(lvl)
    for name in quiet:
        logging.getLogger(name).setLevel(lvl if lvl <= logging.DEBUG else max(lvl, logging.WARNING))
    return handler
