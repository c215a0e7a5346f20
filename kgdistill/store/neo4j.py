"""The Neo4j alignment store: ``bolt://host:port`` (credentials only from NEO4J_USER / NEO4J_PASSWORD).

Graph model (labels and relationship types are the fixed lists below; every value is a query parameter)::

    (:Run {id, status, config_hash, metrics (JSON string), created, finished, pushed_at, digest, dim, ...})
    (:Concept {uid, id, name, type, source})                       -- shared by runs on the same graph source
    (:Run)-[:HAS_PROTOTYPE]->(:Prototype:PrototypeD<d> {run_id, concept_id, embedding (GNN, vector index),
                               seen, n_test, teacher_top1, student_top1,
                               near_teacher / near_student (neighbour concept ids, nearest first) with
                               near_teacher_score / near_student_score (cosines)})
    (:Prototype)-[:OF]->(:Concept)
    (:Prototype)-[:ALIGNED_TO {modality, rank, score}]->(:Concept)   -- the concept's teacher / student centroid
    (:Run)-[:HAS_SAMPLE]->(:Sample {run_id, sample_id, split, true_id})
    (:Sample)-[:ALIGNED_TO {modality, rank, score}]->(:Concept)      -- the sample's top-k predictions
    (:Prototype)-[:CORRESPONDS {run_id, match, confidence, rank}]->(:Prototype)  -- student space -> teacher space
    (:Disagreement {run_id, concept_id, rank, score, ...})-[:ABOUT]->(:Concept)

Uniqueness constraints on Concept.uid, Run.id and (run_id, concept_id | sample_id) back every write: small
records are MERGEd; a Prototype or Sample is created together with its outgoing alignments in one
transaction, and only if it is not there yet, so a second push (or a retried batch) adds nothing.  A vector index ``kgd_prototype_d<d>`` per embedding
width d serves ``query_vector``.  A Run is ``status: "pushing"`` until every batch is in and the counts check
out; only then ``"pushed"``.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

import numpy as np

from ..errors import StoreError
from ..neo4j_client import check_uri, connect, explain, neo4j_auth, short_error
from .base import (STATUS_PUSHED, STATUS_PUSHING, STORES, AlignmentStore, BatchCallback, ConceptHit,
                   ConceptReport, Correspondence, DisagreementRecord, RunSummary, SampleHit,
                   sort_runs, sort_samples)
from . import cypher as q
from .export import RunExport

T = TypeVar("T")
MAX_DIM = 4096
OVERFETCH, MIN_CANDIDATES = 4, 50      # vector query: candidates asked of the HNSW index per result wanted


@STORES.register("bolt")
class Neo4jStore(AlignmentStore):
    """Alignment store on a Neo4j server (5.26 LTS or newer, Community is enough).

    ``retries`` / ``retry_wait``: a batch that fails because the server is down or restarting is retried
    ``retries`` times, waiting ``retry_wait`` s, doubling up to 8 s; then one StoreError.  ``batch_size``:
    alignment rows per transaction (UNWIND); ``workers``: transactions in flight at once during a push.
    """

    scheme = "bolt"

    def __init__(self, uri: str, *, auth: Any = None, database: str | None = None, retries: int = 5,
                 retry_wait: float = 0.5, batch_size: int = 10_000, workers: int = 2, connect_attempts: int = 3):
        super().__init__(check_uri(uri))
        self.auth = neo4j_auth(auth)
        self.database = database or os.environ.get("NEO4J_DATABASE") or None
        self.retries = int(retries)
        self.retry_wait = float(retry_wait)
        self.batch_size = max(1, int(batch_size))
        self.workers = max(1, int(workers))
        self._driver = connect(self.uri, self.auth, attempts=connect_attempts)
        self._schema_done: set[int | None] = set()
        self._known_runs: dict[str, tuple[int, int, str]] = {}   # run id -> (dim, concepts, digest) for queries

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    # ---------------------------------------------------------- transactions
    def _tx(self, work: Callable[[Any], T], *, write: bool, what: str) -> T:
        """Run ``work(tx)`` in one explicit transaction, retrying (bounded) while the server is unreachable."""
        from neo4j import exceptions as ne

        if self._driver is None:
            raise StoreError(f"the store {self.uri} is closed")
        retryable = (ne.ServiceUnavailable, ne.SessionExpired, ne.TransientError, ne.IncompleteCommit, OSError)
        delay, t0, last = self.retry_wait, time.monotonic(), None
        for attempt in range(self.retries + 1):
            try:
                with self._driver.session(database=self.database,
                                          default_access_mode="WRITE" if write else "READ") as session:
                    if not write:  # reads: auto-commit queries, fewer round trips
                        return work(session)
                    tx = session.begin_transaction()
                    try:
                        out = work(tx)
                        tx.commit()
                        return out
                    finally:
                        if not tx.closed():
                            tx.close()
            except ne.AuthError as exc:
                raise explain(exc, self.uri, self.auth) from None
            except retryable as exc:
                last = exc
                if attempt < self.retries:
                    time.sleep(delay)
                    delay = min(delay * 2, 8.0)
            except ne.ClientError as exc:
                if exc.code and (".Statement.Syntax" in exc.code or ".Statement.ParameterMissing" in exc.code):
                    raise  # a bug in this module, not a user problem: keep the traceback
                raise explain(exc, self.uri, self.auth, what) from None
            except ne.Neo4jError as exc:
                raise explain(exc, self.uri, self.auth, what) from None
        hint = "; re-run the push to complete it (nothing is duplicated)" if write else ""
        raise StoreError(f"lost Neo4j at {self.uri} during {what}: gave up after {self.retries + 1} attempts in "
                         f"{time.monotonic() - t0:.0f} s ({short_error(last)}){hint}")

    def _write_q(self, query: str, params: dict[str, Any], what: str) -> None:
        self._tx(lambda tx: tx.run(query, params).consume(), write=True, what=what)

    def _read_q(self, query: str, params: dict[str, Any], what: str) -> list[dict[str, Any]]:
        return self._tx(lambda tx: [r.data() for r in tx.run(query, params)], write=False, what=what)

    # ---------------------------------------------------------------- schema
    def _ensure_schema(self, dim: int | None = None) -> None:
        if None not in self._schema_done:
            for stmt in q.SCHEMA:
                self._write_q(stmt, {}, "creating the schema")
            self._schema_done.add(None)
        if dim is not None and dim not in self._schema_done:
            label, index = _dim_label(dim), _dim_index(dim)
            opts = "`vector.dimensions`: %d, `vector.similarity_function`: 'cosine'" % dim
            stmt = f"CREATE VECTOR INDEX {index} IF NOT EXISTS FOR (p:{label}) ON (p.embedding) OPTIONS {{indexConfig: {{{opts}%s}}}}"
            try:  # exact vectors (no quantisation) where the server supports the option (5.23+)
                self._write_q(stmt % ", `vector.quantization.enabled`: false", {}, "creating the vector index")
            except Exception as exc:  # noqa: BLE001 - an older server rejects the option: create it without
                from neo4j.exceptions import ClientError

                if not isinstance(exc, (StoreError, ClientError)):
                    raise
                self._write_q(stmt % "", {}, "creating the vector index")
            self._write_q("CALL db.awaitIndexes(300)", {}, "waiting for indexes")
            self._schema_done.add(dim)

    # --------------------------------------------------------------- writing
    def _run_state(self, run_id: str) -> tuple[str, str] | None:
        rows = self._read_q(q.Q_RUN_STATE, {"run_id": run_id}, f"reading run {run_id!r}")
        return (rows[0]["status"], rows[0]["digest"]) if rows else None

    def _write(self, export: RunExport, on_batch: BatchCallback | None) -> None:
        rid = export.run_id
        dim = _check_dim(export.dim)
        self._ensure_schema(dim)
        what = f"push of run {rid!r}"
        props = {k: v for k, v in export.run_properties().items() if k != "id"}
        self._write_q(q.Q_RUN_START, {"run_id": rid, "props": props, "status": STATUS_PUSHING}, what)
        uid = {cid: export.concept_uid(cid) for cid in export.concept_ids}

        def send(step: str, query: str, batches: list[tuple[int, dict[str, Any]]]) -> None:
            """Batches of one step in ``workers`` concurrent transactions (the driver packs one batch while the
            server commits another); batches of a step touch disjoint nodes, so their order does not matter."""
            total, done, start = sum(n for n, _ in batches), 0, 0
            jobs = []
            for n, params in batches:
                jobs.append((n, {"run_id": rid, **params}, f"{what} ({step} {start + 1}-{start + n} of {total})"))
                start += n
            if self.workers <= 1 or len(jobs) <= 1:
                for n, params, label in jobs:
                    self._write_q(query, params, label)
                    done += n
                    if on_batch is not None:
                        on_batch(step, done, total)
                return
            from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                pending = {pool.submit(self._write_q, query, params, label): n for n, params, label in jobs}
                try:
                    while pending:
                        finished, _ = wait(pending, return_when=FIRST_EXCEPTION)
                        for f in finished:
                            n = pending.pop(f)
                            f.result()
                            done += n
                            if on_batch is not None:
                                on_batch(step, done, total)
                except BaseException:
                    for f in pending:
                        f.cancel()
                    raise

        concepts = export.concept_rows()
        send("concepts", q.Q_CONCEPTS, [(len(c), {"rows": c}) for c in _chunks(concepts, self.batch_size)])
        send("prototypes", q.Q_PROTOTYPES % {"dim_label": _dim_label(dim)}, self._prototype_batches(export, uid))
        send("sample_alignments", q.Q_SAMPLES, self._sample_batches(export, uid))
        corr = [{"p": c["concept_id"], "q": c["other_id"], "match": c["match"], "r": c["rank"], "v": c["confidence"]}
                for c in export.correspondences()]
        send("correspondences", q.Q_CORRESPONDENCES, [(len(c), {"rows": c}) for c in _chunks(corr, self.batch_size)])
        dis = [{"concept_id": d["concept_id"], "uid": uid[d["concept_id"]],
                "props": {f: d[f] for f in q.DISAGREEMENT_FIELDS}} for d in export.disagreements()]
        send("disagreements", q.Q_DISAGREEMENTS, [(len(c), {"rows": c}) for c in _chunks(dis, self.batch_size)])

        counts = self._read_q(q.Q_COUNTS, {"run_id": rid}, f"checking {what}")
        got = counts[0] if counts else {}
        expected = {"samples": len(export.sample_rows()), "sample_alignments": len(export.samples["sample_id"]),
                    "prototypes": export.num_concepts, "prototype_alignments": len(export.prototype_alignments()),
                    "correspondences": len(corr), "disagreements": len(dis)}
        wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
        if wrong:
            detail = ", ".join(f"{k} {g} of {v}" for k, (g, v) in wrong.items())
            raise StoreError(f"{what} to {self.uri} is incomplete ({detail}); the run stays marked unpushed")
        self._write_q(q.Q_RUN_DONE, {"run_id": rid, "status": STATUS_PUSHED, "now": _now()}, what)

    def _prototype_batches(self, export: RunExport, uid: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
        near: dict[tuple[str, str], tuple[list[str], list[float]]] = {}
        for n in export.neighbours():
            ids, scores = near.setdefault((n["concept_id"], n["space"]), ([], []))
            ids.append(n["other_id"])
            scores.append(n["score"])
        aligned: dict[str, list[tuple[str, str, int, float]]] = {}
        for a in export.prototype_alignments():
            aligned.setdefault(a["concept_id"], []).append((a["modality"], a["target_id"], a["rank"], a["score"]))
        per_batch = max(1, min(500, 500_000 // export.dim))   # keep a transaction's vector payload moderate
        out = []
        for chunk in _chunks(export.prototype_rows(), per_batch):
            cu = _Positions(uid)
            rows = []
            for p in chunk:
                cid = p["concept_id"]
                nt, nts = near.get((cid, "teacher"), ([], []))
                ns, nss = near.get((cid, "student"), ([], []))
                rows.append({
                    "concept_id": cid, "ci": cu.at(cid), "row": p["row"], "seen": p["seen"], "n_test": p["n_test"],
                    "teacher_top1": p["teacher_top1"], "student_top1": p["student_top1"], "embedding": p["embedding"],
                    "nt": nt, "nts": nts, "ns": ns, "nss": nss, "al": _pack_alignments(aligned.get(cid, []), cu)})
            out.append((len(chunk), {"cu": cu.uids, "rows": rows}))
        return out

    def _sample_batches(self, export: RunExport, uid: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
        """Column-wise batches of about ``batch_size`` alignments (lists of plain values pack fast)."""
        s = export.samples
        groups: dict[str, list[tuple[str, str, int, float]]] = {}
        for sid, m, c, r, v in zip(s["sample_id"], s["modality"], s["concept_id"], s["rank"], s["score"]):
            groups.setdefault(sid, []).append((m, c, r, v))
        info = export._samples_by_id
        out: list[tuple[int, dict[str, Any]]] = []
        batch: list[str] = []
        load = 0

        def flush() -> None:
            cu = _Positions(uid)
            params = {"sid": list(batch), "split": [info[x]["split"] for x in batch],
                      "tid": [info[x]["true_id"] for x in batch],
                      "al": [_pack_alignments(groups[x], cu) for x in batch]}
            params["cu"] = cu.uids
            out.append((sum(len(groups[x]) for x in batch), params))

        for sid, rows in groups.items():
            batch.append(sid)
            load += len(rows)
            if load >= self.batch_size:
                flush()
                batch, load = [], 0
        if batch:
            flush()
        return out

    def delete_run(self, run_id: str) -> bool:
        rows = self._read_q("MATCH (r:Run {id: $run_id}) RETURN r.graph_source AS source", {"run_id": run_id},
                            f"reading run {run_id!r}")
        if not rows:
            return False
        what = f"deleting run {run_id!r}"
        limit = 5000
        for label, query in q.Q_DELETE_BATCH.items():
            while self._tx(lambda tx: tx.run(query, {"run_id": run_id, "limit": limit}).single()["n"],
                           write=True, what=what) > 0:
                pass
        self._write_q(q.Q_DELETE_RUN, {"run_id": run_id}, what)
        if rows[0]["source"] is not None:
            while self._tx(lambda tx: tx.run(q.Q_DELETE_ORPHANS, {"source": rows[0]["source"], "limit": limit})
                           .single()["n"], write=True, what=what) > 0:
                pass
        return True

    # --------------------------------------------------------------- reading
    @staticmethod
    def _summary(props: dict[str, Any]) -> RunSummary:
        d = {f: props.get(f) for f in q.RUN_FIELDS}
        return RunSummary(run_id=props["id"], metrics=json.loads(props.get("metrics") or "{}"), **d)

    def runs(self) -> list[RunSummary]:
        return sort_runs([self._summary(r["r"]) for r in self._read_q(q.Q_RUNS, {}, "listing runs")])

    def resolve_run(self, run_id: str | None = None) -> RunSummary:
        if run_id is not None:
            rows = self._read_q(q.Q_RUN, {"run_id": run_id}, f"reading run {run_id!r}")
            if rows and rows[0]["r"].get("status") == STATUS_PUSHED:
                return self._summary(rows[0]["r"])
        return super().resolve_run(run_id)

    def concept(self, concept_id: str, run_id: str | None = None, top_k: int = 10) -> ConceptReport:
        top_k = self._check_k(top_k)
        rid = self.resolve_run(run_id).run_id
        params = {"run_id": rid, "concept_id": concept_id, "k": top_k}

        def work(tx: Any) -> dict[str, list[dict[str, Any]]]:
            out = {"concept": [r.data() for r in tx.run(q.Q_CONCEPT, params)]}
            if out["concept"]:
                for key, stmt in (("samples", q.Q_CONCEPT_SAMPLES), ("neighbours", q.Q_CONCEPT_NEIGHBOURS),
                                  ("aligned", q.Q_CONCEPT_ALIGNED), ("correspondences", q.Q_CONCEPT_CORRESPONDENCES),
                                  ("disagreement", q.Q_CONCEPT_DISAGREEMENT)):
                    out[key] = [r.data() for r in tx.run(stmt, params)]
            return out

        res = self._tx(work, write=False, what=f"reading concept {concept_id!r}")
        if not res["concept"]:
            raise StoreError(f"concept {concept_id!r} is not among the concepts of run {rid!r}")
        c = res["concept"][0]
        neighbours: dict[str, list[ConceptHit]] = {"teacher": [], "student": []}
        for r in res["neighbours"]:
            neighbours[r["space"]].append(ConceptHit(rank=r["rank"], id=r["id"], name=r["name"], score=r["score"]))
        aligned: dict[str, list[ConceptHit]] = {"teacher": [], "student": []}
        for r in res["aligned"]:
            aligned[r["modality"]].append(ConceptHit(rank=r["rank"], id=r["id"], name=r["name"], score=r["score"]))
        dis = [_disagreement(r["d"], r["name"]) for r in res["disagreement"]]
        return ConceptReport(
            run_id=rid, id=c["id"], name=c["name"], type=c["type"], source=c["source"], seen=bool(c["seen"]),
            n_test=c["n_test"], teacher_top1=c["teacher_top1"], student_top1=c["student_top1"],
            samples=sort_samples([SampleHit(**r) for r in res["samples"]], top_k),
            neighbours=neighbours, aligned=aligned,
            correspondences=[Correspondence(**r) for r in res["correspondences"]],
            disagreement=dis[0] if dis else None)

    def disagreements(self, run_id: str | None = None, top_k: int = 10) -> list[DisagreementRecord]:
        top_k = self._check_k(top_k)
        rid = self.resolve_run(run_id).run_id
        rows = self._read_q(q.Q_DISAGREEMENTS_TOP, {"run_id": rid, "k": top_k}, "reading disagreements")
        return [_disagreement(r["d"], r["name"]) for r in rows]

    def query_vector(self, vec: Any, k: int = 10, run_id: str | None = None) -> list[ConceptHit]:
        k = self._check_k(k)
        if run_id is None:
            run_id = self.resolve_run(None).run_id
        rows: list[dict[str, Any]] | None = None
        known = self._known_runs.get(run_id)
        if known is not None:
            # one round trip: the query itself checks that the run is still the one we know (else: no rows)
            dim, n_concepts, digest = known
            v = self._check_vector(vec, dim, run_id).tolist()
            params = {"run_id": run_id, "dim": dim, "digest": digest, "index": _dim_index(dim),
                      "kk": max(OVERFETCH * k, MIN_CANDIDATES), "vec": v, "k": k}
            rows = self._read_q(q.Q_VECTOR_KNOWN_RUN, params, "a vector query")
            if len(rows) < min(k, n_concepts):
                self._known_runs.pop(run_id, None)
                rows = None
        if rows is None:
            rows = self._query_vector_slow(vec, k, run_id)
        # Neo4j's cosine score is (1 + cos) / 2; report the cosine, like the embedded store
        hits = sorted(((2.0 * r["score"] - 1.0, r["id"], r["name"]) for r in rows), key=lambda t: (-t[0], t[1]))[:k]
        return [ConceptHit(rank=i, id=cid, name=name, score=score) for i, (score, cid, name) in enumerate(hits, 1)]

    def _query_vector_slow(self, vec: Any, k: int, run_id: str) -> list[dict[str, Any]]:
        def work(session: Any) -> tuple[RunSummary | None, list[dict[str, Any]]]:
            found = [r["r"] for r in session.run(q.Q_RUN, {"run_id": run_id})]
            if not found or found[0].get("status") != STATUS_PUSHED:
                return None, []
            run = self._summary(found[0])
            dim = _check_dim(run.dim)
            v = self._check_vector(vec, dim, run.run_id).tolist()
            # HNSW is approximate and the index also holds other runs' (and deleted) vectors: ask for more
            # candidates than needed, then keep the k best of this run by their exact scores
            params = {"index": _dim_index(dim), "kk": max(OVERFETCH * k, MIN_CANDIDATES), "vec": v,
                      "run_id": run.run_id, "k": k}
            total = None
            while True:
                rows = [r.data() for r in session.run(q.Q_VECTOR, params)]
                # the index spans every run of this width: widen the search until k of this run's concepts show
                if len(rows) >= min(k, run.n_concepts):
                    return run, rows
                if total is None:
                    total = session.run(f"MATCH (p:{_dim_label(dim)}) RETURN count(p) AS n").single()["n"]
                if params["kk"] >= total:
                    return run, rows
                params["kk"] = min(total, params["kk"] * 4)

        run, rows = self._tx(work, write=False, what="a vector query")
        if run is None:
            self.resolve_run(run_id)          # raises the right error (not there / only partly pushed)
            raise StoreError(f"run {run_id!r} changed while being queried; try again")
        if len(rows) >= min(k, run.n_concepts):
            self._known_runs[run_id] = (int(run.dim), int(run.n_concepts), run.digest)
        return rows


STORES.register("bolt+s")(Neo4jStore)
STORES.register("bolt+ssc")(Neo4jStore)
STORES.register("neo4j")(Neo4jStore)
STORES.register("neo4j+s")(Neo4jStore)
STORES.register("neo4j+ssc")(Neo4jStore)


class _Positions:
    """A batch's distinct concept uids ($cu) and each concept id's position in that list."""

    def __init__(self, uid: dict[str, str]):
        self.uid = uid
        self.uids: list[str] = []
        self.pos: dict[str, int] = {}

    def at(self, concept_id: str) -> int:
        p = self.pos.get(concept_id)
        if p is None:
            p = self.pos[concept_id] = len(self.uids)
            self.uids.append(self.uid[concept_id])
        return p


def _pack_alignments(rows: list[tuple[str, str, int, float]], cu: _Positions) -> list:
    """(modality, concept id, rank, score) rows -> [t_pos, t_scores, t_ranks|None, s_pos, s_scores, s_ranks|None]."""
    out: list = []
    for modality in ("teacher", "student"):
        sel = sorted((r for r in rows if r[0] == modality), key=lambda r: r[2])
        ranks = [r[2] for r in sel]
        out += [[cu.at(r[1]) for r in sel], [r[3] for r in sel],
                None if ranks == list(range(1, len(sel) + 1)) else ranks]
    return out


def _chunks(rows: list, n: int) -> list[list]:
    return [rows[i:i + n] for i in range(0, len(rows), n)]


def _disagreement(props: dict[str, Any], name: str) -> DisagreementRecord:
    return DisagreementRecord(id=props["concept_id"], name=name, **{f: props.get(f) for f in q.DISAGREEMENT_FIELDS})


def _check_dim(dim: Any) -> int:
    if not isinstance(dim, (int, np.integer)) or not 1 <= int(dim) <= MAX_DIM:
        raise StoreError(f"embedding width must be an integer in 1..{MAX_DIM} for a Neo4j vector index, got {dim!r}")
    return int(dim)


def _dim_label(dim: int) -> str:
    return f"PrototypeD{_check_dim(dim)}"


def _dim_index(dim: int) -> str:
    return f"kgd_prototype_d{_check_dim(dim)}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
