"""The alignment store interface: one abstract class, one registry, one way to open a store by URI.

::

    from kgdistill.store import open_store

    with open_store("sqlite:///runs/alignments.sqlite") as store:    # or "bolt://127.0.0.1:17687"
        store.push("runs/my-run")                                    # a run directory (or a RunExport)
        report = store.concept("HP:0001250", top_k=5)                 # latest pushed run by default
        hits = store.query_vector(vec, k=10)                          # nearest concepts to a student vector
        worst = store.disagreements(top_k=10)

Both implementations hold the records :mod:`kgdistill.store.export` derives from the run directory and
answer every query with the same values (only ``query_vector`` on Neo4j goes through an approximate
HNSW index; on small stores it returns the exact answer).

URIs: ``bolt://host:port`` (Neo4j; credentials only from ``NEO4J_USER`` / ``NEO4J_PASSWORD``) and
``sqlite:///relative/path``, ``sqlite:////absolute/path`` (the embedded store; SQLAlchemy's convention).
Without a URI, ``$KGDISTILL_STORE`` or :data:`DEFAULT_STORE_URI` is used.
"""
from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ..errors import ConfigError, StoreError
from ..neo4j_client import redact_uri
from ..registry import Registry
from .export import RunExport, read_run_dir

DEFAULT_STORE_URI = "sqlite:///runs/alignments.sqlite"
STORE_ENV = "KGDISTILL_STORE"
STATUS_PUSHING = "pushing"
STATUS_PUSHED = "pushed"

#: store classes by URI scheme ("bolt", "sqlite", ...); a class is built as ``cls(uri, **options)``.
STORES: Registry[type["AlignmentStore"]] = Registry("store")

#: progress callback: (step, rows written so far in this step, rows in this step)
BatchCallback = Callable[[str, int, int], None]


# ------------------------------------------------------------------- records
@dataclass
class RunSummary:
    run_id: str
    status: str                  # "pushing" (incomplete) or "pushed"
    config_hash: str
    created: str
    finished: str
    graph_source: str
    digest: str
    dim: int
    run_dir: str
    n_concepts: int
    n_samples: int
    n_alignments: int
    pushed_at: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PushResult:
    run_id: str
    store: str
    outcome: str                 # "pushed", "unchanged" (already in, same content) or "replaced"
    n_concepts: int
    n_samples: int
    n_alignments: int
    n_neighbours: int
    n_correspondences: int
    n_disagreements: int
    seconds: float

    @property
    def alignments_per_s(self) -> float:
        return self.n_alignments / self.seconds if self.seconds > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["alignments_per_s"] = round(self.alignments_per_s, 1) if self.seconds > 0 else None
        return d


@dataclass
class ConceptHit:
    rank: int
    id: str
    name: str
    score: float                 # cosine similarity


@dataclass
class SampleHit:
    sample_id: str
    split: str
    true_id: str
    modality: str
    rank: int
    score: float


@dataclass
class Correspondence:
    rank: int
    id: str                      # the teacher-space concept
    name: str
    match: str                   # exactMatch | closeMatch | broadMatch | narrowMatch | relatedMatch
    confidence: float


@dataclass
class DisagreementRecord:
    rank: int
    id: str
    name: str
    score: float
    sample_rate: float | None
    top1_gap: float | None
    centroid_cos: float | None
    teacher_top1: float | None
    student_top1: float | None
    n_test: int
    n_samples: int
    nearest_teacher: str | None
    nearest_teacher_cos: float | None
    match: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ConceptReport:
    run_id: str
    id: str
    name: str
    type: str
    source: str
    seen: bool
    n_test: int
    teacher_top1: float | None
    student_top1: float | None
    samples: dict[str, list[SampleHit]]            # modality -> samples aligned to the concept
    neighbours: dict[str, list[ConceptHit]]        # space -> nearest concepts (centroid to centroid)
    aligned: dict[str, list[ConceptHit]]           # modality -> prototypes nearest the concept's centroid
    correspondences: list[Correspondence]          # student-space concept -> teacher-space concepts
    disagreement: DisagreementRecord | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------- store
class AlignmentStore(ABC):
    """Where runs' concept alignments live.  Subclasses register under their URI scheme in STORES."""

    scheme: ClassVar[str] = ""

    def __init__(self, uri: str):
        self.uri = uri

    # ---- writing
    def push(self, run: RunExport | str | Path, *, replace: bool = False, force: bool = False,
             on_batch: BatchCallback | None = None) -> PushResult:
        """Write a complete run.  Idempotent: the same run again changes nothing (``outcome="unchanged"``).

        A run already in the store with *different* content is an error unless ``replace`` (delete, then
        write).  A run whose earlier push stopped half-way is completed (writes are MERGEs).  ``force``
        writes again even when the run is complete in the store (still without duplicates).
        """
        export = run if isinstance(run, RunExport) else read_run_dir(run)
        existing = self._run_state(export.run_id)
        outcome = "pushed"
        if existing is not None:
            status, digest = existing
            if digest != export.digest:
                if not replace:
                    raise StoreError(f"run {export.run_id!r} is already in {self.uri} with different content; "
                                     f"pass --replace to overwrite it")
                self.delete_run(export.run_id)
                outcome = "replaced"
            elif status == STATUS_PUSHED and not force:
                return self._result(export, "unchanged", 0.0)
        t0 = time.perf_counter()
        self._write(export, on_batch)
        return self._result(export, outcome, time.perf_counter() - t0)

    def _result(self, export: RunExport, outcome: str, seconds: float) -> PushResult:
        return PushResult(
            run_id=export.run_id, store=self.uri, outcome=outcome, n_concepts=export.num_concepts,
            n_samples=len(export.sample_rows()), n_alignments=export.num_alignments,
            n_neighbours=len(export.neighbours()), n_correspondences=len(export.correspondences()),
            n_disagreements=len(export.disagreements()), seconds=seconds)

    @abstractmethod
    def _run_state(self, run_id: str) -> tuple[str, str] | None:
        """(status, digest) of a run in the store, or None."""

    @abstractmethod
    def _write(self, export: RunExport, on_batch: BatchCallback | None) -> None:
        """Write every record of the run; mark it pushed only at the end, after checking the counts."""

    @abstractmethod
    def delete_run(self, run_id: str) -> bool:
        """Remove a run and everything only it refers to; False if it was not there."""

    # ---- reading
    @abstractmethod
    def runs(self) -> list[RunSummary]:
        """Every run in the store, pushed or not, newest first."""

    def resolve_run(self, run_id: str | None = None) -> RunSummary:
        """The named run, or the newest pushed one; a run whose push is incomplete is an error."""
        runs = self.runs()
        if run_id is None:
            pushed = [r for r in runs if r.status == STATUS_PUSHED]
            if not pushed:
                raise StoreError(f"no pushed runs in {self.uri}; run `kgdistill align push RUN_DIR` first")
            return pushed[0]
        for r in runs:
            if r.run_id == run_id:
                if r.status != STATUS_PUSHED:
                    raise StoreError(f"run {run_id!r} is only partly pushed to {self.uri}; "
                                     f"re-run `kgdistill align push` to complete it")
                return r
        known = ", ".join(repr(r.run_id) for r in runs[:5]) or "none"
        raise StoreError(f"run {run_id!r} is not in {self.uri} (runs: {known})")

    @abstractmethod
    def concept(self, concept_id: str, run_id: str | None = None, top_k: int = 10) -> ConceptReport:
        """A concept as a run sees it: aligned samples, neighbours in both spaces, accuracy, matches."""

    @abstractmethod
    def query_vector(self, vec: Any, k: int = 10, run_id: str | None = None) -> list[ConceptHit]:
        """The k concepts whose learned prototypes lie nearest (cosine) to a student-space vector."""

    @abstractmethod
    def disagreements(self, run_id: str | None = None, top_k: int = 10) -> list[DisagreementRecord]:
        """The concepts where teacher and student differ most (see RunExport.disagreements)."""

    # ---- lifetime
    def close(self) -> None:
        pass

    def __enter__(self) -> "AlignmentStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- helpers for implementations
    @staticmethod
    def _check_vector(vec: Any, dim: int, run_id: str) -> np.ndarray:
        try:
            v = np.asarray(vec, dtype=np.float64)
        except (TypeError, ValueError):
            raise StoreError("query vector must be a list of numbers") from None
        if v.ndim == 2 and v.shape[0] == 1:
            v = v[0]
        if v.ndim != 1:
            raise StoreError(f"query vector must be one flat vector, got shape {list(v.shape)}")
        if v.shape[0] != dim:
            raise StoreError(f"query vector has {v.shape[0]} dimensions; run {run_id!r} has {dim}")
        norm = float(np.linalg.norm(v))
        if not np.isfinite(v).all() or norm == 0.0:
            raise StoreError("query vector must be finite and non-zero")
        return v / norm

    @staticmethod
    def _check_k(k: int) -> int:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise StoreError(f"top-k must be a positive integer, got {k!r}")
        return int(k)


def sort_samples(hits: list[SampleHit], top_k: int) -> dict[str, list[SampleHit]]:
    """Samples aligned to a concept, per modality, best score first (ties by sample id), top_k each."""
    out: dict[str, list[SampleHit]] = {"teacher": [], "student": []}
    for h in sorted(hits, key=lambda h: (-h.score, h.sample_id)):
        lst = out.setdefault(h.modality, [])
        if len(lst) < top_k:
            lst.append(h)
    return out


def sort_runs(runs: list[RunSummary]) -> list[RunSummary]:
    """Newest first: by finished time, then push time; ties by run id."""
    runs = sorted(runs, key=lambda r: r.run_id)
    return sorted(runs, key=lambda r: (r.finished or "", r.pushed_at or ""), reverse=True)


def default_store_uri() -> str:
    return os.environ.get(STORE_ENV) or DEFAULT_STORE_URI


def open_store(uri: str | None = None, **options: Any) -> AlignmentStore:
    """Open the store a URI names (``bolt://host:port`` or ``sqlite:///path``); None: the default store."""
    uri = (uri or default_store_uri()).strip()
    if "://" not in uri:
        raise StoreError(f"store URI {redact_uri(uri)!r} must look like bolt://host:port or sqlite:///path")
    scheme = uri.split("://", 1)[0].lower()
    from . import neo4j as _neo4j, sqlite as _sqlite  # noqa: F401  (register the built-in stores)

    try:
        cls = STORES.get(scheme)
    except ConfigError:
        raise StoreError(f"unsupported store URI scheme {scheme!r} in {redact_uri(uri)!r}; "
                         f"expected one of: {', '.join(s + '://' for s in STORES.names())}") from None
    return cls(uri, **options)
