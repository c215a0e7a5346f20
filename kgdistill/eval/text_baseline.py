"""The training-free text baseline: compare a note with each concept's linked findings in the graph.

For text there are three ways (``eval.text_baseline``, one :class:`TextBaseline` each, in ``TEXT_BASELINES``).
``mean``: a note (mean of its sentence embeddings) against each concept's mean text vector, the frequency-weighted
mean of the name embeddings of the concepts it links to (a disease's phenotypes), or its own name when it
links to nothing.  ``set_match``: each sentence is matched with its closest linked finding and each finding
with its closest sentence, so the words every sentence shares ("the patient presents with") no longer dilute
the comparison.  ``likelihood``: each sentence is read as a distribution over the graph's findings, and a
concept scores the mean log-probability that it produced the note's sentences (a naive Bayes over its links,
as phenotype-driven diagnosis tools rank diseases), so a finding the concept does not explain costs it.
None needs labels, so each ranks unseen concepts as well as seen ones.
For other modalities there is no shared text space; the baseline row is then the nearest centroid of the few
labelled student samples (:func:`centroid_scores`), which cannot rank unseen concepts.
"""
from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..graph.inspect import HIERARCHY_RELATIONS
from ..graph.kg import KnowledgeGraph
from ..registry import Registry


class TextBaseline:
    """Scores notes against every candidate from the graph alone; saved with a run so prediction scores as
    evaluation did."""

    num_concepts: int
    dim: int            # width of the text space it reads

    @classmethod
    def from_graph(cls, kg: KnowledgeGraph, candidate_nodes: np.ndarray, name_emb: torch.Tensor,
                   **params: Any) -> "TextBaseline":
        raise NotImplementedError

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> "TextBaseline":
        raise NotImplementedError

    def tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @classmethod
    def check_params(cls, **params: float) -> None:
        """ConfigError naming the first of ``params`` (``eval.text_baseline``'s own keys) that :meth:`from_graph`
        does not accept or whose value is out of range."""
        accepted = [p for p in inspect.signature(cls.from_graph).parameters
                    if p not in ("kg", "candidate_nodes", "name_emb", "params")]
        name = getattr(cls, "registry_name", cls.__name__)
        for key, value in params.items():
            if key not in accepted:
                raise ConfigError(f"{key}: unknown key; text baseline {name!r} takes: {', '.join(accepted) or 'none'}")
            if not math.isfinite(value):
                raise ConfigError(f"{key}: {value}; expected a finite number")

    def scores(self, x: torch.Tensor, table: torch.Tensor, polarity: torch.Tensor | None = None) -> torch.Tensor:
        """[n, K] scores of notes ``x`` (rows of sentence indices into ``table``, -1 padding), on ``table``'s
        device.  ``polarity`` [S] (kgdistill.text.negation.sentence_polarity): only affirmed sentences (+1)
        support a concept; a negated one (-1) counts against the concepts it is linked to where the baseline can
        say so (likelihood, phenomizer); None: every sentence affirmed."""
        raise NotImplementedError


def with_polarity(x: torch.Tensor, polarity: torch.Tensor | None, sign: float) -> torch.Tensor:
    """``x`` keeping only the sentences of this polarity (+1 affirmed, -1 negated); the others become -1
    padding.  Without a polarity every sentence is affirmed."""
    if polarity is None:
        return x if sign > 0 else torch.full_like(x, -1)
    pol = polarity.to(x.device)[x.clamp_min(0)]
    return torch.where((x >= 0) & (pol == sign), x, torch.full_like(x, -1))


TEXT_BASELINES: Registry[type[TextBaseline]] = Registry("text baseline")


def _batch_size(per_sample: int, max_elements: int) -> int:
    return max(1, max_elements // max(1, per_sample))


def concept_text_means(kg: KnowledgeGraph, candidate_nodes: np.ndarray, name_emb: torch.Tensor) -> torch.Tensor:
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


def mean_item_embedding(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Mean of each sample's item vectors (sentences of a note), L2-normalised."""
    mask = (x >= 0).unsqueeze(-1).float()
    v = (table[x.clamp_min(0)] * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    return nn.functional.normalize(v, dim=-1)


@TEXT_BASELINES.register("mean")
class MeanTextBaseline(TextBaseline):
    """The note's mean sentence embedding against each concept's mean linked-finding embedding."""

    def __init__(self, concepts: torch.Tensor):
        self.concepts = concepts.float()
        self.num_concepts, self.dim = self.concepts.shape

    @classmethod
    def from_graph(cls, kg, candidate_nodes, name_emb) -> "MeanTextBaseline":
        return cls(concept_text_means(kg, candidate_nodes, name_emb))

    @classmethod
    def from_tensors(cls, t) -> "MeanTextBaseline":
        return cls(t["concepts"])

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"concepts": self.concepts}

    def scores(self, x, table, polarity=None):
        x = with_polarity(x.to(table.device), polarity, 1.0)
        return mean_item_embedding(x, table) @ self.concepts.to(table.device).T


@TEXT_BASELINES.register("set_match")
class ConceptLinks(TextBaseline):
    """Each candidate's linked findings as unit vectors in the text space, flattened: ``emb`` [L, E],
    ``concept`` [L] (which candidate), ``weight`` [L] (annotation frequency).  Links of weight <= 0 carry no
    evidence and are left out; a candidate left with no link links to its own name."""

    def __init__(self, emb: torch.Tensor, concept: torch.Tensor, weight: torch.Tensor, num_concepts: int):
        self.emb = nn.functional.normalize(emb.float(), dim=-1)
        self.concept, self.weight, self.num_concepts = concept.long(), weight.float(), int(num_concepts)
        self.dim = self.emb.shape[1]
        self.weight_sum = torch.zeros(self.num_concepts).index_add_(0, self.concept, self.weight)

    @classmethod
    def from_graph(cls, kg, candidate_nodes, name_emb) -> "ConceptLinks":
        c, d, x = zip(*kg.out_links(candidate_nodes))
        return cls(name_emb[torch.tensor(d)], torch.tensor(c), torch.tensor(x), len(candidate_nodes))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"emb": self.emb, "concept": self.concept, "weight": self.weight,
                "num_concepts": torch.tensor(self.num_concepts)}

    @classmethod
    def from_tensors(cls, t) -> "ConceptLinks":
        return cls(t["emb"], t["concept"], t["weight"], int(t["num_concepts"]))

    def scores(self, x, table, polarity=None):
        return self.set_match(with_polarity(x.to(table.device), polarity, 1.0), table)

    @torch.no_grad()
    def set_match(self, x: torch.Tensor, table: torch.Tensor, max_elements: int = 1 << 23) -> torch.Tensor:
        """The mean over the sample's sentences of the best cosine with one of the concept's findings, plus the
        frequency-weighted mean over the concept's findings of the best cosine with one of the sentences.
        Samples go in batches of at most ``max_elements`` sentence-finding pairs (about 8 bytes each at peak)."""
        dev = table.device
        table = nn.functional.normalize(table.float(), dim=-1)
        emb, idx, weight, weight_sum = (t.to(dev) for t in (self.emb, self.concept, self.weight, self.weight_sum))
        x = x.to(dev)
        k = self.num_concepts
        out = torch.empty(len(x), k, device=dev)
        step = _batch_size(x.shape[1] * len(idx), max_elements)
        for s in range(0, len(x), step):
            xb = x[s:s + step]
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
            out[s:s + step] = per_sentence + per_finding
        return out


@TEXT_BASELINES.register("likelihood")
class LinkLikelihood(TextBaseline):
    """A naive Bayes over the graph's links.  Each sentence names one finding: ``softmax(cos / temperature)``
    over the vocabulary ``emb`` [T, E] (every node that is not a candidate, so a sentence about a finding no
    candidate links to finds its own term rather than a wrong one, plus any candidate that is a link target,
    e.g. one with no links, which links to itself).  A concept names finding t with probability
    ``links[k, t]``: its links' weights, normalised, with ``parent_share`` of each moved to the finding's
    parents along ``is_a`` or ``broader`` (a note may name a less precise term).  Score: the mean over the note's
    sentences of ``log(floor + P(sentence | concept))``; ``floor`` keeps one unexplained sentence (noise, a
    negation) from ruling a concept out."""

    def __init__(self, emb: torch.Tensor, links: torch.Tensor, temperature: float, floor: float):
        self.emb = nn.functional.normalize(emb.float(), dim=-1)
        self.links = links.coalesce().float()       # sparse [K, T], rows sum to 1
        self.temperature, self.floor = float(temperature), float(floor)
        self.num_concepts, self.dim = self.links.shape[0], self.emb.shape[1]

    @classmethod
    def from_graph(cls, kg, candidate_nodes, name_emb, temperature: float = 0.05, floor: float = 1e-4,
                   parent_share: float = 0.3) -> "LinkLikelihood":
        cls.check_params(temperature=temperature, floor=floor, parent_share=parent_share)
        links = kg.out_links(candidate_nodes)
        cand = {int(n) for n in candidate_nodes}
        vocab = sorted({n for n in range(kg.num_nodes) if n not in cand} | {d for _, d, _ in links})
        col = {n: j for j, n in enumerate(vocab)}
        hierarchy = {kg.relations.index(r) for r in HIERARCHY_RELATIONS if r in kg.relations}
        parents: dict[int, list[int]] = {}
        for s, d, r in zip(kg.edge_src.tolist(), kg.edge_dst.tolist(), kg.edge_rel.tolist()):
            if r in hierarchy and d in col:
                parents.setdefault(s, []).append(d)
        entries: list[tuple[int, int, float]] = []          # (candidate, vocabulary column, weight)
        for c, d, w in links:
            ps = parents.get(d, [])
            share = parent_share if ps else 0.0
            entries.append((c, col[d], w * (1.0 - share)))
            entries += [(c, col[p], w * share / len(ps)) for p in ps]
        rows, cols, vals = (torch.tensor(v) for v in zip(*entries))
        total = torch.zeros(len(candidate_nodes)).index_add_(0, rows, vals.float())
        p = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals / total[rows], (len(candidate_nodes), len(vocab)),
                                    check_invariants=True)
        return cls(name_emb[torch.tensor(vocab)], p, temperature, floor)

    @classmethod
    def check_params(cls, **params: float) -> None:
        super().check_params(**params)
        ranges = {"temperature": (lambda v: v > 0, "a number > 0"), "floor": (lambda v: v > 0, "a number > 0"),
                  "parent_share": (lambda v: 0 <= v <= 1, "a number in [0, 1]")}
        for key, (ok, expected) in ranges.items():
            if key in params and not ok(params[key]):
                raise ConfigError(f"{key}: {params[key]}; expected {expected}")

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"emb": self.emb, "links_index": self.links.indices(), "links_value": self.links.values(),
                "num_concepts": torch.tensor(self.num_concepts),
                "temperature": torch.tensor(self.temperature), "floor": torch.tensor(self.floor)}

    @classmethod
    def from_tensors(cls, t) -> "LinkLikelihood":
        cls.check_params(temperature=float(t["temperature"]), floor=float(t["floor"]))
        if bool((t["links_value"] < 0).any()):
            raise ValueError("negative link probabilities")
        shape = (int(t["num_concepts"]), t["emb"].shape[0])
        return cls(t["emb"], torch.sparse_coo_tensor(t["links_index"], t["links_value"], shape, check_invariants=True),
                   float(t["temperature"]), float(t["floor"]))

    @torch.no_grad()
    def scores(self, x: torch.Tensor, table: torch.Tensor, polarity: torch.Tensor | None = None,
               max_elements: int = 1 << 23) -> torch.Tensor:
        """Affirmed sentences: the mean of ``log(floor + P(sentence | concept))``.  A negated sentence adds
        ``log(1 - 0.9 q)``, ``q`` the probability that the finding it denies is one the concept links to (so it
        lowers only those concepts' scores).  Samples go in batches of at most ``max_elements`` sentence-term
        (or sentence-concept) pairs."""
        dev = table.device
        table = nn.functional.normalize(table.float(), dim=-1)
        emb, links = self.emb.to(dev), self.links.to(dev)                    # [K, T]
        support = torch.sparse_coo_tensor(links.indices(), torch.ones_like(links.values()), links.shape,
                                          check_invariants=False)
        x = x.to(dev)
        pos, neg = with_polarity(x, polarity, 1.0), with_polarity(x, polarity, -1.0)
        out = torch.empty(len(x), self.num_concepts, device=dev)
        step = _batch_size(x.shape[1] * max(len(emb), self.num_concepts), max_elements)
        for s in range(0, len(x), step):
            lik, mask = self._per_sentence(links, emb, table, pos[s:s + step])
            logp = torch.log(self.floor + lik) * mask.unsqueeze(-1)
            total = logp.sum(1)
            if bool((neg[s:s + step] >= 0).any()):
                q, nmask = self._per_sentence(support, emb, table, neg[s:s + step])
                total = total + (torch.log1p(-0.9 * q.clamp(0, 1)) * nmask.unsqueeze(-1)).sum(1)
            out[s:s + step] = total / mask.sum(1, keepdim=True).clamp_min(1)
        return out

    def _per_sentence(self, links: torch.Tensor, emb: torch.Tensor, table: torch.Tensor, xb: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, n, K] ``links @ P(term | sentence)`` of each sentence (0 at padding), and the mask of real sentences.
        Each distinct sentence is computed once and padding not at all (notes fill a quarter of their 32 slots);
        the sparse product reads a contiguous right-hand side (a transposed view makes it ~10x slower)."""
        mask = xb >= 0
        uniq, inverse = torch.unique(xb[mask], return_inverse=True)
        names = torch.softmax(table[uniq] @ emb.T / self.temperature, dim=-1)             # [U, T]
        per = torch.sparse.mm(links, names.T.contiguous()).T                                # [U, K]
        out = per.new_zeros(*xb.shape, per.shape[1])
        out[mask] = per[inverse]
        return out, mask


def build_text_baseline(name: str, kg: KnowledgeGraph, candidate_nodes: np.ndarray, name_emb: torch.Tensor,
                         **params: Any) -> TextBaseline:
    return TEXT_BASELINES.get(name).from_graph(kg, candidate_nodes, name_emb, **params)


def centroid_scores(x_train: torch.Tensor, y_train: torch.Tensor, x_eval: torch.Tensor, num_concepts: int) -> torch.Tensor:
    """Negative distance to the class centroid of labelled samples; concepts without samples rank last."""
    # one row per sample (flatten, unlike reshape(n, -1), also takes no rows: no labelled sample at all)
    flat_tr, flat_ev = (x.float().flatten(1) if x.dim() > 1 else x.float().unsqueeze(1) for x in (x_train, x_eval))
    cent = torch.zeros(num_concepts, flat_tr.shape[1])
    cnt = torch.zeros(num_concepts)
    cent.index_add_(0, y_train, flat_tr)
    cnt.index_add_(0, y_train, torch.ones(len(y_train)))
    have = cnt > 0
    cent = cent / cnt.clamp_min(1).unsqueeze(1)
    scores = -torch.cdist(flat_ev, cent)
    floor = scores[:, have].min() - 1.0 if bool(have.any()) else torch.tensor(-1.0)
    return torch.where(have.unsqueeze(0), scores, floor)
