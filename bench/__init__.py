"""Benchmarks of virtnet at scale, side by side with ``kubectl`` and ``ip -batch``.

``python -m bench.run`` is the one command; ``bench/README.md`` says what each figure means. The package is
not part of the product: it generates synthetic repositories (:mod:`bench.generate`), drives the API double
and kubectl (:mod:`bench.cluster`) and the node agent against ``ip -batch`` (:mod:`bench.node`).
"""
