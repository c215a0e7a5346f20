"""Candidates the graph cannot tell apart: concepts whose typed neighbourhoods are identical or nearly so.

A concept never labelled (unseen) is ranked only through its place in the graph: the GNN embeds it from its
neighbours.  Two candidates with the same neighbours under the same relations get (nearly) the same embedding, so
a zero-shot model can only guess between them: its figures on them are chance or below.  Said before training
(``graph inspect --candidates``) and in a run's warnings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import sparse

from ..errors import DataError
from .kg import KnowledgeGraph

NEAR_IDENTICAL = 0.9    # Jaccard of the (relation, direction, neighbour) sets at which two candidates count as one


def neighbourhoods(kg: KnowledgeGraph, nodes: Sequence[int]) -> sparse.csr_matrix:
    """[len(nodes), 2 * R * V] 0/1: each node's (relation, direction, neighbour) links, itself left out."""
    n, r = kg.num_nodes, max(1, len(kg.relations))
    pos = {int(v): i for i, v in enumerate(nodes)}
    rows, cols = [], []
    for s, d, rel in zip(kg.edge_src.tolist(), kg.edge_dst.tolist(), kg.edge_rel.tolist()):
        if s in pos and d != s:
            rows.append(pos[s]), cols.append(rel * n + d)                # out-link
        if d in pos and d != s:
            rows.append(pos[d]), cols.append((r + rel) * n + s)          # in-link
    m = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(nodes), 2 * r * n))
    m.data[:] = 1.0  # a link listed twice counts once
    return m


def indistinguishable(kg: KnowledgeGraph, candidates: Sequence[str], among: Sequence[str] | None = None,
                      threshold: float = NEAR_IDENTICAL, chunk: int = 512) -> list[list[str]]:
    """Groups (sorted, largest first) of ``candidates`` that share their neighbourhood with another candidate of
    ``among`` (default: each other) at Jaccard >= ``threshold``; a candidate without any link is alike to every
    other one without links."""
    among = list(candidates if among is None else among)
    everyone = list(dict.fromkeys([*among, *candidates]))
    m = neighbourhoods(kg, [kg.index[c] for c in everyone])
    size = np.asarray(m.sum(1)).ravel()
    row = {c: i for i, c in enumerate(everyone)}
    cols = m[[row[c] for c in among]].T.tocsc()
    parent = {c: c for c in everyone}

    def find(c: str) -> str:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    asked = [row[c] for c in candidates]
    for s in range(0, len(asked), chunk):
        block = asked[s:s + chunk]
        inter = (m[block] @ cols).toarray()
        union = size[block, None] + size[None, [row[c] for c in among]] - inter
        alike = np.where(union > 0, inter / np.maximum(union, 1e-9), 1.0) >= threshold
        for i, j in zip(*np.nonzero(alike)):
            a, b = everyone[block[i]], among[j]
            if a != b:
                parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for c in everyone:
        groups.setdefault(find(c), []).append(c)
    wanted = set(candidates)
    out = [sorted(g) for g in groups.values() if len(g) > 1 and wanted & set(g)]
    return sorted(out, key=lambda g: (-len(g), g))


def read_candidates(kg: KnowledgeGraph, path: Path) -> list[str]:
    """A candidates.txt: one concept id per line; an id the graph lacks is named with its line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the candidates: {exc}", source=str(path)) from None
    out = []
    for n, line in enumerate(lines, start=1):
        c = line.strip()
        if c and c not in kg.index:
            raise DataError(f"candidate {c!r} is not a concept of the graph", source=str(path), line=n)
        if c:
            out.append(c)
    if len(out) < 2:
        raise DataError("fewer than 2 candidates; nothing to tell apart", source=str(path))
    return list(dict.fromkeys(out))


def candidate_report(kg: KnowledgeGraph, path: Path) -> dict:
    """``graph inspect --candidates``: the groups the graph cannot tell apart, with the threshold used."""
    groups = indistinguishable(kg, read_candidates(kg, path))
    return {"threshold": NEAR_IDENTICAL, "groups": groups, "candidates_in_groups": sum(len(g) for g in groups)}


def warning_line(groups: list[list[str]], what: str) -> str:
    """One line for a run's warnings and logs."""
    shown = "; ".join(", ".join(g[:4]) + (", ..." if len(g) > 4 else "") for g in groups[:3])
    n = len({c for g in groups for c in g})
    return (f"{n} {what} cannot be told apart through the graph (identical or near-identical neighbourhoods, "
            f"Jaccard >= {NEAR_IDENTICAL}): {shown}{' ...' if len(groups) > 3 else ''}; a zero-shot ranking among "
            "them is at chance or below: give them distinguishing links in the graph")
