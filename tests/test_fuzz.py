"""Property-based fuzzing of every parser kgdistill has, and of the configuration loader.

The contract, for any input whatsoever: the call either returns a *valid* object (a graph whose edges
point at its own nodes with finite weights; a dataset whose files all have one row per sample and finite
numbers; a configuration that survives its own round trip) or raises the project's own error type,
a :class:`KGDistillError` whose message is one line naming the file. Never another exception, and never a
hang: each example runs under a hard wall-clock bound (SIGALRM) besides hypothesis' deadline.

The generators are grammar-aware (stanzas, triples, elements, rows, YAML trees built from the format's own
vocabulary, with ids drawn from a small pool so duplicates, cycles and dangling references are common),
then truncated or corrupted at random; ``tests/test_graph_loaders.py`` adds byte-level mutation of real
files. Counts per target are recorded for docs/reliability.md (scripts/reliability_report.py).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgdistill.config import RunConfig, load_config, packaged_config, save_config, validate_config
from kgdistill.data.paired import SPLITS, PairedDataset, load_paired
from kgdistill.errors import KGDistillError
from kgdistill.graph import KnowledgeGraph, inspect_graph, load_graph

CASE_SECONDS = 10      # hard bound per example: a parser that takes longer is a hang, and fails the test
SCALE = int(os.environ.get("KGDISTILL_FUZZ_SCALE", "1"))  # e.g. 20 for a long soak run; the suite uses 1
DEADLINE_MS = 3000     # hypothesis' own per-example deadline (a few seconds, for slow-but-finishing cases)
SETTINGS = dict(deadline=DEADLINE_MS, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no parser's ``except Exception`` can swallow it."""


@contextlib.contextmanager
def bounded(seconds: float = CASE_SECONDS):
    def on_alarm(signum, frame):
        raise Hang(f"example still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Tally:
    """Outcomes of one fuzz target, recorded for the reliability report."""

    def __init__(self, target: str, what: str):
        self.target, self.what = target, what
        self.examples, self.accepted, self.slowest = 0, 0, 0.0
        self.rejected: Counter[str] = Counter()

    def run(self, fn, source: Path | str | None = None):
        """``fn()`` under the time bound: its result, or None when it raised a KGDistillError (checked)."""
        self.examples += 1
        t0 = time.perf_counter()
        try:
            with bounded():
                out = fn()
        except KGDistillError as exc:
            msg = str(exc)
            assert "\n" not in msg, f"error message is not one line: {msg!r}"
            if source is not None:
                assert str(source) in msg, f"error does not name {source}: {msg!r}"
            self.rejected[type(exc).__name__] += 1
            return None
        finally:
            self.slowest = max(self.slowest, time.perf_counter() - t0)
        self.accepted += 1
        return out

    def record(self, record_property) -> None:
        record_property("reliability", {
            "kind": "fuzz", "target": self.target, "what": self.what, "examples": self.examples,
            "accepted": self.accepted, "rejected": dict(self.rejected), "slowest_s": round(self.slowest, 3),
        })


# ============================================================================= graphs
GOOD_IDS = ["A:1", "A:2", "A:3", "B:1", "A:1 ! comment", "A:2 {source=x}"]
IDS = GOOD_IDS * 4 + ["", "caf\u00e9:1", "A:\x00"]
WORDS = ["pump", "motor", "bearing fault", "caf\u00e9"] * 3 + ["", "a \"quoted\" word", "line\nbreak", "tab\tx", "\u2028"]
JUNK = st.sampled_from(['"', ":", "[", "]", "{", "}", "!", "<", ">", "@", ".", ";", ",", "#", "&", "\\", "\n", "\x00",
                        "\ufeff", "nan", "inf", "&lol;", "]]>", "<!--", "\u00e9"])


def rarely(draw, one_in: int) -> bool:
    """True about one time in ``one_in`` (a middle value: hypothesis favours the ends of a range)."""
    return draw(st.integers(0, one_in - 1)) == one_in // 2


def sometimes(draw, good: list, bad: list, one_in: int = 12):
    """Mostly a valid choice; about one time in ``one_in`` a bad one.

    The bad branch sits in the middle of the range: hypothesis favours the ends (0 and the maximum).
    """
    return draw(st.sampled_from(bad)) if rarely(draw, one_in) else draw(st.sampled_from(good))


@st.composite
def damaged(draw, documents: st.SearchStrategy[str], percent: int = 40) -> bytes:
    """A generated document; ``percent`` of the time truncated, cut or stuffed with junk, or re-encoded."""
    doc = draw(documents)
    if draw(st.integers(0, 99)) < 100 - percent:
        return doc.encode("utf-8", errors="surrogateescape")  # a lone surrogate \udcXX stands for byte 0xXX
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(doc)))
        op = draw(st.sampled_from(["truncate", "insert", "delete"]))
        if op == "truncate":
            doc = doc[:pos]
        elif op == "insert":
            doc = doc[:pos] + draw(st.one_of(JUNK, st.text(max_size=4))) + doc[pos:]
        else:
            doc = doc[:pos] + doc[pos + draw(st.integers(1, 12)):]
    encoding = draw(st.sampled_from(["utf-8"] * 5 + ["utf-8-sig", "latin-1", "utf-16"]))
    return doc.encode(encoding, errors="surrogateescape" if encoding == "utf-8" else "replace")


@st.composite
def obo_doc(draw) -> str:
    lines = draw(st.lists(st.sampled_from(["format-version: 1.4", "ontology: x", "! comment"] * 5 + ["not a tag"]),
                          max_size=2))
    for _ in range(draw(st.integers(1, 6))):
        lines.append(draw(st.sampled_from(["[Term]"] * 12 + ["[Typedef]", "[Term", "[Instance]", "[]"])))
        lines.append(f"id: {draw(st.sampled_from(IDS))}")
        for _ in range(draw(st.integers(0, 5))):
            tag = sometimes(draw, ["name", "def", "synonym", "is_a", "relationship", "is_obsolete", "xref"], ["", "id"], 25)
            if tag in ("id", "is_a"):
                value = draw(st.sampled_from(IDS))
            elif tag == "def" or tag == "synonym":
                value = draw(st.sampled_from(['"{}" [x:1]', '"{}" EXACT []'] * 6 + ['{}', '"{}']))
                value = value.format(draw(st.sampled_from(WORDS)).replace("\n", " "))
            elif tag == "relationship":
                value = f"{sometimes(draw, ['part_of', 'has_part'], [''], 25)} {draw(st.sampled_from(IDS))}"
            elif tag == "is_obsolete":
                value = draw(st.sampled_from(["true", "false", "false", "TRUE ! x", "maybe"]))
            else:
                value = draw(st.sampled_from(WORDS)).replace("\n", " ")
            lines.append(f"{tag}: {value}" if tag else value)
        lines.append("")
    return "\n".join(lines)


RDF_TERMS = ["ex:a", "ex:b", "ex:c", "<http://e.org/d>", "<http://purl.obolibrary.org/obo/HP_0000001>", "_:n1"]
RDF_PREDICATES = ["rdfs:subClassOf", "skos:broader", "skos:narrower", "rdfs:label", "skos:prefLabel", "a",
                  "ex:causes", "owl:onProperty", "skos:altLabel", "rdfs:comment", "skos:definition"]
RDF_OBJECTS = RDF_TERMS + ['"pump"', '"Pumpe"@de', '"x"@en', '""', '"1"^^<http://www.w3.org/2001/XMLSchema#integer>',
                           "skos:Concept", "owl:Class", "owl:Ontology", "owl:ObjectProperty",
                           "[ a owl:Restriction ; owl:onProperty ex:p ; owl:someValuesFrom ex:b ]", "( ex:a ex:b )"]
TTL_PREFIXES = ("@prefix ex: <http://e.org/> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
                "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n@prefix owl: <http://www.w3.org/2002/07/owl#> .\n")


@st.composite
def triples(draw) -> list[tuple[str, str, str]]:
    return draw(st.lists(st.tuples(st.sampled_from(RDF_TERMS), st.sampled_from(RDF_PREDICATES),
                                   st.sampled_from(RDF_OBJECTS)), max_size=10))


RELATIONS = ["rdfs:subClassOf", "skos:broader", "skos:narrower", "ex:causes"]
LABELS_P = ["rdfs:label", "skos:prefLabel", "skos:altLabel", "rdfs:comment", "skos:definition"]
LITERALS = ['"pump"', '"Pumpe"@de', '"x"@en', '""', '"caf\u00e9"', '"""two\nlines"""']
TYPES = ["owl:Class", "skos:Concept", "ex:Fault", "owl:Ontology", "owl:ObjectProperty"]


@st.composite
def turtle_statement(draw) -> str:
    s = sometimes(draw, RDF_TERMS, ['"literal"', "ex:", "<>"], 30)
    kind = draw(st.sampled_from(["rel", "rel", "rel", "label", "type", "restriction", "wild"]))
    if kind == "rel":
        body = f"{draw(st.sampled_from(RELATIONS))} {draw(st.sampled_from(RDF_TERMS))}"
        if draw(st.integers(0, 3)) == 0:
            body += f" , {draw(st.sampled_from(RDF_TERMS))}"
    elif kind == "label":
        body = f"{draw(st.sampled_from(LABELS_P))} {draw(st.sampled_from(LITERALS))}"
    elif kind == "type":
        body = f"a {draw(st.sampled_from(TYPES))}"
    elif kind == "restriction":
        body = (f"rdfs:subClassOf [ a owl:Restriction ; owl:onProperty {draw(st.sampled_from(RDF_TERMS[:4]))} ; "
                f"owl:someValuesFrom {draw(st.sampled_from(RDF_TERMS))} ]")
    else:
        body = f"{draw(st.sampled_from(RDF_PREDICATES))} {draw(st.sampled_from(RDF_OBJECTS))}"
    if draw(st.integers(0, 3)) == 0:
        body += f" ; {draw(st.sampled_from(LABELS_P))} {draw(st.sampled_from(LITERALS))}"
    return f"{s} {body} {sometimes(draw, ['.'], [';', ',', ''], 40)}"


@st.composite
def turtle_doc(draw) -> str:
    body = draw(st.lists(turtle_statement(), max_size=10))
    prefixes = TTL_PREFIXES if not rarely(draw, 20) or not body else TTL_PREFIXES.split("\n", 2)[2]
    return prefixes + "\n".join(body) + "\n"


NS = {"ex": "http://e.org/", "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
      "skos": "http://www.w3.org/2004/02/skos/core#", "owl": "http://www.w3.org/2002/07/owl#"}


def _iri(term: str) -> str | None:
    if term.startswith("<"):
        return term[1:-1]
    prefix, _, local = term.partition(":")
    return NS[prefix] + local if prefix in NS else None


@st.composite
def rdfxml_doc(draw) -> str:
    entities = draw(st.sampled_from(["", '<!DOCTYPE rdf:RDF [<!ENTITY ex "http://e.org/">]>\n',
                                     '<!DOCTYPE rdf:RDF [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>\n']))
    out = ['<?xml version="1.0"?>', entities + '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
           + " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items()) + ">"]
    for s, p, o in draw(triples()):
        if p == "a" or not (si := _iri(s)):
            continue
        tag = p
        if _iri(o) and not o.startswith("["):
            inner = f'<{tag} rdf:resource="{_iri(o)}"/>'
        else:
            inner = f"<{tag}>{o.strip(chr(34)).split(chr(34))[0]}{'&b;' if '&b;' in entities and draw(st.booleans()) else ''}</{tag}>"
        out.append(f'  <rdf:Description rdf:about="{si}">{inner}</rdf:Description>')
    out.append("</rdf:RDF>")
    return "\n".join(out) + "\n"


@st.composite
def ntriples_doc(draw) -> str:
    lines = []
    for s, p, o in draw(triples()):
        si, pi, oi = _iri(s), _iri(p) if p != "a" else "http://www.w3.org/1999/02/22-rdf-syntax-ns#type", _iri(o)
        obj = f"<{oi}>" if oi else (o if o.startswith('"') else '"x"')
        lines.append(f"<{si or 'http://e.org/s'}> <{pi or 'http://e.org/p'}> {obj} .")
    return "\n".join(lines) + "\n"


GRAPHML_WEIGHTS = ["1.0", "0.5", "2"]
BAD_GRAPHML_WEIGHTS = ["nan", "NaN", "inf", "-inf", "1e400", "abc", ""]


@st.composite
def graphml_doc(draw) -> str:
    keys = ('<key id="n" for="node" attr.name="name" attr.type="string"/>'
            '<key id="d" for="node" attr.name="description" attr.type="string"/>'
            f'<key id="w" for="edge" attr.name="weight" attr.type="{sometimes(draw, ["double", "string"], ["int"], 10)}"/>'
            '<key id="r" for="edge" attr.name="relation" attr.type="string"/>')
    ids = ["a", "b", "c", "a b", "caf\u00e9"]
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">{keys}',
             f'<graph edgedefault="{draw(st.sampled_from(["directed", "undirected"]))}">']
    for node in draw(st.lists(st.sampled_from(ids), max_size=6, unique=not rarely(draw, 8))):
        name = draw(st.sampled_from(WORDS)).replace("&", "&amp;").replace("<", "&lt;")
        parts.append(f'<node id="{node}"><data key="n">{name}</data></node>')
    for s, t in draw(st.lists(st.tuples(st.sampled_from(ids + ["ghost"]), st.sampled_from(ids + ["ghost", ""])), max_size=6)):
        w = sometimes(draw, GRAPHML_WEIGHTS, BAD_GRAPHML_WEIGHTS, 25)
        parts.append(f'<edge source="{s}" target="{t}"><data key="w">{w}</data><data key="r">is_a</data></edge>')
    parts.append("</graph></graphml>")
    return "\n".join(parts) + "\n"


CSV_IDS = ["a", "b", "c", "ghost", '"a,b"', "caf\u00e9"]
BAD_CSV_IDS = ["", " ", '"unterminated', '"a"b', "x\ty"]
CSV_WEIGHTS = ["1", "0.5", "", "2", "-2", "1e-3"]
BAD_CSV_WEIGHTS = ["nan", "inf", "1e400", "heavy"]


@st.composite
def csv_doc(draw) -> str:
    header = sometimes(draw, ["source,target,relation,weight", "source,target", "Source,Target,Weight"],
                       ["from,to", "", "source;target"], 15)
    width = len(header.split(","))
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        cells = [sometimes(draw, CSV_IDS, BAD_CSV_IDS, 40), sometimes(draw, CSV_IDS, BAD_CSV_IDS, 40),
                 draw(st.sampled_from(["is_a", "part_of", ""])), sometimes(draw, CSV_WEIGHTS, BAD_CSV_WEIGHTS, 30)][:width]
        if rarely(draw, 30):
            cells = cells[: draw(st.integers(1, 4))] + ["extra"] * draw(st.integers(0, 1))
        rows.append(",".join(cells))
    return "\n".join([header, *rows]) + draw(st.sampled_from(["\n", "", "\r\n"]))


GRAPH_FORMATS = {
    "obo": ("x.obo", obo_doc()), "turtle": ("x.ttl", turtle_doc()), "rdfxml": ("x.rdf", rdfxml_doc()),
    "ntriples": ("x.nt", ntriples_doc()), "graphml": ("x.graphml", graphml_doc()), "csv": ("edges.csv", csv_doc()),
}


def check_graph(g: KnowledgeGraph) -> None:
    """What every consumer of a KnowledgeGraph relies on."""
    n = g.num_nodes
    assert n > 0 and len(g.ids) == len(set(g.ids)) == len(g.names) == len(g.texts) == len(g.types) == n
    assert all(isinstance(i, str) and i.strip() == i and i for i in g.ids)
    assert all(isinstance(x, str) for x in g.names + g.texts + g.types)
    m = g.num_edges
    assert g.edge_src.shape == g.edge_dst.shape == g.edge_rel.shape == g.edge_weight.shape == (m,)
    if m:
        assert 0 <= g.edge_src.min() and g.edge_src.max() < n and 0 <= g.edge_dst.min() and g.edge_dst.max() < n
        assert 0 <= g.edge_rel.min() and g.edge_rel.max() < len(g.relations)
    assert np.isfinite(g.edge_weight).all()
    assert all(0 <= k < n for k in g.synonyms)
    info = inspect_graph(g)  # `graph inspect` works on anything that loaded
    assert info["nodes"] == n and info["edges"] == m


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("fmt", sorted(GRAPH_FORMATS))
def test_fuzz_graph_format(fmt, fuzz_root, record_property):
    name, doc = GRAPH_FORMATS[fmt]
    path = fuzz_root / fmt / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tally = Tally(f"graph: {fmt}", f"generated {fmt} documents, truncated / corrupted / re-encoded, via load_graph")

    @settings(max_examples=60 * SCALE, **SETTINGS)
    @given(data=damaged(doc))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        g = tally.run(lambda: load_graph(path, format=fmt), source=path)
        if g is not None:
            check_graph(g)

    check()
    tally.record(record_property)
    assert tally.examples >= 50 * SCALE


def test_fuzz_csv_graph_folder(fuzz_root, record_property):
    """nodes.csv + edges.csv: duplicate ids across rows, edges to undeclared nodes, each dangling mode."""
    folder = fuzz_root / "csvdir"
    folder.mkdir(exist_ok=True)
    tally = Tally("graph: csv folder", "nodes.csv + edges.csv pairs, each dangling mode, via load_graph")

    @st.composite
    def nodes_doc(draw) -> str:
        ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "ghost"]), max_size=5,
                            unique=not rarely(draw, 8)))
        rows = [f"{sometimes(draw, [i], ['', ' '], 40)},{draw(st.sampled_from(WORDS)).replace(chr(10), ' ')}"
                for i in ids]
        return "\n".join([draw(st.sampled_from(["id,name"] * 6 + ["id", "name,id", "ident,name"])), *rows]) + "\n"

    @settings(max_examples=50 * SCALE, **SETTINGS)
    @given(nodes=damaged(nodes_doc(), 15), edges=damaged(csv_doc(), 15), dangling=st.sampled_from(["add", "drop", "error"]))
    def check(nodes: bytes, edges: bytes, dangling: str) -> None:
        (folder / "nodes.csv").write_bytes(nodes)
        (folder / "edges.csv").write_bytes(edges)
        g = tally.run(lambda: load_graph(folder, dangling=dangling))
        if g is not None:
            check_graph(g)
            if dangling == "drop":
                assert not set(g.dangling) & set(g.ids)

    check()
    tally.record(record_property)


# ============================================================================= paired datasets
GRAPH_IDS = {"D:1", "D:2", "D:3", "S:1", "S:2"}
TEXTS = ["Fever and cough.", "A cough", "two. sentences!", "caf\u00e9 au lait"]
BAD_TEXTS = ["", "   ", "\x00", "\u00e9\udcff"]
SETS = ["S:1 S:2", "S:1", "S:2;S:1", "D:1, S:2"]
BAD_SETS = ["", " , ", "S:9"]
NUMBERS = ["1.0", "2", "-0.5", "3e2"]
BAD_NUMBERS = ["nan", "inf", "-inf", "1e400", "x", "", "1_0"]
PATHS = ["../outside.txt", "sub/../note.txt", "/nonexistent/x.txt", "", "missing.txt", ".", None, 3]


DATASET_FILES = ["dataset.yaml", "samples.tsv", "candidates.txt", "note.txt", "findings.txt", "lab.csv", "ts.npy"]


@st.composite
def dataset_files(draw, target: str) -> dict[str, bytes]:
    """A valid dataset folder except for ``target``, which is spoiled about one field in four and damaged
    (truncated, stuffed with junk, re-encoded) one time in three."""

    def pick(file: str, good: list, bad: list, one_in: int = 4):
        return sometimes(draw, good, bad, one_in) if file == target else good[0] if len(good) == 1 else \
            draw(st.sampled_from(good))

    def chance(file: str, one_in: int = 4) -> bool:
        return file == target and rarely(draw, one_in)

    n = 4
    ids = [f"p{i}" for i in range(n)]
    rows = []
    for i, split in enumerate(["train", "train", "val", "test"]):
        cells = [pick("samples.tsv", [ids[i]], ["", "p0", " p0 "], 8),
                 pick("samples.tsv", ["D:1", "D:2", "D:3"], ["", "D:9", "S:1"], 6),
                 pick("samples.tsv", [split], ["dev", "", "TRAIN"], 8),
                 pick("samples.tsv", ["1", "0"], ["yes", ""], 8)]
        if chance("samples.tsv", 10):
            cells = cells[: draw(st.integers(1, 3))]
        rows.append("\t".join(cells))
    header = pick("samples.tsv", ["id\tlabel\tsplit\tstudent_labelled"],
                  ["id\tlabel\tsplit", "id\tsplit", "", "\ufeffid\tlabel\tsplit\tstudent_labelled"], 6)
    if header == "id\tlabel\tsplit":
        rows = ["\t".join(r.split("\t")[:3]) for r in rows]

    def count(file: str) -> int:  # a modality file with another row count
        return n + pick(file, [0], [-1, 1, -n], 8)

    note = [pick("note.txt", TEXTS, BAD_TEXTS) for _ in range(count("note.txt"))]
    findings = [pick("findings.txt", SETS, BAD_SETS) for _ in range(count("findings.txt"))]
    width = draw(st.integers(1, 3))
    lab = [",".join(pick("lab.csv", NUMBERS, BAD_NUMBERS, 12) for _ in range(width + chance("lab.csv", 12)))
           for _ in range(count("lab.csv"))]
    m = count("ts.npy")
    arr = np.ones((m, draw(st.integers(1, 3)), draw(st.integers(1, 4))), dtype=np.float32)
    if chance("ts.npy", 4) and arr.size:
        arr.flat[draw(st.integers(0, arr.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    shape = pick("ts.npy", ["3d", "2d"], ["1d", "0d", "empty", "object", "truncated", "int", "complex", "text"], 3)
    ts = {"3d": arr, "2d": arr[:, 0, :], "1d": arr[:, 0, 0], "0d": np.float32(1), "empty": np.zeros((0, 2)),
          "object": np.array([{"a": 1}] * m, dtype=object), "truncated": arr,
          "int": np.where(np.isfinite(arr), arr, 0).astype(np.int64), "complex": arr.astype(np.complex64),
          "text": np.array(["a"] * m)}[shape]
    buf = io.BytesIO()
    np.save(buf, ts, allow_pickle=shape == "object")
    ts_bytes = buf.getvalue()[: draw(st.integers(0, 100))] if shape == "truncated" else buf.getvalue()
    spec = {"name": "fuzz", "graph": "graph", "samples": "samples.tsv", "teacher": "findings", "student": "note",
            "modalities": {"findings": {"kind": "concept_set", "path": "findings.txt"},
                           "note": {"kind": "text", "path": "note.txt"},
                           "lab": {"kind": "vector", "path": "lab.csv"},
                           "ts": {"kind": "timeseries", "path": "ts.npy"}}}
    if target == "candidates.txt" or chance("dataset.yaml", 4):
        spec["candidates"] = "candidates.txt"
    for _ in range(draw(st.integers(1, 2)) if target == "dataset.yaml" else 0):
        key = draw(st.sampled_from(["samples", "teacher", "student", "candidates", "meta", "colour", "modalities",
                                    "note.path", "note.kind", "lab.path", "name", "graph"]))
        value = draw(st.sampled_from(PATHS + [["a"], {"a": 1}, "vitals", "image", "note", "lab", "ts.npy",
                                              {1: {"kind": "text", "path": "note.txt"}}]))
        if "." not in key:
            spec[key] = value
        elif isinstance(spec["modalities"], dict) and isinstance(spec["modalities"].get(key.split(".")[0]), dict):
            mod, field_ = key.split(".")
            spec["modalities"][mod][field_] = value
    text = yaml.safe_dump(spec, allow_unicode=True)
    text = pick("dataset.yaml", [text], [text[: len(text) // 2], "[", "{a: b", "", "name: 2024-13-45\n", "- a\n",
                                         "modalities: &m {a: *m}\n"], 6)
    candidates = "\n".join(["D:1", "D:2", "D:3"] + [pick("candidates.txt", ["D:1"], ["", "D:9", "D:\u00e9", "D:1 D:2"])])
    candidates = candidates[: pick("candidates.txt", [None], [3, 7, 0], 6)] + "\n"
    files = {"dataset.yaml": text, "samples.tsv": "\n".join([header, *rows]) + "\n", "note.txt": "\n".join(note) + "\n",
             "findings.txt": "\n".join(findings) + "\n", "lab.csv": "\n".join(lab) + "\n", "candidates.txt": candidates}
    out = {name: draw(damaged(st.just(content), 33)) if name == target else content.encode("utf-8", "surrogateescape")
           for name, content in files.items()}
    out["ts.npy"] = ts_bytes
    return out


def check_dataset(d: PairedDataset) -> None:
    """What task building relies on once load_paired returned."""
    n = len(d)
    assert n > 0 and len(d.labels) == len(d.splits) == len(d.student_labelled) == n
    assert len(set(d.sample_ids)) == n and all(d.sample_ids)
    assert set(d.splits.tolist()) <= set(SPLITS)
    assert all(d.labels[i] for i in range(n) if d.splits[i] != "train")
    assert not any(d.student_labelled[i] and not d.labels[i] for i in range(n))
    assert len(d.candidates) >= 2 and len(set(d.candidates)) == len(d.candidates)
    assert {lab for lab in d.labels if lab} <= set(d.candidates)
    assert d.teacher in d.modalities and d.student in d.modalities
    for m in d.modalities.values():
        assert len(m) == n
        assert m.path.is_absolute() or m.path.resolve().is_relative_to(d.root.resolve())
        if m.kind == "text":
            assert all(isinstance(t, str) and t.strip() for t in m.values)
        elif m.kind == "concept_set":
            assert all(items and all(items) for items in m.values)
        else:
            assert m.values.dtype == np.float32 and np.isfinite(m.values).all()
            assert m.values.ndim == {"vector": 2, "timeseries": 3, "image": 4, "audio": 2}[m.kind]


@pytest.mark.parametrize("target", DATASET_FILES)
def test_fuzz_paired_dataset(target, fuzz_root, record_property):
    """load_paired (then validate_against the graph) with one file of a valid dataset fuzzed at a time."""
    root = fuzz_root / "paired" / target.replace(".", "_")
    (root / "graph").mkdir(parents=True, exist_ok=True)
    tally = Tally(f"dataset: {target}", f"a valid dataset folder with {target} generated badly / damaged, "
                                        "via load_paired + validate_against")

    @settings(max_examples=50 * SCALE, **SETTINGS)
    @given(files=dataset_files(target))
    def check(files: dict[str, bytes]) -> None:
        for name, data in files.items():
            (root / name).write_bytes(data)

        def load():
            d = load_paired(root)
            check_dataset(d)
            d.validate_against(GRAPH_IDS)
            return d

        tally.run(load)

    check()
    tally.record(record_property)


# ============================================================================= configuration
BASE_TREE = load_config(packaged_config("default")).to_dict()


def _leaf_paths(node, prefix=()) -> list[tuple[str, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, prefix + (k,))] + [prefix]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, prefix + (str(i),))] + [prefix]
    return [prefix]


PATHS_IN_CONFIG = [p for p in _leaf_paths(BASE_TREE) if p]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0, -1, 2**40, 10**30, 2**32]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["", "gcn", "text", "two", "../x", "a/b", "1e-3",
                                                                     ".nan", "cpu", "kg_guided"]),
    st.text(max_size=6))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(["name", "weight", "temperature",
                                                                                        "hidden", "x", "losses"]),
                                                                       inner, max_size=3)), max_leaves=8)


def _get(tree, path: tuple[str, ...]):
    for key in path:
        tree = tree[int(key)] if isinstance(tree, list) else tree[key]
    return tree


def _set(tree, path: tuple[str, ...], value) -> None:
    node = tree
    for key in path[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = path[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _delete(tree, path: tuple[str, ...]) -> None:
    node = tree
    for key in path[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)


def check_config(cfg: RunConfig, tmp: Path) -> None:
    """A config that validated survives its own round trip and holds only usable values."""
    save_config(cfg, tmp)
    again = load_config(tmp)
    assert again.hash() == cfg.hash()
    assert 0 < cfg.space.temperature < math.inf
    for stage in (cfg.teacher, cfg.student):
        assert 0 < stage.lr < math.inf and stage.epochs >= 1
    for method in cfg.student.methods.values():
        for loss in [*method.losses]:
            assert math.isfinite(loss.weight) and loss.weight >= 0
            t = loss.params.get("temperature")
            assert t is None or 0 < t < math.inf
    json.dumps(cfg.to_dict(), allow_nan=False)  # nothing non-finite anywhere


def test_fuzz_config_trees(fuzz_root, record_property):
    """validate_config on the default tree with keys replaced, deleted or added at random."""
    tally = Tally("config: validate_config", "the default config tree with random keys replaced / deleted / added")
    out = fuzz_root / "cfg_tree.yaml"

    @st.composite
    def edit(draw):
        path = draw(st.sampled_from(PATHS_IN_CONFIG))
        old = _get(BASE_TREE, path)
        op = draw(st.sampled_from(["set", "set", "set", "delete", "add"]))
        if op == "set" and draw(st.booleans()) and isinstance(old, (int, float)) and not isinstance(old, bool):
            return path, op, draw(st.one_of(st.integers(-2, 2 * int(old) + 3), st.floats(-1, 2 * old + 1)))
        return path, op, draw(VALUES)

    @settings(max_examples=100 * SCALE, **SETTINGS)
    @given(edits=st.lists(edit(), min_size=1, max_size=3))
    def check(edits) -> None:
        tree = json.loads(json.dumps(BASE_TREE))
        for path, op, value in edits:
            try:
                if op == "set":
                    _set(tree, path, value)
                elif op == "delete":
                    _delete(tree, path)
                else:
                    _set(tree, path[:-1] + ("extra_key",), value)
            except (KeyError, IndexError, TypeError, ValueError):
                continue  # an earlier edit removed or replaced the parent
        cfg = tally.run(lambda: validate_config(tree, source="fuzz.yaml"), source="fuzz.yaml")
        if cfg is not None:
            check_config(cfg, out)

    check()
    tally.record(record_property)


VALUE_WORDS = ["0", "1", "3", "-1", "0.5", "1e-3", ".nan", ".inf", "true", "null", "[]", "{}", "[1, 2]", "gcn", "gat",
               "text", "'x'", "2024-13-45", "&a [*a]", "~", "\"\"", "kg_guided", "../x"]
YAML_TOKENS = ["\n", "  ", ": ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!python/object:os.system ", "!!binary ",
               "'", '"', "#", "\t", "? ", "|", ">", "%YAML 1.1\n", "---\n", "...\n", ".nan", ".inf", "~", "2024-13-45",
               "base: default.yaml\n", "base: [x]\n", "teacher: ", "student: ", "epochs: ", "temperature: -1", "\u00e9"]


def test_fuzz_config_yaml_text(fuzz_root, record_property):
    """load_config on YAML-ish text: fragments of the real config and YAML's own syntax, any order."""
    tally = Tally("config: load_config (file)", "YAML text built from config fragments and YAML syntax tokens")
    path = fuzz_root / "cfg_text.yaml"
    out = fuzz_root / "cfg_text_out.yaml"
    real = (packaged_config("default")).read_text(encoding="utf-8").splitlines(keepends=True)

    @st.composite
    def edited_real(draw) -> str:
        """The packaged default.yaml with a few lines dropped, repeated, or given a token of YAML syntax."""
        lines = list(real)
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(lines) - 1))
            op = draw(st.sampled_from(["drop", "repeat", "token", "value"]))
            if op == "drop":
                del lines[i]
            elif op == "repeat":
                lines.insert(i, lines[i])
            elif op == "token":
                lines[i] = lines[i].rstrip("\n") + draw(st.sampled_from(YAML_TOKENS)) + "\n"
            else:
                key, sep, _ = lines[i].partition(": ")
                if sep:
                    lines[i] = f"{key}: {draw(st.sampled_from(VALUE_WORDS))}\n"
            if not lines:
                break
        return "".join(lines)

    soup = st.lists(st.one_of(st.sampled_from(YAML_TOKENS), st.sampled_from(real), st.text(max_size=4)), max_size=20)

    @settings(max_examples=80 * SCALE, **SETTINGS)
    @given(text=st.one_of(edited_real(), edited_real(), soup.map("".join)),
           encoding=st.sampled_from(["utf-8"] * 10 + ["latin-1", "utf-16"]))
    def check(text, encoding) -> None:
        path.write_bytes(text.encode(encoding, errors="replace"))
        cfg = tally.run(lambda: load_config(path), source=path)
        if cfg is not None:
            check_config(cfg, out)

    check()
    tally.record(record_property)


def test_fuzz_set_overrides(fuzz_root, record_property):
    """``--set key=value`` with real and invented keys and arbitrary YAML values."""
    tally = Tally("config: --set overrides", "--set key=value lists: real and invented dotted keys, YAML-ish values")
    out = fuzz_root / "cfg_set_out.yaml"
    keys = [".".join(p) for p in PATHS_IN_CONFIG] + ["", ".", "a..b", "teacher.losses.9.weight", "seed.x",
                                                     "student.methods.new.losses", "base"]

    leaves = {".".join(p): v for p in PATHS_IN_CONFIG if not isinstance(v := _get(BASE_TREE, p), (dict, list))}

    @st.composite
    def plausible(draw):
        """A real key and a value of the kind it holds (a nearby number, a boolean, a known word), or any word."""
        key = draw(st.sampled_from(sorted(leaves)))
        old = leaves[key]
        if isinstance(old, bool):
            value = draw(st.sampled_from(["true", "false", "yes", "0"]))
        elif isinstance(old, int):
            value = str(draw(st.integers(-2, 2 * old + 3)))
        elif isinstance(old, float):
            value = repr(draw(st.floats(-0.5, 2 * old + 1, allow_nan=False)))
        else:
            value = draw(st.sampled_from([str(old), "gcn", "gat", "rgcn", "text", "mlp", "cpu", "paired", "x"]))
        if draw(st.integers(0, 4)) == 0:
            value = draw(st.sampled_from(VALUE_WORDS))
        return key, [value], True
    wild = st.tuples(st.sampled_from(keys), st.lists(st.one_of(st.sampled_from(YAML_TOKENS), st.text(max_size=4)),
                                                     max_size=4), st.integers(0, 5).map(bool))

    @settings(max_examples=80 * SCALE, **SETTINGS)
    @given(sets=st.lists(st.one_of(plausible(), plausible(), plausible(), wild), max_size=4))
    def check(sets) -> None:
        overrides = [f"{k}={''.join(v)}" if eq else f"{k}{''.join(v)}" for k, v, eq in sets]
        cfg = tally.run(lambda: load_config(packaged_config("quick"), overrides))
        if cfg is not None:
            check_config(cfg, out)

    check()
    tally.record(record_property)


# ============================================================================= checkpoints
def test_fuzz_checkpoint_bytes(fuzz_root, record_property):
    """load_tensors (every checkpoint read) on damaged safetensors files and arbitrary bytes."""
    import torch
    from safetensors.torch import save

    from kgdistill.fileio import load_tensors

    good = save({"encoder.w": torch.ones(3, 4), "seen": torch.tensor([True, False])}, metadata={"k": "v"})
    tally = Tally("checkpoint: load_tensors", "safetensors files truncated / overwritten, and arbitrary bytes")
    path = fuzz_root / "ckpt.safetensors"

    @st.composite
    def damaged_bytes(draw) -> bytes:
        raw = bytearray(good)
        header_end = 8 + int.from_bytes(good[:8], "little")
        for _ in range(draw(st.integers(0, 4))):
            pos = draw(st.integers(0, len(raw) - 1))
            op = draw(st.sampled_from(["flip", "flip data", "flip data", "truncate", "header"]))
            if op == "flip data" and len(raw) > header_end:
                raw[draw(st.integers(header_end, len(raw) - 1))] = draw(st.integers(0, 255))
            elif op == "flip":
                raw[pos] = draw(st.integers(0, 255))
            elif op == "truncate":
                raw = raw[:pos]
                if not raw:
                    break
            else:
                raw[:8] = int(draw(st.sampled_from([0, 1, 2**40, len(good), 2**63 - 1]))).to_bytes(8, "little")
        return bytes(raw)

    @settings(max_examples=60 * SCALE, **SETTINGS)
    @given(data=st.one_of(damaged_bytes(), st.binary(max_size=64)))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        out = tally.run(lambda: load_tensors(path), source=path)
        if out is not None:
            assert all(isinstance(v, torch.Tensor) for v in out.values())

    check()
    tally.record(record_property)
