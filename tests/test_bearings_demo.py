"""`kgdistill demo --task bearings`: the data source cuts the shipped CWRU file itself (no manual data step), its
three tasks are config options, and bad recordings stop the run with one line naming the file."""
from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from kgdistill.config import DEMO_TASKS, demo_config, load_config
from kgdistill.data.sources import DATASET_WRITERS
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cwru_fixtures import save, tiny_cwru  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--set", "teacher.epochs=1", "--set", "student.epochs=1"]


def read_rows(folder: Path) -> list[dict]:
    with open(folder / "samples.tsv", newline="") as a, open(folder / "windows.tsv", newline="") as b:
        win = {w["id"]: w for w in csv.DictReader(b, delimiter="\t")}
        return [{**s, **win[s["id"]]} for s in csv.DictReader(a, delimiter="\t")]


def test_demo_task_runs_from_the_shipped_file(tmp_path, cli):
    assert DEMO_TASKS["bearings"] == ("bearings", "bearings_quick")
    cfg = load_config(demo_config("bearings", True))
    assert cfg.data.source == "bearings" and cfg.data.bearings.task == "one_load" and cfg.data.path is None
    res = cli("demo", "--task", "bearings", "--quick", "--quiet", "--out", str(tmp_path / "run"), *FAST)
    assert res.returncode == 0, res.stderr
    run = tmp_path / "run"
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_candidates"] == 14 and metrics["num_unseen"] == 0 and metrics["num_test"] == 14 * 8
    assert {"teacher", "nearest_centroid", "student_alone", "kd", "kg_guided"} <= set(metrics["methods"])
    assert metrics["roles"]["teacher"] == "drive_end" and metrics["roles"]["student"] == "fan_end"
    rows = read_rows(run / "data")
    labelled = [r for r in rows if r["split"] == "train" and r["student_labelled"] == "1"]
    assert len(labelled) == 14 * 5   # 5 labelled fan-end windows per class
    assert len(rows) == 14 * 44 and {r["load_hp"] for r in rows} == {"0"}


def write(tmp_path: Path, *overrides: str) -> Path:
    cfg = load_config(demo_config("bearings", False), list(overrides))
    return DATASET_WRITERS.get("bearings")(tmp_path / "data", cfg.data, cfg.seed)


def spans_disjoint(rows: list[dict]) -> None:
    """No window of one split overlaps a window of another split cut from the same recording."""
    by_rec: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_rec[r["recording"]][r["split"]].append((int(r["start"]), int(r["end"])))
    for rec, splits in by_rec.items():
        names = sorted(splits)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                assert all(e1 <= s2 or e2 <= s1 for s1, e1 in splits[a] for s2, e2 in splits[b]), (rec, a, b)


def test_cross_load_option(tmp_path):
    folder = write(tmp_path, "data.bearings.task=cross_load", "data.bearings.source_load=1",
                   "data.bearings.target_load=2", "data.bearings.labelled_per_class=null")
    rows = read_rows(folder)
    spans_disjoint(rows)
    kinds = {(r["load_hp"], r["split"], r["label"] != "") for r in rows}
    assert kinds == {("1", "train", True), ("1", "val", True), ("2", "train", False), ("2", "test", True)}
    assert all(r["student_labelled"] == "1" for r in rows if r["label"])     # null: every source label
    with pytest.raises(Exception, match="source_load and target_load are both 2"):
        load_config(demo_config("bearings", False), ["data.bearings.task=cross_load", "data.bearings.source_load=2",
                                                      "data.bearings.target_load=2"])


def test_unseen_option_holds_combinations_out_of_training(tmp_path):
    held = ["cwru:DE_IR_021", "cwru:DE_OR3_007"]
    folder = write(tmp_path, "data.bearings.task=unseen", "data.bearings.load=2", f"data.bearings.held_out={held}")
    rows = read_rows(folder)
    spans_disjoint(rows)
    train = {r["label"] for r in rows if r["split"] == "train"}
    assert not train & set(held) and len(train) == 11           # 13 drive-end classes at 2 hp (no normal), 2 held
    for c in held:
        assert {r["split"] for r in rows if r["label"] == c} == {"val", "test"}
    assert (folder / "candidates.txt").read_text().split().count(held[0]) == 1


@pytest.fixture
def bad_files(tmp_path):
    short = save(tiny_cwru(n=1500), tmp_path / "short.npz")
    nan = tiny_cwru(n=54_000)
    nan.signals[0, 0, 7:9] = np.nan
    return {"short": short, "nan": save(nan, tmp_path / "nan.npz"),
            "full": save(tiny_cwru(n=54_000), tmp_path / "ok.npz")}


@pytest.mark.parametrize("case", ["short", "nan", "class_not_in_graph"])
def test_bad_recordings_through_the_cli(case, bad_files, tmp_path, cli):
    graph = ROOT / "graphs" / "machine_faults.ttl"
    sets = {"short": [f"data.bearings.file={bad_files['short']}"],
            "nan": [f"data.bearings.file={bad_files['nan']}", "data.bearings.labelled_per_class=1"],
            "class_not_in_graph": [f"data.bearings.file={bad_files['full']}", f"data.bearings.graph={graph}"]}[case]
    want = {"short": f"{bad_files['short']}: recording 1797_Normal: 1500 samples, shorter than one window "
                     "(2048 samples)",
            "nan": f"{bad_files['nan']}: recording 1797_Normal, sensor DE: NaN or infinite values at samples 7-8 "
                   "(2 in a row, 2 in all); expected finite numbers",
            "class_not_in_graph": f"{graph}: fault class cwru:DE_IR_007 (recording 1797_IR_7_DE12) is not a node "
                                  "of the graph; expected every class of the chosen recordings in it"}[case]
    out = tmp_path / "run"
    res = cli("train", str(ROOT / "kgdistill" / "configs" / "bearings_quick.yaml"), "--out", str(out),
              *[a for s in sets for a in ("--set", s)])
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and want in lines[0], lines
    assert json.loads((out / "run.json").read_text())["status"] != "complete"
    assert not (out / "data" / "dataset.yaml").exists() and not (out / "metrics.json").exists()


def test_cross_load_run_has_adabn_rows(tmp_path, cli):
    out = tmp_path / "run"
    res = cli("demo", "--task", "bearings", "--quick", "--quiet", "--out", str(out), *FAST,
              "--set", "data.bearings.task=cross_load", "--set", "data.bearings.target_load=3",
              "--set", "eval.adabn=[student_alone]")
    assert res.returncode == 0, res.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert "student_alone_adabn" in metrics["methods"] and metrics["num_test"] == 13 * 8
    adabn, plain = metrics["methods"]["student_alone_adabn"], metrics["methods"]["student_alone"]
    assert adabn["seen"]["mrr"] != plain["seen"]["mrr"]   # the target's statistics change the scores
    bad = cli("demo", "--task", "bearings", "--quick", "--out", str(tmp_path / "x"), "--set", "eval.adabn=[crd]")
    assert bad.returncode == 2 and "eval.adabn: 'crd' is not a student method" in bad.stderr
    one_load = cli("demo", "--task", "bearings", "--quick", "--quiet", "--out", str(tmp_path / "one"),
                   "--set", "eval.adabn=[kd]")
    assert one_load.returncode == 2
    assert "eval.adabn: the dataset has no training sample without a label" in one_load.stderr
    assert not (tmp_path / "one" / "metrics.json").exists()
    assert not (tmp_path / "one" / "logs" / "teacher.csv").exists()      # stopped before any training
    teacher = cli("demo", "--task", "bearings", "--quick", "--quiet", "--out", str(tmp_path / "t"),
                  "--set", "teacher.adabn_unlabelled=true")
    assert teacher.returncode == 2 and not (tmp_path / "t" / "logs" / "teacher.csv").exists()
    assert "teacher.adabn_unlabelled: the dataset has no training sample without a label" in teacher.stderr
