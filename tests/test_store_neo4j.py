"""Neo4j-only behaviour, against the real server of scripts/neo4j.sh (a missing server FAILS these tests).

* the embedded store and Neo4j give the same answers on the same run;
* credentials, URIs and run directories that are wrong give one clear line;
* values never become Cypher: tricky ids round-trip and the rest of the database is untouched;
* a domain graph is read from Neo4j into the typed KnowledgeGraph (Python and CLI);
* a server killed or restarted mid-push: bounded retries, one clear error, a re-run completes without duplicates
  (on a private server this test starts, kills and restarts with scripts/neo4j.sh).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import types
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_fixtures import (fixture_run, free_port, make_run_dir, neo4j_credentials, neo4j_env,  # noqa: E402,F401
                            neo4j_script, neo4j_store, run_under_test, sqlite_store, unique_tag)

from kgdistill.errors import GraphFormatError, StoreError  # noqa: E402
from kgdistill.store import open_store, read_run_dir  # noqa: E402
from kgdistill.store import cypher, neo4j as neo4j_module  # noqa: E402
from kgdistill.store.base import STATUS_PUSHING  # noqa: E402

pytestmark = pytest.mark.neo4j
REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgdistill", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ------------------------------------------------------------ same answers
def assert_same_answers(neo4j_store, sqlite_store, ex, vectors, top_k: int, disagreements_k: int) -> None:
    """Push one run to both stores; every concept report, the disagreements and vector queries agree."""
    try:
        neo4j_store.push(ex)
        sqlite_store.push(ex)
        a, b = neo4j_store.resolve_run(ex.run_id), sqlite_store.resolve_run(ex.run_id)
        assert dataclasses.replace(a, pushed_at=None) == dataclasses.replace(b, pushed_at=None)
        for cid in ex.concept_ids:
            assert neo4j_store.concept(cid, run_id=ex.run_id, top_k=top_k) == \
                sqlite_store.concept(cid, run_id=ex.run_id, top_k=top_k), cid
        assert neo4j_store.disagreements(run_id=ex.run_id, top_k=disagreements_k) == \
            sqlite_store.disagreements(run_id=ex.run_id, top_k=disagreements_k)
        for v in vectors:
            hn = neo4j_store.query_vector(v, k=10, run_id=ex.run_id)
            hs = sqlite_store.query_vector(v, k=10, run_id=ex.run_id)
            assert [h.id for h in hn] == [h.id for h in hs]
            assert [h.score for h in hn] == pytest.approx([h.score for h in hs], abs=1e-5)
    finally:
        neo4j_store.delete_run(ex.run_id)


def test_embedded_store_answers_like_neo4j(neo4j_store, sqlite_store, fixture_run):
    ex = read_run_dir(fixture_run.path)
    vectors = list(fixture_run.student_vecs[::8]) + list(fixture_run.teacher_vecs[::16]) + list(ex.gnn[:5])
    assert_same_answers(neo4j_store, sqlite_store, ex, vectors, top_k=6, disagreements_k=100)


def test_same_answers_on_run_under_test(neo4j_store, sqlite_store, run_under_test):
    """As above, on a real pipeline run ($KGDISTILL_TEST_RUN_DIR, else the suite's tiny run)."""
    import numpy as np

    ex = read_run_dir(run_under_test)
    rng = np.random.default_rng(0)
    vectors = list(ex.gnn[::max(1, ex.num_concepts // 8)]) + list(ex.gnn[:8] + 0.3 * rng.normal(size=(8, ex.dim)))
    assert_same_answers(neo4j_store, sqlite_store, ex, vectors, top_k=10, disagreements_k=10_000)


# ----------------------------------------------------------- clear errors
def test_wrong_credentials(neo4j_env, monkeypatch):
    monkeypatch.setenv("NEO4J_PASSWORD", "definitely-wrong")
    with pytest.raises(StoreError, match="rejected the credentials of user 'neo4j'"):
        open_store(neo4j_env)
    monkeypatch.delenv("NEO4J_PASSWORD")
    with pytest.raises(StoreError, match="requires authentication: set NEO4J_USER and NEO4J_PASSWORD"):
        open_store(neo4j_env)
    line = one_error_line(cli("align", "query", "--store", neo4j_env,
                              env={"NEO4J_PASSWORD": "definitely-wrong"}))
    assert "rejected the credentials" in line and "definitely-wrong" not in line


@pytest.mark.parametrize("uri, message", [
    ("bolt://127.0.0.1:1", "cannot reach Neo4j at bolt://127.0.0.1:1"),
    ("bolt://neo4j:secret@127.0.0.1:17687", "must not hold credentials"),
    ("bolt://127.0.0.1:notaport", "invalid Neo4j URI"),
    ("bolt:///nohost", "no host"),
    ("http://127.0.0.1:7474", "unsupported store URI scheme 'http'"),
    ("127.0.0.1:17687", "must look like bolt://host:port"),
])
def test_wrong_uri(uri, message, tmp_path):
    with pytest.raises(StoreError) as exc:
        open_store(uri, connect_attempts=1) if uri.startswith("bolt") else open_store(uri)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    run = make_run_dir(tmp_path / "r", K=10, n_samples=20)
    line = one_error_line(cli("align", "push", str(run.path), "--store", uri))
    assert message in line
    assert "secret" not in line


def test_incomplete_run_dir_via_cli(neo4j_env, tmp_path):
    run = make_run_dir(tmp_path / "unfinished", K=10, n_samples=20, status="running")
    proc = cli("align", "push", str(run.path), "--store", neo4j_env)
    line = one_error_line(proc)
    assert proc.returncode == 2 and str(run.path) in line and "'running'" in line


# ----------------------------------------------------------- no injection
def test_values_never_become_cypher(neo4j_store, fixture_run):
    tag = unique_tag()
    sentinel = f"Sentinel_{tag}"
    neo4j_store._write_q(f"CREATE (:{sentinel} {{id: 1}})", {}, "test setup")
    try:
        neo4j_store.push(fixture_run.path)
        for cid in fixture_run.concept_ids[:8]:
            neo4j_store.concept(cid, run_id=fixture_run.run_id)
        neo4j_store.disagreements(run_id=fixture_run.run_id)
        n = neo4j_store._read_q(f"MATCH (s:{sentinel}) RETURN count(s) AS n", {}, "test check")[0]["n"]
        assert n == 1
        stored = neo4j_store._read_q("MATCH (c:Concept) WHERE c.source = $src RETURN c.id AS id, c.name AS name",
                                     {"src": fixture_run.graph_source}, "test check")
        assert {(r["id"], r["name"]) for r in stored} == set(zip(fixture_run.concept_ids, fixture_run.names))
        runs = neo4j_store._read_q("MATCH (r:Run {id: $id}) RETURN r.id AS id", {"id": fixture_run.run_id}, "check")
        assert runs == [{"id": fixture_run.run_id}]
    finally:
        neo4j_store.delete_run(fixture_run.run_id)
        neo4j_store._write_q(f"MATCH (s:{sentinel}) DELETE s", {}, "test cleanup")


def test_labels_and_types_come_from_fixed_lists():
    """Every label / relationship type in the module's Cypher is one of the declared constants."""
    texts = [v for k, v in vars(neo4j_module).items() if k.startswith(("Q_", "_CONCEPT", "_ALIGN", "SCHEMA"))]
    flat = "\n".join(t if isinstance(t, str) else "\n".join(t) for t in texts)
    labels = set(re.findall(r"\(\w*:(\w+)", flat)) | set(re.findall(r"FOR \(\w+:(\w+)\)", flat))
    rels = set(re.findall(r"\[\w*:(\w+)", flat))
    assert labels <= set(cypher.LABELS) | {"PrototypeD"}, labels
    assert rels <= set(cypher.REL_TYPES), rels
    assert "%(dim_label)s" in cypher.Q_PROTOTYPES
    with pytest.raises(StoreError):
        neo4j_module._dim_label("64) DETACH DELETE n //")


# ------------------------------------------------------- graph from Neo4j
@pytest.fixture
def domain_graph(neo4j_store):
    """A small domain graph under a unique label, with tricky ids; removed afterwards."""
    label = f"Term_{unique_tag()}"
    nodes = [
        {"code": "HP:0000001", "title": "All", "kind": None, "syn": None},
        {"code": "HP:0000118", "title": "Phenotypic abnormality", "kind": "category", "syn": ["abnormality"]},
        {"code": "it's {`x`}", "title": "MATCH (n) DETACH DELETE n", "kind": None, "syn": ["a", "b"]},
        {"code": 42, "title": "numeric id", "kind": None, "syn": "one|two"},
    ]
    neo4j_store._write_q(f"UNWIND $rows AS r CREATE (n:{label}) SET n.code = r.code, n.title = r.title, "
                         f"n.kind = r.kind, n.syn = r.syn, n.definition = 'def of ' + toString(r.code)",
                         {"rows": nodes}, "test setup")
    edges = [("HP:0000118", "HP:0000001", "IS_A", 1.0), ("it's {`x`}", "HP:0000118", "IS_A", 0.5),
             ("HP:0000118", "42", "HAS_CHILD", None), ("42", "HP:0000001", "PART_OF", 2.0)]
    for src, dst, rel, w in edges:
        neo4j_store._write_q(f"MATCH (a:{label}), (b:{label}) WHERE toString(a.code) = $s AND toString(b.code) = $d "
                             f"CREATE (a)-[r:{rel}]->(b) SET r.w = $w", {"s": src, "d": dst, "w": w}, "test setup")
    yield label
    neo4j_store._write_q(f"MATCH (n:{label}) DETACH DELETE n", {}, "test cleanup")


def test_load_graph_from_neo4j(neo4j_env, domain_graph):
    from kgdistill.graph.neo4j_io import load_neo4j

    kg = load_neo4j(neo4j_env, domain_graph, ["IS_A", "HAS_CHILD"], id_property="code", name_property="title",
                    text_property="definition", type_property="kind", synonyms_property="syn",
                    weight_property="w", reverse_types=["HAS_CHILD"])
    assert sorted(kg.ids) == sorted(["HP:0000001", "HP:0000118", "it's {`x`}", "42"])
    i = kg.idx("it's {`x`}")
    assert kg.names[i] == "MATCH (n) DETACH DELETE n" and kg.texts[i] == "def of it's {`x`}"
    assert kg.synonyms[i] == ["a", "b"] and kg.synonyms[kg.idx("42")] == ["one", "two"]
    assert kg.types[kg.idx("HP:0000118")] == "category" and kg.types[kg.idx("HP:0000001")] == domain_graph
    assert set(kg.relations) == {"is_a", "has_child"}
    edges = {(kg.ids[s], kg.ids[d], kg.relations[r], float(w)) for s, d, r, w in
             zip(kg.edge_src, kg.edge_dst, kg.edge_rel, kg.edge_weight)}
    assert edges == {("HP:0000118", "HP:0000001", "is_a", 1.0), ("it's {`x`}", "HP:0000118", "is_a", 0.5),
                     ("42", "HP:0000118", "has_child", 1.0)}       # HAS_CHILD flipped to specific -> general
    assert kg.roots(["is_a"]) == ["HP:0000001"]
    everything = load_neo4j(neo4j_env, [domain_graph], id_property="code", name_property="title")
    assert everything.num_edges == 4 and "part_of" in everything.relations


def test_load_graph_errors(neo4j_env, domain_graph):
    from kgdistill.graph.neo4j_io import load_neo4j

    with pytest.raises(GraphFormatError, match="invalid node label"):
        load_neo4j(neo4j_env, "Term` DETACH DELETE n //")
    with pytest.raises(GraphFormatError, match="no nodes with label 'Nope_"):
        load_neo4j(neo4j_env, f"Nope_{unique_tag()}")
    with pytest.raises(GraphFormatError, match="no relationships of type 'NOT_A_TYPE_"):
        load_neo4j(neo4j_env, domain_graph, [f"NOT_A_TYPE_{unique_tag()}"], id_property="code")
    with pytest.raises(GraphFormatError, match="have no 'uid' property"):
        load_neo4j(neo4j_env, domain_graph, id_property="uid")


def test_graph_load_cli(neo4j_env, domain_graph, tmp_path):
    from kgdistill.graph import load_graph

    out = tmp_path / "graph"
    proc = cli("graph", "load", neo4j_env, "--label", domain_graph, "--rel", "IS_A", "--id-property", "code",
               "--name-property", "title", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["nodes"] == 4 and info["edges"] == 2 and info["relations"] == {"is_a": 2}
    back = load_graph(out)
    assert sorted(back.ids) == sorted(["HP:0000001", "HP:0000118", "it's {`x`}", "42"])
    line = one_error_line(cli("graph", "load", neo4j_env, "--label", "Bad`Label"))
    assert "invalid node label" in line


# --------------------------------------------------------- server faults
class PrivateServer:
    """A Neo4j of our own (scripts/neo4j.sh on a free port, data kept across restarts) that a test may kill."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.uri = f"bolt://127.0.0.1:{self.port}"
        self.env = {"NEO4J_PORT": str(self.port), "NEO4J_STATE": str(tmp_path / "state"),
                    "NEO4J_DATA": str(tmp_path / "data"), "NEO4J_HEAP": "512m",
                    "NEO4J_USER": neo4j_credentials()[0], "NEO4J_PASSWORD": neo4j_credentials()[1]}

    def start(self) -> None:
        proc = neo4j_script("start", env=self.env)
        assert proc.returncode == 0, f"private Neo4j did not start: {proc.stdout}{proc.stderr}"

    def kill(self) -> None:
        pid = int((Path(self.env["NEO4J_STATE"]) / "server.pid").read_text())
        os.kill(pid, 9)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        neo4j_script("stop", env=self.env)


def _run_counts(store, run_id):
    q = """
    RETURN COUNT { MATCH (s:Sample) WHERE s.run_id = $r AND s.sample_id IS NOT NULL } AS samples,
           COUNT { MATCH (p:Prototype) WHERE p.run_id = $r AND p.concept_id IS NOT NULL } AS prototypes,
           COUNT { MATCH (s:Sample)-[a:ALIGNED_TO]->() WHERE s.run_id = $r AND s.sample_id IS NOT NULL } AS sa,
           COUNT { MATCH (p:Prototype)-[a:ALIGNED_TO]->() WHERE p.run_id = $r AND p.concept_id IS NOT NULL } AS pa,
           COUNT { MATCH (:Run {id: $r})-[:HAS_SAMPLE]->() } AS has_sample
    """
    return store._read_q(q, {"r": run_id}, "counting")[0]


def test_server_killed_or_restarted_mid_push(tmp_path, neo4j_env, record_property, monkeypatch):
    run = make_run_dir(tmp_path / "run", K=60, d=16, n_samples=600, seed=5, run_id=f"fault-{unique_tag()} 'q'")
    ex = read_run_dir(run.path)
    expected = {"samples": 600, "prototypes": 60, "sa": 600 * 2 * run.top_k, "pa": len(ex.prototype_alignments()),
                "has_sample": 600}
    server = PrivateServer(tmp_path)
    restarted: list[threading.Thread] = []
    server.start()
    try:
        # 1. the server restarts while a push is under way: retries (bounded) carry the push through
        store = open_store(server.uri, retries=8, retry_wait=1.0, batch_size=500, workers=2)

        def restart_once(step, done, total):
            if step == "sample_alignments" and not restarted:
                server.kill()
                restarted.append(threading.Thread(target=server.start, daemon=True))
                restarted[0].start()

        res = store.push(ex, on_batch=restart_once)
        assert restarted and res.outcome == "pushed"
        assert _run_counts(store, ex.run_id) == expected
        store.close()

        # 2. the server dies and stays down: a few retries, then one clear error; the run is not marked pushed
        ex2 = read_run_dir(make_run_dir(tmp_path / "run2", K=60, d=16, n_samples=600, seed=6,
                                        run_id=f"fault2-{unique_tag()}").path)
        store = open_store(server.uri, retries=2, retry_wait=0.2, batch_size=500, workers=1)

        def kill_once(step, done, total):
            if step == "sample_alignments" and done >= 1000 and not getattr(kill_once, "done", False):
                kill_once.done = True
                server.kill()

        # bounded by counts, not by a clock a loaded machine can stretch: after the kill, the failing batch is
        # tried exactly retries + 1 = 3 times, with the two waits between them 0.2 s then 0.4 s (doubling)
        waits: list[float] = []
        sessions = {"after_kill": 0}
        clock = types.SimpleNamespace(monotonic=time.monotonic,
                                      sleep=lambda s: (waits.append(s), time.sleep(s)))
        opened = store._driver.session

        def counting_session(*a, **kw):
            sessions["after_kill"] += bool(getattr(kill_once, "done", False))
            return opened(*a, **kw)

        store._driver.session = counting_session
        with monkeypatch.context() as mp:
            mp.setattr(neo4j_module, "time", clock)
            with pytest.raises(StoreError) as exc:
                store.push(ex2, on_batch=kill_once)
        msg = str(exc.value)
        assert "\n" not in msg and "gave up after 3 attempts" in msg and "re-run" in msg
        assert waits == [0.2, 0.4] and sessions["after_kill"] == 3
        store.close()

        # 3. server back: the run shows as incomplete, and a re-run completes it without duplicates
        server.start()
        store = open_store(server.uri)
        assert store._run_state(ex2.run_id)[0] == STATUS_PUSHING
        with pytest.raises(StoreError, match="only partly pushed"):
            store.disagreements(run_id=ex2.run_id)
        partial = _run_counts(store, ex2.run_id)
        assert 0 < partial["samples"] < 600
        assert partial["sa"] == partial["samples"] * 2 * run.top_k   # batches are all-or-nothing
        res = store.push(ex2)
        assert res.outcome == "pushed"
        assert _run_counts(store, ex2.run_id) == {**expected, "pa": len(ex2.prototype_alignments())}
        assert _run_counts(store, ex.run_id) == expected
        assert store.push(ex2).outcome == "unchanged"
        store.close()
        record_property("reliability", {
            "kind": "fault", "fault": "Neo4j killed or restarted during `align push`",
            "injected": "kill -9 of a private server mid-push, then restart; then kill and stay down",
            "outcome": "restart: bounded retries finish the push, exact counts; down: one line after 3 attempts, "
                       "run left `pushing`; re-run: completes with exactly one copy of everything"})
    finally:
        for t in restarted:
            t.join(timeout=120)
        server.stop()
