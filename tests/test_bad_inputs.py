"""The bad-input corpus: every input kgdistill reads, broken the ways other tools break it.

Each case is a few small files, one call (the Python API, or the ``kgdistill`` command for a
representative subset so that the one-line, no-traceback behaviour is proven end to end), and the
exact expected outcome:

* ``Err``: exactly this exception type (a :class:`KGDistillError`), one line, starting with the file
  (and line) it names, containing the given substrings; on the command line exit code 2 and that one
  line on stderr prefixed with ``kgdistill: error:``;
* ``Ok``: a documented repair or acceptance (an obsolete term skipped with a warning, a byte-order mark
  dropped, an edge to a missing node kept as a listed dangling node, ...), checked by its own assertion.

Related cases already covered elsewhere (and not repeated here): ``tests/test_graph_loaders.py``
(empty files of every format, Latin-1 bytes per format, CSV/OBO/GraphML line errors, dangling modes),
``tests/test_data.py`` (row counts, empty text, bad splits, duplicate sample ids, NaN in .npy),
``tests/test_config.py`` (unknown keys, bad types, KD temperature, loss weight words), ``tests/test_cli.py``
(NaN in a CSV modality through ``kgdistill train``) and ``tests/test_pipeline.py`` (run status ``running``).

``scripts/reliability_report.py`` reads what each case records (``record_property("reliability", ...)``)
and writes docs/reliability.md.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from kgdistill.config import load_config
from kgdistill.data.paired import load_paired
from kgdistill.errors import ConfigError, DataError, GraphFormatError, KGDistillError, RunDirError
from kgdistill.graph import load_graph

# ----------------------------------------------------------------------------- outcomes


@dataclass
class Err:
    """The call fails with exactly ``type``, one line naming ``where`` (relative to the case folder) and ``line``."""

    type: type[KGDistillError]
    where: str | None
    line: int | None
    has: tuple[str, ...] = ()


@dataclass
class Ok:
    """The call succeeds; ``check(result, root)`` asserts the documented repair, ``what`` describes it."""

    what: str
    check: Callable[[Any, Path], None]


@dataclass
class Case:
    id: str
    cls: str                      # the input class, as reported in docs/reliability.md
    bad: str                      # what is wrong with the input, in a few words
    files: dict[str, str | bytes] = field(default_factory=dict)
    call: Callable[[Path], Any] | None = None        # API call; receives the case folder
    argv: Callable[[Path], list[str]] | None = None  # or: kgdistill command line
    expect: Err | Ok | None = None
    prepare: Callable[[Path], None] | None = None    # extra setup (arrays, run directory edits)
    run_dir: bool = False         # the case folder is a copy of the tiny run (``tiny_run`` fixture)


# ----------------------------------------------------------------------------- calls
def graph(name: str, **options) -> Callable[[Path], Any]:
    return lambda root: load_graph(root / name, **options)


def inspect_cli(name: str) -> Callable[[Path], list[str]]:
    return lambda root: ["graph", "inspect", str(root / name)]


def dataset(root: Path):
    """What a run does with a dataset folder: read and check it, then check it against its graph."""
    ds = load_paired(root / "ds")
    ds.validate_against(load_graph(ds.graph_path).index)
    return ds


def config(name: str = "c.yaml", *overrides: str) -> Callable[[Path], Any]:
    return lambda root: load_config(root / name, list(overrides))


def train_cli(name: str = "c.yaml", *overrides: str) -> Callable[[Path], list[str]]:
    def argv(root: Path) -> list[str]:
        out = ["train", str(root / name), "--out", str(root / "run")]
        for o in overrides:
            out += ["--set", o]
        return out
    return argv


# ----------------------------------------------------------------------------- a valid dataset to break
GOOD_DS: dict[str, str | bytes] = {
    "ds/dataset.yaml": (
        "name: bad-input-base\n"
        "graph: graph\n"
        "samples: samples.tsv\n"
        "teacher: findings\n"
        "student: note\n"
        "modalities:\n"
        "  findings: {kind: concept_set, path: findings.txt}\n"
        "  note: {kind: text, path: note.txt}\n"
        "  lab: {kind: vector, path: lab.csv}\n"
    ),
    "ds/graph/nodes.csv": "id,name\nD:1,flu\nD:2,cold\nS:1,fever\nS:2,cough\n",
    "ds/graph/edges.csv": "source,target,relation\nD:1,S:1,has_symptom\nD:1,S:2,has_symptom\nD:2,S:2,has_symptom\n",
    "ds/samples.tsv": ("id\tlabel\tsplit\tstudent_labelled\n"
                       "p1\tD:1\ttrain\t1\np2\tD:2\ttrain\t0\np3\tD:1\tval\t1\np4\tD:2\ttest\t1\n"),
    "ds/findings.txt": "S:1 S:2\nS:2\nS:1\nS:2\n",
    "ds/note.txt": "Fever and cough.\nA cough.\nHigh fever.\nDry cough.\n",
    "ds/lab.csv": "1.0,2.0\n0.5,1.5\n1.1,2.1\n0.4,1.2\n",
}


def ds(**changes: str | bytes) -> dict[str, str | bytes]:
    """The valid dataset with some files replaced: ``ds(note_txt="...")`` replaces ds/note.txt."""
    files = dict(GOOD_DS)
    for key, content in changes.items():
        files["ds/" + ".".join(key.rsplit("_", 1))] = content
    return files


DS_YAML = GOOD_DS["ds/dataset.yaml"]
assert isinstance(DS_YAML, str)
GOOD_CFG = "base: default.yaml\n"


def npy(name: str, arr: np.ndarray) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        np.save(root / name, arr, allow_pickle=arr.dtype == object)
    return write


# ----------------------------------------------------------------------------- repairs
def check_cycle_reported(res, root):
    assert "cycles: 1" in res.stdout and "cycle: A:2 -> A:1 -> A:2" in res.stdout, res.stdout


def check_obsolete_skipped(res, root):
    assert "nodes: 1 " in res.stdout and "edges: 0" in res.stdout, res.stdout
    assert "skipped 1 obsolete terms" in res.stderr, res.stderr  # the warning, on stderr


def check_same_name_merged(g, root):
    assert g.ids == ["A:1", "A:2"] and g.names[0] == "a" and g.num_edges == 1


def check_dangling_dropped(g, root):
    assert g.ids == ["A:1"] and g.num_edges == 0 and g.dangling == ["A:9"]


def check_no_edges(g, root):
    assert g.num_nodes == 2 and g.num_edges == 0


def check_graphml_dangling(g, root):
    assert g.ids == ["a", "ghost"] and g.dangling == ["ghost"] and g.num_edges == 1


def check_bom_csv(g, root):
    assert g.ids == ["a", "b"] and g.num_edges == 1


def check_dangling_listed(res, root):
    assert "dangling ids: 1 (first: ghost)" in res.stdout, res.stdout


def check_bom_samples(d, root):
    assert d.sample_ids == ["p1", "p2", "p3", "p4"]


def check_candidates_deduplicated(d, root):
    assert d.candidates == ["D:1", "D:2"]


# ----------------------------------------------------------------------------- the corpus
OBO_TRUNC_DEF = '[Term]\nid: A:1\nname: a\n\n[Term]\nid: A:2\nname: b\ndef: "A truncated defin'
TTL_HEAD = "@prefix ex: <http://e.org/> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
RDF_HEAD = ('<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"\n'
            '         xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">\n')
GRAPHML_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
                '  <key id="n" for="node" attr.name="name" attr.type="string"/>\n'
                '  <key id="w" for="edge" attr.name="weight" attr.type="double"/>\n'
                '  <graph edgedefault="directed">\n')
BOMB_DTD = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
            + "]>\n")
YAML_BOMB = "base: default.yaml\n" + "".join(
    f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10) if i else '1'}]\n" for i in range(7)) + \
    "teacher: {encoder: {name: concept_set, hidden: 64, extra: *x6}}\n"

CASES: list[Case] = [
    # ------------------------------------------------------------------ OBO
    Case("obo-truncated-def", "OBO", "file cut inside a quoted definition",
         {"x.obo": OBO_TRUNC_DEF}, argv=inspect_cli("x.obo"),
         expect=Err(GraphFormatError, "x.obo", 8, ("'def': unterminated quoted text",))),
    Case("obo-truncated-header", "OBO", "file cut inside a stanza header",
         {"x.obo": "[Term]\nid: A:1\nname: a\n\n[Ter"}, graph("x.obo"),
         expect=Err(GraphFormatError, "x.obo", 5, ("malformed stanza header '[Ter'",))),
    Case("obo-empty-is-a", "OBO", "is_a tag without a target",
         {"x.obo": "[Term]\nid: A:1\nis_a:   ! the parent was lost\n"}, graph("x.obo"),
         expect=Err(GraphFormatError, "x.obo", 3, ("empty 'is_a'",))),
    Case("obo-utf16", "OBO", "saved as UTF-16 (a Windows editor)",
         {"x.obo": "[Term]\nid: A:1\nname: a\n".encode("utf-16")}, argv=inspect_cli("x.obo"),
         expect=Err(GraphFormatError, "x.obo", 1, ("not valid UTF-8: byte 0xff at column 1",))),
    Case("obo-is-a-cycle", "OBO", "is_a cycle A:1 -> A:2 -> A:1",
         {"x.obo": "[Term]\nid: A:1\nname: a\nis_a: A:2\n\n[Term]\nid: A:2\nname: b\nis_a: A:1\n"},
         argv=inspect_cli("x.obo"),
         expect=Ok("loaded; `graph inspect` reports the cycle (cycles: 1, A:2 -> A:1 -> A:2); reachability "
                   "treats the members as implying each other", check_cycle_reported)),
    Case("obo-duplicate-id", "OBO", "one id declared twice with different names",
         {"x.obo": "[Term]\nid: A:1\nname: a\n\n[Term]\nid: A:1\nname: b\n"}, argv=inspect_cli("x.obo"),
         expect=Err(GraphFormatError, "x.obo", 6, ("duplicate id 'A:1' with different names ('a' vs 'b')",))),
    Case("obo-duplicate-same-name", "OBO", "one id declared twice with the same name",
         {"x.obo": "[Term]\nid: A:1\nname: a\n\n[Term]\nid: A:1\nname: a\nis_a: A:2\n\n[Term]\nid: A:2\n"},
         graph("x.obo"), expect=Ok("merged into one node (its edges kept)", check_same_name_merged)),
    Case("obo-dangling-is-a", "OBO", "is_a to an id never declared",
         {"x.obo": "[Term]\nid: A:1\nname: a\nis_a: A:9\n"}, graph("x.obo"),
         expect=Ok("edge dropped, the id listed in graph.dangling (dangling='add'/'error' to keep or refuse)",
                   check_dangling_dropped)),
    Case("obo-obsolete-term", "OBO", "an obsolete term and an edge to it",
         {"x.obo": "[Term]\nid: A:1\nname: a\nis_a: A:2\n\n[Term]\nid: A:2\nname: old\nis_obsolete: true\n"},
         argv=inspect_cli("x.obo"),
         expect=Ok("term and edges to it skipped, with the warning 'skipped 1 obsolete terms' on stderr",
                   check_obsolete_skipped)),
    Case("obo-no-edges", "OBO", "terms without any is_a (a graph with no edges)",
         {"x.obo": "[Term]\nid: A:1\nname: a\n\n[Term]\nid: A:2\nname: b\n"}, graph("x.obo"),
         expect=Ok("loaded with 0 edges; `graph inspect` counts the isolated nodes", check_no_edges)),
    # ------------------------------------------------------------------ Turtle
    Case("ttl-truncated-statement", "Turtle", "file cut after a predicate",
         {"x.ttl": TTL_HEAD + "ex:a rdfs:subClassOf ex:b .\nex:b rdfs:subClassOf ex:"}, argv=inspect_cli("x.ttl"),
         expect=Err(GraphFormatError, "x.ttl", 4, ("Turtle syntax error: unexpected end of file",))),
    Case("ttl-truncated-string", "Turtle", "file cut inside a string literal",
         {"x.ttl": TTL_HEAD + 'ex:a rdfs:label "a truncated lab'}, graph("x.ttl"),
         expect=Err(GraphFormatError, "x.ttl", 3, ("unexpected end of file", "truncated?"))),
    Case("ttl-unterminated-iri", "Turtle", "IRI without its closing '>' on line 3 (reported where it starts)",
         {"x.ttl": TTL_HEAD + "ex:a rdfs:subClassOf <http://e.org/b .\nex:c rdfs:subClassOf ex:a .\n"},
         graph("x.ttl"), expect=Err(GraphFormatError, "x.ttl", 3, ("the statement, string or IRI that starts at "
                                                                   "column 22 is not closed",))),
    Case("ttl-iri-space", "Turtle", "IRI holding a space (rdflib alone loads it)",
         {"x.ttl": TTL_HEAD + "ex:a rdfs:subClassOf ex:b .\nex:b rdfs:subClassOf <http://e.org/c d> .\n"},
         argv=inspect_cli("x.ttl"),
         expect=Err(GraphFormatError, "x.ttl", 4, ("Turtle syntax error: Invalid IRI code point ' '",))),
    Case("ttl-n3-path", "Turtle", "N3 path syntax ex:a!ex:b (rdflib alone loads it)",
         {"x.ttl": TTL_HEAD + "ex:a!ex:b rdfs:subClassOf ex:c .\n"}, argv=inspect_cli("x.ttl"),
         expect=Err(GraphFormatError, "x.ttl", 3, ("Turtle syntax error: ! is not a valid predicate",))),
    Case("ttl-missing-object", "Turtle", "statement without an object",
         {"x.ttl": TTL_HEAD + "ex:a rdfs:subClassOf ex:b .\nex:c rdfs:subClassOf .\n"}, graph("x.ttl"),
         expect=Err(GraphFormatError, "x.ttl", 4, ("Turtle syntax error",))),
    # ------------------------------------------------------------------ RDF/XML
    Case("rdfxml-truncated", "RDF/XML", "file cut inside an element",
         {"x.rdf": RDF_HEAD + '  <rdf:Description rdf:about="http://e.org/a">\n    <rdfs:label>a</rdfs:la'},
         argv=inspect_cli("x.rdf"), expect=Err(GraphFormatError, "x.rdf", 5, ("XML syntax error",))),
    Case("rdfxml-latin1", "RDF/XML", "declared and written as ISO-8859-1",
         {"x.rdf": ('<?xml version="1.0" encoding="ISO-8859-1"?>\n' + RDF_HEAD.split("\n", 1)[1]
                    + '  <rdf:Description rdf:about="http://e.org/a">\n    <rdfs:label>caf\xe9</rdfs:label>\n'
                    '  </rdf:Description>\n</rdf:RDF>\n').encode("latin-1")}, graph("x.rdf"),
         expect=Err(GraphFormatError, "x.rdf", 5, ("not valid UTF-8: byte 0xe9",))),
    Case("rdfxml-not-rdf", "RDF/XML", "well-formed XML that is not RDF",
         {"x.rdf": '<?xml version="1.0"?>\n<html><body><p>hello</p></body></html>\n'}, graph("x.rdf"),
         expect=Err(GraphFormatError, "x.rdf", None, ("no nodes found",))),
    Case("rdfxml-entity-bomb", "RDF/XML", "nested DTD entities (billion laughs)",
         {"x.rdf": BOMB_DTD + RDF_HEAD.split("\n", 1)[1] + '<rdf:Description rdf:about="http://e.org/a">'
          '<rdfs:label>&lol9;</rdfs:label></rdf:Description></rdf:RDF>\n'}, graph("x.rdf"),
         expect=Err(GraphFormatError, "x.rdf", 5, ("entities expand to more than",))),
    # ------------------------------------------------------------------ N-Triples
    Case("nt-truncated", "N-Triples", "last triple cut before its final ' .'",
         {"x.nt": "<http://e.org/a> <http://e.org/r> <http://e.org/b> .\n<http://e.org/b> <http://e.org/r> <http://e"},
         graph("x.nt"), expect=Err(GraphFormatError, "x.nt", 2, ("N-Triples syntax error",))),
    # ------------------------------------------------------------------ GraphML
    Case("graphml-truncated", "GraphML", "file cut inside a node",
         {"x.graphml": GRAPHML_HEAD + '    <node id="a"><data key="n">pump</data></node>\n    <node id="b"><da'},
         argv=inspect_cli("x.graphml"), expect=Err(GraphFormatError, "x.graphml", 7, ("invalid GraphML XML",))),
    Case("graphml-duplicate-id", "GraphML", "one node id declared twice with different names",
         {"x.graphml": GRAPHML_HEAD + '    <node id="a"><data key="n">pump</data></node>\n'
          '    <node id="a"><data key="n">motor</data></node>\n  </graph>\n</graphml>\n'}, graph("x.graphml"),
         expect=Err(GraphFormatError, "x.graphml", 7, ("duplicate node id 'a' (first declared on line 6)",))),
    Case("graphml-edge-to-missing-node", "GraphML", "edge to a node never declared",
         {"x.graphml": GRAPHML_HEAD + '    <node id="a"/>\n    <edge source="a" target="ghost"/>\n'
          '  </graph>\n</graphml>\n'}, graph("x.graphml"),
         expect=Ok("endpoint added as a bare node and listed in graph.dangling (as for CSV)", check_graphml_dangling)),
    Case("graphml-nan-weight", "GraphML", "edge weight NaN",
         {"x.graphml": GRAPHML_HEAD + '    <node id="a"/><node id="b"/>\n'
          '    <edge source="a" target="b"><data key="w">NaN</data></edge>\n  </graph>\n</graphml>\n'},
         graph("x.graphml"), expect=Err(GraphFormatError, "x.graphml", None, ("edge a -> b: weight must be a finite",))),
    Case("graphml-entity-bomb", "GraphML", "nested DTD entities (billion laughs)",
         {"x.graphml": BOMB_DTD + '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="directed">'
          '<node id="&lol9;"/></graph></graphml>\n'}, graph("x.graphml"),
         expect=Err(GraphFormatError, "x.graphml", 3, ("invalid GraphML XML", "amplification"))),
    # ------------------------------------------------------------------ CSV graphs
    Case("csv-truncated-quote", "CSV graph", "file cut inside a quoted field",
         {"g/edges.csv": 'source,target,relation\na,b,is_a\nb,"c,is_a\n'}, argv=inspect_cli("g/edges.csv"),
         expect=Err(GraphFormatError, "g/edges.csv", 3, ("bad CSV: unexpected end of data",))),
    Case("csv-cp1252", "CSV graph", "Excel export in Windows-1252",
         {"edges.csv": "source,target\nCaf\xe9,Bar\n".encode("cp1252")}, graph("edges.csv"),
         expect=Err(GraphFormatError, "edges.csv", 2, ("not valid UTF-8: byte 0xe9 at column 4",))),
    Case("csv-utf8-bom", "CSV graph", "UTF-8 with a byte-order mark (Excel)",
         {"edges.csv": "\ufeffsource,target\na,b\n"}, graph("edges.csv"),
         expect=Ok("the byte-order mark is dropped; the header reads 'source'", check_bom_csv)),
    Case("csv-edge-to-missing-node", "CSV graph", "edge to an id missing from nodes.csv",
         {"g/nodes.csv": "id,name\na,A\nb,B\n", "g/edges.csv": "source,target\na,b\na,ghost\n"}, argv=inspect_cli("g"),
         expect=Ok("added as a bare node and listed: `graph inspect` prints 'dangling ids: 1 (first: ghost)'",
                   check_dangling_listed)),
    Case("csv-only-bom", "CSV graph", "a file holding nothing but a UTF-8 byte-order mark",
         {"edges.csv": "\ufeff"}, graph("edges.csv"), expect=Err(GraphFormatError, "edges.csv", None, ("file is empty",))),
    Case("csv-header-only", "CSV graph", "edge list with a header and no edges",
         {"edges.csv": "source,target,relation\n"}, graph("edges.csv"),
         expect=Err(GraphFormatError, "edges.csv", None, ("no nodes found",))),
    # ------------------------------------------------------------------ dataset.yaml
    Case("ds-unknown-key", "dataset.yaml", "misspelt key 'modalites'",
         ds(dataset_yaml=DS_YAML.replace("modalities:", "modalites:")), dataset,
         expect=Err(DataError, "ds/dataset.yaml", None, ("unknown key 'modalites'",))),
    Case("ds-malformed-yaml", "dataset.yaml", "unclosed flow mapping",
         ds(dataset_yaml=DS_YAML.replace("path: note.txt}", "path: note.txt")), dataset,
         expect=Err(DataError, "ds/dataset.yaml", 9, ("not valid YAML",))),
    Case("ds-not-utf8", "dataset.yaml", "Latin-1 byte in the name",
         ds(dataset_yaml=DS_YAML.replace("bad-input-base", "caf\xe9").encode("latin-1")), dataset,
         expect=Err(DataError, "ds/dataset.yaml", 1, ("not UTF-8 text (byte 0xe9)",))),
    Case("ds-empty", "dataset.yaml", "empty file", ds(dataset_yaml=""), dataset,
         expect=Err(DataError, "ds/dataset.yaml", None, ("expected a mapping",))),
    Case("ds-meta-not-mapping", "dataset.yaml", "meta is a list",
         ds(dataset_yaml=DS_YAML + "meta: [a, b]\n"), dataset,
         expect=Err(DataError, "ds/dataset.yaml", None, ("meta: expected a mapping, got list",))),
    Case("ds-unknown-teacher", "dataset.yaml", "teacher names a modality that is not listed",
         ds(dataset_yaml=DS_YAML.replace("teacher: findings", "teacher: vitals")), dataset,
         expect=Err(DataError, "ds/dataset.yaml", None, ("teacher: modality 'vitals' is not listed",))),
    Case("ds-modality-path-escapes", "dataset.yaml", "modality path '../outside.txt'",
         {**ds(dataset_yaml=DS_YAML.replace("path: note.txt", "path: ../outside.txt")),
          "outside.txt": "a\nb\nc\nd\n"}, dataset,
         expect=Err(DataError, "ds/dataset.yaml", None, ("modalities.note.path: '../outside.txt' points outside",))),
    Case("ds-samples-path-escapes", "dataset.yaml", "samples 'sub/../../samples.tsv'",
         ds(dataset_yaml=DS_YAML.replace("samples: samples.tsv", "samples: sub/../../samples.tsv")), dataset,
         expect=Err(DataError, "ds/dataset.yaml", None, ("samples: 'sub/../../samples.tsv' points outside",))),
    # ------------------------------------------------------------------ samples.tsv
    Case("samples-empty", "samples.tsv", "empty file", ds(samples_tsv=""), dataset,
         expect=Err(DataError, "ds/samples.tsv", None, ("empty file; expected a header",))),
    Case("samples-unknown-label", "samples.tsv", "label naming a concept the graph lacks",
         ds(samples_tsv=str(GOOD_DS["ds/samples.tsv"]).replace("p2\tD:2", "p2\tD:9")), dataset,
         expect=Err(DataError, "ds/samples.tsv", 3, ("label 'D:9' of sample 'p2' is not a concept of the graph",))),
    Case("samples-latin1", "samples.tsv", "Latin-1 byte in an id",
         ds(samples_tsv=str(GOOD_DS["ds/samples.tsv"]).replace("p2", "p\xe9").encode("latin-1")), dataset,
         expect=Err(DataError, "ds/samples.tsv", 3, ("not UTF-8 text (byte 0xe9)",))),
    Case("samples-bom", "samples.tsv", "UTF-8 with a byte-order mark (Excel)",
         ds(samples_tsv="\ufeff" + str(GOOD_DS["ds/samples.tsv"])), dataset,
         expect=Ok("the byte-order mark is dropped; the header reads 'id'", check_bom_samples)),
    Case("samples-short-row", "samples.tsv", "row with a missing field",
         ds(samples_tsv=str(GOOD_DS["ds/samples.tsv"]).replace("p2\tD:2\ttrain\t0", "p2\tD:2\ttrain")), dataset,
         expect=Err(DataError, "ds/samples.tsv", 3, ("expected 4 tab-separated fields, got 3",))),
    Case("samples-empty-id", "samples.tsv", "a row whose id is blank",
         ds(samples_tsv=str(GOOD_DS["ds/samples.tsv"]).replace("p3\t", " \t")), dataset,
         expect=Err(DataError, "ds/samples.tsv", 4, ("empty sample id",))),
    Case("samples-bad-flag", "samples.tsv", "student_labelled 'yes'",
         ds(samples_tsv=str(GOOD_DS["ds/samples.tsv"]).replace("train\t0", "train\tyes")), dataset,
         expect=Err(DataError, "ds/samples.tsv", 3, ("student_labelled 'yes'; expected 0 or 1",))),
    Case("samples-huge-field", "samples.tsv", "a 200 kB field (a binary pasted in)",
         ds(samples_tsv=str(GOOD_DS["ds/samples.tsv"]) + "p5\t" + "x" * 200_000 + "\ttrain\t1\n"), dataset,
         expect=Err(DataError, "ds/samples.tsv", 6, ("field larger than field limit",))),
    # ------------------------------------------------------------------ candidates.txt
    Case("candidates-latin1", "candidates.txt", "Latin-1 byte in an id",
         {**ds(dataset_yaml=DS_YAML + "candidates: candidates.txt\n"),
          "ds/candidates.txt": "D:1\nD:2\nD:\xe9\n".encode("latin-1")}, dataset,
         expect=Err(DataError, "ds/candidates.txt", 3, ("not UTF-8 text (byte 0xe9)",))),
    Case("candidates-duplicate", "candidates.txt", "a candidate listed twice",
         {**ds(dataset_yaml=DS_YAML + "candidates: candidates.txt\n"), "ds/candidates.txt": "D:1\nD:2\nD:1\n"},
         dataset, expect=Ok("kept once, in first-seen order", check_candidates_deduplicated)),
    Case("candidates-missing-label", "candidates.txt", "a training label that is not a candidate",
         {**ds(dataset_yaml=DS_YAML + "candidates: candidates.txt\n"), "ds/candidates.txt": "D:1\nS:1\n"}, dataset,
         expect=Err(DataError, "ds/samples.tsv", 3, ("label 'D:2' of sample 'p2' is not among the candidates of "
                                                     "candidates.txt",))),
    Case("candidates-not-in-graph", "candidates.txt", "a candidate id the graph lacks",
         {**ds(dataset_yaml=DS_YAML + "candidates: candidates.txt\n"), "ds/candidates.txt": "D:1\nD:2\n\nD:3\n"},
         dataset, expect=Err(DataError, "ds/candidates.txt", 4, ("candidate 'D:3' is not a concept of the graph",))),
    # ------------------------------------------------------------------ modality files
    Case("modality-lengths-differ", "modality files", "vector file with one row more than samples.tsv",
         ds(lab_csv=str(GOOD_DS["ds/lab.csv"]) + "9.0,9.0\n"), dataset,
         expect=Err(DataError, "ds/lab.csv", None, ("5 rows, expected 4 (one per sample in samples.tsv)",))),
    Case("text-blank-line", "modality files", "text modality with a whitespace-only line",
         ds(note_txt="Fever and cough.\n   \nHigh fever.\nDry cough.\n"), dataset,
         expect=Err(DataError, "ds/note.txt", 2, ("empty text; expected one non-empty text per line",))),
    Case("text-latin1", "modality files", "text modality in Latin-1",
         ds(note_txt="Fever.\nA cough.\nFi\xe8vre.\nDry cough.\n".encode("latin-1")), dataset,
         expect=Err(DataError, "ds/note.txt", 3, ("not UTF-8 text",))),
    Case("vector-empty-file", "modality files", "empty vector file", ds(lab_csv=""), dataset,
         expect=Err(DataError, "ds/lab.csv", None, ("empty file",))),
    Case("vector-nan", "modality files", "NaN in a CSV vector",
         ds(lab_csv="1.0,2.0\n0.5,1.5\nnan,2.1\n0.4,1.2\n"), dataset,
         expect=Err(DataError, "ds/lab.csv", 3, ("has NaN or infinite values",))),
    Case("vector-inf-tsv", "modality files", "infinite value in a TSV vector",
         {**ds(dataset_yaml=DS_YAML.replace("lab.csv", "lab.tsv")),
          "ds/lab.tsv": "1.0\t2.0\n0.5\tinf\n1.1\t2.1\n0.4\t1.2\n"}, dataset,
         expect=Err(DataError, "ds/lab.tsv", 2, ("has NaN or infinite values",))),
    Case("vector-ragged", "modality files", "CSV vector rows of different lengths",
         ds(lab_csv="1.0,2.0\n0.5,1.5\n1.1,2.1,3.0\n0.4,1.2\n"), dataset,
         expect=Err(DataError, "ds/lab.csv", 3, ("3 values, expected 2 like line 1",))),
    Case("timeseries-nan-npy", "modality files", "NaN inside a .npy time series",
         ds(dataset_yaml=DS_YAML.replace("lab: {kind: vector, path: lab.csv}", "ts: {kind: timeseries, path: ts.npy}")),
         dataset, prepare=npy("ds/ts.npy", np.where(np.arange(24).reshape(4, 2, 3) == 9, np.nan, 1.0)),
         expect=Err(DataError, "ds/ts.npy", None, ("sample 2 (array row 1) has NaN or infinite values",))),
    Case("npy-truncated", "modality files", ".npy file cut in half",
         ds(dataset_yaml=DS_YAML.replace("lab.csv", "lab.npy")), dataset,
         prepare=lambda root: (np.save(root / "ds/lab.npy", np.ones((4, 64), np.float32)),
                               (root / "ds/lab.npy").write_bytes((root / "ds/lab.npy").read_bytes()[:300])),
         expect=Err(DataError, "ds/lab.npy", None, ("not a readable .npy array",))),
    Case("npy-scalar", "modality files", ".npy holding a single number",
         ds(dataset_yaml=DS_YAML.replace("lab.csv", "lab.npy")), dataset, prepare=npy("ds/lab.npy", np.float32(3)),
         expect=Err(DataError, "ds/lab.npy", None, ("a single number, not an array",))),
    Case("npy-pickled-objects", "modality files", ".npy of pickled Python objects",
         ds(dataset_yaml=DS_YAML.replace("lab.csv", "lab.npy")), dataset,
         prepare=npy("ds/lab.npy", np.array([{"a": 1}] * 4, dtype=object)),
         expect=Err(DataError, "ds/lab.npy", None, ("Object arrays cannot be loaded when allow_pickle=False",))),
    Case("concept-set-unknown-id", "modality files", "finding id the graph lacks",
         ds(findings_txt="S:1 S:2\nS:9\nS:1\nS:2\n"), dataset,
         expect=Err(DataError, "ds/findings.txt", 2, ("unknown concept 'S:9'",))),
    Case("concept-set-empty-line", "modality files", "concept set line with only separators",
         ds(findings_txt="S:1 S:2\n , ;\nS:1\nS:2\n"), dataset,
         expect=Err(DataError, "ds/findings.txt", 2, ("empty concept set",))),
    # ------------------------------------------------------------------ run configuration
    Case("config-unknown-key", "config", "misspelt key via --set gnn.hiden",
         {"c.yaml": GOOD_CFG}, argv=train_cli("c.yaml", "gnn.hiden=64"),
         expect=Err(ConfigError, "--set gnn.hiden=64", None, ("gnn.hiden: unknown key",))),
    Case("config-negative-temperature", "config", "space.temperature=-0.5",
         {"c.yaml": GOOD_CFG}, argv=train_cli("c.yaml", "space.temperature=-0.5"),
         expect=Err(ConfigError, "--set space.temperature=-0.5", None,
                    ("space.temperature: Input should be greater than 0",))),
    Case("config-wrong-type", "config", "gnn.layers: two",
         {"c.yaml": GOOD_CFG + "gnn:\n  layers: two\n"}, config(),
         expect=Err(ConfigError, "c.yaml", None, ("gnn.layers: Input should be a valid integer",))),
    Case("config-loss-weight-list", "config", "loss weight that is a list",
         {"c.yaml": GOOD_CFG + "teacher:\n  losses: [{name: ce, weight: [1]}]\n"}, config(),
         expect=Err(ConfigError, "c.yaml", None, ("teacher.losses.0.weight: Input should be a valid number",))),
    Case("config-infinite-kd-temperature", "config", "KD temperature .inf",
         {"c.yaml": GOOD_CFG}, config("c.yaml", "student.methods.kd.losses.1.temperature=.inf"),
         expect=Err(ConfigError, "--set student.methods.kd.losses.1.temperature=.inf", None,
                    ("student.methods.kd.losses.1: temperature must be a finite number, got inf",))),
    Case("config-nan-learning-rate", "config", "teacher.lr: .nan",
         {"c.yaml": GOOD_CFG + "teacher:\n  lr: .nan\n"}, config(),
         expect=Err(ConfigError, "c.yaml", None, ("teacher.lr: Input should be a finite number",))),
    Case("config-empty-file", "config", "empty file", {"c.yaml": ""}, config(),
         expect=Err(ConfigError, "c.yaml", None, ("teacher: required key is missing",))),
    Case("config-latin1", "config", "Latin-1 byte in the run name",
         {"c.yaml": (GOOD_CFG + "name: caf\xe9\n").encode("latin-1")}, config(),
         expect=Err(ConfigError, "c.yaml", 2, ("not UTF-8 text (byte 0xe9)",))),
    Case("config-bad-date", "config", "a date-like value that is no date (name: 2024-13-45)",
         {"c.yaml": GOOD_CFG + "name: 2024-13-45\n"}, config(),
         expect=Err(ConfigError, "c.yaml", None, ("not valid YAML: month must be in 1..12",))),
    Case("config-alias-cycle", "config", "a YAML alias inside itself",
         {"c.yaml": GOOD_CFG + "teacher: &t {encoder: {name: concept_set, again: *t}}\n"}, config(),
         expect=Err(ConfigError, "c.yaml", None, ("a YAML alias refers to a value that contains it",))),
    Case("config-alias-bomb", "config", "YAML aliases expanding to 10^7 values",
         {"c.yaml": YAML_BOMB}, config(),
         expect=Err(ConfigError, "c.yaml", None, ("expands to more than 100000 values",))),
    Case("config-base-cycle", "config", "two files naming each other as base",
         {"c.yaml": "base: d.yaml\n", "d.yaml": "base: c.yaml\n"}, config(),
         expect=Err(ConfigError, None, None, ("base: chain of base files is too deep",))),
    Case("config-set-into-number", "config", "--set seed.x=1 (seed is a number)",
         {"c.yaml": GOOD_CFG}, config("c.yaml", "seed.x=1"),
         expect=Err(ConfigError, None, None, ("--set seed.x: seed is not a mapping",))),
    Case("config-method-name-path", "config", "student method named '../x' (becomes a file name)",
         {"c.yaml": GOOD_CFG + "student:\n  methods:\n    ../x: {losses: [{name: ce}]}\n"}, config(),
         expect=Err(ConfigError, "c.yaml", None, ("student.methods: '../x' cannot be used in a file name",))),
    Case("config-seed-out-of-range", "config", "seed: -1",
         {"c.yaml": GOOD_CFG + "seed: -1\n"}, config(),
         expect=Err(ConfigError, "c.yaml", None, ("seed: Input should be greater than or equal to 0",))),
]


# ----------------------------------------------------------------------------- run directories and checkpoints
def _hidden_32(root: Path) -> None:
    """Make the copied run's config describe a student encoder of another size than its checkpoints."""
    text = (root / "config.yaml").read_text(encoding="utf-8")
    head, tail = text.split("\nstudent:\n", 1)
    assert "    hidden: 64\n" in tail
    (root / "config.yaml").write_text(head + "\nstudent:\n" + tail.replace("    hidden: 64\n", "    hidden: 32\n", 1),
                                      encoding="utf-8")


def _set_status(status: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        import json

        info = json.loads((root / "run.json").read_text(encoding="utf-8"))
        info["status"] = status
        (root / "run.json").write_text(json.dumps(info), encoding="utf-8")
    return edit


def _remove(name: str) -> Callable[[Path], None]:
    return lambda root: (root / name).unlink()


def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        (root / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return edit


def _truncate(name: str, keep: int) -> Callable[[Path], None]:
    return lambda root: (root / name).write_bytes((root / name).read_bytes()[:keep])


def _load_student_into_hidden_32(root: Path) -> None:
    import torch

    from kgdistill.encoders.text import TextEncoder
    from kgdistill.fileio import load_state

    enc = TextEncoder(torch.zeros(1, 384), 32, hidden=32)  # the tiny run's student has hidden 64
    load_state(enc, root / "checkpoints" / "student_kg_guided.safetensors", prefix="encoder.")


def _open_run(root: Path):
    from kgdistill.run_dir import RunDir

    return RunDir.open(root)


def _open_model_files(root: Path):
    """The run opened as the model reads it: its checkpoints must be there."""
    from kgdistill.model import REQUIRED
    from kgdistill.run_dir import RunDir

    return RunDir.open(root, required=REQUIRED)


def _both(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        for e in edits:
            e(root)
    return edit


def _predictor(root: Path):
    from kgdistill.predict import Predictor

    return Predictor.from_run_dir(root)


def _load_tensors(name: str) -> Callable[[Path], Any]:
    def call(root: Path):
        from kgdistill.fileio import load_tensors

        return load_tensors(root / name)
    return call


CASES += [
    Case("checkpoint-other-config", "checkpoint", "student checkpoint loaded into an encoder of another hidden size",
         call=_load_student_into_hidden_32, run_dir=True,
         expect=Err(RunDirError, "checkpoints/student_kg_guided.safetensors", None,
                    ("checkpoint does not fit this configuration",))),
    Case("checkpoint-other-config-eval", "checkpoint",
         "`kgdistill eval` on a run whose config.yaml says student.encoder.hidden 32, checkpoints 64",
         argv=lambda root: ["eval", str(root)], prepare=_hidden_32, run_dir=True,
         expect=Err(RunDirError, "checkpoints/student_student_alone.safetensors", None,
                    ("checkpoint does not fit this configuration",))),
    Case("checkpoint-truncated", "checkpoint", "teacher.safetensors cut short",
         call=_load_tensors("checkpoints/teacher.safetensors"), prepare=_truncate("checkpoints/teacher.safetensors", 100),
         run_dir=True, expect=Err(RunDirError, "checkpoints/teacher.safetensors", None,
                                  ("not a readable safetensors checkpoint",))),
    Case("checkpoint-is-a-pickle", "checkpoint", "a pickle (torch.save) where safetensors belong",
         call=_load_tensors("checkpoints/teacher.safetensors"),
         prepare=_write("checkpoints/teacher.safetensors", b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."),
         run_dir=True, expect=Err(RunDirError, "checkpoints/teacher.safetensors", None,
                                  ("not a readable safetensors checkpoint",))),
    Case("run-missing-calibration", "run directory", "a complete-marked run without calibration.json",
         argv=lambda root: ["predict", str(root), "--text", "Seizures."], prepare=_remove("calibration.json"),
         run_dir=True, expect=Err(RunDirError, "", None, ("incomplete run directory: calibration.json is missing",))),
    Case("run-still-running", "run directory", "run.json status 'running' (a crashed run)",
         argv=lambda root: ["predict", str(root), "--text", "Seizures."], prepare=_set_status("running"), run_dir=True,
         expect=Err(RunDirError, "", None, ("run is not complete (status: running)",))),
    Case("run-missing-checkpoint", "run directory", "teacher checkpoint deleted",
         call=_open_model_files, prepare=_remove("checkpoints/teacher.safetensors"), run_dir=True,
         expect=Err(RunDirError, "", None, ("incomplete run directory: checkpoints/teacher.safetensors is missing",))),
    Case("run-json-truncated", "run directory", "run.json cut short",
         call=_open_run, prepare=_truncate("run.json", 20), run_dir=True,
         expect=Err(RunDirError, "", None, ("run.json is not valid JSON",))),
    Case("run-json-not-object", "run directory", "run.json holds a list",
         call=_open_run, prepare=_write("run.json", "[]"), run_dir=True,
         expect=Err(RunDirError, "", None, ("run.json must hold a JSON object",))),
    Case("run-calibration-corrupt", "run directory", "calibration.json cut short",
         call=_predictor, prepare=_truncate("calibration.json", 10), run_dir=True,
         expect=Err(RunDirError, "calibration.json", 2, ("not valid JSON",))),
    Case("run-config-unknown-key", "run directory", "config.yaml edited with an unknown key",
         call=_predictor, prepare=lambda root: (root / "config.yaml").write_text(
             (root / "config.yaml").read_text(encoding="utf-8") + "colour: blue\n", encoding="utf-8"),
         run_dir=True, expect=Err(ConfigError, "config.yaml", None, ("colour: unknown key",))),
    Case("run-model-description-damaged", "run directory", "checkpoints/model.json lists no modalities",
         call=_predictor, prepare=_write("checkpoints/model.json", "{}"), run_dir=True,
         expect=Err(RunDirError, "checkpoints/model.json", None, ("damaged model description",))),
    Case("run-dataset-description-damaged", "run directory",
         "a run saved before checkpoints/model.json, its data/dataset.yaml listing no modalities",
         call=_predictor, prepare=_both(_remove("checkpoints/model.json"), _write("data/dataset.yaml", "name: tiny\n")),
         run_dir=True, expect=Err(RunDirError, "data/dataset.yaml", None, ("cannot read the modalities' kinds",))),
    Case("run-missing-student-checkpoint", "run directory", "the kg_guided student checkpoint deleted",
         call=_predictor, prepare=_remove("checkpoints/student_kg_guided.safetensors"), run_dir=True,
         expect=Err(RunDirError, "checkpoints/student_kg_guided.safetensors", None, ("checkpoint missing",))),
]

assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
RUN_COPY_SKIP = ("plots", "logs", "alignments")


# ----------------------------------------------------------------------------- the one test
def _materialise(case: Case, tmp_path: Path, request) -> Path:
    if case.run_dir:
        root = tmp_path / "run"
        shutil.copytree(request.getfixturevalue("tiny_run"), root, ignore=shutil.ignore_patterns(*RUN_COPY_SKIP))
    else:
        root = tmp_path
    for rel, content in case.files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    if case.prepare:
        case.prepare(root)
    return root


def _expected_prefix(exp: Err, root: Path) -> str | None:
    if exp.where is None:
        return None
    where = exp.where if exp.where.startswith("--set ") else str(root / exp.where) if exp.where else str(root)
    return f"{where}:{exp.line}: " if exp.line is not None else f"{where}: "


def _check_message(msg: str, exp: Err, root: Path) -> None:
    assert "\n" not in msg and "Traceback" not in msg, msg
    prefix = _expected_prefix(exp, root)
    if prefix is not None:
        assert msg.startswith(prefix), f"expected {prefix!r} at the start of {msg!r}"
    for needle in exp.has:
        assert needle in msg, f"{needle!r} not in {msg!r}"


def _report(record_property, case: Case, root: Path, detail: str) -> None:
    record_property("reliability", {
        "kind": "case", "id": case.id, "class": case.cls, "bad": case.bad, "via": "cli" if case.argv else "api",
        "outcome": "error" if isinstance(case.expect, Err) else "repair",
        "error": case.expect.type.__name__ if isinstance(case.expect, Err) else None,
        "detail": detail.replace(str(root) + "/", "").replace(str(root), "RUN_DIR" if case.run_dir else "."),
    })


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, request, record_property, caplog):
    root = _materialise(case, tmp_path, request)
    exp = case.expect
    if case.argv is not None:
        res = request.getfixturevalue("cli")(*case.argv(root), timeout=120)
        if isinstance(exp, Err):
            assert res.returncode == 2, (res.returncode, res.stdout, res.stderr[-2000:])
            lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1, res.stderr[-2000:]
            assert lines[0].startswith("kgdistill: error: "), lines[0]
            msg = lines[0].removeprefix("kgdistill: error: ")
            _check_message(msg, exp, root)
            _report(record_property, case, root, f"exit 2: {lines[0]}")
        else:
            assert res.returncode == 0, res.stderr[-2000:]
            exp.check(res, root)
            _report(record_property, case, root, exp.what)
        return
    assert case.call is not None
    if isinstance(exp, Err):
        with pytest.raises(KGDistillError) as info:
            case.call(root)
        assert type(info.value) is exp.type, f"{type(info.value).__name__}: {info.value}"
        _check_message(str(info.value), exp, root)
        _report(record_property, case, root, f"{exp.type.__name__}: {info.value}")
    else:
        with caplog.at_level(logging.WARNING):
            result = case.call(root)
        exp.check(result, root)
        _report(record_property, case, root, exp.what)


def test_base_dataset_is_valid(tmp_path):
    """The dataset every data case breaks loads cleanly, so each case fails for its own reason only."""
    for rel, content in GOOD_DS.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    d = dataset(tmp_path)
    assert len(d) == 4 and d.candidates == ["D:1", "D:2"] and set(d.modalities) == {"findings", "note", "lab"}
    load_config(_write_cfg(tmp_path))


def _write_cfg(tmp_path: Path) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(GOOD_CFG, encoding="utf-8")
    return p


def test_corpus_size_and_coverage():
    """The issue asks for at least 40 cases across every input; each class named there is present."""
    assert len(CASES) >= 40
    classes = {c.cls for c in CASES}
    assert classes >= {"OBO", "Turtle", "RDF/XML", "N-Triples", "GraphML", "CSV graph", "dataset.yaml", "samples.tsv",
                       "candidates.txt", "modality files", "config", "checkpoint", "run directory"}
    assert sum(1 for c in CASES if c.argv) >= 10  # end to end through the command line
