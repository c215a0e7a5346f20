"""The training-free baseline: compare the input with each concept's linked findings.

For text there are two ways (``eval.prototype``).  ``mean``: a note (mean of its
sentence embeddings) is compared with each concept's prototype, the frequency-weighted
mean of the name embeddings of the concepts it links to in the graph (a disease's
phenotypes), or its own name when it links to nothing.  ``set_match``: each sentence is
matched with its closest linked finding and each finding with its closest sentence
(:class:`ConceptLinks`), so the words every sentence shares ("the patient presents
with") no longer dilute the comparison.  Either needs no labels, so it ranks unseen
concepts as well as seen ones.
For other modalities there is no shared text space; the baseline is the nearest
centroid of the few labelled student samples, which cannot rank unseen concepts.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..graph.kg import KnowledgeGraph


def concept_text_prototypes(kg: KnowledgeGraph, candidate_nodes: np.ndarray, name_emb: torch.Tensor) -> torch.Tensor:
    k = len(candidate_nodes)
    pos = {int(n): i for i, n in enumerate(candidate_nodes)}
    acc = torch.zeros(k, name_emb.shape[1])
    wsum = torch.zeros(k)
    for s, d, w in zip(kg.edge_src.tolist(), kg.edge_dst.tolist(), kg.edge_weight.tolist()):
        i = pos.get(s)
        if i is not None:
            acc[i] += w * name_emb[d]
            wsum[i] += w
    empty = wsum <= 0
    acc[empty] = name_emb[torch.as_tensor(candidate_nodes)[empty]]
    return nn.functional.normalize(acc, dim=-1)


def text_prototype_scores(x: torch.Tensor, table: torch.Tensor, concepts: torch.Tensor,
                          links: "ConceptLinks | None") -> torch.Tensor:
    """[n, K] prototype scores of notes ``x`` (sentence indices into ``table``): set matching when the run has
    ``links`` (``eval.prototype: set_match``), else the mean embedding against the mean prototypes ``concepts``.
    The one place evaluation and prediction both score the prototype."""
    if links is not None:
        return links.set_match(x, table)
    return mean_item_embedding(x, table) @ concepts.T


def mean_item_embedding(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Mean of each sample's item vectors (sentences of a note), L2-normalised."""
    mask = (x >= 0).unsqueeze(-1).float()
    v = (table[x.clamp_min(0)] * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    return nn.functional.normalize(v, dim=-1)


def centroid_scores(x_train: torch.Tensor, y_train: torch.Tensor, x_eval: torch.Tensor, num_concepts: int) -> torch.Tensor:
    """Negative distance to the class centroid of labelled samples; concepts without samples rank last."""
    flat_tr, flat_ev = x_train.reshape(len(x_train), -1).float(), x_eval.reshape(len(x_eval), -1).float()
    cent = torch.zeros(num_concepts, flat_tr.shape[1])
    cnt = torch.zeros(num_concepts)
    cent.index_add_(0, y_train, flat_tr)
    cnt.index_add_(0, y_train, torch.ones(len(y_train)))
    have = cnt > 0
    cent = cent / cnt.clamp_min(1).unsqueeze(1)
    scores = -torch.cdist(flat_ev, cent)
    floor = scores[:, have].min() - 1.0 if bool(have.any()) else torch.tensor(-1.0)
    return torch.where(have.unsqueeze(0), scores, floor)


class ConceptLinks:
    """Each candidate's linked findings as unit vectors in the text space, flattened: ``emb`` [L, E],
    ``concept`` [L] (which candidate), ``weight`` [L] (annotation frequency).  Links of weight <= 0 carry no
    evidence and are left out; a candidate left with no link links to its own name."""

    def __init__(self, emb: torch.Tensor, concept: torch.Tensor, weight: torch.Tensor, num_concepts: int):
        self.emb = nn.functional.normalize(emb.float(), dim=-1)
        self.concept, self.weight, self.num_concepts = concept.long(), weight.float(), int(num_concepts)
        self.weight_sum = torch.zeros(self.num_concepts).index_add_(0, self.concept, self.weight)

    @classmethod
    def from_graph(cls, kg: KnowledgeGraph, candidate_nodes: np.ndarray, name_emb: torch.Tensor) -> "ConceptLinks":
        pos = {int(n): i for i, n in enumerate(candidate_nodes)}
        src, dst, w = kg.edge_src.tolist(), kg.edge_dst.tolist(), kg.edge_weight.tolist()
        links = [(pos[s], d, x) for s, d, x in zip(src, dst, w) if s in pos and x > 0]
        linked = {c for c, _, _ in links}
        links += [(i, int(n), 1.0) for i, n in enumerate(candidate_nodes) if i not in linked]
        c, d, x = zip(*links)
        return cls(name_emb[torch.tensor(d)], torch.tensor(c), torch.tensor(x), len(candidate_nodes))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"emb": self.emb, "concept": self.concept, "weight": self.weight,
                "num_concepts": torch.tensor(self.num_concepts)}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> "ConceptLinks":
        return cls(t["emb"], t["concept"], t["weight"], int(t["num_concepts"]))

    @torch.no_grad()
    def set_match(self, x: torch.Tensor, table: torch.Tensor, max_elements: int = 1 << 23) -> torch.Tensor:
        """[n, K] scores of samples ``x`` (rows of sentence indices into ``table``, -1 padding): the mean over
        the sample's sentences of the best cosine with one of the concept's findings, plus the
        frequency-weighted mean over the concept's findings of the best cosine with one of the sentences.
        Samples go in batches of at most ``max_elements`` sentence-finding pairs (about 8 bytes each at peak);
        the result is on ``table``'s device."""
        dev = table.device
        table = nn.functional.normalize(table.float(), dim=-1)
        emb, idx, weight, weight_sum = (t.to(dev) for t in (self.emb, self.concept, self.weight, self.weight_sum))
        x = x.to(dev)
        k = self.num_concepts
        out = torch.empty(len(x), k, device=dev)
        batch_size = max(1, max_elements // max(1, x.shape[1] * len(idx)))
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size]
            mask = xb >= 0                                               # [B, n]
            sims = table[xb.clamp_min(0)] @ emb.T                        # [B, n, L]
            b, n, _ = sims.shape
            # each sentence: its best finding of every concept, averaged over the sentences
            best_finding = torch.full((b, n, k), -2.0, device=dev).scatter_reduce_(2, idx.expand(b, n, -1), sims,
                                                                                   "amax")
            per_sentence = (best_finding * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
            # each finding: its best sentence, weighted by frequency within the concept
            best_sentence = sims.masked_fill(~mask.unsqueeze(-1), -2.0).amax(1)      # [B, L]
            best_sentence = torch.where(mask.any(1, keepdim=True), best_sentence, torch.zeros((), device=dev))
            per_finding = torch.zeros(b, k, device=dev).index_add_(1, idx, best_sentence * weight) / weight_sum
            out[s:s + batch_size] = per_sentence + per_finding
        return out
