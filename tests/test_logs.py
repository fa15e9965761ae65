"""Redaction of secrets in every part of a log record, in plain and JSON output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from reconciler.logs import MASK, Redactor, redact, redact_bytes, register_secret, setup_logging
from tests.gitutil import preserved_logging

CANARY = "canary-TOKEN-5d1e8f0a77"
WEBHOOK = "whsec_CANARY_b7c2e9"
KEY_LINE = "AAAAC3NzaC1lZDI1NTE5AAAAICANARYKEYMATERIAL"
LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    with preserved_logging():
        yield io.StringIO()


def _emit_everything(logger: logging.Logger) -> None:
    for level in LEVELS:
        logger.log(level, f"message with {CANARY} inline")
        logger.log(level, "args: %s and %r", CANARY, {"secret": WEBHOOK})
        logger.log(level, "dict arg: %(tok)s", {"tok": CANARY})
        logger.log(level, "url https://user:%s@git.example.test/r.git", "pw-not-registered")
        logger.log(level, "header Authorization: Bearer %s", "unregistered-bearer-xyz")
        logger.log(level, "query token=%s&x=1", "unregistered-query-tok")
        logger.log(level, "extra field", extra={"detail": f"has {CANARY}", "nested": {"k": [WEBHOOK]}})
        logger.log(level, {"msg": f"dict message {CANARY}"})  # type: ignore[arg-type]
        try:
            raise RuntimeError(f"failed with {CANARY} and key {KEY_LINE}")
        except RuntimeError:
            logger.log(level, "exception %s", "context", exc_info=True)
        logger.log(level, "stack", stack_info=True)
    try:
        try:
            raise ValueError(WEBHOOK)
        except ValueError as inner:
            raise OSError("outer " + CANARY) from inner
    except OSError:
        logger.exception("chained")


@pytest.mark.parametrize("as_json", [False, True])
def test_canaries_never_reach_the_output(out: io.StringIO, as_json: bool) -> None:
    register_secret(CANARY + "\n")
    register_secret(WEBHOOK)
    register_secret(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_LINE}\n-----END OPENSSH PRIVATE KEY-----\n")
    setup_logging("DEBUG", json=as_json, stream=out)
    _emit_everything(logging.getLogger("virtnet.test.child"))  # propagates to the root handler

    text = out.getvalue()
    for secret in (CANARY, WEBHOOK, KEY_LINE, "pw-not-registered", "unregistered-bearer-xyz",
                   "unregistered-query-tok"):  # fmt: skip
        assert secret not in text
    assert text.count(MASK) >= 40
    # the records were really written, at every level, with exceptions
    for name in ("DEBUG", "INFO", "WARNING", "ERROR"):
        assert name in text
    assert "RuntimeError" in text and "Traceback" in text and "chained" in text
    if as_json:
        records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert len(records) >= 4 * 10
        assert {"time", "level", "logger", "message"} <= set(records[0])
        assert any("exc_info" in r for r in records)
        assert any(r.get("detail") == f"has {MASK}" for r in records)


def test_level_filters(out: io.StringIO) -> None:
    setup_logging("WARNING", json=False, stream=out)
    log = logging.getLogger("virtnet.test.levels")
    log.info("hidden")
    log.warning("shown")
    assert "hidden" not in out.getvalue() and "shown" in out.getvalue()
    with pytest.raises(ValueError):
        setup_logging("LOUD")


def test_redact_patterns_and_registry() -> None:
    assert redact("clone https://bob:s3cret@host/r.git") == f"clone https://{MASK}@host/r.git"
    assert redact("https://ghp_abcdef@github.com/x") == f"https://{MASK}@github.com/x"
    assert redact("Authorization: Basic dXNlcjpwdw==") == f"Authorization: Basic {MASK}"
    assert redact("authorization=Bearer abc.def") == f"authorization=Bearer {MASK}"
    assert redact("password: 'hunter2'") == f"password: '{MASK}'"
    assert redact("api_key=xyz&ok=1") == f"api_key={MASK}&ok=1"
    assert redact("nothing here, token holder") == "nothing here, token holder"
    register_secret("zz")  # too short to register: would garble text
    assert redact("buzz") == "buzz"
    register_secret(b"bytes-secret-123")
    assert redact_bytes(b"x bytes-secret-123 y") == f"x {MASK} y".encode()
    assert redact_bytes(b"\xff\xfe bytes-secret-123") == b"\xff\xfe " + MASK.encode()
    register_secret("abcd1234")
    register_secret("abcd1234EXTENDED")  # longest first: no partial leftover
    assert redact("abcd1234EXTENDED") == MASK


def test_redactor_as_a_plain_filter() -> None:
    register_secret(CANARY)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s b", (CANARY,), None)
    assert Redactor().filter(record) is True
    assert record.getMessage() == f"a {MASK} b" and record.args is None
    broken = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s %s", (CANARY,), None)
    Redactor().filter(broken)  # a bad format string must not leak the args either
    assert CANARY not in broken.getMessage() and MASK in broken.getMessage()
