"""GNN concept encoders, all registered in :data:`GNNS`."""
from .base import GNNS, ConceptGNN
from . import gat, gcn, rgcn  # noqa: F401  (registration)

__all__ = ["GNNS", "ConceptGNN"]
