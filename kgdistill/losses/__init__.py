"""Distillation loss terms, registered by name in :data:`LOSSES` and combined by :class:`WeightedLoss`.

Importing this package registers every built-in term: ``ce``, ``kd``, ``feature``, ``rkd_distance``,
``rkd_angle``, ``sp``, ``contrastive``, ``anchor``, ``graph_relational``, ``graph_soft_labels``.
"""
from .base import LOSSES, DistillBatch, LossTerm
from .anchor import AnchorLoss
from .ce import CrossEntropyLoss
from .contrastive import ContrastiveLoss
from .feature import FeatureLoss
from .graph_relational import GraphRelationalLoss
from .kd import KDLoss
from .rkd import RKDAngleLoss, RKDDistanceLoss
from .soft_labels import GraphSoftLabelLoss
from .sp import SimilarityPreservingLoss
from .weighted import WeightedLoss

__all__ = [
    "LOSSES", "DistillBatch", "LossTerm", "WeightedLoss",
    "AnchorLoss", "CrossEntropyLoss", "ContrastiveLoss", "FeatureLoss", "GraphRelationalLoss", "GraphSoftLabelLoss",
    "KDLoss", "RKDAngleLoss", "RKDDistanceLoss", "SimilarityPreservingLoss",
]
