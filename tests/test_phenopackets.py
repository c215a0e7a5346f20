"""The shipped phenopacket-store table (checksum, published counts, real rows) and the phenopacket reader."""
from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phenopacket_fixtures import phenopacket, without_diagnosis, write  # noqa: E402

from kgdistill.data.phenopackets import (COLUMNS, PhenopacketRecord, ReadResult, load_store_table,  # noqa: E402
                                         parse_phenopacket, read_phenopackets, read_table, store_table_path,
                                         table_bytes)

ROOT = Path(__file__).resolve().parents[1]
SHA256 = "37a16d88fd5df8377ee125393cf074a8b1c2b06d87d3a66a634e3da89b2f35a2"       # the .tsv.gz as shipped
TSV_SHA256 = "db4d2e2fdcfd1bebcfb5c3843d165c1f685a1e33cb977cc0b4ed1e23e8b6cf8c"   # its decompressed TSV


@pytest.fixture(scope="module")
def store():
    return load_store_table()


def test_shipped_table_is_the_derived_one():
    raw = store_table_path().read_bytes()
    manifest = json.loads(store_table_path().with_name("phenopacket_store_0.1.24.manifest.json").read_text())
    assert hashlib.sha256(raw).hexdigest() == SHA256 == manifest["sha256"]
    assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == TSV_SHA256 == manifest["tsv_sha256"]
    assert raw[4:8] == b"\0\0\0\0"                                   # gzip mtime 0
    notice = (store_table_path().parent / "NOTICE").read_text()
    assert "BSD 3-Clause License" in notice and "Danis" in notice and "Copyright (c) 2022, Monarch Initiative" in notice


def test_counts_match_the_published_figures(store):
    """phenopacket-store 0.1.24: 7,878 patients, 515 diseases (all OMIM), 1,209 publications, 456 genes."""
    assert len(store) == 7878 == len({r.id for r in store})
    assert len({r.disease_id for r in store}) == 515
    assert all(r.disease_id.startswith("OMIM:") for r in store)
    assert len({p for r in store for p in r.pmids}) == 1209
    assert all(len(r.pmids) == 1 for r in store)
    assert len({g for r in store for g in r.genes}) == 456
    assert sum(len(r.observed) for r in store) == 66260 and sum(len(r.excluded) for r in store) == 97345
    assert [r.id for r in store] == sorted(r.id for r in store)


def test_a_real_row(store):
    """notebooks/CHD8/phenopackets/PMID_38428335_Patient.json at tag 0.1.24, read by hand."""
    r = next(r for r in store if r.id == "PMID_38428335_Patient")
    assert (r.cohort, r.disease_id, r.genes, r.pmids) == ("CHD8", "OMIM:615032", ("CHD8",), ("PMID:38428335",))
    assert r.disease_label == "Intellectual developmental disorder with autism and macrocephaly"
    assert r.observed[:3] == ("HP:0000256", "HP:0001252", "HP:0000717") and len(r.observed) == 14
    assert r.excluded[:2] == ("HP:0100021", "HP:0000445")
    assert (r.sex, r.onset, r.age) == ("MALE", "HP:0003577", "P21Y")


def test_alternative_ids_are_mapped_in_the_table(store):
    """HP:0002355 (Difficulty walking) is an alternative id of HP:0001288 (Gait disturbance) in HPO 2025-01-16."""
    ids = {t for r in store for t in r.observed + r.excluded}
    assert "HP:0002355" not in ids and "HP:0030214" not in ids and "HP:0001288" in ids
    manifest = json.loads(store_table_path().with_name("phenopacket_store_0.1.24.manifest.json").read_text())
    assert manifest["hpo_ids_remapped"] == {"HP:0002355 -> HP:0001288": 16, "HP:0030214 -> HP:5200321": 4}


def test_table_round_trip(tmp_path, store):
    path = tmp_path / "t.tsv"
    path.write_bytes(table_bytes(store[:50]))
    assert read_table(path) == store[:50]
    assert path.read_text().split("\n")[0].split("\t") == list(COLUMNS)


def test_reader_maps_old_ids_and_reports_bad_files(tmp_path):
    good = phenopacket("p1", observed=("HP:0000256", "HP:0002355", "HP:0000057", "HP:9999999"),
                       excluded=("HP:0000365", "HP:0001726"))
    write(tmp_path, "CHD8/phenopackets/p1.json", good)
    write(tmp_path, "CHD8/phenopackets/p2.json", phenopacket("p2", disease=("OMIM:142900", "Holt-Oram syndrome"),
                                                           gene="TBX5", pmid="PMID:10077612"))
    write(tmp_path, "other/broken.json", '{"id": "p3", "subject": ')
    write(tmp_path, "other/nodx.json", without_diagnosis("p4"))
    write(tmp_path, "other/list.json", "[1, 2]")
    write(tmp_path, "other/badtype.json", {**phenopacket("p5"), "phenotypicFeatures": {"type": "HP:0000256"}})
    write(tmp_path, "dup.json", phenopacket("p1"))
    res = read_phenopackets(tmp_path)
    assert [r.id for r in res.records] == ["p1", "p2"] and res.files == 7
    p1 = res.records[0]
    # HP:0002355 is an alternative id of HP:0001288; HP:0000057 is obsolete, replaced by HP:0008665
    assert p1.observed == ("HP:0000256", "HP:0001288", "HP:0008665")
    assert p1.excluded == ("HP:0000365",)          # HP:0001726 is obsolete with no replacement
    assert (p1.cohort, p1.genes, p1.pmids, p1.onset) == ("CHD8", ("CHD8",), ("PMID:38428335",), "HP:0003577")
    assert res.remapped == {("HP:0002355", "HP:0001288"): 1, ("HP:0000057", "HP:0008665"): 1}
    lines = [str(p) for p in res.problems]
    assert f"{tmp_path / 'CHD8/phenopackets/p1.json'}: phenotypicFeatures[3]: unknown HPO term 'HP:9999999' is not " \
           "in HPO hp/releases/2025-01-16; feature left out" in lines
    assert any(ln.startswith(str(tmp_path / "CHD8/phenopackets/p1.json")) and "obsolete HPO term 'HP:0001726'" in ln
               for ln in lines)
    assert f"{tmp_path / 'other/broken.json'}: not valid JSON: Expecting value at line 1 column 25; file left out" \
           in lines
    assert f"{tmp_path / 'other/nodx.json'}: no diagnosis: expected interpretations[].diagnosis.disease.id or " \
           "diseases[].term.id; file left out" in lines
    assert f"{tmp_path / 'other/list.json'}: the file holds a JSON list; expected a phenopacket object; file left out" \
           in lines
    assert f"{tmp_path / 'other/badtype.json'}: 'phenotypicFeatures' is a dict; expected a list; file left out" in lines
    assert "p1: phenopacket id 'p1' appears in more than one file; only the first is kept" in lines
    assert len(res.skipped) == 5 and len(lines) == 7


def test_diagnosis_falls_back_to_diseases_and_the_first_of_several_is_used():
    doc = phenopacket("p1")
    doc.pop("interpretations")
    doc["diseases"] = [{"term": {"id": "OMIM:100000", "label": "x"}, "excluded": True},
                       {"term": {"id": "OMIM:142900", "label": "Holt-Oram syndrome"}},
                       {"term": {"id": "OMIM:615032", "label": "y"}}]
    res = ReadResult()
    parse_phenopacket(doc, "f.json", "", res)
    r = res.records[0]
    assert (r.disease_id, r.disease_label, r.genes, r.onset) == ("OMIM:142900", "Holt-Oram syndrome", (), "")
    assert [str(p) for p in res.problems] == ["f.json: 2 diagnoses (OMIM:142900, OMIM:615032); the first, "
                                              "OMIM:142900, is used"]


def _store_layout(root: Path) -> None:
    write(root, "notebooks/CHD8/phenopackets/PMID_38428335_Patient.json", phenopacket("PMID_38428335_Patient"))
    write(root, "notebooks/TBX5/phenopackets/b.json", phenopacket("PMID_10077612_A", gene="TBX5",
                                                                  disease=("OMIM:142900", "Holt-Oram syndrome")))
    write(root, "notebooks/TBX5/input/ignored.json", phenopacket("not-a-phenopacket-folder"))


def test_derivation_script_gives_the_same_bytes_from_a_checkout_and_from_git(tmp_path):
    co = tmp_path / "checkout"
    _store_layout(co)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-C", str(co)]
    subprocess.run(["git", "init", "-q", str(co)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "x"], check=True)
    subprocess.run(git + ["tag", "0.1.24"], check=True)
    script = [sys.executable, str(ROOT / "scripts" / "derive_phenopackets.py")]
    a = subprocess.run(script + [str(co), "--out", str(tmp_path / "a")], capture_output=True, text=True)
    b = subprocess.run(script + [str(co / ".git"), "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    name = "phenopacket_store_0.1.24.tsv.gz"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    recs = read_table(tmp_path / "a" / name)
    assert [(r.id, r.cohort, r.disease_id) for r in recs] == [("PMID_10077612_A", "TBX5", "OMIM:142900"),
                                                             ("PMID_38428335_Patient", "CHD8", "OMIM:615032")]
    assert recs[1] == PhenopacketRecord("PMID_38428335_Patient", "CHD8", "OMIM:615032",
                                        "Intellectual developmental disorder with autism and macrocephaly", ("CHD8",),
                                        ("PMID:38428335",), ("HP:0000256", "HP:0001252"), ("HP:0000365",), "MALE",
                                        "HP:0003577", "P21Y")
    man = json.loads((tmp_path / "a" / name.replace(".tsv.gz", ".manifest.json")).read_text())
    assert (man["patients"], man["diseases"], man["files_read"]) == (2, 2, 2)
