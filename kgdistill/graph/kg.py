"""The one typed graph every loader produces and every consumer reads.

Nodes carry an id (CURIE or IRI), a name, a free text (definition) and a type;
edges are typed, directed and optionally weighted.  Direction convention:
*specific -> general* (``is_a`` child -> parent, disease -> phenotype), so that
"everything a concept implies" is the set of nodes reachable from it.
"""
from __future__ import annotations

import csv
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import GraphFormatError


@dataclass
class KnowledgeGraph:
    ids: list[str]
    names: list[str]
    texts: list[str]
    types: list[str]
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_rel: np.ndarray
    edge_weight: np.ndarray
    relations: list[str]
    synonyms: dict[int, list[str]] = field(default_factory=dict)
    source: str = ""
    dangling: list[str] = field(default_factory=list)
    # links a reader did not take as relations (annotation properties such as oboInOwl:inSubset): per node,
    # predicate -> target ids, and per predicate the count in the file (what `graph inspect` shows)
    attributes: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    attribute_counts: dict[str, int] = field(default_factory=dict)
    _index: dict[str, int] | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ basics
    @property
    def num_nodes(self) -> int:
        return len(self.ids)

    @property
    def num_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {nid: i for i, nid in enumerate(self.ids)}
        return self._index

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.index

    def idx(self, node_id: str) -> int:
        return self.index[node_id]

    def out_links(self, nodes: Sequence[int]) -> list[tuple[int, int, float]]:
        """(position in ``nodes``, linked node, weight) of every out-link of weight > 0 (a disease's annotated
        findings with their frequencies); a node left with no link links to itself."""
        pos = {int(n): i for i, n in enumerate(nodes)}
        src, dst, w = self.edge_src.tolist(), self.edge_dst.tolist(), self.edge_weight.tolist()
        links = [(pos[s], d, x) for s, d, x in zip(src, dst, w) if s in pos and x > 0]
        linked = {c for c, _, _ in links}
        return links + [(i, int(n), 1.0) for i, n in enumerate(nodes) if i not in linked]

    def relation_counts(self) -> dict[str, int]:
        counts = np.bincount(self.edge_rel, minlength=len(self.relations))
        return {r: int(c) for r, c in zip(self.relations, counts)}

    def type_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.types:
            out[t] = out.get(t, 0) + 1
        return out

    def node_text(self, i: int, max_chars: int = 400) -> str:
        """Name plus definition: what the text encoder sees for a concept."""
        name, text = self.names[i], self.texts[i]
        s = f"{name}. {text}" if text else name
        return s[:max_chars]

    # --------------------------------------------------------------- structure
    def adjacency(self, relations: Iterable[str] | None = None) -> list[list[int]]:
        """Out-neighbour lists, optionally restricted to some relation types."""
        mask = self._rel_mask(relations)
        adj: list[list[int]] = [[] for _ in range(self.num_nodes)]
        for s, d in zip(self.edge_src[mask].tolist(), self.edge_dst[mask].tolist()):
            adj[s].append(d)
        return adj

    def _rel_mask(self, relations: Iterable[str] | None) -> np.ndarray:
        if relations is None:
            return np.ones(self.num_edges, dtype=bool)
        wanted = [self.relations.index(r) for r in relations if r in self.relations]
        return np.isin(self.edge_rel, wanted)

    def reachable(self, nodes: Sequence[int], relations: Iterable[str] | None = None,
                  adj: list[list[int]] | None = None) -> list[set[int]]:
        """For each start node, itself plus every node reachable along edges (its implications)."""
        adj = adj if adj is not None else self.adjacency(relations)
        memo: dict[int, frozenset[int]] = {}
        out = []
        for n in nodes:
            out.append(set(self._closure(n, adj, memo)))
        return out

    def _closure(self, start: int, adj: list[list[int]], memo: dict[int, frozenset[int]]) -> frozenset[int]:
        if start in memo:
            return memo[start]
        seen = {start}
        queue = deque([start])
        while queue:
            u = queue.popleft()
            for v in adj[u]:
                if v in seen:
                    continue
                if v in memo:
                    seen |= memo[v]
                    continue
                seen.add(v)
                queue.append(v)
        result = frozenset(seen)
        memo[start] = result
        return result

    def roots(self, relations: Iterable[str] | None = None) -> list[str]:
        """Nodes with incoming but no outgoing edges of the given relations (hierarchy tops)."""
        mask = self._rel_mask(relations)
        has_out = np.zeros(self.num_nodes, dtype=bool)
        has_in = np.zeros(self.num_nodes, dtype=bool)
        has_out[self.edge_src[mask]] = True
        has_in[self.edge_dst[mask]] = True
        return [self.ids[i] for i in np.flatnonzero(has_in & ~has_out)]

    def find_cycles(self, relations: Iterable[str] | None = None, limit: int = 20) -> list[list[str]]:
        """Up to `limit` directed cycles (as id lists), found by iterative DFS colouring."""
        adj = self.adjacency(relations)
        colour = np.zeros(self.num_nodes, dtype=np.int8)  # 0 new, 1 on stack, 2 done
        parent = np.full(self.num_nodes, -1, dtype=np.int64)
        cycles: list[list[str]] = []
        for root in range(self.num_nodes):
            if colour[root]:
                continue
            stack = [(root, 0)]
            colour[root] = 1
            while stack and len(cycles) < limit:
                u, i = stack[-1]
                if i < len(adj[u]):
                    stack[-1] = (u, i + 1)
                    v = adj[u][i]
                    if colour[v] == 0:
                        colour[v] = 1
                        parent[v] = u
                        stack.append((v, 0))
                    elif colour[v] == 1:
                        cyc, w = [v], u
                        while w != v and w != -1:
                            cyc.append(w)
                            w = parent[w]
                        cycles.append([self.ids[k] for k in reversed(cyc)])
                else:
                    colour[u] = 2
                    stack.pop()
            if len(cycles) >= limit:
                break
        return cycles

    def subgraph(self, keep: Iterable[int]) -> "KnowledgeGraph":
        keep_idx = np.array(sorted(set(int(k) for k in keep)), dtype=np.int64)
        remap = np.full(self.num_nodes, -1, dtype=np.int64)
        remap[keep_idx] = np.arange(len(keep_idx))
        emask = (remap[self.edge_src] >= 0) & (remap[self.edge_dst] >= 0)
        old_to_new = {int(o): n for n, o in enumerate(keep_idx)}
        return KnowledgeGraph(
            ids=[self.ids[i] for i in keep_idx],
            names=[self.names[i] for i in keep_idx],
            texts=[self.texts[i] for i in keep_idx],
            types=[self.types[i] for i in keep_idx],
            edge_src=remap[self.edge_src[emask]],
            edge_dst=remap[self.edge_dst[emask]],
            edge_rel=self.edge_rel[emask].copy(),
            edge_weight=self.edge_weight[emask].copy(),
            relations=list(self.relations),
            synonyms={old_to_new[k]: v for k, v in self.synonyms.items() if k in old_to_new},
            source=self.source,
            attributes={old_to_new[k]: v for k, v in self.attributes.items() if k in old_to_new},
            attribute_counts=dict(self.attribute_counts),
        )

    # ------------------------------------------------------------- conversion
    def to_pyg(self, add_reverse: bool = True):
        """torch_geometric ``Data`` with ``edge_type`` and ``edge_weight``.

        With ``add_reverse`` every relation r gains a reverse relation ``r^-1`` so that
        message passing flows both ways (a disease learns from its phenotypes and back).
        """
        import torch
        from torch_geometric.data import Data

        src, dst, rel, w = self.edge_src, self.edge_dst, self.edge_rel, self.edge_weight
        relations = list(self.relations)
        if add_reverse:
            r = len(relations)
            src, dst = np.concatenate([src, self.edge_dst]), np.concatenate([dst, self.edge_src])
            rel = np.concatenate([rel, self.edge_rel + r])
            w = np.concatenate([w, self.edge_weight])
            relations += [f"{x}^-1" for x in self.relations]
        data = Data(
            edge_index=torch.as_tensor(np.stack([src, dst]), dtype=torch.long),
            edge_type=torch.as_tensor(rel, dtype=torch.long),
            edge_weight=torch.as_tensor(w, dtype=torch.float32),
            num_nodes=self.num_nodes,
        )
        data.relations = relations
        return data

    def to_networkx(self):
        import networkx as nx

        g = nx.MultiDiGraph()
        for i, nid in enumerate(self.ids):
            g.add_node(nid, name=self.names[i], text=self.texts[i], type=self.types[i])
        for s, d, r, w in zip(self.edge_src.tolist(), self.edge_dst.tolist(),
                              self.edge_rel.tolist(), self.edge_weight.tolist()):
            g.add_edge(self.ids[s], self.ids[d], relation=self.relations[r], weight=w)
        return g

    def save_csv(self, folder: str | Path) -> Path:
        """Write ``nodes.csv`` and ``edges.csv``: the project's plain interchange format."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "nodes.csv", "w", newline="", encoding="utf-8") as f:
            wr = csv.writer(f)
            wr.writerow(["id", "name", "type", "text", "synonyms"])
            for i, nid in enumerate(self.ids):
                wr.writerow([nid, self.names[i], self.types[i], self.texts[i], "|".join(self.synonyms.get(i, []))])
        with open(folder / "edges.csv", "w", newline="", encoding="utf-8") as f:
            wr = csv.writer(f)
            wr.writerow(["source", "target", "relation", "weight"])
            for s, d, r, w in zip(self.edge_src.tolist(), self.edge_dst.tolist(),
                                  self.edge_rel.tolist(), self.edge_weight.tolist()):
                wr.writerow([self.ids[s], self.ids[d], self.relations[r], f"{w:.6g}"])
        return folder


class GraphBuilder:
    """Collects nodes and edges from a parser, then freezes them into a KnowledgeGraph.

    Parsers call :meth:`add_node` / :meth:`add_edge` in any order; ``build`` resolves
    edges whose endpoints were never declared according to ``dangling``.
    """

    def __init__(self, source: str = ""):
        self.source = source
        self._index: dict[str, int] = {}
        self.ids: list[str] = []
        self.names: list[str] = []
        self.texts: list[str] = []
        self.types: list[str] = []
        self.synonyms: dict[int, list[str]] = {}
        self._attributes: dict[str, dict[str, list[str]]] = {}
        self.attribute_counts: dict[str, int] = {}
        self._edges: list[tuple[str, str, str, float, int | None]] = []

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._index

    def add_node(self, node_id: str, name: str | None = None, text: str | None = None,
                 type: str = "concept", synonyms: Sequence[str] = (), *, line: int | None = None,
                 on_duplicate: str = "error") -> int:
        node_id = str(node_id).strip()
        if not node_id:
            raise GraphFormatError("empty node id", source=self.source, line=line)
        if node_id in self._index:
            i = self._index[node_id]
            if on_duplicate == "error" and name and self.names[i] not in (name, node_id):
                raise GraphFormatError(
                    f"duplicate id {node_id!r} with different names ({self.names[i]!r} vs {name!r})",
                    source=self.source, line=line)
            if name and self.names[i] == node_id:
                self.names[i] = name
            if text and not self.texts[i]:
                self.texts[i] = text
            if synonyms:
                self.synonyms.setdefault(i, []).extend(s for s in synonyms if s)
            return i
        i = len(self.ids)
        self._index[node_id] = i
        self.ids.append(node_id)
        self.names.append(name or node_id)
        self.texts.append(text or "")
        self.types.append(type)
        if synonyms:
            self.synonyms[i] = [s for s in synonyms if s]
        return i

    def add_edge(self, src: str, dst: str, relation: str, weight: float = 1.0, *, line: int | None = None) -> None:
        w = float(weight)
        if not np.isfinite(w):
            raise GraphFormatError(f"edge {src} -> {dst}: weight must be a finite number, got {weight!r}",
                                   source=self.source, line=line)
        self._edges.append((str(src).strip(), str(dst).strip(), relation, w, line))

    def add_attribute(self, node_id: str, key: str, value: str) -> None:
        """A link kept on the node rather than as an edge (kept only if the node exists at build time)."""
        self._attributes.setdefault(str(node_id).strip(), {}).setdefault(key, []).append(value)
        self.attribute_counts[key] = self.attribute_counts.get(key, 0) + 1

    def build(self, dangling: str = "add") -> KnowledgeGraph:
        """``dangling``: ``add`` endpoints as bare nodes, ``drop`` the edge, or ``error``."""
        rel_index: dict[str, int] = {}
        src, dst, rel, wts = [], [], [], []
        dangling_ids: list[str] = []
        for s, d, r, w, line in self._edges:
            missing = [x for x in (s, d) if x not in self._index]
            if missing:
                if dangling == "error":
                    raise GraphFormatError(f"edge {s} -[{r}]-> {d} names undeclared node {missing[0]!r}",
                                           source=self.source, line=line)
                dangling_ids.extend(m for m in missing if m not in dangling_ids)
                if dangling == "drop":
                    continue
                for m in missing:
                    self.add_node(m)
            src.append(self._index[s])
            dst.append(self._index[d])
            rel.append(rel_index.setdefault(r, len(rel_index)))
            wts.append(w)
        if not self.ids:
            raise GraphFormatError("no nodes found", source=self.source)
        return KnowledgeGraph(
            ids=self.ids, names=self.names, texts=self.texts, types=self.types,
            edge_src=np.asarray(src, dtype=np.int64), edge_dst=np.asarray(dst, dtype=np.int64),
            edge_rel=np.asarray(rel, dtype=np.int64), edge_weight=np.asarray(wts, dtype=np.float32),
            relations=list(rel_index), synonyms=self.synonyms, source=self.source,
            dangling=dangling_ids,
            attributes={self._index[n]: {k: sorted(v) for k, v in a.items()} for n, a in self._attributes.items()
                        if n in self._index},
            attribute_counts=dict(sorted(self.attribute_counts.items())),
        )
