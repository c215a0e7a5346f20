"""The store interface, run against both implementations: the embedded SQLite store and a real Neo4j server.

Neo4j cases need the server of ``scripts/neo4j.sh start`` (KGDISTILL_NEO4J_URI); without it they FAIL.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_fixtures import (TRICKY_CONCEPTS, TRICKY_SAMPLE, cleanup, fixture_run, make_run_dir,  # noqa: E402,F401
                            neo4j_env, neo4j_store, run_under_test, sqlite_store, store, unique_tag)

from kgdistill.errors import StoreError  # noqa: E402
from kgdistill.store import read_run_dir  # noqa: E402
from kgdistill.store.base import STATUS_PUSHED, STATUS_PUSHING  # noqa: E402


def counts(store, run_id: str) -> dict[str, int]:
    """Everything the store holds for one run, counted in the store's own terms."""
    if store.scheme == "sqlite":
        out = {}
        for table in ("prototypes", "vectors", "samples", "alignments", "neighbours", "correspondences",
                      "disagreements"):
            out[table] = store._q(f"SELECT count(*) FROM {table} WHERE run_id = ?", (run_id,))[0][0]
        out["runs"] = store._q("SELECT count(*) FROM runs WHERE id = ?", (run_id,))[0][0]
        out["concepts"] = store._q("SELECT count(*) FROM concepts WHERE uid IN "
                                   "(SELECT concept_uid FROM prototypes WHERE run_id = ?)", (run_id,))[0][0]
        return out
    q = """
    OPTIONAL MATCH (r:Run {id: $run_id})
    RETURN count(r) AS runs,
      COUNT { MATCH (s:Sample) WHERE s.run_id = $run_id AND s.sample_id IS NOT NULL } AS samples,
      COUNT { MATCH (p:Prototype) WHERE p.run_id = $run_id AND p.concept_id IS NOT NULL } AS prototypes,
      COUNT { MATCH (d:Disagreement) WHERE d.run_id = $run_id AND d.concept_id IS NOT NULL } AS disagreements,
      COUNT { MATCH (s:Sample)-[a:ALIGNED_TO]->() WHERE s.run_id = $run_id AND s.sample_id IS NOT NULL }
        AS sample_alignments,
      COUNT { MATCH (p:Prototype)-[a:ALIGNED_TO]->() WHERE p.run_id = $run_id AND p.concept_id IS NOT NULL }
        AS prototype_alignments,
      COUNT { MATCH (p:Prototype)-[x]->() WHERE p.run_id = $run_id AND p.concept_id IS NOT NULL } AS prototype_rels,
      COUNT { MATCH (r:Run {id: $run_id})-[x]->() } AS run_rels,
      COUNT { MATCH (p:Prototype)-[:OF]->(c:Concept) WHERE p.run_id = $run_id AND p.concept_id IS NOT NULL }
        AS concepts
    """
    return store._read_q(q, {"run_id": run_id}, "counting")[0]


def push(store, cleanup, run, **kw):
    cleanup.append(run.run_id)
    return store.push(run.path, **kw)


# ------------------------------------------------------------------- push
def test_push_then_repush_changes_nothing(store, cleanup, fixture_run):
    ex = read_run_dir(fixture_run.path)
    res = push(store, cleanup, fixture_run)
    assert res.outcome == "pushed" and res.n_alignments == ex.num_alignments
    first = counts(store, ex.run_id)
    assert first["samples"] == 160 and first["prototypes"] == 40
    summary = store.resolve_run(ex.run_id)
    assert summary.status == STATUS_PUSHED and summary.digest == ex.digest
    again = store.push(fixture_run.path)
    assert again.outcome == "unchanged"
    assert counts(store, ex.run_id) == first
    assert store.resolve_run(ex.run_id).pushed_at == summary.pushed_at
    forced = store.push(fixture_run.path, force=True)   # writes everything again: still no duplicates
    assert forced.outcome == "pushed"
    assert counts(store, ex.run_id) == first


def test_runs_are_listed_with_their_metadata(store, cleanup, fixture_run):
    push(store, cleanup, fixture_run)
    [r] = [r for r in store.runs() if r.run_id == fixture_run.run_id]
    assert r.status == STATUS_PUSHED and r.config_hash == "cfg0007" and r.graph_source == fixture_run.graph_source
    assert r.metrics["note"] == "fixture 'run' {x}" and r.n_concepts == 40 and r.dim == 16
    assert Path(r.run_dir) == fixture_run.path.resolve()


def test_interrupted_push_is_not_marked_pushed_and_rerun_completes(store, cleanup, fixture_run):
    ex = read_run_dir(fixture_run.path)
    cleanup.append(ex.run_id)

    def crash(step, done, total):
        if step == "sample_alignments":
            raise KeyboardInterrupt("client died mid-push")

    with pytest.raises(KeyboardInterrupt):
        store.push(ex, on_batch=crash)
    state = store._run_state(ex.run_id)
    assert state is None or state[0] == STATUS_PUSHING      # SQLite rolls back; Neo4j keeps a partial run
    with pytest.raises(StoreError, match="partly pushed|is not in"):
        store.concept(ex.concept_ids[0], run_id=ex.run_id)
    res = store.push(ex)
    assert res.outcome == "pushed"
    full = counts(store, ex.run_id)
    assert full["samples"] == 160 and full["prototypes"] == 40
    assert store.resolve_run(ex.run_id).status == STATUS_PUSHED


def test_changed_run_needs_replace(store, cleanup, tmp_path):
    tag = unique_tag()
    a = make_run_dir(tmp_path / "a", seed=3, run_id=f"same-{tag}", graph_source=f"g-{tag}")
    b = make_run_dir(tmp_path / "b", seed=4, run_id=f"same-{tag}", graph_source=f"g-{tag}")
    push(store, cleanup, a)
    assert store.query_vector(a.gnn[2], k=3, run_id=a.run_id)[1:] != store.query_vector(b.gnn[2], k=3,
                                                                                         run_id=a.run_id)[1:]
    before = store.query_vector(b.gnn[2], k=3, run_id=a.run_id)
    with pytest.raises(StoreError, match="different content.*--replace"):
        store.push(b.path)
    res = store.push(b.path, replace=True)
    assert res.outcome == "replaced"
    after = store.query_vector(b.gnn[2], k=3, run_id=a.run_id)     # the store answers from the new run
    assert after != before and after[0].id == b.concept_ids[2] and after[0].score == pytest.approx(1.0, abs=1e-5)
    assert store.resolve_run(f"same-{tag}").digest == read_run_dir(b.path).digest
    assert counts(store, f"same-{tag}")["samples"] == 160


def test_several_runs_stay_apart(store, cleanup, tmp_path):
    tag = unique_tag()
    src = f"shared-graph-{tag}"            # same graph: the runs share Concept nodes
    a = make_run_dir(tmp_path / "a", seed=11, run_id=f"A-{tag}", graph_source=src)
    b = make_run_dir(tmp_path / "b", seed=12, run_id=f"B-{tag}", graph_source=src, n_samples=90)
    push(store, cleanup, a)
    push(store, cleanup, b)
    ca, cb = counts(store, a.run_id), counts(store, b.run_id)
    assert ca["samples"] == 160 and cb["samples"] == 90
    cid = a.concept_ids[9]
    ra, rb = store.concept(cid, run_id=a.run_id), store.concept(cid, run_id=b.run_id)
    ea, eb = read_run_dir(a.path), read_run_dir(b.path)
    assert ra.n_test == ea.per_concept[cid][0] and rb.n_test == eb.per_concept[cid][0]
    assert ra.neighbours != rb.neighbours
    ha = store.query_vector(a.gnn[5], k=3, run_id=a.run_id)
    hb = store.query_vector(b.gnn[5], k=3, run_id=b.run_id)
    assert ha[0].id == hb[0].id == a.concept_ids[5]
    assert ha[1:] != hb[1:]
    # deleting one run leaves the other whole, shared concepts included
    assert store.delete_run(b.run_id)
    cleanup.remove(b.run_id)
    assert counts(store, a.run_id) == ca
    assert store.concept(cid, run_id=a.run_id) == ra
    with pytest.raises(StoreError, match="is not in"):
        store.concept(cid, run_id=b.run_id)


# ------------------------------------------------------------------ queries
def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_concept_query(store, cleanup, fixture_run):
    push(store, cleanup, fixture_run)
    ex = read_run_dir(fixture_run.path)
    per = {r["id"]: r for r in _csv(fixture_run.path / "alignments" / "per_concept.csv")}
    samples = _csv(fixture_run.path / "alignments" / "samples.csv")
    for cid in ex.concept_ids[:12]:
        rep = store.concept(cid, run_id=ex.run_id, top_k=4)
        i = ex.index[cid]
        assert (rep.id, rep.name, rep.run_id) == (cid, ex.concept_names[i], ex.run_id)
        assert rep.seen == bool(ex.seen[i]) and rep.source == ex.graph_source
        assert rep.n_test == int(per[cid]["n_test"])
        assert rep.teacher_top1 == pytest.approx(float(per[cid]["teacher_top1"]))
        assert rep.student_top1 == pytest.approx(float(per[cid]["student_top1"]))
        for m in ("teacher", "student"):
            rows = sorted((r for r in samples if r["concept_id"] == cid and r["modality"] == m),
                          key=lambda r: (-float(r["score"]), r["sample_id"]))[:4]
            got = rep.samples[m]
            assert [h.sample_id for h in got] == [r["sample_id"] for r in rows]
            assert [h.score for h in got] == [float(r["score"]) for r in rows]
            assert [h.rank for h in got] == [int(r["rank"]) for r in rows]
            assert [h.true_id for h in got] == [r["true_id"] for r in rows]
        for space in ("teacher", "student"):
            want = [n for n in ex.neighbours() if n["concept_id"] == cid and n["space"] == space][:4]
            assert [(h.rank, h.id, h.score) for h in rep.neighbours[space]] == \
                [(n["rank"], n["other_id"], n["score"]) for n in want]
            assert all(h.name == ex.concept_names[ex.index[h.id]] for h in rep.neighbours[space])
            want = [a for a in ex.prototype_alignments() if a["concept_id"] == cid and a["modality"] == space][:4]
            assert [(h.id, h.score) for h in rep.aligned[space]] == [(a["target_id"], a["score"]) for a in want]
        want = [c for c in ex.correspondences() if c["concept_id"] == cid]
        assert [(c.id, c.match, c.confidence) for c in rep.correspondences] == \
            [(c["other_id"], c["match"], c["confidence"]) for c in want]
        d = [x for x in ex.disagreements() if x["concept_id"] == cid]
        assert (rep.disagreement is None) == (not d)
        if d:
            assert rep.disagreement.rank == d[0]["rank"] and rep.disagreement.score == d[0]["score"]


def test_unsampled_concept_has_no_neighbours(store, cleanup, fixture_run):
    push(store, cleanup, fixture_run)
    rep = store.concept(fixture_run.concept_ids[-1], run_id=fixture_run.run_id)
    assert rep.n_test == 0 and rep.neighbours == {"teacher": [], "student": []}
    assert rep.disagreement is None


def test_disagreements_query(store, cleanup, fixture_run):
    push(store, cleanup, fixture_run)
    ex = read_run_dir(fixture_run.path)
    got = store.disagreements(run_id=ex.run_id, top_k=7)
    want = ex.disagreements()[:7]
    assert [d.id for d in got] == [w["concept_id"] for w in want]
    assert [d.rank for d in got] == list(range(1, 8))
    assert all(got[i].score >= got[i + 1].score for i in range(6))
    assert got[0].name == ex.concept_names[ex.index[got[0].id]]
    assert {d.match for d in got} <= {None, "exactMatch", "closeMatch", "relatedMatch", "broadMatch", "narrowMatch"}
    assert len(store.disagreements(run_id=ex.run_id, top_k=1000)) == len(ex.disagreements())


def test_vector_query_with_the_runs_own_vectors(store, cleanup, fixture_run):
    push(store, cleanup, fixture_run)
    rid = fixture_run.run_id
    gnn_n = fixture_run.gnn / np.linalg.norm(fixture_run.gnn, axis=1, keepdims=True)
    for i in (0, 3, 7, 20):       # a prototype finds itself first
        hits = store.query_vector(fixture_run.gnn[i], k=5, run_id=rid)
        assert hits[0].id == fixture_run.concept_ids[i] and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    for j in range(0, 160, 16):   # a student sample embedding ranks concepts as the run's predictions did
        v = fixture_run.student_vecs[j]
        hits = store.query_vector(v, k=fixture_run.top_k, run_id=rid)
        sims = gnn_n @ (v / np.linalg.norm(v))
        want = [fixture_run.concept_ids[c] for c in np.lexsort((np.arange(len(sims)), -sims))[:fixture_run.top_k]]
        assert [h.id for h in hits] == want
        assert [h.score for h in hits] == pytest.approx(np.sort(sims)[::-1][:fixture_run.top_k].tolist(), abs=1e-5)
    assert len(store.query_vector(fixture_run.gnn[1], k=500, run_id=rid)) == 40
    with pytest.raises(StoreError, match="16"):
        store.query_vector(np.ones(8), k=3, run_id=rid)
    with pytest.raises(StoreError, match="non-zero"):
        store.query_vector(np.zeros(16), k=3, run_id=rid)
    with pytest.raises(StoreError, match="positive"):
        store.query_vector(np.ones(16), k=0, run_id=rid)


def test_tricky_ids_round_trip(store, cleanup, fixture_run):
    push(store, cleanup, fixture_run)
    rid = fixture_run.run_id
    assert rid in {r.run_id for r in store.runs()}
    for i, (cid, name) in enumerate(TRICKY_CONCEPTS):
        rep = store.concept(cid, run_id=rid, top_k=3)
        assert (rep.id, rep.name) == (cid, name)
        hit = store.query_vector(fixture_run.gnn[i], k=1, run_id=rid)[0]
        assert (hit.id, hit.name) == (cid, name)
    sample_hits = [h for cid in fixture_run.concept_ids
                   for m in ("teacher", "student")
                   for h in store.concept(cid, run_id=rid, top_k=200).samples[m]]
    assert TRICKY_SAMPLE in {h.sample_id for h in sample_hits}


def test_unknown_concept_and_run(store, cleanup, fixture_run):
    push(store, cleanup, fixture_run)
    with pytest.raises(StoreError, match="not among the concepts"):
        store.concept("NOPE:0", run_id=fixture_run.run_id)
    with pytest.raises(StoreError, match="is not in"):
        store.disagreements(run_id=f"no-such-run-{unique_tag()}")


def test_run_under_test_round_trips(store, cleanup, run_under_test):
    """Every record of a run ($KGDISTILL_TEST_RUN_DIR: a real pipeline run; else a fixture run) comes back."""
    ex = read_run_dir(run_under_test)
    cleanup.append(ex.run_id)
    assert store.push(ex).outcome == "pushed"
    assert store.push(run_under_test).outcome == "unchanged"
    k = 1000
    for cid in ex.concept_ids:
        rep = store.concept(cid, run_id=ex.run_id, top_k=k)
        i = ex.index[cid]
        assert (rep.id, rep.name, rep.seen) == (cid, ex.concept_names[i], bool(ex.seen[i]))
        n_test, t1, s1 = ex.per_concept.get(cid, (0, None, None))
        assert (rep.n_test, rep.teacher_top1, rep.student_top1) == (n_test, t1, s1)
        got = sorted((h.sample_id, h.modality, h.rank, h.score) for m in ("teacher", "student") for h in rep.samples[m])
        s = ex.samples
        want = sorted((a, m, r, v) for a, c, m, r, v in zip(s["sample_id"], s["concept_id"], s["modality"], s["rank"],
                                                             s["score"]) if c == cid)
        assert got == want
        for space in ("teacher", "student"):
            assert [(h.id, h.score) for h in rep.neighbours[space]] == \
                [(n["other_id"], n["score"]) for n in ex.neighbours() if n["concept_id"] == cid and n["space"] == space]
        assert [(c.id, c.match) for c in rep.correspondences] == \
            [(c["other_id"], c["match"]) for c in ex.correspondences() if c["concept_id"] == cid]
    assert [d.id for d in store.disagreements(run_id=ex.run_id, top_k=k)] == \
        [d["concept_id"] for d in ex.disagreements()]
    for i in range(0, ex.num_concepts, max(1, ex.num_concepts // 10)):
        hit = store.query_vector(ex.gnn[i], k=3, run_id=ex.run_id)[0]
        assert hit.score == pytest.approx(1.0, abs=1e-5)
        g = ex.gnn / np.linalg.norm(ex.gnn, axis=1, keepdims=True)
        assert hit.id == ex.concept_ids[i] or float(g[ex.index[hit.id]] @ g[i]) == pytest.approx(1.0, abs=1e-5)
