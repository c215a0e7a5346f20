"""What a new user with their own data tripped over (issue 21): results that mislead or break other tools, a
failed run that blocks a second try, candidates the graph cannot tell apart."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_loader import load_script  # noqa: E402


def _strict(text: str):
    """json.loads as strict parsers read JSON (RFC 8259: no NaN or Infinity)."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_files_are_strict_json(tmp_path):
    from kgdistill.eval.calibration import Calibration, calibrations_to_json
    from kgdistill.fileio import write_json_atomic

    write_json_atomic(tmp_path / "c.json", calibrations_to_json({"kd": Calibration()}))  # val_*_top1 are NaN
    write_json_atomic(tmp_path / "m.json", {"a": float("inf"), "b": [np.float32("nan"), np.int64(3)],
                                            "c": torch.tensor(0.5)})
    assert _strict((tmp_path / "c.json").read_text())["kd"]["val_seen_top1"] is None
    assert _strict((tmp_path / "m.json").read_text()) == {"a": None, "b": [None, 3], "c": 0.5}


def test_no_mistake_is_no_severity_not_a_perfect_one():
    from kgdistill.eval.metrics import mistake_severity

    sim = torch.eye(3)
    right = mistake_severity(torch.eye(3), torch.arange(3), sim)
    assert right == {"mean": None, "n_mistakes": 0}
    wrong = mistake_severity(torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]), torch.tensor([0, 1]), sim)
    assert wrong == {"mean": 1.0, "n_mistakes": 1}


def test_the_benchmark_averages_severity_over_the_seeds_that_have_one():
    bq = load_script("bench_quality", "bench_quality_under_test")
    task = bq.BenchTask("quick", "t")
    seeds = {"0": {"seen_top1": 1.0, "mistake_severity": None, "all_top1": 1.0},
             "1": {"seen_top1": 0.5, "mistake_severity": 0.4, "all_top1": 0.5},
             "2": {"seen_top1": 0.5, "mistake_severity": 0.2, "all_top1": 0.5}}
    out = bq.summarise(task, [0, 1, 2], {"kg_guided": seeds})
    sev = out["summary"]["kg_guided"]["mistake_severity"]
    assert sev["mean"] == pytest.approx(0.3) and sev["n"] == 2          # not 0.2: the perfect seed has no severity
    assert out["summary"]["kg_guided"]["seen_top1"]["mean"] == pytest.approx(2 / 3)
    assert out["mistake_severity_pooled"]["kg_guided"] == pytest.approx(0.3)


def _metrics(k: int, **extra) -> dict:
    entry = {"seen": {"top1": 0.5, "top10": 1.0, "mrr": 0.6}, "unseen": {"top1": 0.25, "top10": 1.0, "mrr": 0.4},
             "harmonic_top1": 1 / 3, "mistake_severity": None}
    return {"run_id": "r", "dataset": "digits", "num_candidates": k, "num_seen": k - 2, "num_unseen": 2,
            "num_test": 20, "chance_top1": 1 / k, "chance_top10": min(10, k) / k, "device": "cpu", "seconds": 1.0,
            "methods": {"teacher": entry, "nearest_centroid": {"seen": entry["seen"], "mistake_severity": 0.5},
                        "kg_guided": entry}, **extra}


def test_top_k_columns_that_mean_nothing_are_left_out():
    from kgdistill.eval.report import metrics_table

    small = metrics_table(_metrics(8))
    assert "top-10" not in small and "seen top-1" in small and "| – |" in small  # severity of no mistake: a dash
    assert "seen top-10" in metrics_table(_metrics(40))


def test_the_report_says_what_ran_and_what_each_row_is(tmp_path):
    from kgdistill.eval.report import write_report

    rd = SimpleNamespace(info={"run_id": "r"}, path=tmp_path)
    roles = {"teacher": "pix", "teacher_kind": "vector", "student": "fou", "student_kind": "vector"}
    m = _metrics(8, roles=roles, calibration_pass={"ran": False, "reason": "calibration.enabled is false"},
                 warnings=["the teacher ranks validation samples worse than the student trained alone"])
    text = write_report(rd, m).read_text()
    m["roles"]["teacher_concepts"] = "annotations"
    assert "concept embeddings from `annotations` (teacher.concepts)" in write_report(rd, m).read_text()
    assert "No calibration: calibration.enabled is false" in text and "chosen on validation" not in text
    assert "patients" not in text
    assert ("Teacher: modality `pix` (vector), concept embeddings from `gnn` (teacher.concepts); student: modality "
            "`fou` (vector).") in text
    assert "`nearest_centroid`: the labelled student samples' class centroids" in text
    assert "## Warnings" in text and "worse than the student trained alone" in text
    assert "Unseen top-1:" in text and "top-10" not in text  # 8 candidates: top-10 is always 100%
    ran = write_report(rd, _metrics(40, calibration_pass={"ran": True, "reason": None})).read_text()
    assert "chosen on validation samples" in ran and "## Warnings" not in ran


def test_no_fusion_row_only_when_there_is_a_baseline_to_leave_out():
    from kgdistill.eval.calibration import choose_calibrations

    scores = {"kg_guided": torch.randn(6, 4)}
    y, trained, held = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([1, 1, 0, 0]).bool(), torch.tensor([0, 0, 1, 1]).bool()
    without = choose_calibrations({"kg_guided": (True, True)}, scores, y, trained, held, None, [0.0], [0.0, 1.0])
    assert set(without) == {"kg_guided"}
    with_ = choose_calibrations({"kg_guided": (True, True)}, scores, y, trained, held, torch.randn(6, 4), [0.0],
                                [0.0, 1.0])
    assert set(with_) == {"kg_guided", "kg_guided_no_fusion"}


def test_a_weaker_teacher_is_a_warning_with_both_figures():
    from kgdistill.results import run_warnings

    task = SimpleNamespace(candidates=["a", "b"], seen=np.array([True, True]))
    w = run_warnings(task, {"teacher": {"best_val_mrr": 0.412}, "student_alone": {"best_val_mrr": 0.55}})
    assert len(w) == 1 and "validation MRR 0.412 against 0.550" in w[0]
    assert run_warnings(task, {"teacher": {"best_val_mrr": 0.7}, "student_alone": {"best_val_mrr": 0.55}}) == []


def _twins_graph():
    from kgdistill.graph import GraphBuilder

    b = GraphBuilder("mem")
    for n in ("D1", "D2", "D3", "D4", "P1", "P2", "P3", "root"):
        b.add_node(n, n.lower())
    for d in ("D1", "D2", "D3"):  # D1 and D2 link to the same findings; D3 to one more
        b.add_edge(d, "P1", "has_phenotype")
        b.add_edge(d, "P2", "has_phenotype")
    b.add_edge("D3", "P3", "has_phenotype")
    b.add_edge("D4", "P3", "has_phenotype")
    for p in ("P1", "P2", "P3"):
        b.add_edge(p, "root", "is_a")
    return b.build()


def test_candidates_with_the_same_neighbourhood_are_found():
    from kgdistill.graph.distinct import indistinguishable

    kg = _twins_graph()
    assert indistinguishable(kg, ["D1", "D2", "D3", "D4"]) == [["D1", "D2"]]   # D3: 2 of 3 links shared (0.67)
    assert indistinguishable(kg, ["D1", "D2", "D3"], threshold=0.6) == [["D1", "D2", "D3"]]
    assert indistinguishable(kg, ["D2"], among=["D1", "D2", "D4"]) == [["D1", "D2"]]   # unseen vs every candidate
    assert indistinguishable(kg, ["D3", "D4"]) == []


def test_graph_inspect_names_the_candidates_it_cannot_tell_apart(tmp_path, cli):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "edges.csv").write_text("source,target,relation\nD1,P1,has_phenotype\nD2,P1,has_phenotype\n"
                                              "D3,P2,has_phenotype\nP1,R,is_a\nP2,R,is_a\n")
    (tmp_path / "c.txt").write_text("D1\nD2\nD3\n")
    res = cli("graph", "inspect", str(tmp_path / "g" / "edges.csv"), "--candidates", str(tmp_path / "c.txt"))
    assert res.returncode == 0, res.stderr
    assert "candidates the graph cannot tell apart (neighbourhood Jaccard >= 0.9): 2 in 1 groups" in res.stdout
    assert "  D1, D2" in res.stdout
    (tmp_path / "bad.txt").write_text("D1\nD9\n")
    bad = cli("graph", "inspect", str(tmp_path / "g" / "edges.csv"), "--candidates", str(tmp_path / "bad.txt"))
    assert bad.returncode == 2 and f"{tmp_path / 'bad.txt'}:2: candidate 'D9' is not a concept" in bad.stderr


def _run_folder(tmp_path: Path, status: str, state: bool = False) -> Path:
    p = tmp_path / "run"
    (p / "checkpoints").mkdir(parents=True)
    (p / "run.json").write_text(json.dumps({"run_id": "x", "status": status, "error": "DataError: bad label\nmore",
                                            "host": "elsewhere", "pid": 1}))
    if state:
        (p / "state" / "final").mkdir(parents=True)
        (p / "state" / "final" / "teacher.pt").write_bytes(b"x")
    return p


def test_a_failed_run_with_nothing_to_resume_is_replaced_by_the_same_command(tmp_path, tiny_config):
    from kgdistill.errors import RunDirError
    from kgdistill.run_dir import RunDir

    said: list[str] = []
    rd = RunDir.create(_run_folder(tmp_path, "failed"), tiny_config, log=said.append)
    assert rd.info["status"] == "running" and said == [f"[kgdistill] replacing the failed run (DataError: bad label) "
                                                       f"in {tmp_path / 'run'}"]
    for status, state, needle in (("interrupted", True, "continue it with kgdistill train --resume"),
                                  ("failed", True, "or start again with --overwrite"),
                                  ("complete", False, r"holds a complete run \(never replaced\)")):
        folder = _run_folder(tmp_path / status / str(state), status, state)
        with pytest.raises(RunDirError, match=needle):
            RunDir.create(folder, tiny_config)
        if status != "complete":
            assert RunDir.create(folder, tiny_config, overwrite=True).info["status"] == "running"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="holds no kgdistill run"):
        RunDir.create(other, tiny_config, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_overwrite_and_resume_together_are_refused(cli, tmp_path):
    res = cli("train", "--resume", str(tmp_path), "--overwrite")
    assert res.returncode == 2 and "--overwrite and --resume: give one" in res.stderr
