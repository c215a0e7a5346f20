"""The real-patient task (data.source: phenopackets) on the shipped phenopacket-store rows: splits by
publication, diseases held out whole, few labelled notes, and the independent graph's recounts."""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
import yaml

from kgdistill.config import DataConfig
from kgdistill.data.from_phenopackets import candidate_diseases
from kgdistill.data.independent_graph import hpoa_rows, independent_annotations
from kgdistill.data.phenopackets import load_store_table
from kgdistill.data.store_patients import assign_patients, choose_labelled, split_patients
from kgdistill.graph.hpo import hpo_annotations


@pytest.fixture(scope="module")
def store():
    known = set(candidate_diseases("omim"))
    return [r for r in load_store_table() if r.disease_id in known and (r.observed or r.excluded)]


def test_no_publication_in_two_splits_and_held_out_diseases_never_train(store):
    splits, held = split_patients(store, [0.6, 0.2, 0.2], 0.2, seed=3)
    where: dict[str, set[str]] = {}
    for r, s in zip(store, splits):
        for p in r.pmids:
            where.setdefault(p, set()).add(s)
    assert all(len(s) == 1 for s in where.values())
    diseases = {r.disease_id for r in store}
    assert len(held) == round(0.2 * len(diseases)) == 102
    assert not any(s == "train" and r.disease_id in set(held) for r, s in zip(store, splits))
    counts = Counter(splits)
    assert abs(counts["train"] / len(store) - 0.6) < 0.02 and abs(counts["test"] / len(store) - 0.2) < 0.02
    again, held_again = split_patients(store, [0.6, 0.2, 0.2], 0.2, seed=3)
    assert again == splits and held_again == held
    assert split_patients(store, [0.6, 0.2, 0.2], 0.2, seed=4)[1] != held


def test_student_sees_at_most_two_labelled_notes_per_seen_disease(store):
    splits, _ = split_patients(store, [0.6, 0.2, 0.2], 0.2, seed=0)
    labelled = choose_labelled(store, splits, 2, seed=0)
    per = Counter(r.disease_id for r, s, lab in zip(store, splits, labelled) if s == "train" and lab)
    train = Counter(r.disease_id for r, s in zip(store, splits) if s == "train")
    assert set(per) == set(train)                       # every seen disease has labelled notes
    assert all(per[d] == min(2, train[d]) for d in train)
    assert all(lab for s, lab in zip(splits, labelled) if s != "train")


def test_a_shared_row_is_recounted_without_the_held_out_patients():
    # OMIM:611091 rows cite PMID:22541562 and PMID:22541559 (a store paper); holding out that paper's patients
    # subtracts them: HP:0000486 5/8 -> its 3 observed, 2 excluded patients out -> 2/3
    store = load_store_table()
    out = [r for r in store if "PMID:22541559" in r.pmids]
    obs = sum("HP:0000486" in r.observed for r in out if r.disease_id == "OMIM:611091")
    exc = sum("HP:0000486" in r.excluded for r in out if r.disease_id == "OMIM:611091")
    assert (obs, exc) == (3, 2)
    ann, report = independent_annotations({"PMID:22541559"}, out, ["OMIM:611091", "OMIM:619340"])
    rows = [r for r in hpoa_rows() if r.disease == "OMIM:611091" and r.term == "HP:0000486"]
    assert [r.frequency for r in rows] == ["5/8"]
    assert ann.phenotypes["OMIM:611091"]["HP:0000486"] == pytest.approx(2 / 3)
    only_out = sum(1 for r in hpoa_rows() if r.disease == "OMIM:611091" and r.references == ("PMID:22541559",))
    assert report.removed == only_out == 9 and report.not_exact == 0
    assert report.recounted == report.citing_heldout - report.removed == 6
    # a disease no held-out paper touches keeps its annotations as published
    assert ann.phenotypes["OMIM:619340"] == hpo_annotations().phenotypes["OMIM:619340"]


def test_a_row_citing_only_held_out_papers_is_removed():
    # OMIM:619340 rows cite PMID:31675180 alone: holding it out removes them all (no patient needed)
    ann, report = independent_annotations({"PMID:31675180"}, [], ["OMIM:619340"])
    cited = [r for r in hpoa_rows() if r.disease == "OMIM:619340" and "PMID:31675180" in r.references]
    only = [r for r in cited if r.references == ("PMID:31675180",)]
    assert report.removed == len(only) > 0
    assert not any(t in ann.phenotypes["OMIM:619340"] for t in {r.term for r in only}
                   if all(x.references == ("PMID:31675180",) for x in cited if x.term == t))


def test_the_data_source_writes_the_task_with_its_graph_report(tmp_path):
    from kgdistill.data.paired import load_paired
    from kgdistill.data.sources import DATASET_WRITERS

    data = DataConfig(source="phenopackets", patients={"candidates": "store"})
    path = DATASET_WRITERS.get("phenopackets")(tmp_path / "ds", data, 0)
    meta = yaml.safe_load(path.read_text())["meta"]
    assert meta["graph_kind"] == "independent" and meta["diseases_held_out_whole"] == 102
    g = meta["independent_graph"]
    assert g["removed"] > 0 and g["recounted"] > 0 and g["not_exact"] >= 0
    ds = load_paired(path.parent)
    assert len(ds.candidates) == 512
    assert ds.name == "phenopacket-store-0.1.24 (independent graph)"
    assert int(ds.student_labelled[ds.split_idx("train")].sum()) == meta["student_labelled_train_notes"]
    assert any(item.startswith("-HP:") for items in ds.modalities["findings"].values for item in items)


def test_the_published_graph_keeps_the_annotations_as_released(store):
    spec = SimpleNamespace(graph="published", fractions=[0.6, 0.2, 0.2], heldout_diseases=0.2,
                           labelled_per_disease=2)
    a = assign_patients(store, spec, ["OMIM:611091"], seed=0)
    assert a.annotations is None and "independent_graph" not in a.meta and a.meta["graph_kind"] == "published"
