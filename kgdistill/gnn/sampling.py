"""Neighbour sampling for graphs too large for full-graph message passing (GraphSAGE-style).

A training step only needs the embeddings of the candidate concepts, and an L-layer GNN
only reads their L-hop neighbourhood.  Sampling a fixed number of incoming neighbours per
node and hop bounds a step's cost by ``len(seeds) * prod(fanouts)`` instead of the graph
size.  The sampler is vectorised torch on whatever device holds the graph (no pyg-lib or
torch-sparse needed): destination-sorted CSR, uniform draws with replacement, deduplicated.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class SampledSubgraph:
    nodes: torch.Tensor        # [n] global ids of the subgraph's nodes
    edge_index: torch.Tensor   # [2, m] local ids
    edge_ids: torch.Tensor     # [m] positions in the full edge list (for edge types and weights)
    seed_pos: torch.Tensor     # [len(seeds)] local id of each seed


class NeighbourSampler(nn.Module):
    """Destination-sorted index of ``edge_index``; ``sample`` is given that same edge list (the owner keeps the
    one copy).  A module so that ``.to(device)`` moves the index with the model; non-persistent buffers:
    nothing of it is saved, it is rebuilt from the graph."""

    def __init__(self, edge_index: torch.Tensor, num_nodes: int, fanouts: list[int]):
        super().__init__()
        dst = edge_index[1]
        counts = torch.bincount(dst, minlength=num_nodes)
        rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=dst.device)
        rowptr[1:] = torch.cumsum(counts, 0)
        self.register_buffer("order", torch.argsort(dst, stable=True), persistent=False)  # edge ids by destination
        self.register_buffer("rowptr", rowptr, persistent=False)
        self.num_nodes = num_nodes
        self.fanouts = list(fanouts)

    def sample(self, edge_index: torch.Tensor, seeds: torch.Tensor,
               fanouts: list[int] | None = None) -> SampledSubgraph:
        """Up to ``fanout`` incoming neighbours per frontier node and hop; ``fanouts`` of -1 take them all."""
        if edge_index.shape[1] != len(self.order):
            raise ValueError(f"the sampler indexes {len(self.order)} edges, got an edge list of {edge_index.shape[1]}")
        frontier = seeds.unique()
        visited = [frontier]
        picked = []
        for f in (fanouts or self.fanouts):
            start = self.rowptr[frontier]
            deg = self.rowptr[frontier + 1] - start
            if f < 0:  # every incoming edge of the frontier
                pos = torch.repeat_interleave(start - torch.cumsum(deg, 0) + deg, deg) + torch.arange(
                    int(deg.sum()), device=deg.device)
            else:
                has = deg > 0
                draws = (torch.rand(int(has.sum()), f, device=deg.device) * deg[has, None]).long()
                pos = (start[has, None] + draws).flatten()
            eids = self.order[pos].unique()
            picked.append(eids)
            frontier = edge_index[0, eids].unique()
            visited.append(frontier)
        edge_ids = torch.cat(picked).unique() if picked else torch.zeros(0, dtype=torch.long, device=seeds.device)
        nodes = torch.cat(visited).unique()
        local = torch.full((self.num_nodes,), -1, dtype=torch.long, device=nodes.device)
        local[nodes] = torch.arange(len(nodes), device=nodes.device)
        return SampledSubgraph(nodes, local[edge_index[:, edge_ids]], edge_ids, local[seeds])
