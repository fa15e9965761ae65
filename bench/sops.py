"""What SOPS decryption adds to loading a repository: N Secrets encrypted by the real ``sops`` (age) against
the same N in plaintext (marked deliberate). Needs Go for the tools (scripts/tools-build).

    .venv/bin/python -m bench.sops [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.labels import PLAINTEXT_SECRET
from reconciler.model import load_repo
from reconciler.model.sops import Keyring
from tests.repos import write_repo
from tests.sopstools import age_keygen, secret_doc, sops_encrypt

MARK = f'\n  annotations:\n    {PLAINTEXT_SECRET}: "true"'


def _best(fn: Callable[[], object], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(n: int = 50) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        age = age_keygen(folder)

        def doc(i: int, extra: str = "") -> str:
            return secret_doc(f"pw{i}", f"keyline{i}", extra).replace("db-credentials", f"db-{i}")

        plain = write_repo(folder / "plain", {f"secrets/s{i}.yaml": doc(i, MARK) for i in range(n)})
        encrypted = write_repo(folder / "enc", {f"secrets/s{i}.yaml": doc(i) for i in range(n)})
        for i in range(n):
            sops_encrypt(encrypted / "secrets" / f"s{i}.yaml", age.recipient)
        keys = Keyring.from_file(age.file)
        base = _best(lambda: load_repo(plain, keys=lambda: keys))
        sops = _best(lambda: load_repo(encrypted, keys=lambda: keys))
        print(f"load_repo, {n} Secrets: plaintext {base * 1000:.1f} ms, SOPS {sops * 1000:.1f} ms (best of 15)")
        print(f"decryption: {(sops - base) / n * 1000:.2f} ms per encrypted Secret")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
