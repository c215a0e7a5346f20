"""graphs/bearing_faults.ttl: every recorded condition is a node, each fault class reaches its parts, and the
GraphML copy is the same graph."""
from __future__ import annotations

from pathlib import Path

import pytest

from kgdistill.data.cwru import class_id, load_cwru
from kgdistill.graph import inspect_graph, load_graph

GRAPHS = Path(__file__).resolve().parents[1] / "graphs"


@pytest.fixture(scope="module")
def graph():
    return load_graph(GRAPHS / "bearing_faults.ttl")


def _edges(g):
    return {(g.ids[s], g.ids[d], g.relations[r]) for s, d, r in zip(g.edge_src.tolist(), g.edge_dst.tolist(),
                                                                    g.edge_rel.tolist())}


def test_inspect_report(graph):
    d = inspect_graph(graph)
    assert d["nodes"] == 82 and d["edges"] == 181
    assert d["relations"] == {"is_a": 80, "bv:hasSize": 28, "bv:atComponent": 18, "bv:excites": 18,
                              "bv:inBearing": 14, "bv:ofBearing": 8, "bv:partOf": 6, "bv:conditionOf": 4,
                              "bv:largerThan": 3, "bv:modulatedBy": 2}
    assert d["node_types"] == {"FaultClass": 28, "FaultLocation": 21, "DefectFrequency": 13, "Component": 8,
                               "FaultSize": 5, "OperatingCondition": 5, "Condition": 2}
    assert d["num_cycles"] == 0 and d["dangling"] == [] and d["isolated"] == 0 and d["unnamed"] == 0
    assert "cwru:BearingCondition" in d["roots"]


def test_every_recorded_condition_is_a_node(graph):
    labels = {r.label for r in load_cwru().recordings}
    assert len(labels) == 27 and labels <= set(graph.ids)
    types = {graph.ids[i]: graph.types[i] for i in range(graph.num_nodes)}
    assert {types[lab] for lab in labels - {"cwru:Normal"}} == {"FaultClass"}
    # 28 mil drive-end faults exist upstream (DE sensor only): in the graph, without paired recordings
    assert {"cwru:DE_IR_028", "cwru:DE_B_028"} <= set(graph.ids) - labels


def test_fault_class_reaches_its_parts(graph):
    e = _edges(graph)
    assert ("cwru:DE_IR_014", "cwru:DE_IR", "is_a") in e
    assert ("cwru:DE_IR_014", "cwru:Size014", "bv:hasSize") in e
    assert ("cwru:DE_IR", "cwru:InnerRaceFault", "is_a") in e
    assert ("cwru:DE_IR", "cwru:DriveEndBearing", "bv:inBearing") in e
    assert ("cwru:DE_IR", "cwru:DE_BPFI", "bv:excites") in e
    assert ("cwru:DE_OR3", "cwru:OuterRaceFault3", "is_a") in e and ("cwru:DE_OR3", "cwru:DE_OR", "is_a") in e
    assert ("cwru:FE_B", "cwru:FE_BSF", "bv:excites") in e and ("cwru:BallFault", "cwru:FTF", "bv:modulatedBy") in e
    reach = graph.reachable([graph.idx("cwru:FE_OR6_021")])[0]
    assert {"cwru:FE_OR6", "cwru:OuterRaceFault6", "cwru:OuterRaceFault", "cwru:FanEndBearingFault", "cwru:Size021",
            "cwru:FanEndBearing", "cwru:FE_BPFO", "cwru:BPFO", "cwru:OuterRace"} <= {graph.ids[i] for i in reach}
    assert "cwru:DriveEndBearing" not in {graph.ids[i] for i in reach}  # a fan-end fault never reaches the other bearing
    for size, smaller in ((14, 7), (21, 14), (28, 21)):
        assert (f"cwru:Size{size:03d}", f"cwru:Size{smaller:03d}", "bv:largerThan") in e


def test_texts_carry_the_numbers(graph):
    text = {graph.ids[i]: graph.node_text(i) for i in range(graph.num_nodes)}
    assert "5.4152 x shaft speed" in text["cwru:DE_BPFI"] and "162.2 Hz at 1797 rpm" in text["cwru:DE_BPFI"]
    for k, v in {"BPFO": "3.5848", "BSF": "4.7135", "FTF": "0.39828"}.items():
        assert f"{v} x shaft speed" in text[f"cwru:DE_{k}"]
    assert "1750 rpm" in text["cwru:Load2HP"] and "157.9 Hz" in text["cwru:Load2HP"]  # 5.4152 * 1750 / 60
    assert text["cwru:DE_OR3_021"].startswith("drive-end outer race at 3 o'clock fault, 21 mil.")
    assert "SKF 6203-2RS" in text["cwru:FanEndBearing"]
    assert all(len(graph.names[i] + ". " + graph.texts[i]) <= 400 for i in range(graph.num_nodes))


def test_graphml_is_the_same_graph(graph):
    other = load_graph(GRAPHS / "bearing_faults.graphml")
    assert other.ids == graph.ids and other.names == graph.names and other.texts == graph.texts
    assert other.types == graph.types and other.synonyms == graph.synonyms
    assert _edges(other) == _edges(graph)


def test_class_ids():
    assert class_id("drive_end", "inner_race", 0, 14) == "cwru:DE_IR_014"
    assert class_id("fan_end", "outer_race", 3, 7) == "cwru:FE_OR3_007"
    assert class_id("none", "none") == "cwru:Normal"
