"""train.tracking: a finished run read back from a real local MLflow store (MLflow's own client) and from the
TensorBoard event files; tracking changes no result, and a tracking failure is one warning line."""
from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, tiny_config_with):
    from kgdistill.pipeline import run_pipeline

    lines: list[str] = []
    out = tmp_path_factory.mktemp("runs") / "tracked"
    cfg = tiny_config_with("train.tracking=[mlflow, tensorboard]")
    run_pipeline(cfg, out, progress=False, log=lines.append)
    return out, lines


def csv_rows(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_mlflow_store_holds_params_curves_final_metrics_and_artefacts(tracked_run):
    from mlflow.tracking import MlflowClient

    run, lines = tracked_run
    assert not [ln for ln in lines if "warning: tracking" in ln]
    client = MlflowClient(tracking_uri=(run / "mlruns").as_uri())
    exp = client.get_experiment_by_name("tiny")
    (found,) = client.search_runs([exp.experiment_id])
    assert found.info.run_name == json.loads((run / "run.json").read_text())["run_id"]
    assert found.info.status == "FINISHED"
    p = found.data.params
    assert p["student.epochs"] == "4" and p["data.hpo.num_diseases"] == "12" and p["name"] == "tiny"
    assert p["student.methods.kg_guided.losses.1.name"] == "kd" and (p["train.tracking.0"], p["train.tracking.1"]) == ("mlflow", "tensorboard")
    for stage, folder in (("teacher", run / "logs"), ("student_kd", run / "logs"),
                          ("calibration/student_kg_guided", run / "logs" / "calibration")):
        rows = csv_rows(folder / f"{stage.split('/')[-1]}.csv")
        hist = client.get_metric_history(found.info.run_id, f"{stage}/val_mrr")
        assert [(m.step, m.value) for m in sorted(hist, key=lambda m: m.step)] == [
            (int(r["epoch"]), float(r["val_mrr"])) for r in rows]
    methods = json.loads((run / "metrics.json").read_text())["methods"]
    assert found.data.metrics["test/kg_guided/seen_top1"] == methods["kg_guided"]["seen"]["top1"]
    assert found.data.metrics["test/teacher/unseen_mrr"] == methods["teacher"]["unseen"]["mrr"]
    names = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"report.md", "metrics.json", "config.yaml", "plots"} <= names
    assert {a.path for a in client.list_artifacts(found.info.run_id, "plots")} == {
        f"plots/{p.name}" for p in (run / "plots").glob("*.png")} != set()


def test_tensorboard_holds_each_stage_curve_and_the_final_metrics(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = tracked_run
    acc = EventAccumulator(str(run / "logs" / "tensorboard" / "student_kg_guided")).Reload()
    rows = csv_rows(run / "logs" / "student_kg_guided.csv")
    assert [(e.step, round(e.value, 5)) for e in acc.Scalars("val_mrr")] == [
        (int(r["epoch"]), round(float(r["val_mrr"]), 5)) for r in rows]
    assert (run / "logs" / "tensorboard" / "calibration" / "teacher").is_dir()
    final = EventAccumulator(str(run / "logs" / "tensorboard" / "final")).Reload()
    methods = json.loads((run / "metrics.json").read_text())["methods"]
    assert final.Scalars("test/kd/seen_top1")[0].value == pytest.approx(methods["kd"]["seen"]["top1"], abs=1e-6)


def test_tracking_changes_no_result(tracked_run, tiny_run):
    run, _ = tracked_run
    ours, theirs = (json.loads((r / "metrics.json").read_text()) for r in (run, tiny_run))
    assert ours["methods"] == theirs["methods"] and ours["training"].keys() == theirs["training"].keys()
    for f in sorted((tiny_run / "checkpoints").glob("*.safetensors")):
        a, b = load_file(str(f)), load_file(str(run / "checkpoints" / f.name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f.name


def test_a_tracking_failure_is_one_warning_and_the_run_stays_as_it_was(tiny_run, tiny_config_with, tmp_path):
    import shutil

    from kgdistill.train.tracking import track_run

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    cfg = tiny_config_with("train.tracking=[mlflow]", "train.tracking_uri=http://127.0.0.1:9")
    lines: list[str] = []
    track_run(cfg, run, lines.append)
    assert len(lines) == 1 and lines[0].startswith("[kgdistill] warning: tracking with mlflow failed (")
    assert lines[0].endswith("the run and its results are complete and unaffected")
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_bad_tracking_settings_name_the_key(tiny_config_with):
    from kgdistill.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train\.tracking\.0: .*'tensorboard' or 'mlflow'"):
        tiny_config_with("train.tracking=[wandb]")
    with pytest.raises(ConfigError, match=r"train\.tracking: each tool once"):
        tiny_config_with("train.tracking=[mlflow, mlflow]")
