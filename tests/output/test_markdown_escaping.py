"""Repository text cannot change the structure of a PR comment (issue #14, class 12).

Every place where the comment quotes the repository -- the cluster name, object names, reasons, warnings
and errors, field paths and values in the diffs, file paths, fields and messages of problems, policy,
node, network, VM and Service names, interface changes, findings, the note, who accepted a risk, labels in
the topology picture -- is filled with each hostile text below, and the comment is parsed with
markdown-it-py (CommonMark + GFM tables and strikethrough, as GitHub renders). The token structure must
be exactly that of the same comment filled with a plain word: no extra heading ("Reviewed: safe"),
list, quote, table cell, link, image, emphasis, HTML (tags, comments) or code block, and no code block
closed early. And the hostile text must still be there to read, character for character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from reconciler.engine.diff import Change
from reconciler.engine.plan import Action, Item, Plan, VMChange
from reconciler.errors import Problem, SourceRef
from reconciler.objects import Obj, obj_id
from reconciler.output import markdown as md
from reconciler.output.comment import pull_request_comment
from reconciler.safety.checks import Finding
from reconciler.safety.radius import NetworkImpact, PolicyImpact, ServiceImpact, VMImpact
from reconciler.safety.report import SafetyReport

HEAD = "0123456789abcdef0123456789abcdef01234567"
LINK = "https://forge.test/o/r/blob/0123/"
BANNER = "### :white_check_mark: Reviewed: safe"

HOSTILE = {
    "heading": f"x\n\n{BANNER}\n\nmerge at will",
    "inline code breakout": f"x` {BANNER} `y",
    "fence breakout": f"a\n```\n</details>\n\n{BANNER}\n\n```diff\nb",
    "long fence breakout": f"a\n`````\n{BANNER}\n~~~\n",
    "html comment hides the rest": "x <!-- everything after this is hidden",
    "html tags": "<img src=x onerror=alert(1)><details open><summary>Reviewed: safe</summary><b>ok</b>",
    "closing our tags": "</code></summary></details></sub>\n\n" + BANNER,
    "link and image": "[Reviewed: safe](https://evil.test) ![x](https://evil.test/p.png)",
    "emphasis": "**Reviewed: safe** _ok_ ~~no~~ $x^2$",
    "table": "a | b |\n|---|---|\n| c | d",
    "entities": "&lt;b&gt; &amp; &#60;script&#62; &#x60;",
    "block starts": "# h\n> quote\n- item\n1. one\n    code\n---\n***",
    "list starts": "1) Reviewed",
    "reference definition": "[x]: https://evil.test",
    "backslashes": "\\`x\\` \\\\ \\*",
    "controls": "a\x00b\x1b[31mc\u202eevil\u2066d\u2028e\r\nf\tg",
}


@dataclass
class Outcome:
    plan: Plan | None
    safety: SafetyReport | None
    desired: list[Obj]
    problems: list[Problem] = field(default_factory=list)
    failed: str | None = None
    message: str = ""


def policy(name: str, iface: str) -> Obj:
    return {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": name},
        "spec": {"desiredState": {"interfaces": [{"name": iface, "type": "linux-bridge", "state": "up"}]}},
    }


def planned(s: str) -> Outcome:
    """A plan whose every repository-derived string is ``s``."""
    nncp = policy("p1", f"br-{s}")
    items = (
        Item(Action.CREATE, obj_id(nncp), f"NodeNetworkConfigurationPolicy/{s}", 0, s, desired=nncp),
        Item(
            Action.UPDATE, "/ConfigMap/apps/c", f"ConfigMap/apps/{s}", 2, s,
            changes=(Change("set", f"data.{s}", s, f"new {s}"), Change("remove", f"metadata.labels.{s}", s)),
            vm_change=VMChange.RESTART_REQUIRED,
        ),
        Item(Action.DELETE, "/Secret/apps/s", f"Secret/apps/{s}", 1, s, changes=(Change("set", "data.k", s, s),)),
    )  # fmt: skip
    plan = Plan(cluster=s, items=items, warnings=(s,), errors=(s,))
    ref = SourceRef(f"vms/{s}.yaml", 7, f"spec.{s}")
    safety = SafetyReport(
        policies=(PolicyImpact(s, "p", "create", (s, "w2"), (s,), s, ((s,), ("w2",)), {s: (s,), "w2": (s,)}),),
        networks=(NetworkImpact(s, "n", "update", s, (VMImpact(s, "v", "restart"),)),),
        services=(ServiceImpact(s, s, s),),
        findings=(
            Finding("error", "missing-nic", s, node=s, interface=s, ref=ref, obj=obj_id(nncp)),
            Finding("error", "in-use", s, ref=SourceRef(s), obj="x"),
            Finding("warning", "no-nodes", s, ref=ref),
        ),
        accepted=frozenset({"in-use"}),
        accepted_by=s,
        note=s,
    )
    return Outcome(plan, safety, [nncp], failed="ApplyFailed", message=s)


def invalid(s: str) -> Outcome:
    problems = [Problem(SourceRef(f"dir/{s}.yaml", 3, f"metadata.{s}"), s), Problem(SourceRef(s), s)]
    return Outcome(None, None, [], problems, failed="ValidationFailed", message=s)


def failed(s: str) -> Outcome:
    return Outcome(None, None, [], failed="SourceFailed", message=s)


def no_safety(s: str) -> Outcome:  # the topology block the comment draws itself
    outcome = planned(s)
    outcome.safety = None
    return outcome


PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
SHAPES = {"planned": planned, "invalid": invalid, "failed": failed, "no safety report": no_safety}


SUMMARY = re.compile(r"<details><summary><code>(.*?)</code></summary>")


def _html(content: str) -> str:
    """Raw HTML as a skeleton sees it: our collapsible diff's title (an object name) is not structure."""
    return SUMMARY.sub("<details><summary><code>NAME</code></summary>", content).strip()


def skeleton(tokens: list[Token]) -> list[tuple[str, ...]]:
    """The structure: every block token, every inline token but text, and what raw HTML says."""
    out: list[tuple[str, ...]] = []
    for t in tokens:
        out.append((t.type, t.tag, t.info if t.type == "fence" else "", _html(t.content) if "html" in t.type else ""))
        for c in t.children or ():
            if c.type not in ("text", "softbreak"):
                out.append((c.type, c.tag, _html(c.content) if "html" in c.type else ""))
    return out


def readable(tokens: list[Token]) -> str:
    """What a reader sees, as one string: text, code and code blocks."""
    parts: list[str] = []
    for t in tokens:
        if t.type in ("fence", "code_block"):
            parts.append(t.content)
        parts += [c.content for c in t.children or () if c.type in ("text", "code_inline")]
    return "\n".join(parts)


def in_block(s: str) -> str:
    """``s`` as a code block shows it: control characters replaced, lines kept."""
    return md.block(s).split("\n", 1)[1].rsplit("\n", 1)[0]


def one_line(s: str) -> str:
    """``s`` as the comment shows it in running text: control characters replaced, lines joined."""
    return in_block(s).replace("\n", " ").replace("\t", " ").strip()


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_repository_text_leaves_the_comment_structure_alone(shape: str, kind: str) -> None:
    build = SHAPES[shape]
    plain = PARSER.parse(pull_request_comment(build("plain"), "prod", HEAD, LINK))  # type: ignore[arg-type]
    body = pull_request_comment(build(HOSTILE[kind]), "prod", HEAD, LINK)  # type: ignore[arg-type]
    tokens = PARSER.parse(body)
    assert skeleton(tokens) == skeleton(plain)
    headings = [tokens[i + 1] for i, t in enumerate(tokens) if t.type == "heading_open"]
    words = ["".join(c.content for c in h.children or () if c.type == "text") for h in headings]
    assert not [w for w in words if "Reviewed" in w or "white_check_mark" in w]  # (quoted in code is fine)
    html = [t.content for t in tokens if t.type == "html_block"]
    html += [c.content for t in tokens for c in t.children or () if c.type == "html_inline"]
    ours = {"<!-- virtnet:plan cluster=prod -->", "<sub>", "</sub>", "<br>", "</details>"}
    ours |= {"<details><summary>Blast radius</summary>"}  # our own words, no repository text
    assert {_html(h) for h in html} <= ours | {"<details><summary><code>NAME</code></summary>"}
    titles = [unescape(m[1]) for h in html for m in SUMMARY.finditer(h)]
    assert all("<" not in m[1] for h in html for m in SUMMARY.finditer(h))  # the title is text, not tags
    seen = "\n".join([readable(tokens), *titles])
    assert one_line(HOSTILE[kind]) in seen or in_block(HOSTILE[kind]) in seen  # still there to read, as written


def test_escaping_functions() -> None:
    assert md.code("a`b") == "``a`b``" and md.code("`") == "`` ` ``" and md.code("a|b", cell=True) == "`a\\|b`"
    assert md.code("x\ny") == "`x y`"
    assert md.text("# a *b* <c> [d](e) 1. f") == "\\# a \\*b\\* \\<c\\> \\[d\\](e) 1. f"
    assert md.text("1. one") == "1\\. one" and md.text("  - x") == "\\- x"
    assert md.text("worker-1, eth9: missing") == "worker-1, eth9: missing"  # plain words stay readable
    assert md.block("a\n````\nb", "diff") == "`````diff\na\n````\nb\n`````"
    assert md.html('<a href="x">\n\n</a>') == "&lt;a href=&quot;x&quot;&gt;  &lt;/a&gt;"
    assert md.link_path("dir/a b).yaml") == "dir/a%20b%29.yaml"
    assert md.text("a\u202eb\x00c") == "a\ufffdb\ufffdc"
