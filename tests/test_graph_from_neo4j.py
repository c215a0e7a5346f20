"""A domain graph that lives in Neo4j trains the same pipeline as a file (graph.path: bolt://...)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chance import ALPHA, p_group  # noqa: E402
from store_fixtures import neo4j_env, unique_tag  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fault_graph_in_neo4j(neo4j_env):  # noqa: F811
    """graphs/machine_faults.ttl written into the real server under a label of its own."""
    from kgdistill.graph import load_graph
    from kgdistill.store.neo4j import connect

    kg = load_graph(ROOT / "graphs" / "machine_faults.ttl")
    label = f"Fault_{unique_tag()}".replace("-", "_")
    nodes = [{"id": kg.ids[i], "name": kg.names[i], "text": kg.texts[i]} for i in range(kg.num_nodes)]
    edges = [{"s": kg.ids[s], "d": kg.ids[d], "r": kg.relations[r]}
             for s, d, r in zip(kg.edge_src.tolist(), kg.edge_dst.tolist(), kg.edge_rel.tolist())]
    driver = connect(neo4j_env)
    with driver.session() as session:
        session.run(f"UNWIND $rows AS row CREATE (n:`{label}`) SET n = row", rows=nodes).consume()
        for rel in sorted({e["r"] for e in edges}):
            rtype = rel.split(":")[-1].upper()
            session.run(f"UNWIND $rows AS row MATCH (a:`{label}` {{id: row.s}}), (b:`{label}` {{id: row.d}}) "
                        f"CREATE (a)-[:`{rtype}`]->(b)", rows=[e for e in edges if e["r"] == rel]).consume()
    yield neo4j_env, label, kg
    with driver.session() as session:
        session.run(f"MATCH (n:`{label}`) DETACH DELETE n").consume()
    driver.close()


def test_training_reads_its_graph_from_neo4j(fault_graph_in_neo4j, tmp_path, capsys, caplog):
    """Also the security check that a job which really logs in with NEO4J_PASSWORD (the server refuses it
    otherwise) writes the password nowhere: no file of the run, stdout, stderr or log record holds it."""
    import logging
    import os

    from kgdistill.config import load_config
    from kgdistill.pipeline import run_pipeline

    uri, label, kg = fault_graph_in_neo4j
    password = os.environ["NEO4J_PASSWORD"]
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_fault_example.py"), str(tmp_path / "data"),
                    "--train", "8", "--test", "3"], check=True, capture_output=True)
    cfg = load_config(ROOT / "configs" / "machine_faults.yaml",
                      [f"data.path={tmp_path / 'data'}", f"graph.path={uri}", f"graph.neo4j.node_label={label}",
                       "graph.neo4j.text_property=text", "teacher.epochs=3", "student.epochs=3"])
    with caplog.at_level(logging.DEBUG):
        rd = run_pipeline(cfg, tmp_path / "run", progress=False, log=print)
    assert rd.info["status"] == "complete"
    needles = [password.encode("utf-8"), password.encode("utf-16-le")]
    files = [p for p in rd.path.rglob("*") if p.is_file()]
    assert len(files) > 10 and not [str(p) for p in files if any(n in p.read_bytes() for n in needles)]
    out = capsys.readouterr()
    for text in (out.out, out.err, "\n".join(r.getMessage() for r in caplog.records)):
        assert password not in text
    from kgdistill.graph import load_graph

    used = load_graph(rd.path / "graph")          # the (restricted) graph the run trained on
    assert set(used.ids) <= set(kg.ids) and "fault:OuterRaceDefect" in used.ids
    assert {"is_a", "broader", "hassymptom"} <= set(used.relations)
    # kg_guided's concepts come from the GNN over the graph read from Neo4j: on 63 seen test samples of 25 faults
    # its top-1 and MRR are ones a random ranking reaches with p < 1/1000 (about 17 of 63, p ~ 3e-10, seen)
    seen = rd.metrics()["methods"]["kg_guided"]["seen"]
    assert seen["n"] == 63 and p_group(seen, 25, "top1") < ALPHA and p_group(seen, 25, "mrr") < ALPHA, seen
