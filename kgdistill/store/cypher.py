"""The Cypher statements of the Neo4j alignment store, in one place.

Labels and relationship types are the fixed lists below; every value is a query parameter (never spliced).
The graph model they write is described in :mod:`kgdistill.store.neo4j`.
"""
from __future__ import annotations

LABELS = ("Run", "Concept", "Prototype", "Sample", "Disagreement")
REL_TYPES = ("HAS_PROTOTYPE", "OF", "ALIGNED_TO", "HAS_SAMPLE", "CORRESPONDS", "ABOUT")

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


# ---------------------------------------------------------------------- store
