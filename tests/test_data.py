"""Paired data: the HPO benchmark generator follows the protocol; the loader rejects bad files clearly."""
from __future__ import annotations

import re

import numpy as np
import pytest

from kgdistill.config import HPOBenchmarkConfig
from kgdistill.data.hpo_benchmark import generate_hpo_benchmark
from kgdistill.data.paired import load_paired
from kgdistill.errors import DataError
from kgdistill.graph.hpo import hpo_annotations, hpo_data_dir, parse_frequency, read_hpoa
from kgdistill.graph.loader import load_graph

SPEC = HPOBenchmarkConfig(num_diseases=10, train_per_disease=4, labelled_per_disease=2, val_per_disease=2,
                        test_per_disease=2)


@pytest.fixture(scope="module")
def hpo_ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("hpo")
    return load_paired(generate_hpo_benchmark(root / "a", SPEC, seed=3)), root


@pytest.mark.parametrize("value,expected", [
    ("HP:0040280", 1.0), ("HP:0040283", 0.17), ("3/4", 0.75), ("0/2", 0.0), ("45%", 0.45), ("", 0.5), ("odd", 0.5),
])
def test_parse_frequency(value, expected):
    assert parse_frequency(value, 0.5) == pytest.approx(expected)


def test_annotations_are_real_and_exclude_not():
    ann = hpo_annotations()
    assert len(ann.phenotypes) > 12000  # OMIM + ORPHA + DECIPHER diseases with phenotypic annotations
    assert sum(len(v) for v in ann.phenotypes.values()) > 200_000
    assert all(0 < f <= 1 for v in list(ann.phenotypes.values())[:500] for f in v.values())
    # the shipped file read on its own: every (disease, term) stated only with the qualifier NOT is left out,
    # and there are many (a filter dropped would put them back)
    rows = [line.split("\t") for line in (hpo_data_dir() / "phenotype.hpoa").read_text().splitlines()
            if line and not line.startswith(("#", "database_id"))]
    positive = {(r[0], r[3]) for r in rows if r[2] != "NOT" and r[10] == "P"}
    only_not = {(r[0], r[3]) for r in rows if r[2] == "NOT" and r[10] == "P"} - positive
    assert len(only_not) > 100
    assert not [(d, term) for d, term in only_not if term in ann.phenotypes.get(d, {})]


def test_not_and_non_phenotype_rows_are_left_out(tmp_path):
    """A hand-made table: a NOT row, an inheritance (aspect I) row and a 0/5 frequency are no phenotypes."""
    head = "database_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency\tsex\tmodifier\taspect\n"
    rows = [("OMIM:1", "A", "", "HP:0000001", "1/2", "P"), ("OMIM:1", "A", "NOT", "HP:0000002", "", "P"),
            ("OMIM:1", "A", "", "HP:0000006", "", "I"), ("OMIM:1", "A", "", "HP:0000003", "0/5", "P"),
            ("OMIM:2", "B", "NOT", "HP:0000001", "", "P"), ("OMIM:1", "A", "", "HP:0000001", "3/4", "P")]
    path = tmp_path / "phenotype.hpoa"
    path.write_text("#version: test\n" + head + "".join(f"{d}\t{n}\t{q}\t{t}\tPMID:1\tPCS\t\t{f}\t\t\t{a}\n"
                                                          for d, n, q, t, f, a in rows))
    ann = read_hpoa(path, default_frequency=0.5)
    assert ann.phenotypes == {"OMIM:1": {"HP:0000001": 0.75}}  # the larger of 1/2 and 3/4; B has none left
    assert ann.disease_names == {"OMIM:1": "A"}


def test_generator_is_deterministic(hpo_ds, tmp_path):
    ds, root = hpo_ds
    again = generate_hpo_benchmark(tmp_path / "b", SPEC, seed=3).parent
    other = generate_hpo_benchmark(tmp_path / "c", SPEC, seed=4).parent
    for f in ("samples.tsv", "findings.txt", "note.txt", "candidates.txt", "graph/edges.csv"):
        assert (root / "a" / f).read_bytes() == (again / f).read_bytes(), f
    assert (root / "a" / "note.txt").read_bytes() != (other / "note.txt").read_bytes()


def test_generator_follows_the_protocol(hpo_ds):
    ds, _ = hpo_ds
    assert len(ds.candidates) == 10
    seen = set(ds.seen)
    unseen = set(ds.candidates) - seen
    assert len(unseen) == 2 and len(seen) == 8
    train = ds.split_idx("train")
    assert len(train) == 8 * 4
    assert {ds.labels[i] for i in train} == seen                    # unseen diseases have no training samples
    assert ds.student_labelled[train].sum() == 8 * 2               # only a few notes carry a label
    for split in ("val", "test"):
        assert {ds.labels[i] for i in ds.split_idx(split)} == set(ds.candidates)
    graph = load_graph(ds.graph_path)
    ann = hpo_annotations()
    names = [graph.names[graph.index[d]] for d in ds.candidates]
    notes = ds.modalities["note"].values
    for i, note in enumerate(notes):
        assert "HP:" not in note
        assert not any(n.lower() in note.lower() for n in names)
        findings = ds.modalities["findings"].values[i]
        assert all(f in graph.index for f in findings)
    # most findings of a patient are (possibly less precise) annotations of its disease
    parents = graph.adjacency(["is_a"])
    hits = total = 0
    for i in train:
        d = ds.labels[i]
        closure = set(ann.phenotypes[d])
        closure |= {graph.ids[p] for t in ann.phenotypes[d] if t in graph.index for p in parents[graph.index[t]]}
        f = ds.modalities["findings"].values[i]
        hits += sum(x in closure for x in f)
        total += len(f)
    assert hits / total > 0.75


def _write_dataset(root, samples: str, note: str, extra_mods: dict | None = None, graph="../graph"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "samples.tsv").write_text(samples, encoding="utf-8")
    (root / "note.txt").write_text(note, encoding="utf-8")
    mods = {"note": {"kind": "text", "path": "note.txt"}}
    mods.update(extra_mods or {})
    import yaml

    (root / "dataset.yaml").write_text(yaml.safe_dump({"graph": graph, "samples": "samples.tsv",
                                                       "modalities": mods}), encoding="utf-8")
    return root


GOOD = "id\tlabel\tsplit\tstudent_labelled\ns1\tA\ttrain\t1\ns2\tB\ttrain\t0\ns3\tA\ttest\t1\n"


def test_loader_reads_a_good_dataset(tmp_path):
    root = _write_dataset(tmp_path / "d", GOOD, "a b.\nc.\nd e.\n")
    ds = load_paired(root)
    assert ds.candidates == ["A", "B"] and ds.seen == ["A", "B"]
    assert ds.student_labelled.tolist() == [True, False, True]


@pytest.mark.parametrize("samples,note,mods,needle", [
    (GOOD, "a.\nb.\n", None, r"note.txt: 2 rows, expected 3"),
    (GOOD, "a.\n\nc.\n", None, r"note.txt:2: empty text"),
    (GOOD, "", None, r"note.txt: empty file"),
    ("id\tlabel\tsplit\ns1\tA\tdev\n", "a.\n", None, r"samples.tsv:2: split 'dev'"),
    ("id\tlabel\n", "a.\n", None, r"samples.tsv:1: missing column 'split'"),
    ("id\tlabel\tsplit\ns1\tA\ttrain\ns1\tB\ttrain\n", "a.\nb.\n", None, r"samples.tsv:3: duplicate sample id"),
    ("id\tlabel\tsplit\ns1\t\ttest\n", "a.\n", None, r"samples.tsv:2: test sample 's1' has no label"),
])
def test_loader_rejects_bad_files(tmp_path, samples, note, mods, needle):
    root = _write_dataset(tmp_path / "d", samples, note, mods)
    with pytest.raises(DataError) as exc:
        load_paired(root)
    assert re.search(needle, str(exc.value)), str(exc.value)


def test_nan_and_shape_errors(tmp_path):
    root = _write_dataset(tmp_path / "d", GOOD, "a.\nb.\nc.\n", {"lab": {"kind": "vector", "path": "lab.npy"}})
    arr = np.ones((3, 4), dtype=np.float32)
    arr[1, 2] = np.nan
    np.save(root / "lab.npy", arr)
    with pytest.raises(DataError, match=r"lab.npy: sample 2 \(array row 1\) has NaN or infinite values"):
        load_paired(root)
    np.save(root / "lab.npy", np.ones((3, 4, 5, 6), dtype=np.float32))
    with pytest.raises(DataError, match=r"a vector modality needs \[samples, features\]"):
        load_paired(root)
    (root / "lab.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"lab.npy: not a readable .npy array"):
        load_paired(root)


def test_non_utf8_and_unknown_concepts(tmp_path):
    root = _write_dataset(tmp_path / "d", GOOD, "a.\nb.\nc.\n", {"f": {"kind": "concept_set", "path": "f.txt"}})
    (root / "f.txt").write_bytes(b"X:1\nX:2 \xff\xfe\nX:3\n")
    with pytest.raises(DataError, match=r"f.txt:2: not UTF-8"):
        load_paired(root)
    (root / "f.txt").write_text("X:1\nX:2\nX:3\n", encoding="utf-8")
    ds = load_paired(root)
    with pytest.raises(DataError, match=r"samples.tsv:2: label 'A' .* is not a concept of the graph"):
        ds.validate_against({"B": 0, "X:1": 1})
    with pytest.raises(DataError, match=r"f.txt:2: unknown concept 'X:2'"):
        ds.validate_against({"A": 0, "B": 1, "X:1": 2, "X:3": 3})


def test_withheld_links_leave_the_graph_incomplete_but_not_the_patients(hpo_ds, tmp_path):
    """`withheld_links`: the graph drops about that fraction of each disease's phenotype links (one kept at
    least), while every note, finding and split is the draw a complete graph gets."""
    import csv

    ds, root = hpo_ds
    spec = SPEC.model_copy(update={"withheld_links": 0.5})
    out = generate_hpo_benchmark(tmp_path / "w", spec, seed=3).parent
    for f in ("samples.tsv", "findings.txt", "note.txt", "candidates.txt"):
        assert (root / "a" / f).read_bytes() == (out / f).read_bytes(), f
    full, cut = load_graph(root / "a" / "graph"), load_graph(out / "graph")
    assert full.num_nodes == cut.num_nodes  # the ontology part is whole: only disease links are left out

    def links(g) -> set[tuple[str, str]]:
        has = g.relations.index("has_phenotype")
        return {(g.ids[s], g.ids[d]) for s, d, r in zip(g.edge_src.tolist(), g.edge_dst.tolist(),
                                                        g.edge_rel.tolist()) if r == has}

    with open(out / "withheld_links.tsv", encoding="utf-8") as fh:
        withheld = {(r["disease"], r["phenotype"]) for r in csv.DictReader(fh, delimiter="\t")}
    assert links(cut) == links(full) - withheld and withheld <= links(full)
    assert 0.35 < len(withheld) / len(links(full)) < 0.65
    assert {d for d, _ in links(cut)} == set(ds.candidates)  # no disease loses every link
    # patients still show withheld phenotypes: the data knows what the graph does not
    shown = {(ds.labels[i], f) for i in range(len(ds.labels)) for f in ds.modalities["findings"].values[i]}
    assert shown & withheld
    assert not (root / "a" / "withheld_links.tsv").exists()


# ------------------------------------------------------------------ errors point to the line a user must edit
SAMPLES_WITH_GAP = "id\tlabel\tsplit\ns1\tA\ttrain\n\ns2\tB\ttrain\ns3\tA\ttest\n"  # line 3 is blank


def test_a_label_missing_from_candidates_is_reported_on_its_samples_line(tmp_path):
    """Not against candidates.txt: the typo is in samples.tsv, on line 4 (the blank line 3 counts)."""
    root = _write_dataset(tmp_path / "d", SAMPLES_WITH_GAP.replace("s2\tB", "s2\tBx"), "a.\nb.\nc.\n")
    (root / "candidates.txt").write_text("A\nB\nC\n", encoding="utf-8")
    (root / "dataset.yaml").write_text((root / "dataset.yaml").read_text() + "candidates: candidates.txt\n")
    with pytest.raises(DataError) as exc:
        load_paired(root)
    assert str(exc.value) == (f"{root / 'samples.tsv'}:4: label 'Bx' of sample 's2' is not among the candidates of "
                              "candidates.txt")


def test_labels_and_candidates_not_in_the_graph_name_their_file_and_line(tmp_path):
    root = _write_dataset(tmp_path / "d", SAMPLES_WITH_GAP, "a.\nb.\nc.\n")
    (root / "candidates.txt").write_text("A\n\nB\nC:typo\nA\n", encoding="utf-8")
    (root / "dataset.yaml").write_text((root / "dataset.yaml").read_text() + "candidates: candidates.txt\n")
    ds = load_paired(root)
    assert ds.candidates == ["A", "B", "C:typo"] and ds.candidate_lines == [1, 3, 4]
    assert ds.sample_lines == [2, 4, 5]
    with pytest.raises(DataError) as exc:
        ds.validate_against({"A": 0, "B": 1})
    assert str(exc.value) == f"{root / 'candidates.txt'}:4: candidate 'C:typo' is not a concept of the graph"
    with pytest.raises(DataError) as exc:
        ds.validate_against({"A": 0, "C:typo": 1})
    assert str(exc.value) == f"{root / 'samples.tsv'}:4: label 'B' of sample 's2' is not a concept of the graph"


def _vector_dataset(tmp_path, csv_text: str, name: str = "pix.csv"):
    root = _write_dataset(tmp_path / "d", GOOD, "a.\nb.\nc.\n", {"pix": {"kind": "vector", "path": name}})
    (root / name).write_text(csv_text, encoding="utf-8")
    return root


@pytest.mark.parametrize("text,line", [("1,2\n3,4\nnan,6\n", 3), ("x,y\n1,2\n3,4\n5,inf\n", 4)])
def test_csv_modality_messages_use_the_line_an_editor_shows(tmp_path, text, line):
    """One numbering (the file's line, header included), never a 0-based row beside it."""
    root = _vector_dataset(tmp_path, text)
    with pytest.raises(DataError) as exc:
        load_paired(root)
    assert str(exc.value) == (f"{root / 'pix.csv'}:{line}: has NaN or infinite values (1 rows in all); "
                              "expected finite numbers")


def test_csv_vector_with_a_header_row_is_read(tmp_path):
    root = _vector_dataset(tmp_path, '"width","height"\n1,2\n3,4\n5,6\n')
    assert load_paired(root).modalities["pix"].values.tolist() == [[1, 2], [3, 4], [5, 6]]
    root = _vector_dataset(tmp_path, "w\th\n1\t2\n3\t4\n5\t6.5\n", name="pix.tsv")
    assert load_paired(root).modalities["pix"].values.tolist() == [[1, 2], [3, 4], [5, 6.5]]


@pytest.mark.parametrize("text,needle", [
    ("w,h\n1,2\n3,x\n5,6\n", r"pix.csv:3: expected numbers separated by ','$"),
    ("w,h,d\n1,2\n3,4\n5,6\n", r"pix.csv:1: header line has 3 column names but the rows have 2 values"),
    ("w,h\n", r"pix.csv:1: only a header line"),
    ("w,2\n1,2\n3,4\n5,6\n", r"pix.csv:1: expected numbers separated by ','; a header line is taken only when "
                               r"none of its fields is a number"),
    ("w,h\n1,2\n3,4,5\n", r"pix.csv:3: 3 values, expected 2 like line 2"),
    ("0,1\n1,2\n3,4\n5,6\n", r"pix.csv: 4 rows, expected 3 \(one per sample in samples.tsv\); is line 1 a header "
                               r"of column numbers"),
])
def test_csv_header_problems_are_named(tmp_path, text, needle):
    root = _vector_dataset(tmp_path, text)
    with pytest.raises(DataError) as exc:
        load_paired(root)
    assert re.search(needle, str(exc.value)), str(exc.value)
