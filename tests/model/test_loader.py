"""The YAML loader: lines for every value, and refusal of unsafe input before interpretation."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.model.loader import parse_text, read_documents


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
