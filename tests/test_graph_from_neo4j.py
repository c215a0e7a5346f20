"""A domain graph that lives in Neo4j trains the same pipeline as a file (graph.path: bolt://...)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
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


def test_training_reads_its_graph_from_neo4j(fault_graph_in_neo4j, tmp_path):
    from kgdistill.config import load_config
    from kgdistill.pipeline import run_pipeline

    uri, label, kg = fault_graph_in_neo4j
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_fault_example.py"), str(tmp_path / "data"),
                    "--train", "8", "--test", "3"], check=True, capture_output=True)
    cfg = load_config(ROOT / "configs" / "machine_faults.yaml",
                      [f"data.path={tmp_path / 'data'}", f"graph.path={uri}", f"graph.neo4j.node_label={label}",
                       "graph.neo4j.text_property=text", "teacher.epochs=3", "student.epochs=3"])
    rd = run_pipeline(cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    assert rd.info["status"] == "complete"
    from kgdistill.graph import load_graph

    used = load_graph(rd.path / "graph")          # the (restricted) graph the run trained on
    assert set(used.ids) <= set(kg.ids) and "fault:OuterRaceDefect" in used.ids
    assert {"is_a", "broader", "hassymptom"} <= set(used.relations)
    assert rd.metrics()["methods"]["teacher"]["seen"]["top10"] > 0
