"""`kgdistill eval RUN_DIR --data DATASET_DIR`: a trained run scored on another dataset folder over its own graph,
with the same metrics and no training."""
from __future__ import annotations

import json
import shutil

import pytest


def test_scoring_the_runs_own_data_gives_the_runs_figures(tiny_run, tmp_path):
    from kgdistill.reevaluate import evaluate_on_data, evaluate_run

    again = evaluate_on_data(tiny_run, tiny_run / "data", out=tmp_path / "scored")
    direct = evaluate_run(tiny_run)
    for m in ("teacher", "text_baseline", "kg_guided", "kd"):
        assert again["methods"][m]["seen"] == pytest.approx(direct["methods"][m]["seen"])
        assert again["methods"][m]["unseen"] == pytest.approx(direct["methods"][m]["unseen"])
    assert json.loads((tmp_path / "scored" / "metrics.json").read_text())["num_test"] == again["num_test"] == 36
    assert "kg_guided" in (tmp_path / "scored" / "report.md").read_text()


def test_a_new_folder_of_test_patients_is_scored_with_the_runs_seen_concepts(tiny_run, tmp_path):
    """Every sample marked test (as `data from-phenopackets` writes new patients): the run's seen concepts stay
    seen although the folder has no training sample."""
    from kgdistill.reevaluate import evaluate_on_data

    data = tmp_path / "new"
    shutil.copytree(tiny_run / "data", data)
    rows = (data / "samples.tsv").read_text().splitlines()
    head = rows[0].split("\t")
    col = head.index("split")
    keep = [r.split("\t") for r in rows[1:]]
    keep = ["\t".join(r[:col] + ["test"] + r[col + 1:]) for r in keep]
    (data / "samples.tsv").write_text("\n".join([rows[0], *keep]) + "\n")
    m = evaluate_on_data(tiny_run, data)
    assert m["num_test"] == len(keep) and m["num_seen"] == 10 and m["num_unseen"] == 2


def test_a_dataset_with_other_candidates_or_graph_is_one_line(tiny_run, tmp_path, cli):
    data = tmp_path / "other"
    shutil.copytree(tiny_run / "data", data)
    cands = (data / "candidates.txt").read_text().split()
    (data / "candidates.txt").write_text("\n".join([*cands, "HP:0000118"]) + "\n")   # one more to rank
    res = cli("eval", str(tiny_run), "--data", str(data))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert (f"{data / 'candidates.txt'}: its 13 candidates differ from the 12 the run ranks (e.g. HP:0000118)"
            in res.stderr)
    res = cli("eval", str(tiny_run), "--data", str(tmp_path / "missing"))
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
