"""The graph health report: sizes, roots, cycles, dangling ids, isolated and unnamed nodes."""
from __future__ import annotations

import json
from pathlib import Path

from kgdistill.graph import GraphBuilder, format_inspection, inspect_graph, load_graph

GRAPHS = Path(__file__).resolve().parents[1] / "graphs"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_machine_faults_report():
    d = inspect_graph(load_graph(GRAPHS / "machine_faults.ttl"))
    assert d["nodes"] == 80 and d["edges"] == 155
    assert d["relations"] == {"is_a": 34, "broader": 43, "ex:affectsComponent": 14, "ex:hasSymptom": 64}
    assert d["node_types"] == {"Component": 10, "Fault": 38, "Symptom": 32}
    assert d["hierarchy_relations"] == ["is_a", "broader"]
    assert d["num_roots"] == 3
    assert d["roots"] == ["comp:MachineComponent", "fault:MachineFault", "sym:MachineSymptom"]
    assert d["num_cycles"] == 0 and d["cycles"] == [] and not d["cycles_capped"]
    assert d["dangling"] == [] and d["isolated"] == 0 and d["unnamed"] == 0
    text = format_inspection(d)
    assert "nodes: 80   edges: 155" in text
    assert "is_a=34" in text and "ex:hasSymptom=64" in text
    assert "roots: 3 (first: comp:MachineComponent, fault:MachineFault, sym:MachineSymptom)" in text
    assert "cycles: 0" in text


def test_hpo_report_has_single_root():
    from kgdistill.graph import hpo_obo_path

    d = inspect_graph(load_graph(hpo_obo_path()))
    assert d["roots"] == ["HP:0000001"] and d["num_roots"] == 1
    assert d["num_cycles"] == 0 and d["unnamed"] == 0 and d["isolated"] == 0


def test_is_a_cycle_loads_and_is_reported(tmp_path):
    obo = write(tmp_path / "cycle.obo", "[Term]\nid: C:1\nname: one\nis_a: C:2\n\n"
                                        "[Term]\nid: C:2\nname: two\nis_a: C:3\n\n"
                                        "[Term]\nid: C:3\nname: three\nis_a: C:1\n\n"
                                        "[Term]\nid: C:4\nname: four\nis_a: C:1\n")
    g = load_graph(obo)
    d = inspect_graph(g)
    assert d["num_cycles"] == 1
    assert sorted(d["cycles"][0]) == ["C:1", "C:2", "C:3"]
    assert d["num_roots"] == 0  # every hierarchy node has a parent inside the cycle
    text = format_inspection(d)
    assert "cycles: 1" in text and "cycle: C:" in text


def test_dangling_ids_are_reported(tmp_path):
    write(tmp_path / "g" / "nodes.csv", "id,name\na,A\nb,B\n")
    write(tmp_path / "g" / "edges.csv", "source,target,relation\na,b,is_a\nb,ghost,is_a\n")
    d = inspect_graph(load_graph(tmp_path / "g"))
    assert d["dangling"] == ["ghost"]
    assert d["unnamed"] == 1  # the dangling node has only its id
    assert "dangling ids: 1 (first: ghost)" in format_inspection(d)


def test_nodes_without_edges(tmp_path):
    write(tmp_path / "g" / "nodes.csv", "id,name,type\na,A,x\nb,B,x\nc,C,y\n")
    write(tmp_path / "g" / "edges.csv", "source,target,relation,weight\n")
    d = inspect_graph(load_graph(tmp_path / "g"))
    assert d["nodes"] == 3 and d["edges"] == 0
    assert d["relations"] == {} and d["hierarchy_relations"] == "all"
    assert d["isolated"] == 3 and d["num_roots"] == 0 and d["num_cycles"] == 0
    assert d["node_types"] == {"x": 2, "y": 1}
    text = format_inspection(d)
    assert "nodes: 3   edges: 0" in text and "relations: none" in text and "isolated nodes: 3" in text


def test_without_hierarchy_all_relations_define_roots():
    b = GraphBuilder("mem")
    for n in "abcd":
        b.add_node(n, n.upper())
    b.add_edge("a", "b", "has_part")
    b.add_edge("b", "c", "has_part")
    d = inspect_graph(b.build())
    assert d["hierarchy_relations"] == "all"
    assert d["roots"] == ["c"] and d["isolated"] == 1
    assert "hierarchy: all edges" in format_inspection(d)


def test_unnamed_nodes_from_a_bare_edge_list(tmp_path):
    d = inspect_graph(load_graph(write(tmp_path / "e.csv", "source,target\nx,y\ny,z\n")))
    assert d["unnamed"] == 3
    assert "nodes without a name: 3" in format_inspection(d)


def test_inspect_shows_which_predicates_were_not_taken_as_relations(cli):
    owl = Path(__file__).resolve().parent / "data" / "owl" / "disease_release.owl"
    res = cli("graph", "inspect", str(owl))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[2] == "relations: is_a=4, RO:0004026=1, doid:has_symptom=1, skos:exactMatch=1, RO:0001025=1"
    assert lines[3] == ("not relations (kept as node attributes): IAO:0100001=1, oboInOwl:inSubset=5, rdfs:seeAlso=1 "
                        "(read one as a relation: --relation NAME, or graph.extra_relations)")
    res = cli("graph", "inspect", str(owl), "--relation", "IAO:0100001", "--json")
    info = json.loads(res.stdout)
    assert info["relations"]["IAO:0100001"] == 1 and info["not_relations"] == {"oboInOwl:inSubset": 5,
                                                                               "rdfs:seeAlso": 1}
    assert "not relations" not in format_inspection(inspect_graph(load_graph(GRAPHS / "machine_faults.ttl")))
