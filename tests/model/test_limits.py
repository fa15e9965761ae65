"""The loader's limits: input that used to kill the process (SIGSEGV, RecursionError, TypeError, a symlink
loop's RuntimeError) or could grow without bound is a ``file:line`` problem, and what is just inside each
limit still loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.model import limits
from reconciler.model.limits import (
    MAX_DEPTH,
    MAX_DIR_DEPTH,
    MAX_DOCUMENTS_PER_FILE,
    MAX_KEY_CHARS,
    MAX_MAPPING_KEYS,
    MAX_SCALAR_CHARS,
    MAX_SEQUENCE_ITEMS,
)
from reconciler.model.loader import parse_text, read_documents

DEEP = "nested deeper than 64 levels of mappings and sequences"


def only_problem(text: str) -> tuple[int, str]:
    docs, problems = parse_text(text, "f.yaml")
    assert docs == [] and len(problems) == 1, problems
    return problems[0].ref.line, problems[0].message


def block_mappings(depth: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(depth - 1)) + "  " * (depth - 1) + "leaf: 1\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("x: " + "[" * 40_000 + "\n", 1),  # unclosed: PyYAML's C composer overflowed the C stack (SIGSEGV)
        ("x: " + "[" * 40_000 + "]" * 40_000 + "\n", 1),
        ("[" * 5_000 + "]" * 5_000 + "\n", 1),  # RecursionError before
        ("x: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n", 1),  # flow mappings
        ("x:\n  " + "- " * 2_000 + "x\n", 2),  # block sequences nested on one line
        ("spec:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(1_500)) + "  " * 1_501 + "v\n", 65),
        ("a: [" * 10 + "{b: " * 60 + "1" + "}" * 60 + "]" * 10 + "\n", 1),  # mixed
    ],
    ids=["40k-unclosed", "40k-closed", "5k-root", "flow-mappings", "block-sequences", "block-mappings", "mixed"],
)
def test_deep_nesting_is_a_problem_with_its_line(text: str, line: int) -> None:
    assert only_problem(text) == (line, DEEP)


def test_nesting_up_to_the_limit_loads() -> None:
    docs, problems = parse_text(block_mappings(MAX_DEPTH), "f.yaml")
    assert problems == []
    node = docs[0].data
    for i in range(MAX_DEPTH - 1):
        node = node[f"k{i}"]
    assert node == {"leaf": 1}
    flow = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_text(flow, "f.yaml")[1] == []
    assert only_problem("[" + flow + "]")[1] == DEEP


def test_a_deep_document_is_refused_without_a_signal(tmp_path: Path) -> None:
    """The CLI in a child process: exit 1 with the problem, not SIGSEGV (-11) or a traceback."""
    (tmp_path / "deep.yaml").write_text("x: " + "[" * 40_000 + "\n")
    run = subprocess.run(
        [sys.executable, "-c", "from reconciler.cli import main; main()", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert f"deep.yaml:1: {DEEP}" in run.stderr
    assert "Traceback" not in run.stderr


def test_keys_per_mapping() -> None:
    keys = "".join(f"k{i}: {i}\n" for i in range(MAX_MAPPING_KEYS))
    docs, problems = parse_text(keys, "f.yaml")
    assert problems == [] and len(docs[0].data) == MAX_MAPPING_KEYS
    line, message = only_problem(keys + "one-more: 1\n")
    assert (line, message) == (MAX_MAPPING_KEYS + 1, f"more than {MAX_MAPPING_KEYS} keys in a mapping")
    flow = "x: {" + ", ".join(f"k{i}: 1" for i in range(MAX_MAPPING_KEYS + 1)) + "}\n"
    assert only_problem(flow) == (1, f"more than {MAX_MAPPING_KEYS} keys in a mapping")


def test_items_per_sequence() -> None:
    items = "x:\n" + "".join(f"- {i}\n" for i in range(MAX_SEQUENCE_ITEMS))
    docs, problems = parse_text(items, "f.yaml")
    assert problems == [] and len(docs[0].data["x"]) == MAX_SEQUENCE_ITEMS
    assert only_problem(items + "- {}\n") == (MAX_SEQUENCE_ITEMS + 2, "more than 10000 items in a sequence")
    assert only_problem(items + "- last\n")[0] == MAX_SEQUENCE_ITEMS + 2


def test_long_values_and_keys() -> None:
    docs, problems = parse_text("a: " + "x" * MAX_SCALAR_CHARS + "\n", "f.yaml")
    assert problems == [] and len(docs[0].data["a"]) == MAX_SCALAR_CHARS
    too_long = f"a value of {MAX_SCALAR_CHARS + 1} characters; the limit is {MAX_SCALAR_CHARS}"
    assert only_problem("a: 1\nb: '" + "x" * (MAX_SCALAR_CHARS + 1) + "'\n") == (2, too_long)
    assert only_problem("a: |-\n  " + "x" * (MAX_SCALAR_CHARS + 1) + "\n") == (1, too_long)
    # libyaml allows implicit keys up to 1024 characters; an explicit "? key" may be longer
    assert parse_text("? " + "k" * MAX_KEY_CHARS + "\n: 1\n", "f.yaml")[1] == []
    key = f"a mapping key of {MAX_KEY_CHARS + 1} characters; the limit is {MAX_KEY_CHARS}"
    assert only_problem("a: 1\n? " + "k" * (MAX_KEY_CHARS + 1) + "\n: 1\n") == (2, key)


@pytest.mark.parametrize(
    ("value", "loaded"),
    [
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("1.7976931348623157e308", 1.7976931348623157e308),
    ],
)
def test_numbers_at_the_edge_of_64_bits_load(value: str, loaded: object) -> None:
    docs, problems = parse_text(f"n: {value}\n", "f.yaml")
    assert problems == [] and docs[0].data["n"] == loaded


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9" * 5_000, "integer 9999999999999999999999999999999999999999… is out of range"),  # ValueError before
        ("9223372036854775808", "integer 9223372036854775808 is out of range"),
        ("-9223372036854775809", "integer -9223372036854775809 is out of range"),
        ("1e309", "1e309 is too large for a 64-bit float"),
        ("1" + "0" * 400 + ".5", "is too large for a 64-bit float"),
    ],
)
def test_numbers_beyond_64_bits_are_problems(value: str, message: str) -> None:
    docs, problems = parse_text(f"spec:\n  cpu: {value}\n", "f.yaml")
    assert docs == [] and len(problems) == 1
    assert (problems[0].ref.line, problems[0].ref.field) == (2, "spec.cpu")
    assert message in problems[0].message


def test_documents_per_file() -> None:
    assert len(parse_text("--- {a: 1}\n" * MAX_DOCUMENTS_PER_FILE, "f.yaml")[0]) == MAX_DOCUMENTS_PER_FILE
    docs, problems = parse_text("--- ~\n" * MAX_DOCUMENTS_PER_FILE + "---\nlast: 1\n", "f.yaml")
    assert docs == []
    assert [(p.ref.line, p.message) for p in problems] == [
        (MAX_DOCUMENTS_PER_FILE + 2, f"too many documents: more than {MAX_DOCUMENTS_PER_FILE} in this file")
    ]


def test_control_characters_have_a_line() -> None:
    assert only_problem("a: 1\nb: 2\nc: caf\u00e9 \x01\n") == (3, "YAML error: control characters are not allowed")


# ---- the repository as a whole ------------------------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_repository_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_REPO_BYTES", 100)
    write(tmp_path, {"a.yaml": "a: " + "x" * 50 + "\n", "b.yaml": "b: " + "x" * 50 + "\n", "c.yaml": "c: 1\n"})
    docs, problems = read_documents(tmp_path)
    assert [d.file for d in docs] == ["a.yaml"]
    assert [(p.ref.file, p.message) for p in problems] == [
        ("b.yaml", "the YAML files pass 100 bytes in total here (the limit)")
    ]


def test_repository_files_and_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, {f"f{i}.yaml": "--- {a: 1}\n--- {b: 2}\n" for i in range(4)})
    monkeypatch.setattr(limits, "MAX_FILES", 3)
    docs, problems = read_documents(tmp_path)
    assert len(docs) == 6 and [(p.ref.file, p.message) for p in problems] == [
        ("f3.yaml", "more than 3 YAML files in the repository")
    ]
    monkeypatch.setattr(limits, "MAX_FILES", 100)
    monkeypatch.setattr(limits, "MAX_DOCUMENTS", 5)
    docs, problems = read_documents(tmp_path)
    assert len(docs) == 5 and [(str(p.ref), p.message) for p in problems] == [
        ("f2.yaml:2", "too many documents: more than 5 in the repository")
    ]


def test_repository_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory grows with values (keys and items), not bytes: they have a budget of their own."""
    write(tmp_path, {"a.yaml": "x: [1, 2, 3]\n", "b.yaml": "--- {y: 1}\n--- [1, 2, 3, 4]\n", "c.yaml": "z: 1\n"})
    monkeypatch.setattr(limits, "MAX_VALUES", 6)
    docs, problems = read_documents(tmp_path)
    assert [d.data for d in docs] == [{"x": [1, 2, 3]}, {"y": 1}, [1, 2, 3, 4]]
    assert [(str(p.ref), p.message) for p in problems] == [
        ("b.yaml:2", "the repository has more than 6 values (mapping keys and sequence items)")
    ]


def test_folders_nested_too_deep(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*[f"d{i}" for i in range(MAX_DIR_DEPTH)])
    write(deep, {"ok.yaml": "a: 1\n", "d/too-deep.yaml": "b: 1\n"})
    docs, problems = read_documents(tmp_path)
    assert [d.file.rsplit("/", 1)[-1] for d in docs] == ["ok.yaml"]
    rel = deep.relative_to(tmp_path).as_posix() + "/d"
    assert [(p.ref.file, p.message) for p in problems] == [(rel, f"folders nested deeper than {MAX_DIR_DEPTH} levels")]


def test_symlink_loops_and_broken_links_name_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"ok.yaml": "a: 1\n"})
    os.symlink("self.yaml", tmp_path / "self.yaml")
    os.symlink("b.yaml", tmp_path / "a.yaml")
    os.symlink("a.yaml", tmp_path / "b.yaml")
    os.symlink("missing.yaml", tmp_path / "broken.yaml")
    (tmp_path / "dir").mkdir()
    os.symlink(".", tmp_path / "dir" / "again")  # a folder that contains itself: not followed
    os.symlink("loop2", tmp_path / "dir" / "loop1")  # a loop without a YAML name: not a file to read
    os.symlink("loop1", tmp_path / "dir" / "loop2")
    docs, problems = read_documents(tmp_path)
    assert [d.file for d in docs] == ["ok.yaml"]
    assert [(p.ref.file, p.message) for p in problems] == [
        ("a.yaml", "symlink loop: the link never reaches a file"),
        ("b.yaml", "symlink loop: the link never reaches a file"),
        ("broken.yaml", "symlink points to a file that does not exist"),
        ("self.yaml", "symlink loop: the link never reaches a file"),
    ]
