"""Coverage-guided fuzz target: bytes → one YAML file in a tiny repository → load → validate → render → dump.

Run as a script (``python tests/fuzz/target.py [libFuzzer flags] [corpus dirs]``), never imported by
pytest collection into the test process: atheris instruments the reconciler modules it imports, and a
crash ends the process. ``tests/fuzz/test_fuzz.py`` runs it in a subprocess with a time and RSS bound.

The repository is a Cluster document that is always valid (``clusters/fuzz.yaml``) plus the fuzzed bytes
as ``manifests/fuzz.yaml``. Allowed outcomes:

- ``ModelError`` whose problems each name a file and carry a message;
- success, and then every rendered object serialises with ``json.dumps(..., allow_nan=False)`` and with
  ``reconciler.render.dump`` in both formats.

Anything else (another exception, RecursionError, a problem without a file, an unserialisable object)
is a finding: it is raised, and libFuzzer writes the input as ``crash-<sha1>``.

``check(data)`` is the oracle, usable without atheris (the regression tests replay inputs through it).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

CLUSTER = """\
apiVersion: virtnet.io/v1alpha1
kind: Cluster
metadata:
  name: prod
spec:
  allowedNamespaces: [apps, db, nfv]
  macPool:
    start: "02:00:00:00:00:00"
    end: "02:00:00:ff:ff:ff"
  loadBalancerPools:
    - name: public
      addresses: ["192.0.2.100-192.0.2.120"]
  vmRestart: never
"""
FUZZ_FILE = "manifests/fuzz.yaml"


class Finding(AssertionError):
    """The pipeline broke its contract on an input (not a crash of its own, but a wrong outcome)."""


REPO = Path(__file__).resolve().parents[2]
SEED_SOURCES = [REPO / "examples" / "repo", *sorted((REPO / "tests" / "corpus").iterdir())]
MAX_SEED_BYTES = 64 * 1024


def _yaml_files(folder: Path) -> list[Path]:
    """The folder's YAML files, symlinks left out (the corpus has loops and escapes on purpose)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not (Path(dirpath) / d).is_symlink())
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.endswith((".yaml", ".yml")) and not path.is_symlink() and path.stat().st_size <= MAX_SEED_BYTES:
                found.append(path)
    return found


def write_seeds(dest: Path) -> int:
    """Seed inputs from examples/repo and tests/corpus/*: each file alone (Cluster files left out, the
    target brings its own) and each folder's files as one multi-document file. Returns how many."""
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for source in SEED_SOURCES:
        if not source.is_dir() or source.is_symlink():
            continue
        texts = []
        for path in _yaml_files(source):
            data = path.read_bytes()
            if b"kind: Cluster" in data:
                continue
            texts.append(data)
            (dest / f"{source.name}--{path.relative_to(source).as_posix().replace('/', '-')}").write_bytes(data)
            count += 1
        if len(texts) > 1:
            (dest / f"{source.name}--all.yaml").write_bytes(b"\n---\n".join(texts))
            count += 1
    return count


def make_root(base: str | None = None) -> Path:
    """A repository with the fixed Cluster and an empty fuzzed file; reused for every input."""
    root = Path(tempfile.mkdtemp(prefix="virtnet-fuzz-", dir=base))
    (root / "clusters").mkdir()
    (root / "manifests").mkdir()
    (root / "clusters" / "fuzz.yaml").write_text(CLUSTER)
    return root


def check(data: bytes, root: Path) -> str:
    """Run one input through the pipeline; return ``"invalid"`` or ``"rendered"``, raise on a finding."""
    from reconciler.errors import ModelError
    from reconciler.model import load_repo
    from reconciler.render import dump, render

    (root / FUZZ_FILE).write_bytes(data)
    try:
        repo = load_repo(root)
    except ModelError as exc:
        if not exc.problems:
            raise Finding("ModelError without problems") from exc
        for p in exc.problems:
            if not p.ref.file or not p.message:
                raise Finding(f"problem without a file or message: {p!r}") from exc
        str(exc)  # the report itself must format
        return "invalid"
    try:
        rendered = render(repo)
    except ModelError as exc:  # render refuses collisions and objects the API server would refuse
        for p in exc.problems:
            if not p.ref.file or not p.message:
                raise Finding(f"problem without a file or message: {p!r}") from exc
        str(exc)
        return "invalid"
    json.dumps(rendered.objects, allow_nan=False, sort_keys=True)
    dump(rendered.objects, "json")
    dump(rendered.objects, "yaml")
    return "rendered"


def main(argv: list[str]) -> None:
    import atheris  # type: ignore[import-untyped]

    with atheris.instrument_imports(include=["reconciler"]):
        import reconciler.errors
        import reconciler.model
        import reconciler.render  # noqa: F401

    sys.path.insert(0, str(REPO / "tests"))  # as pytest sees it: tests/fuzz is the package ``fuzz``
    from fuzz.known import known, signature

    root = make_root(os.environ.get("VIRTNET_FUZZ_TMP"))
    # VIRTNET_FUZZ_COLLECT=DIR: exploration mode, every distinct new finding is written there (input and
    # traceback, one per signature) and fuzzing goes on instead of stopping at the first crash
    collect = os.environ.get("VIRTNET_FUZZ_COLLECT")
    seen: set[tuple[str, str, str]] = set()

    def one_input(data: bytes) -> None:
        try:
            check(data, root)
        except Exception as exc:
            if known(exc) is not None:
                return  # tolerated while its strict xfail in test_fuzz.py stands
            if not collect:
                raise
            sig = signature(exc)
            if sig not in seen:
                seen.add(sig)
                name = f"{sig[0]}-{Path(sig[1]).stem}-{sig[2]}"
                Path(collect, name + ".input").write_bytes(data)
                Path(collect, name + ".txt").write_text("".join(traceback.format_exception(exc)))
                print(f"NEW FINDING {name}", file=sys.stderr, flush=True)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
