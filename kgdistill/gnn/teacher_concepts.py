"""Where the candidates' embeddings come from while the teacher trains (``teacher.concepts``).

``gnn``: the GNN over the whole graph (section ``gnn``), trained with the teacher.  ``annotations``: the teacher's
own set encoder reading each candidate's linked concepts (a dual encoder; no GNN).  Either way the embeddings are
frozen after the teacher stage and become the space every graph-guided student aligns to.  A factory takes the run
config, the task and the teacher's encoder; any other keyword is the source's own setting in the config.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from .base import GNNS
from .concepts import AnnotationConcepts, GraphConcepts, linked_sets
from .features import principal_components
from .sampling import NeighbourSampler

TEACHER_CONCEPTS: Registry[Callable[..., nn.Module]] = Registry("teacher concept source")
SUPPLIED = ("cfg", "task", "encoder")  # what build_teacher passes every factory


@TEACHER_CONCEPTS.register("gnn")
def graph_concepts(cfg, task, encoder: nn.Module) -> GraphConcepts:
    """The GNN over the whole graph (sampled neighbourhoods when ``gnn.num_neighbors`` is set)."""
    sampled = bool(cfg.gnn.num_neighbors)
    x = task.node_features
    if cfg.gnn.input_dim is not None:
        x = principal_components(x, cfg.gnn.input_dim)
    gnn = GNNS.build(cfg.gnn.name, in_dim=x.shape[1], out_dim=cfg.space.dim,
                     num_relations=len(task.graph_data.relations), fixed_graph=not sampled, **cfg.gnn.build_params())
    sampler = NeighbourSampler(task.graph_data.edge_index, x.shape[0], cfg.gnn.num_neighbors) if sampled else None
    return GraphConcepts(gnn, x, task.graph_data, torch.as_tensor(task.cand_nodes),
                         cfg.gnn.self_feature_dropout, sampler, cfg.gnn.eval_chunk)


@TEACHER_CONCEPTS.register("annotations")
def annotation_concepts(cfg, task, encoder: nn.Module, max_items: int = 64, min_keep: float = 0.1
                        ) -> AnnotationConcepts:
    """The teacher's encoder over each candidate's links, strongest ``max_items`` (see ``AnnotationConcepts``)."""
    if "concept_set" not in getattr(encoder, "kinds", ()):  # it reads node indices, as the links are
        raise ConfigError(f"teacher.concepts: 'annotations' needs a teacher that reads sets of graph concepts "
                          f"(teacher.encoder.name: concept_set); this teacher's encoder is {type(encoder).__name__}")
    if max_items < 1 or not 0.0 < min_keep <= 1.0:
        raise ConfigError(f"teacher.concepts: max_items must be >= 1 and min_keep in (0, 1]; got {max_items}, "
                          f"{min_keep}")
    items, weights = linked_sets(task.kg, task.cand_nodes, max_items)
    return AnnotationConcepts(encoder, items, weights, min_keep)
