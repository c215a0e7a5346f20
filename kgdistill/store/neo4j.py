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
from urllib.parse import urlsplit

import numpy as np

from ..errors import StoreError
from .base import (STATUS_PUSHED, STATUS_PUSHING, STORES, AlignmentStore, BatchCallback, ConceptHit,
                   ConceptReport, Correspondence, DisagreementRecord, RunSummary, SampleHit, redact_uri,
                   sort_runs, sort_samples)
from .export import RunExport

T = TypeVar("T")

LABELS = ("Run", "Concept", "Prototype", "Sample", "Disagreement")
REL_TYPES = ("HAS_PROTOTYPE", "OF", "ALIGNED_TO", "HAS_SAMPLE", "CORRESPONDS", "ABOUT")
SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
MAX_DIM = 4096
OVERFETCH, MIN_CANDIDATES = 4, 50      # vector query: candidates asked of the HNSW index per result wanted

SCHEMA = (
    "CREATE CONSTRAINT kgd_concept_uid IF NOT EXISTS FOR (c:Concept) REQUIRE c.uid IS UNIQUE",
    "CREATE CONSTRAINT kgd_run_id IF NOT EXISTS FOR (r:Run) REQUIRE r.id IS UNIQUE",
    "CREATE CONSTRAINT kgd_prototype_key IF NOT EXISTS FOR (p:Prototype) REQUIRE (p.run_id, p.concept_id) IS UNIQUE",
    "CREATE CONSTRAINT kgd_sample_key IF NOT EXISTS FOR (s:Sample) REQUIRE (s.run_id, s.sample_id) IS UNIQUE",
    "CREATE CONSTRAINT kgd_disagreement_key IF NOT EXISTS FOR (d:Disagreement) REQUIRE (d.run_id, d.concept_id) IS UNIQUE",
    "CREATE INDEX kgd_disagreement_rank IF NOT EXISTS FOR (d:Disagreement) ON (d.run_id, d.rank)",
    "CREATE INDEX kgd_concept_source IF NOT EXISTS FOR (c:Concept) ON (c.source)",
)

Q_RUN_STATE = "MATCH (r:Run {id: $run_id}) RETURN r.status AS status, r.digest AS digest"
Q_RUN_START = "MERGE (r:Run {id: $run_id}) SET r += $props, r.status = $status"
Q_CONCEPTS = """
UNWIND $rows AS row
MERGE (c:Concept {uid: row.uid})
SET c.id = row.id, c.name = row.name, c.type = row.type, c.source = row.source
"""
# Batches reference concepts by position in $cu (the batch's distinct concept uids), looked up once per batch;
# a batch whose concepts are not all there writes nothing (and the final count check reports it).
_CONCEPT_LIST = """
CALL () {
  UNWIND range(0, size($cu) - 1) AS j
  MATCH (c:Concept {uid: $cu[j]})
  WITH j, c ORDER BY j
  RETURN collect(c) AS cs
}
WITH r, cs WHERE size(cs) = size($cu)
"""
# A node and everything that hangs off it are created in one transaction, so a node that exists is complete:
# batches skip nodes already there (a re-push or a retried batch adds nothing), and the uniqueness
# constraints turn any concurrent duplicate into an error rather than a second copy.
#
# Alignments travel compactly: per source node, [teacher concept positions in $cu, scores, ranks,
# student positions, scores, ranks], ranks null when they are 1, 2, 3, ... in order (far fewer values
# for the driver to pack than one map per alignment).
_ALIGNMENTS = """
UNWIND [["teacher", al[0], al[1], al[2]], ["student", al[3], al[4], al[5]]] AS mod
WITH src, cs, mod[0] AS m, mod[1] AS ci, mod[2] AS v, mod[3] AS rk
UNWIND range(0, size(ci) - 1) AS j
WITH src, cs[ci[j]] AS c, m, v[j] AS score, CASE WHEN rk IS NULL THEN j + 1 ELSE rk[j] END AS rank
CREATE (src)-[:ALIGNED_TO {modality: m, rank: rank, score: score}]->(c)
"""
Q_PROTOTYPES = """
MATCH (r:Run {id: $run_id})
""" + _CONCEPT_LIST + """
UNWIND $rows AS row
OPTIONAL MATCH (e:Prototype {run_id: $run_id, concept_id: row.concept_id})
WITH r, cs, row, e WHERE e IS NULL
CREATE (src:Prototype:%(dim_label)s {run_id: $run_id, concept_id: row.concept_id, row: row.row, seen: row.seen,
        n_test: row.n_test, teacher_top1: row.teacher_top1, student_top1: row.student_top1,
        near_teacher: row.nt, near_teacher_score: row.nts, near_student: row.ns, near_student_score: row.nss})
CREATE (r)-[:HAS_PROTOTYPE]->(src)
WITH src, cs, row, cs[row.ci] AS c
CREATE (src)-[:OF]->(c)
WITH src, cs, row
CALL db.create.setNodeVectorProperty(src, 'embedding', row.embedding)
WITH src, cs, row.al AS al
""" + _ALIGNMENTS
Q_SAMPLES = """
MATCH (r:Run {id: $run_id})
""" + _CONCEPT_LIST + """
UNWIND range(0, size($sid) - 1) AS i
OPTIONAL MATCH (e:Sample {run_id: $run_id, sample_id: $sid[i]})
WITH r, cs, i, e WHERE e IS NULL
CREATE (src:Sample {run_id: $run_id, sample_id: $sid[i], split: $split[i], true_id: $tid[i]})
CREATE (r)-[:HAS_SAMPLE]->(src)
WITH src, cs, $al[i] AS al
""" + _ALIGNMENTS
Q_CORRESPONDENCES = """
UNWIND $rows AS row
MATCH (p:Prototype {run_id: $run_id, concept_id: row.p})
MATCH (q:Prototype {run_id: $run_id, concept_id: row.q})
MERGE (p)-[x:CORRESPONDS]->(q)
SET x.run_id = $run_id, x.match = row.match, x.confidence = row.v, x.rank = row.r
"""
Q_DISAGREEMENTS = """
UNWIND $rows AS row
MATCH (c:Concept {uid: row.uid})
MERGE (d:Disagreement {run_id: $run_id, concept_id: row.concept_id})
SET d += row.props
MERGE (d)-[:ABOUT]->(c)
"""
Q_COUNTS = """
MATCH (r:Run {id: $run_id})
CALL (r) {
  MATCH (r)-[:HAS_SAMPLE]->(s:Sample)
  RETURN count(s) AS samples, sum(COUNT { (s)-[:ALIGNED_TO]->(:Concept) }) AS sample_alignments
}
CALL (r) {
  MATCH (r)-[:HAS_PROTOTYPE]->(p:Prototype)
  RETURN count(p) AS prototypes,
         sum(COUNT { (p)-[:ALIGNED_TO]->(:Concept) }) AS prototype_alignments,
         sum(COUNT { (p)-[:CORRESPONDS]->(:Prototype) }) AS correspondences
}
CALL (r) {
  MATCH (d:Disagreement) WHERE d.run_id = r.id AND d.concept_id IS NOT NULL
  RETURN count(d) AS disagreements
}
RETURN samples, sample_alignments, prototypes, prototype_alignments, correspondences, disagreements
"""
Q_RUN_DONE = "MATCH (r:Run {id: $run_id}) SET r.status = $status, r.pushed_at = $now"
Q_RUNS = "MATCH (r:Run) WHERE r.digest IS NOT NULL RETURN properties(r) AS r"
Q_RUN = "MATCH (r:Run {id: $run_id}) WHERE r.digest IS NOT NULL RETURN properties(r) AS r"
Q_DELETE_BATCH = {
    "Sample": "MATCH (n:Sample) WHERE n.run_id = $run_id AND n.sample_id IS NOT NULL "
              "WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS n",
    "Prototype": "MATCH (n:Prototype) WHERE n.run_id = $run_id AND n.concept_id IS NOT NULL "
                 "WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS n",
    "Disagreement": "MATCH (n:Disagreement) WHERE n.run_id = $run_id AND n.concept_id IS NOT NULL "
                    "WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS n",
}
Q_DELETE_RUN = "MATCH (r:Run {id: $run_id}) DETACH DELETE r"
Q_DELETE_ORPHANS = """
MATCH (c:Concept {source: $source}) WHERE c.uid IS NOT NULL AND NOT EXISTS { (c)--() }
WITH c LIMIT $limit DELETE c RETURN count(*) AS n
"""
Q_CONCEPT = """
MATCH (p:Prototype {run_id: $run_id, concept_id: $concept_id})-[:OF]->(c:Concept)
RETURN c.id AS id, c.name AS name, c.type AS type, c.source AS source, p.seen AS seen, p.n_test AS n_test,
       p.teacher_top1 AS teacher_top1, p.student_top1 AS student_top1
"""
Q_CONCEPT_SAMPLES = """
MATCH (:Prototype {run_id: $run_id, concept_id: $concept_id})-[:OF]->(c:Concept)
MATCH (c)<-[a:ALIGNED_TO]-(s:Sample)
WHERE s.run_id = $run_id
RETURN s.sample_id AS sample_id, s.split AS split, s.true_id AS true_id, a.modality AS modality,
       a.rank AS rank, a.score AS score
"""
Q_CONCEPT_NEIGHBOURS = """
MATCH (p:Prototype {run_id: $run_id, concept_id: $concept_id})
UNWIND [["teacher", p.near_teacher, p.near_teacher_score], ["student", p.near_student, p.near_student_score]] AS sp
WITH sp[0] AS space, coalesce(sp[1], []) AS ids, coalesce(sp[2], []) AS scores
UNWIND range(0, size(ids) - 1) AS i
WITH space, i + 1 AS rank, ids[i] AS id, scores[i] AS score
WHERE rank <= $k
OPTIONAL MATCH (:Prototype {run_id: $run_id, concept_id: id})-[:OF]->(c:Concept)
RETURN space, rank, id, coalesce(c.name, id) AS name, score
ORDER BY space, rank
"""
Q_CONCEPT_ALIGNED = """
MATCH (:Prototype {run_id: $run_id, concept_id: $concept_id})-[x:ALIGNED_TO]->(c:Concept)
WHERE x.rank <= $k
RETURN x.modality AS modality, x.rank AS rank, c.id AS id, c.name AS name, x.score AS score
ORDER BY modality, rank
"""
Q_CONCEPT_CORRESPONDENCES = """
MATCH (:Prototype {run_id: $run_id, concept_id: $concept_id})-[x:CORRESPONDS]->(q:Prototype)-[:OF]->(c:Concept)
RETURN x.rank AS rank, q.concept_id AS id, c.name AS name, x.match AS match, x.confidence AS confidence
ORDER BY rank
"""
Q_CONCEPT_DISAGREEMENT = """
MATCH (d:Disagreement {run_id: $run_id, concept_id: $concept_id})-[:ABOUT]->(c:Concept)
RETURN properties(d) AS d, c.name AS name
"""
Q_DISAGREEMENTS_TOP = """
MATCH (d:Disagreement) WHERE d.run_id = $run_id AND d.rank <= $k
MATCH (d)-[:ABOUT]->(c:Concept)
RETURN properties(d) AS d, c.name AS name
ORDER BY d.rank
"""
Q_VECTOR_KNOWN_RUN = """
MATCH (r:Run {id: $run_id}) WHERE r.status = 'pushed' AND r.dim = $dim AND r.digest = $digest
CALL db.index.vector.queryNodes($index, $kk, $vec) YIELD node, score
WITH node, score WHERE node.run_id = $run_id
WITH node, score ORDER BY score DESC, node.concept_id LIMIT $k
MATCH (node)-[:OF]->(c:Concept)
RETURN node.concept_id AS id, c.name AS name, score
"""
Q_VECTOR = """
CALL db.index.vector.queryNodes($index, $kk, $vec) YIELD node, score
WITH node, score WHERE node.run_id = $run_id
WITH node, score ORDER BY score DESC, node.concept_id LIMIT $k
MATCH (node)-[:OF]->(c:Concept)
RETURN node.concept_id AS id, c.name AS name, score
"""
DISAGREEMENT_FIELDS = ("rank", "score", "sample_rate", "top1_gap", "centroid_cos", "teacher_top1", "student_top1",
                       "n_test", "n_samples", "nearest_teacher", "nearest_teacher_cos", "match")
RUN_FIELDS = ("status", "config_hash", "created", "finished", "graph_source", "digest", "dim", "run_dir",
              "n_concepts", "n_samples", "n_alignments", "pushed_at")


# ---------------------------------------------------------------- connection
def neo4j_auth(auth: Any = None) -> Any:
    """Credentials: an explicit (user, password) from Python code, else NEO4J_USER / NEO4J_PASSWORD, else none."""
    if auth is not None:
        return auth
    password = os.environ.get("NEO4J_PASSWORD")
    if not password:
        return None
    return (os.environ.get("NEO4J_USER") or "neo4j", password)


def check_uri(uri: str) -> str:
    """A Bolt URI with a host and port only; anything else is a one-line StoreError."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise StoreError(f"invalid Neo4j URI {redact_uri(uri)!r}: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise StoreError(f"invalid Neo4j URI {redact_uri(uri)!r}: scheme must be one of {', '.join(SCHEMES)}")
    if parts.username is not None or parts.password is not None:
        raise StoreError(f"Neo4j URI must not hold credentials; set NEO4J_USER and NEO4J_PASSWORD instead")
    if not parts.hostname:
        raise StoreError(f"invalid Neo4j URI {redact_uri(uri)!r}: no host (expected bolt://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise StoreError(f"invalid Neo4j URI {redact_uri(uri)!r}: "
                         "expected bolt://host:port with nothing after the port")
    return f"{parts.scheme.lower()}://{parts.hostname}:{port or 7687}"


def explain(exc: BaseException, uri: str, auth: Any, what: str = "") -> StoreError:
    """One clear line for a driver error."""
    from neo4j import exceptions as ne

    during = f" during {what}" if what else ""
    if isinstance(exc, ne.AuthError):
        if auth is None:
            return StoreError(f"Neo4j at {uri} requires authentication: set NEO4J_USER and NEO4J_PASSWORD")
        user = auth[0] if isinstance(auth, tuple) else "?"
        return StoreError(f"Neo4j at {uri} rejected the credentials of user {user!r} "
                          f"(from NEO4J_USER / NEO4J_PASSWORD)")
    if isinstance(exc, (ne.ServiceUnavailable, ne.SessionExpired, OSError)):
        return StoreError(f"cannot reach Neo4j at {uri}{during}: {_short(exc)} "
                          f"(is the server running? scripts/neo4j.sh start)")
    if isinstance(exc, (ne.ConfigurationError, ValueError)):
        return StoreError(f"invalid Neo4j URI {uri!r}: {_short(exc)}")
    if isinstance(exc, ne.Neo4jError):
        return StoreError(f"Neo4j at {uri} rejected {what or 'the request'}: {exc.code}: {_short(exc)}")
    return StoreError(f"Neo4j at {uri}{during}: {_short(exc)}")


def _short(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())[:300]


def connect(uri: str, auth: Any = None, *, attempts: int = 3, wait: float = 0.5):
    """A verified neo4j driver for ``uri``; credentials as :func:`neo4j_auth`.  Errors are StoreErrors."""
    from neo4j import GraphDatabase
    from neo4j import exceptions as ne

    uri = check_uri(uri)
    auth = neo4j_auth(auth)
    try:
        driver = GraphDatabase.driver(uri, auth=auth, connection_timeout=5.0, connection_acquisition_timeout=30.0,
                                      max_transaction_retry_time=0.0, user_agent="kgdistill",
                                      notifications_min_severity="OFF")
    except (ne.ConfigurationError, ValueError) as exc:
        raise explain(exc, uri, auth) from None
    for attempt in range(attempts):
        try:
            driver.verify_connectivity()
            return driver
        except (ne.ServiceUnavailable, ne.SessionExpired, OSError) as exc:
            if attempt == attempts - 1:
                driver.close()
                raise explain(exc, uri, auth, "connect") from None
            time.sleep(wait * 2 ** attempt)
        except Exception as exc:  # auth, configuration, protocol
            driver.close()
            raise explain(exc, uri, auth) from None
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------- store
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
                         f"{time.monotonic() - t0:.0f} s ({_short(last)}){hint}")

    def _write_q(self, query: str, params: dict[str, Any], what: str) -> None:
        self._tx(lambda tx: tx.run(query, params).consume(), write=True, what=what)

    def _read_q(self, query: str, params: dict[str, Any], what: str) -> list[dict[str, Any]]:
        return self._tx(lambda tx: [r.data() for r in tx.run(query, params)], write=False, what=what)

    # ---------------------------------------------------------------- schema
    def _ensure_schema(self, dim: int | None = None) -> None:
        if None not in self._schema_done:
            for stmt in SCHEMA:
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
        rows = self._read_q(Q_RUN_STATE, {"run_id": run_id}, f"reading run {run_id!r}")
        return (rows[0]["status"], rows[0]["digest"]) if rows else None

    def _write(self, export: RunExport, on_batch: BatchCallback | None) -> None:
        rid = export.run_id
        dim = _check_dim(export.dim)
        self._ensure_schema(dim)
        what = f"push of run {rid!r}"
        props = {k: v for k, v in export.run_properties().items() if k != "id"}
        self._write_q(Q_RUN_START, {"run_id": rid, "props": props, "status": STATUS_PUSHING}, what)
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
        send("concepts", Q_CONCEPTS, [(len(c), {"rows": c}) for c in _chunks(concepts, self.batch_size)])
        send("prototypes", Q_PROTOTYPES % {"dim_label": _dim_label(dim)}, self._prototype_batches(export, uid))
        send("sample_alignments", Q_SAMPLES, self._sample_batches(export, uid))
        corr = [{"p": c["concept_id"], "q": c["other_id"], "match": c["match"], "r": c["rank"], "v": c["confidence"]}
                for c in export.correspondences()]
        send("correspondences", Q_CORRESPONDENCES, [(len(c), {"rows": c}) for c in _chunks(corr, self.batch_size)])
        dis = [{"concept_id": d["concept_id"], "uid": uid[d["concept_id"]],
                "props": {f: d[f] for f in DISAGREEMENT_FIELDS}} for d in export.disagreements()]
        send("disagreements", Q_DISAGREEMENTS, [(len(c), {"rows": c}) for c in _chunks(dis, self.batch_size)])

        counts = self._read_q(Q_COUNTS, {"run_id": rid}, f"checking {what}")
        got = counts[0] if counts else {}
        expected = {"samples": len(export.sample_rows()), "sample_alignments": len(export.samples["sample_id"]),
                    "prototypes": export.num_concepts, "prototype_alignments": len(export.prototype_alignments()),
                    "correspondences": len(corr), "disagreements": len(dis)}
        wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
        if wrong:
            detail = ", ".join(f"{k} {g} of {v}" for k, (g, v) in wrong.items())
            raise StoreError(f"{what} to {self.uri} is incomplete ({detail}); the run stays marked unpushed")
        self._write_q(Q_RUN_DONE, {"run_id": rid, "status": STATUS_PUSHED, "now": _now()}, what)

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
        for label, query in Q_DELETE_BATCH.items():
            while self._tx(lambda tx: tx.run(query, {"run_id": run_id, "limit": limit}).single()["n"],
                           write=True, what=what) > 0:
                pass
        self._write_q(Q_DELETE_RUN, {"run_id": run_id}, what)
        if rows[0]["source"] is not None:
            while self._tx(lambda tx: tx.run(Q_DELETE_ORPHANS, {"source": rows[0]["source"], "limit": limit})
                           .single()["n"], write=True, what=what) > 0:
                pass
        return True

    # --------------------------------------------------------------- reading
    @staticmethod
    def _summary(props: dict[str, Any]) -> RunSummary:
        d = {f: props.get(f) for f in RUN_FIELDS}
        return RunSummary(run_id=props["id"], metrics=json.loads(props.get("metrics") or "{}"), **d)

    def runs(self) -> list[RunSummary]:
        return sort_runs([self._summary(r["r"]) for r in self._read_q(Q_RUNS, {}, "listing runs")])

    def resolve_run(self, run_id: str | None = None) -> RunSummary:
        if run_id is not None:
            rows = self._read_q(Q_RUN, {"run_id": run_id}, f"reading run {run_id!r}")
            if rows and rows[0]["r"].get("status") == STATUS_PUSHED:
                return self._summary(rows[0]["r"])
        return super().resolve_run(run_id)

    def concept(self, concept_id: str, run_id: str | None = None, top_k: int = 10) -> ConceptReport:
        top_k = self._check_k(top_k)
        rid = self.resolve_run(run_id).run_id
        params = {"run_id": rid, "concept_id": concept_id, "k": top_k}

        def work(tx: Any) -> dict[str, list[dict[str, Any]]]:
            out = {"concept": [r.data() for r in tx.run(Q_CONCEPT, params)]}
            if out["concept"]:
                for key, q in (("samples", Q_CONCEPT_SAMPLES), ("neighbours", Q_CONCEPT_NEIGHBOURS),
                               ("aligned", Q_CONCEPT_ALIGNED), ("correspondences", Q_CONCEPT_CORRESPONDENCES),
                               ("disagreement", Q_CONCEPT_DISAGREEMENT)):
                    out[key] = [r.data() for r in tx.run(q, params)]
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
        rows = self._read_q(Q_DISAGREEMENTS_TOP, {"run_id": rid, "k": top_k}, "reading disagreements")
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
            rows = self._read_q(Q_VECTOR_KNOWN_RUN, params, "a vector query")
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
            found = [r["r"] for r in session.run(Q_RUN, {"run_id": run_id})]
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
                rows = [r.data() for r in session.run(Q_VECTOR, params)]
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
    return DisagreementRecord(id=props["concept_id"], name=name, **{f: props.get(f) for f in DISAGREEMENT_FIELDS})


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
