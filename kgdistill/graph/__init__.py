"""Graph loading: every supported format becomes one typed :class:`KnowledgeGraph`.

Importing the package registers the built-in readers in ``GRAPH_LOADERS``.
"""
from .kg import GraphBuilder, KnowledgeGraph
from .loader import GRAPH_LOADERS, load_graph
from . import obo, obographs, rdf, tabular  # noqa: F401  (importing registers the built-in formats)
from .inspect import format_inspection, inspect_graph
from .obo import hpo_obo_path

__all__ = ["GRAPH_LOADERS", "GraphBuilder", "KnowledgeGraph", "format_inspection", "hpo_obo_path",
           "inspect_graph", "load_graph"]
