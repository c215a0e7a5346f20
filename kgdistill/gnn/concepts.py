"""Where a model's concept embeddings come from: the GNN over the graph, or a learned table.

Every source returns the [K, d] embeddings of the K candidate concepts; classification is by cosine
similarity to them, which is what lets a graph-fed model rank concepts that have no labelled example.
A student's source is named by ``student.methods.<m>.concepts`` and built from the teacher's frozen
GNN embeddings: ``CONCEPT_SOURCES.build(name, teacher_concepts=C)``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..registry import Registry
from .base import ConceptGNN
from .sampling import NeighbourSampler

CONCEPT_SOURCES: Registry[Callable[..., nn.Module]] = Registry("concept source")


def cosine_logits(z: torch.Tensor, concepts: torch.Tensor, temperature: float) -> torch.Tensor:
    return nn.functional.normalize(z, dim=-1) @ nn.functional.normalize(concepts, dim=-1).T / temperature


class GraphConcepts(nn.Module):
    """GNN embeddings of the candidate nodes.

    Full-graph message passing by default.  With ``sampler`` (large graphs), a training step runs the GNN on
    sampled neighbourhoods of the candidates only, and evaluation on their complete L-hop neighbourhoods,
    ``eval_chunk`` candidates at a time, so memory follows the neighbourhoods rather than the graph."""

    def __init__(self, gnn: ConceptGNN, node_features: torch.Tensor, graph_data, candidate_nodes: torch.Tensor,
                 self_feature_dropout: float = 0.0, sampler: NeighbourSampler | None = None, eval_chunk: int = 1024):
        super().__init__()
        if gnn.fixed_graph != (sampler is None):
            raise ValueError("a GNN built with fixed_graph=True caches the whole graph; sampled subgraphs need "
                             "fixed_graph=False (and full-graph message passing needs fixed_graph=True)")
        self.gnn = gnn
        self.self_feature_dropout = self_feature_dropout
        self.sampler = sampler
        self.eval_chunk = eval_chunk
        x = node_features.float()
        if self_feature_dropout >= 1:  # never read: zero them once rather than mask every step
            x = x.clone()
            x[candidate_nodes.long()] = 0
        self.register_buffer("x", x, persistent=False)
        self.register_buffer("edge_index", graph_data.edge_index, persistent=False)
        self.register_buffer("edge_type", graph_data.edge_type, persistent=False)
        self.register_buffer("edge_weight", graph_data.edge_weight, persistent=False)
        self.register_buffer("candidates", candidate_nodes.long(), persistent=False)

    def _inputs(self, nodes: torch.Tensor | None = None) -> torch.Tensor:
        """Candidates' own text features are dropped at random while training (always and everywhere at p=1:
        zeroed once in ``__init__``), so their embedding must come from their graph neighbourhood: the only thing
        an unseen concept shares with seen ones."""
        x = self.x if nodes is None else self.x[nodes]
        p = self.self_feature_dropout
        if p <= 0 or p >= 1 or not self.training:
            return x
        keep = torch.ones(self.x.shape[0], 1, device=x.device, dtype=x.dtype)
        keep[self.candidates] = (torch.rand(len(self.candidates), 1, device=x.device) >= p).to(x.dtype)
        return x * (keep if nodes is None else keep[nodes])

    def _on_subgraph(self, seeds: torch.Tensor, fanouts: list[int] | None) -> torch.Tensor:
        sub = self.sampler.sample(self.edge_index, seeds, fanouts)
        e = sub.edge_ids
        return self.gnn(self._inputs(sub.nodes), sub.edge_index, self.edge_type[e], self.edge_weight[e], sub.seed_pos)

    def forward(self) -> torch.Tensor:
        if self.sampler is None:
            return self.gnn(self._inputs(), self.edge_index, self.edge_type, self.edge_weight, self.candidates)
        if self.training:
            return self._on_subgraph(self.candidates, None)
        every = [-1] * len(self.sampler.fanouts)  # evaluation: whole neighbourhoods, deterministic
        return torch.cat([self._on_subgraph(c, every) for c in self.candidates.split(self.eval_chunk)])


class AnnotationConcepts(nn.Module):
    """Each candidate read by the teacher's own set encoder from the concepts it links to (a disease's annotated
    findings): a dual encoder, so a candidate no patient was labelled with is placed by the very function that
    places patients.  While training, each link is kept with its weight as probability (at least ``min_keep``;
    the strongest always), so the encoder meets the candidates as sampled patients rather than as complete sets
    several times longer than any patient's.  Computes only the ``rows`` a step trains on."""

    computes_rows = True

    def __init__(self, encoder: nn.Module, items: torch.Tensor, weights: torch.Tensor, min_keep: float = 0.1,
                 eval_chunk: int = 1024):
        super().__init__()
        self.encoder = encoder
        self.eval_chunk = eval_chunk
        self.register_buffer("items", items.long(), persistent=False)
        keep = torch.where(items >= 0, weights.float().clamp(min_keep, 1.0), 0.0)
        keep[:, 0] = 1.0
        self.register_buffer("keep", keep, persistent=False)

    def forward(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        items, keep = (self.items, self.keep) if rows is None else (self.items[rows], self.keep[rows])
        if not self.training:
            return torch.cat([self.encoder(c) for c in items.split(self.eval_chunk)])
        drop = torch.rand(keep.shape, device=keep.device) >= keep
        return self.encoder(items.masked_fill(drop, -1))


def linked_sets(kg, candidate_nodes, max_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each candidate's linked nodes, strongest first, padded with -1 to the longest set or ``max_items``
    ([K, L] node indices, [K, L] link weights); a candidate with no link is read as itself."""
    sets: list[list[tuple[float, int]]] = [[] for _ in candidate_nodes]
    for c, d, w in kg.out_links(candidate_nodes):
        sets[c].append((w, d))
    width = min(max_items, max(len(s) for s in sets))
    items = torch.full((len(sets), width), -1, dtype=torch.long)
    weights = torch.zeros(len(sets), width)
    for i, s in enumerate(sets):
        s = sorted(s, key=lambda t: (-t[0], t[1]))[:width]
        items[i, :len(s)] = torch.tensor([d for _, d in s])
        weights[i, :len(s)] = torch.tensor([w for w, _ in s])
    return items, weights


class LearnedConcepts(nn.Module):
    """A free embedding per candidate: the classic classifier head, blind to the graph."""

    def __init__(self, num_concepts: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_concepts, dim) / dim**0.5)

    def forward(self) -> torch.Tensor:
        return self.weight


@CONCEPT_SOURCES.register("learned")
def learned_concepts(teacher_concepts: torch.Tensor) -> LearnedConcepts:
    """A free table as wide as the teacher's space; the teacher's embeddings themselves are not read."""
    return LearnedConcepts(*teacher_concepts.shape)


@CONCEPT_SOURCES.register("gnn")
class FixedConcepts(nn.Module):
    """Concept embeddings frozen after the teacher stage: the shared space students align to."""

    def __init__(self, teacher_concepts: torch.Tensor):
        super().__init__()
        self.register_buffer("embeddings", teacher_concepts.detach().float().clone())

    def forward(self) -> torch.Tensor:
        return self.embeddings


@CONCEPT_SOURCES.register("gnn_residual")
class ResidualConcepts(FixedConcepts):
    """The frozen GNN embeddings plus a learned per-concept correction (zero at the start, kept small by weight
    decay): seen concepts can fit the student's modality as closely as a free table would, while concepts never
    trained on keep exactly their graph embedding."""

    def __init__(self, teacher_concepts: torch.Tensor):
        super().__init__(teacher_concepts)
        self.delta = nn.Parameter(torch.zeros_like(self.embeddings))

    def forward(self) -> torch.Tensor:
        return self.embeddings + self.delta
