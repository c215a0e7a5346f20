"""Alignment stores: a finished run's concept alignments in an embedded SQLite file or a Neo4j server.

``open_store(uri)`` picks the implementation from the URI scheme (``STORES`` registry): ``sqlite:///path``
(:class:`SqliteStore`, the default) or ``bolt://host:port`` (:class:`Neo4jStore`).  Both implement
:class:`AlignmentStore`: ``push``, ``runs``, ``concept``, ``query_vector``, ``disagreements``, ``delete_run``.
"""
from .base import (DEFAULT_STORE_URI, STORES, AlignmentStore, ConceptHit, ConceptReport, Correspondence,
                   DisagreementRecord, PushResult, RunSummary, SampleHit, default_store_uri, open_store)
from .export import MATCH_TYPES, CorrespondenceRule, RunExport, read_run_dir

__all__ = ["DEFAULT_STORE_URI", "MATCH_TYPES", "STORES", "AlignmentStore", "ConceptHit", "ConceptReport",
           "Correspondence", "CorrespondenceRule", "DisagreementRecord", "PushResult", "RunExport", "RunSummary",
           "SampleHit", "default_store_uri", "open_store", "read_run_dir"]
