"""The model stage's entry point: read a repository, parse every document, pick the cluster, run the rules.

Side effects: reads files (through ``reconciler.model.loader``). The parts it composes are pure:
``repo`` parses one document, ``rules`` checks the documents against each other. This module sits above
both, so the rules can know the ``Repo`` type without the loader knowing the rules (no import cycle).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler import labels
from reconciler.errors import ModelError, Problem, SourceRef
from reconciler.model.basedomain import DomainSource, resolve_base_domain
from reconciler.model.cluster import ClusterSpec
from reconciler.model.loader import Document, ParseCache, paused_gc, read_documents
from reconciler.model.repo import Entry, Raw, Repo, parse_document
from reconciler.model.rules import validate_repo
from reconciler.model.sops import KeySource, keys_from_env, open_documents
from reconciler.model.vmrules import VmMemo


def _clusters_of(item: Entry[Any] | Raw) -> list[str]:
    if isinstance(item, Entry):
        return list(item.meta.clusters)
    value = (item.obj["metadata"].get("annotations") or {}).get(labels.CLUSTERS, "")
    return [c.strip() for c in value.split(",") if c.strip()]


def load_repo(
    root: Path,
    cluster: str | None = None,
    keys: KeySource = keys_from_env,
    domains: DomainSource | None = None,
    cache: ParseCache | None = None,
) -> Repo:
    """Load, schema-check and cross-check the repository for one cluster; raise ModelError on any problem.

    The whole repository is schema-checked even when it describes several clusters: a typo in another
    cluster's file still blocks, because one commit must not be half valid. SOPS-encrypted Secrets are
    decrypted with the age identities ``keys`` gives (``reconciler.model.sops``; by default the ones the
    ``sops`` tool would use), and plaintext Secret data is refused unless marked deliberate. ``domains`` reads
    the live cluster's base domain (``reconciler.model.basedomain``); it is called only when the selected
    cluster enables secondary DNS, and without it (offline) the repository must state ``baseDomain``.
    ``cache`` (kept by the caller across loads) skips parsing and schema-checking the files whose bytes did
    not change.
    """
    with paused_gc():
        return _load(root, cluster, keys, domains, cache)


def _parse_document(doc: Document, cache: ParseCache | None) -> tuple[Entry[Any] | Raw | None, list[Problem]]:
    if cache is None:
        return parse_document(doc)
    # by identity, and the document kept beside its result: an id alone may be reused by a later object
    # (a decrypted Secret is a fresh document on every load)
    found = cache.parsed.get(id(doc))
    if found is None or found[0] is not doc:
        found = cache.parsed[id(doc)] = (doc, parse_document(doc))
    return found[1]


def _load(
    root: Path, cluster: str | None, keys: KeySource, domains: DomainSource | None, cache: ParseCache | None
) -> Repo:
    docs, problems = read_documents(root, cache=cache)
    problems += open_documents(docs, keys)
    items: list[Entry[Any] | Raw] = []
    # names of documents that failed their schema: not "undefined" elsewhere ("*": a file did not even
    # parse, so any name may be defined there)
    broken: set[str] = {"*"} if problems else set()
    cluster_broken = False  # a Cluster document failed its schema (that problem is reported already)
    for doc in docs:
        item, found = _parse_document(doc, cache)
        problems += found
        if item is not None:
            items.append(item)
        elif isinstance(doc.data, dict):
            cluster_broken = cluster_broken or doc.data.get("kind") == "Cluster"
            if isinstance(doc.data.get("metadata"), dict):
                broken.add(str(doc.data["metadata"].get("name")))
    clusters = [i for i in items if isinstance(i, Entry) and i.kind == "Cluster"]
    names = {c.name for c in clusters}
    for item in items:
        for name in _clusters_of(item):
            if name not in names:
                where = ("metadata", "clusters") if isinstance(item, Entry) else ("metadata", "annotations")
                problems.append(Problem(item.doc.ref(where), f"cluster {name!r} is not defined by any Cluster"))
    selected = _select_cluster(root, clusters, cluster, problems, cluster_broken)
    if selected is None:
        raise ModelError(problems)
    selected = _with_base_domain(selected, domains, problems)
    chosen = [i for i in items if i is not selected and (not _clusters_of(i) or selected.name in _clusters_of(i))]
    repo = Repo(
        root=root,
        cluster=selected,
        entries=[i for i in chosen if isinstance(i, Entry) and i.kind != "Cluster"],
        raw=[i for i in chosen if isinstance(i, Raw)],
        broken=broken,
    )
    # cross-document rules run even when some documents failed, so one round lists everything
    if cache is not None and cache.rules is None:
        cache.rules = VmMemo()
    problems += validate_repo(repo, cache.rules if cache is not None else None)
    if any(p.severity == "error" for p in problems):
        raise ModelError(problems)
    return repo


def _with_base_domain(
    selected: Entry[ClusterSpec], domains: DomainSource | None, problems: list[Problem]
) -> Entry[ClusterSpec]:
    """The Cluster with the base domain secondary DNS serves (the cluster's when the repository omits it)."""
    spec = selected.spec
    if spec.secondary_dns is None or not spec.secondary_dns.enabled:
        return selected  # nothing depends on the domain: the cluster is not asked
    found = domains() if domains is not None else None
    base_ref, dns_ref = selected.ref("spec", "baseDomain"), selected.ref("spec", "secondaryDNS")
    decided = resolve_base_domain(spec.base_domain, found, base_ref, dns_ref)
    if isinstance(decided, Problem):
        problems.append(decided)
        return selected
    if decided == spec.base_domain:
        return selected
    return replace(selected, spec=spec.model_copy(update={"base_domain": decided}))


def _select_cluster(
    root: Path, clusters: list[Entry[Any]], wanted: str | None, problems: list[Problem], broken: bool = False
) -> Entry[ClusterSpec] | None:
    seen: dict[str, Entry[Any]] = {}
    for c in clusters:
        if c.name in seen:
            problems.append(Problem(c.ref("metadata", "name"), f"Cluster {c.name!r} is defined twice"))
        seen[c.name] = c
    if wanted is not None:
        if wanted not in seen:
            known = ", ".join(sorted(seen)) or "none"
            problems.append(Problem(SourceRef("."), f"no Cluster named {wanted!r} (defined: {known})"))
            return None
        return seen[wanted]
    if len(seen) == 1:
        return next(iter(seen.values()))
    if not seen:
        if not broken:  # a Cluster that failed its schema was reported already
            problems.append(Problem(SourceRef("."), "no Cluster document found (kind: Cluster)"))
    else:
        problems.append(
            Problem(SourceRef("."), f"several clusters defined ({', '.join(sorted(seen))}): pick one with --cluster")
        )
    return None
