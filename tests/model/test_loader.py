"""The YAML loader: lines for every value, and refusal of unsafe input before interpretation."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from reconciler.model.loader import parse_text, read_documents
from reconciler.model.scalars import resolve_plain, tagged


def test_lines_of_keys_and_items_across_documents() -> None:
    text = "a: 1\n---\nkind: X\nspec:\n  items:\n    - name: one\n    - name: two\n"
    docs, problems = parse_text(text, "f.yaml")
    assert problems == []
    assert [d.index for d in docs] == [0, 1]
    second = docs[1]
    assert second.line_of(("spec", "items", 1, "name")) == 7
    assert second.line_of(("spec", "items", 0)) == 6
    # a missing field points at its nearest existing parent
    assert second.line_of(("spec", "items", 1, "mac")) == 7
    assert str(second.ref(("spec", "items", 1, "name"))) == "f.yaml:7: spec.items[1].name"


def test_alias_bomb_is_refused_without_expansion() -> None:
    levels = zip("abcdefgh", "bcdefghi", strict=True)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in levels
    )
    docs, problems = parse_text(bomb, "bomb.yaml")
    assert docs == []
    assert len(problems) == 1
    assert problems[0].ref.line == 2
    assert "aliases" in problems[0].message


def test_merge_keys_and_duplicate_keys_are_refused() -> None:
    _, merge = parse_text("base: {a: 1}\nother:\n  <<: {a: 2}\n", "m.yaml")
    assert merge[0].ref.line == 3 and "merge keys" in merge[0].message
    _, dup = parse_text("spec:\n  mtu: 1500\n  mtu: 9000\n", "d.yaml")
    assert dup[0].ref.line == 3 and "duplicate key 'mtu'" in dup[0].message


def test_syntax_error_has_a_line() -> None:
    _, problems = parse_text("a: 1\nb: [1, 2\nc: 3\n", "s.yaml")
    assert problems and problems[0].ref.file == "s.yaml"
    assert problems[0].ref.line >= 2
    assert "YAML syntax error" in problems[0].message


def test_non_utf8_oversized_and_escaping_symlink(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "latin1.yaml").write_bytes(b"a: 1\nname: caf\xe9\n")
    (repo / "big.yaml").write_text("x: " + "y" * 200 + "\n")
    outside = tmp_path / "secret.yaml"
    outside.write_text("token: hunter2\n")
    os.symlink(outside, repo / "link.yaml")
    (repo / ".git").mkdir()
    (repo / ".git" / "ignored.yaml").write_text("::: not yaml")
    docs, problems = read_documents(repo, max_file_bytes=100)
    found = {p.ref.file: p for p in problems}
    assert set(found) == {"latin1.yaml", "big.yaml", "link.yaml"}
    assert found["latin1.yaml"].ref.line == 2 and "UTF-8" in found["latin1.yaml"].message
    assert "limit is 100 bytes" in found["big.yaml"].message
    assert "outside the repository" in found["link.yaml"].message
    assert docs == []  # nothing from the symlink target was read


def test_symlink_inside_repo_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text("a: 1\n")
    os.symlink(tmp_path / "real.yaml", tmp_path / "alias.yaml")
    docs, problems = read_documents(tmp_path)
    assert problems == []
    assert sorted(d.file for d in docs) == ["alias.yaml", "real.yaml"]


# ---- how plain scalars are read (YAML 1.2 core; what YAML 1.1 reads differently is refused) -------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100", 100),
        ("-7", -7),
        ("+5", 5),
        ("0", 0),
        ("0.25", 0.25),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1.0e+3", 1000.0),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("~", None),
        ("null", None),
        ("", None),
        ("y", "y"),  # a YAML 1.1 boolean only to go-yaml v2; PyYAML and YAML 1.2 read a string
        ("n", "n"),
        ("1:30", "1:30"),  # base 60 in YAML 1.1 (90); a string in YAML 1.2 and to kubectl
        ("12:34:56:78:9a:bc", "12:34:56:78:9a:bc"),
        ("2024-01-01", "2024-01-01"),  # a date in YAML 1.1; JSON has no dates
        ("=", "="),  # PyYAML's "value" tag had no constructor: a crash-like syntax error before
        ("<<", "<<"),  # a merge key only as a key
        ("0x", "0x"),
        ("1.2.3", "1.2.3"),
        ("'0100'", "0100"),  # quoted: always a string
        ('"yes"', "yes"),
        ("!!str 0100", "0100"),
        ("! yes", "yes"),  # the non-specific tag: a string
        ("!!int 12", 12),
        ("!!float 1", 1.0),
        ("!!bool true", True),
        ("!!null ~", None),
        ("!!map {a: 1}", {"a": 1}),
        ("!!seq [1]", [1]),
    ],
)
def test_plain_and_tagged_scalars(text: str, value: object) -> None:
    docs, problems = parse_text(f"spec:\n  v: {text}\n", "f.yaml")
    assert problems == []
    assert docs[0].data["spec"]["v"] == value and type(docs[0].data["spec"]["v"]) is type(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0100", "0100 is octal (64) in YAML 1.1 but decimal (100) in YAML 1.2: write 64 or 100, or quote it"),
        ("-017", "-017 is octal (-15) in YAML 1.1 but decimal (-17) in YAML 1.2: write -15 or -17"),
        ("09", "09 has a leading zero (YAML 1.1 reads such numbers as octal); write 9, or quote it ('09')"),
        ("00", "00 has a leading zero (octal in YAML 1.1); write 0, or quote it ('00')"),
        ("-07", "-07 has a leading zero (octal in YAML 1.1); write -7"),
        ("0x_", "0x_ is a hexadecimal number; numbers must be plain decimal: write it in decimal"),
        ("-0b__", "-0b__ is a binary number; numbers must be plain decimal: write it in decimal"),
        ("0o17", "0o17 is an octal number; numbers must be plain decimal: write 15, or quote it ('0o17')"),
        ("0x1F", "0x1F is a hexadecimal number; numbers must be plain decimal: write 31"),
        ("0b101", "0b101 is a binary number; numbers must be plain decimal: write 5"),
        ("1_000", "1_000 uses digit separators, a number only in YAML 1.1; write it without '_'"),
        ("1_000.5", "1_000.5 uses digit separators"),
        ("yes", "yes is a boolean (true) in YAML 1.1 but a string in YAML 1.2; write true for the boolean, or quote"),
        ("No", "No is a boolean (false) in YAML 1.1 but a string in YAML 1.2; write false"),
        ("ON", "ON is a boolean (true) in YAML 1.1"),
        ("off", "off is a boolean (false) in YAML 1.1"),
        (".inf", ".inf is not a finite number"),
        ("-.Inf", "-.Inf is not a finite number"),
        (".NaN", ".NaN is not a finite number"),
        ("!!int 0x1F", "0x1F is a hexadecimal number"),
        ("!!int 1.5", "'1.5' is not an integer (tagged !!int)"),
        ("!!bool yes", "yes is a boolean (true) in YAML 1.1"),
        ("!!bool 1", "'1' is not a boolean (tagged !!bool)"),
        ("!!float .inf", ".inf is not a finite number"),
        ("!!null x", "'x' is not null (tagged !!null)"),
        ("!!timestamp 2024-01-01", "YAML tag !!timestamp is not supported: virtnet reads only !!str, !!int"),
        ("!!binary aGVsbG8=", "YAML tag !!binary is not supported"),
        ("!vlan 100", "YAML tag !vlan is not supported"),
        ("!!set {a}", "YAML tag !!set on a mapping is not supported"),
        ("!!omap [{a: 1}]", "YAML tag !!omap on a sequence is not supported"),
        ("!!pairs [{a: 1}]", "YAML tag !!pairs on a sequence is not supported"),
        ("!!seq {a: 1}", "YAML tag !!seq on a mapping is not supported"),
        ("!config {a: 1}", "YAML tag !config on a mapping is not supported"),
        ("!<tag:example.com,2024:x> 1", "YAML tag tag:example.com,2024:x is not supported"),
    ],
)
def test_ambiguous_scalars_and_tags_are_refused_at_their_field(text: str, message: str) -> None:
    docs, problems = parse_text(f"spec:\n  v: {text}\n", "f.yaml")
    assert docs == [] and len(problems) == 1
    assert (problems[0].ref.file, problems[0].ref.line, problems[0].ref.field) == ("f.yaml", 2, "spec.v")
    assert message in problems[0].message


def test_no_short_scalar_raises() -> None:
    """Every plain or tagged scalar of up to 4 characters from number-like characters has a value or a
    refusal, never an exception (a fuzzer found ``00`` and ``0x_``)."""
    alphabet = "019+-._eExXoObB:"
    tags = [None, *(f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null"))]
    for size in range(1, 5):
        for chars in itertools.product(alphabet, repeat=size):
            raw = "".join(chars)
            for tag in tags:
                resolve_plain(raw) if tag is None else tagged(tag, raw)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("1", "mapping key 1 is a number; keys must be strings: quote it"),
        ("1.5", "mapping key 1.5 is a number"),
        ("true", "mapping key true is a boolean"),
        ("~", "mapping key ~ is null"),
        ("on", "on is a boolean (true) in YAML 1.1"),  # the GitHub Actions surprise
        ("0100", "0100 is octal (64)"),
        ("!!int 7", "mapping key 7 is a number"),
    ],
)
def test_mapping_keys_must_be_strings(key: str, message: str) -> None:
    docs, problems = parse_text(f"metadata:\n  labels:\n    {key}: x\n", "f.yaml")
    assert docs == [] and len(problems) == 1
    assert (problems[0].ref.line, problems[0].ref.field) == (3, "metadata.labels")
    assert message in problems[0].message
    docs, problems = parse_text(f"'{key}': x\n", "f.yaml")  # quoted, the same text is a string key
    assert problems == [] and docs[0].data == {key: "x"}


def test_every_value_problem_of_a_file_is_listed_and_good_documents_still_load() -> None:
    text = "a: 0100\nb: [yes, 1]\nc: !!set {x}\n---\nok: 1\n---\n7: x\n"
    docs, problems = parse_text(text, "f.yaml")
    assert [d.data for d in docs] == [{"ok": 1}]
    assert [(p.ref.line, p.ref.field) for p in problems] == [(1, "a"), (2, "b[0]"), (3, "c"), (7, "")]
    many = "".join(f"k{i}: yes\n" for i in range(80))
    docs, problems = parse_text(many + "---\nlater: 1\n", "f.yaml")
    assert docs == [] and len(problems) == 51
    assert (problems[-1].ref.line, problems[-1].message) == (51, "too many problems; the rest of the file was not read")


def test_a_value_problem_before_a_refusal_is_still_reported() -> None:
    _, problems = parse_text("a: 0x10\nb: *nowhere\n", "f.yaml")
    assert [(p.ref.line, p.ref.field) for p in problems] == [(1, "a"), (2, "")]
