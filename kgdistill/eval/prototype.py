"""The training-free baseline: compare the input with each concept's linked findings.

For text, a note (mean of its sentence embeddings) is compared with each concept's
prototype: the frequency-weighted mean of the name embeddings of the concepts it
links to in the graph (a disease's phenotypes), or its own name when it links to
nothing.  It needs no labels, so it ranks unseen concepts as well as seen ones.
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
