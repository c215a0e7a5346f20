"""The embedded alignment store: one SQLite file, no server.

``sqlite:///relative/path.sqlite``, ``sqlite:////absolute/path.sqlite`` or ``sqlite:///:memory:``.
A push is one transaction, so a run is either wholly in (status ``pushed``) or not at all.
The "vector index" is each run's prototype matrix, L2-normalised, kept as one blob and cached in
memory after the first query: an exact cosine search (a matrix-vector product).
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import StoreError
from .base import (STATUS_PUSHED, STATUS_PUSHING, STORES, AlignmentStore, BatchCallback, ConceptHit,
                   ConceptReport, Correspondence, DisagreementRecord, RunSummary, SampleHit, redact_uri,
                   sort_runs, sort_samples)
from .export import RunExport

SCHEMA_VERSION = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, config_hash TEXT, created TEXT, finished TEXT,
  graph_source TEXT, metrics TEXT, digest TEXT, dim INTEGER, run_dir TEXT, n_concepts INTEGER,
  n_samples INTEGER, n_alignments INTEGER, pushed_at TEXT);
CREATE TABLE IF NOT EXISTS concepts (uid TEXT PRIMARY KEY, id TEXT NOT NULL, name TEXT, type TEXT, source TEXT);
CREATE TABLE IF NOT EXISTS prototypes (
  run_id TEXT NOT NULL, concept_id TEXT NOT NULL, concept_uid TEXT NOT NULL, row INTEGER, seen INTEGER,
  n_test INTEGER, teacher_top1 REAL, student_top1 REAL, embedding BLOB,
  PRIMARY KEY (run_id, concept_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vectors (run_id TEXT PRIMARY KEY, dim INTEGER, ids TEXT, names TEXT, matrix BLOB);
CREATE TABLE IF NOT EXISTS samples (
  run_id TEXT NOT NULL, sample_id TEXT NOT NULL, split TEXT, true_id TEXT,
  PRIMARY KEY (run_id, sample_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alignments (
  run_id TEXT NOT NULL, kind TEXT NOT NULL, src TEXT NOT NULL, modality TEXT NOT NULL,
  concept_id TEXT NOT NULL, rank INTEGER, score REAL,
  PRIMARY KEY (run_id, kind, src, modality, concept_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alignments_by_concept ON alignments (run_id, concept_id, kind);
CREATE TABLE IF NOT EXISTS neighbours (
  run_id TEXT NOT NULL, concept_id TEXT NOT NULL, space TEXT NOT NULL, other_id TEXT NOT NULL,
  rank INTEGER, score REAL, PRIMARY KEY (run_id, concept_id, space, other_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS correspondences (
  run_id TEXT NOT NULL, concept_id TEXT NOT NULL, other_id TEXT NOT NULL, match TEXT, confidence REAL,
  rank INTEGER, PRIMARY KEY (run_id, concept_id, other_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS disagreements (
  run_id TEXT NOT NULL, concept_id TEXT NOT NULL, rank INTEGER, score REAL, sample_rate REAL, top1_gap REAL,
  centroid_cos REAL, teacher_top1 REAL, student_top1 REAL, n_test INTEGER, n_samples INTEGER,
  nearest_teacher TEXT, nearest_teacher_cos REAL, match TEXT, PRIMARY KEY (run_id, concept_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS disagreements_by_rank ON disagreements (run_id, rank);
"""
RUN_TABLES = ("prototypes", "vectors", "samples", "alignments", "neighbours", "correspondences", "disagreements")
DISAGREEMENT_FIELDS = ("rank", "score", "sample_rate", "top1_gap", "centroid_cos", "teacher_top1", "student_top1",
                       "n_test", "n_samples", "nearest_teacher", "nearest_teacher_cos", "match")


def sqlite_path(uri: str) -> str:
    """``sqlite:///rel`` -> ``rel``; ``sqlite:////abs`` -> ``/abs``; ``sqlite:///:memory:`` -> ``:memory:``."""
    if not uri.lower().startswith("sqlite:///"):
        raise StoreError(f"sqlite store URI must look like sqlite:///path (got {redact_uri(uri)!r})")
    path = uri[len("sqlite:///"):]
    if not path:
        raise StoreError(f"sqlite store URI {uri!r} names no file")
    return path


@STORES.register("sqlite")
class SqliteStore(AlignmentStore):
    scheme = "sqlite"

    def __init__(self, uri: str):
        super().__init__(uri)
        self.path = sqlite_path(uri)
        self._con: sqlite3.Connection | None = None
        self._cache: dict[str, tuple[str, list[str], list[str], np.ndarray]] = {}

    # ----------------------------------------------------------- connection
    @property
    def where(self) -> str:
        return self.path if self.path == ":memory:" else str(Path(self.path).resolve())

    def _connect(self, write: bool = False) -> sqlite3.Connection:
        if self._con is not None:
            return self._con
        memory = self.path == ":memory:"
        if not memory and not Path(self.path).exists():
            if not write:
                raise StoreError(f"no alignment store at {self.where} (nothing pushed yet)")
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store folder for {self.where}: {exc.strerror or exc}") from None
        try:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            if not memory:
                con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the sqlite store {self.where}: {exc}") from None
        self._con = con
        return con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def _q(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        try:
            return self._connect().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.where}: {exc}") from None

    # --------------------------------------------------------------- writing
    def _run_state(self, run_id: str) -> tuple[str, str] | None:
        if self.path != ":memory:" and not Path(self.path).exists():
            return None
        rows = self._q("SELECT status, digest FROM runs WHERE id = ?", (run_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def _write(self, export: RunExport, on_batch: BatchCallback | None) -> None:
        con = self._connect(write=True)
        rid = export.run_id
        try:
            con.execute("BEGIN IMMEDIATE")
            props = export.run_properties()
            con.execute(
                "INSERT INTO runs (id, status, config_hash, created, finished, graph_source, metrics, digest, dim, "
                "run_dir, n_concepts, n_samples, n_alignments) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET status=excluded.status, config_hash=excluded.config_hash, "
                "created=excluded.created, finished=excluded.finished, graph_source=excluded.graph_source, "
                "metrics=excluded.metrics, digest=excluded.digest, dim=excluded.dim, run_dir=excluded.run_dir, "
                "n_concepts=excluded.n_concepts, n_samples=excluded.n_samples, n_alignments=excluded.n_alignments",
                (rid, STATUS_PUSHING, props["config_hash"], props["created"], props["finished"],
                 props["graph_source"], props["metrics"], props["digest"], props["dim"], props["run_dir"],
                 props["n_concepts"], props["n_samples"], props["n_alignments"]))
            concepts = export.concept_rows()
            con.executemany(
                "INSERT INTO concepts VALUES (?,?,?,?,?) ON CONFLICT(uid) DO UPDATE SET id=excluded.id, "
                "name=excluded.name, type=excluded.type, source=excluded.source",
                [(c["uid"], c["id"], c["name"], c["type"], c["source"]) for c in concepts])
            _progress(on_batch, "concepts", len(concepts))
            protos = export.prototype_rows()
            con.executemany(
                "INSERT OR REPLACE INTO prototypes VALUES (?,?,?,?,?,?,?,?,?)",
                [(rid, p["concept_id"], p["uid"], p["row"], int(p["seen"]), p["n_test"], p["teacher_top1"],
                  p["student_top1"], _blob(p["embedding"])) for p in protos])
            norm = export.gnn / np.linalg.norm(export.gnn, axis=1, keepdims=True)
            con.execute("INSERT OR REPLACE INTO vectors VALUES (?,?,?,?,?)",
                        (rid, export.dim, json.dumps(export.concept_ids, ensure_ascii=False),
                         json.dumps(export.concept_names, ensure_ascii=False),
                         np.ascontiguousarray(norm, dtype=np.float32).tobytes()))
            _progress(on_batch, "prototypes", len(protos))
            samples = export.sample_rows()
            con.executemany("INSERT OR REPLACE INTO samples VALUES (?,?,?,?)",
                            [(rid, s["sample_id"], s["split"], s["true_id"]) for s in samples])
            _progress(on_batch, "samples", len(samples))
            upsert = ("INSERT INTO alignments VALUES (?,?,?,?,?,?,?) ON CONFLICT(run_id, kind, src, modality, "
                      "concept_id) DO UPDATE SET rank=excluded.rank, score=excluded.score")
            s = export.samples
            con.executemany(upsert, zip([rid] * len(s["sample_id"]), ["sample"] * len(s["sample_id"]),
                                        s["sample_id"], s["modality"], s["concept_id"], s["rank"], s["score"]))
            _progress(on_batch, "sample_alignments", len(s["sample_id"]))
            pa = export.prototype_alignments()
            con.executemany(upsert, [(rid, "prototype", a["concept_id"], a["modality"], a["target_id"], a["rank"],
                                      a["score"]) for a in pa])
            _progress(on_batch, "prototype_alignments", len(pa))
            nb = export.neighbours()
            con.executemany("INSERT OR REPLACE INTO neighbours VALUES (?,?,?,?,?,?)",
                            [(rid, n["concept_id"], n["space"], n["other_id"], n["rank"], n["score"]) for n in nb])
            _progress(on_batch, "neighbours", len(nb))
            co = export.correspondences()
            con.executemany("INSERT OR REPLACE INTO correspondences VALUES (?,?,?,?,?,?)",
                            [(rid, c["concept_id"], c["other_id"], c["match"], c["confidence"], c["rank"])
                             for c in co])
            _progress(on_batch, "correspondences", len(co))
            dis = export.disagreements()
            con.executemany(f"INSERT OR REPLACE INTO disagreements VALUES (?,?,{','.join('?' * len(DISAGREEMENT_FIELDS))})",
                            [(rid, d["concept_id"], *[d[f] for f in DISAGREEMENT_FIELDS]) for d in dis])
            _progress(on_batch, "disagreements", len(dis))
            n_al = con.execute("SELECT count(*) FROM alignments WHERE run_id = ?", (rid,)).fetchone()[0]
            if n_al != export.num_alignments:
                raise StoreError(f"push of run {rid!r} is incomplete: {n_al} of {export.num_alignments} alignments")
            con.execute("UPDATE runs SET status = ?, pushed_at = ? WHERE id = ?", (STATUS_PUSHED, _now(), rid))
            con.execute("COMMIT")
        except BaseException as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"sqlite store {self.where}: push of run {rid!r} failed: {exc}") from None
            raise
        finally:
            self._cache.pop(rid, None)

    def delete_run(self, run_id: str) -> bool:
        con = self._connect(write=True)
        row = con.execute("SELECT graph_source FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return False
        try:
            con.execute("BEGIN IMMEDIATE")
            for table in RUN_TABLES:
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            con.execute("DELETE FROM concepts WHERE source = ? AND uid NOT IN (SELECT concept_uid FROM prototypes)",
                        (row[0],))
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise StoreError(f"sqlite store {self.where}: cannot delete run {run_id!r}: {exc}") from None
        self._cache.pop(run_id, None)
        return True

    # --------------------------------------------------------------- reading
    _RUN_COLUMNS = ("id", "status", "config_hash", "created", "finished", "graph_source", "digest", "dim", "run_dir",
                    "n_concepts", "n_samples", "n_alignments", "pushed_at", "metrics")

    def _summaries(self, where: str = "", params: tuple = ()) -> list[RunSummary]:
        rows = self._q(f"SELECT {', '.join(self._RUN_COLUMNS)} FROM runs {where}", params)
        out = []
        for r in rows:
            d = dict(zip(self._RUN_COLUMNS, r))
            d["run_id"] = d.pop("id")
            d["metrics"] = json.loads(d["metrics"] or "{}")
            out.append(RunSummary(**d))
        return sort_runs(out)

    def runs(self) -> list[RunSummary]:
        return self._summaries()

    def resolve_run(self, run_id: str | None = None) -> RunSummary:
        if run_id is not None:
            found = self._summaries("WHERE id = ?", (run_id,))
            if found and found[0].status == STATUS_PUSHED:
                return found[0]
        return super().resolve_run(run_id)

    def _names(self, run_id: str) -> dict[str, str]:
        return dict(self._q("SELECT p.concept_id, c.name FROM prototypes p JOIN concepts c ON c.uid = p.concept_uid "
                            "WHERE p.run_id = ?", (run_id,)))

    def concept(self, concept_id: str, run_id: str | None = None, top_k: int = 10) -> ConceptReport:
        top_k = self._check_k(top_k)
        run = self.resolve_run(run_id)
        rid = run.run_id
        row = self._q("SELECT c.id, c.name, c.type, c.source, p.seen, p.n_test, p.teacher_top1, p.student_top1 "
                      "FROM prototypes p JOIN concepts c ON c.uid = p.concept_uid "
                      "WHERE p.run_id = ? AND p.concept_id = ?", (rid, concept_id))
        if not row:
            raise StoreError(f"concept {concept_id!r} is not among the concepts of run {rid!r}")
        cid, name, ctype, source, seen, n_test, t1, s1 = row[0]
        names = self._names(rid)
        hits = [SampleHit(sample_id=a, split=b, true_id=c, modality=m, rank=r, score=v) for a, b, c, m, r, v in self._q(
            "SELECT a.src, s.split, s.true_id, a.modality, a.rank, a.score FROM alignments a "
            "JOIN samples s ON s.run_id = a.run_id AND s.sample_id = a.src "
            "WHERE a.run_id = ? AND a.concept_id = ? AND a.kind = 'sample'", (rid, concept_id))]
        neighbours: dict[str, list[ConceptHit]] = {"teacher": [], "student": []}
        for space, rank, other, score in self._q(
                "SELECT space, rank, other_id, score FROM neighbours WHERE run_id = ? AND concept_id = ? AND rank <= ? "
                "ORDER BY space, rank", (rid, concept_id, top_k)):
            neighbours[space].append(ConceptHit(rank=rank, id=other, name=names.get(other, other), score=score))
        aligned: dict[str, list[ConceptHit]] = {"teacher": [], "student": []}
        for modality, rank, target, score in self._q(
                "SELECT modality, rank, concept_id, score FROM alignments WHERE run_id = ? AND kind = 'prototype' "
                "AND src = ? AND rank <= ? ORDER BY modality, rank", (rid, concept_id, top_k)):
            aligned[modality].append(ConceptHit(rank=rank, id=target, name=names.get(target, target), score=score))
        corr = [Correspondence(rank=rank, id=other, name=names.get(other, other), match=match, confidence=conf)
                for other, match, conf, rank in self._q(
                    "SELECT other_id, match, confidence, rank FROM correspondences WHERE run_id = ? AND concept_id = ? "
                    "ORDER BY rank", (rid, concept_id))]
        dis = self._disagreement_rows("WHERE run_id = ? AND concept_id = ?", (rid, concept_id), names)
        return ConceptReport(run_id=rid, id=cid, name=name, type=ctype, source=source, seen=bool(seen), n_test=n_test,
                             teacher_top1=t1, student_top1=s1, samples=sort_samples(hits, top_k),
                             neighbours=neighbours, aligned=aligned, correspondences=corr,
                             disagreement=dis[0] if dis else None)

    def _disagreement_rows(self, where: str, params: tuple, names: dict[str, str]) -> list[DisagreementRecord]:
        rows = self._q(f"SELECT concept_id, {', '.join(DISAGREEMENT_FIELDS)} FROM disagreements {where}", params)
        out = []
        for r in rows:
            d = dict(zip(("concept_id", *DISAGREEMENT_FIELDS), r))
            cid = d.pop("concept_id")
            out.append(DisagreementRecord(id=cid, name=names.get(cid, cid), **d))
        return out

    def disagreements(self, run_id: str | None = None, top_k: int = 10) -> list[DisagreementRecord]:
        top_k = self._check_k(top_k)
        run = self.resolve_run(run_id)
        return self._disagreement_rows("WHERE run_id = ? ORDER BY rank LIMIT ?", (run.run_id, top_k),
                                       self._names(run.run_id))

    def _matrix(self, run: RunSummary) -> tuple[list[str], list[str], np.ndarray]:
        cached = self._cache.get(run.run_id)
        if cached is None or cached[0] != run.digest:
            row = self._q("SELECT dim, ids, names, matrix FROM vectors WHERE run_id = ?", (run.run_id,))
            if not row:
                raise StoreError(f"run {run.run_id!r} has no prototype vectors in {self.where}")
            dim, ids, names, blob = row[0]
            m = np.frombuffer(blob, dtype=np.float32).reshape(-1, dim)
            cached = (run.digest, json.loads(ids), json.loads(names), m)
            self._cache[run.run_id] = cached
        return cached[1], cached[2], cached[3]

    def query_vector(self, vec: Any, k: int = 10, run_id: str | None = None) -> list[ConceptHit]:
        k = self._check_k(k)
        run = self.resolve_run(run_id)
        v = self._check_vector(vec, run.dim, run.run_id).astype(np.float32)
        ids, names, m = self._matrix(run)
        sims = (m @ v).astype(np.float64)
        k = min(k, len(ids))
        part = np.argpartition(-sims, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
        order = sorted(part.tolist(), key=lambda i: (-sims[i], ids[i]))
        return [ConceptHit(rank=r, id=ids[i], name=names[i], score=float(sims[i])) for r, i in enumerate(order, 1)]


def _blob(values: list[float] | None) -> bytes | None:
    return None if values is None else np.asarray(values, dtype=np.float32).tobytes()


def _progress(cb: BatchCallback | None, step: str, n: int) -> None:
    if cb is not None:
        cb(step, n, n)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
