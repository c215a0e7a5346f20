"""DistilledModel: the one reader and writer of a trained run (checkpoints/), and runs saved before it."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml


def _legacy_copy(run, dest):
    """The run as the code before DistilledModel saved it: old config keys, ``prototype.*`` tensors, no
    model.json, the baseline row called ``prototype``."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(run, dest)
    cfg = yaml.safe_load((dest / "config.yaml").read_text())
    for m in cfg["student"]["methods"].values():
        m["prototypes"] = m.pop("concepts")
    tb = cfg["eval"].pop("text_baseline")
    cfg["eval"]["prototype"] = tb.pop("name")
    cfg["eval"]["prototype_params"] = tb
    cfg["gnn"]["heads"] = 2
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t = load_file(str(dest / "checkpoints" / "concepts.safetensors"))
    save_file({k.replace("text_baseline.", "prototype."): v for k, v in t.items()},
              str(dest / "checkpoints" / "concepts.safetensors"))
    (dest / "checkpoints" / "model.json").unlink()
    m = json.loads((dest / "metrics.json").read_text())
    m["methods"]["prototype"] = m["methods"].pop("text_baseline")
    (dest / "metrics.json").write_text(json.dumps(m))
    return dest


def test_the_loaded_model_scores_the_test_set_as_the_run_did(tiny_run):
    """Saved, loaded with the task, scored again: every figure of metrics.json, exactly."""
    from kgdistill.model import DistilledModel
    from kgdistill.results import evaluate
    from kgdistill.run_dir import RunDir
    from kgdistill.task import build_task

    rd = RunDir.open(tiny_run)
    cfg = rd.config()
    task = build_task(cfg, rd.path, torch.device("cpu"))
    model = DistilledModel.load(tiny_run, task)
    assert model.roles.student_kind == "text" and model.roles.teacher_kind == "concept_set"
    assert set(model.students) == set(cfg.student.methods) and model.teacher is not None
    methods, final = evaluate(cfg, task, model, torch.device("cpu"))
    assert methods == rd.metrics()["methods"]
    assert list(final)[0] == "text_baseline"


def test_students_alone_score_new_text_as_evaluation_scored_it(tiny_run):
    """Without the data (predict), the student's final scores of a test note equal those of the loaded model
    with its task: raw cosine, calibration and fusion with the text baseline, one code path."""
    from kgdistill.model import DistilledModel
    from kgdistill.run_dir import RunDir
    from kgdistill.task import build_task

    rd = RunDir.open(tiny_run)
    task = build_task(rd.config(), rd.path, torch.device("cpu"))
    full = DistilledModel.load(tiny_run, task)
    alone = DistilledModel.load(tiny_run)
    assert alone.teacher is None and alone.calibrations["kg_guided"].beta > 0
    te = task.idx("test")[:3]
    notes = [task.ds.modalities[task.student_modality].values[i] for i in te]
    raw = full.task_scores(task, te, torch.device("cpu"))
    expected = full.final_scores(raw, task.baseline_scores(te))["kg_guided"]
    assert torch.allclose(alone.score_texts(notes, "kg_guided"), expected, atol=1e-5)


def test_a_run_saved_before_the_model_object_loads_and_scores_as_it_ran(tiny_run, tmp_path, cli):
    """Old key names, ``prototype.*`` tensors, no checkpoints/model.json: eval and predict read it silently and
    give the figures it was saved with."""
    old = _legacy_copy(tiny_run, tmp_path / "old")
    res = cli("eval", str(old), "--json")
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr  # a saved run was valid when written: no nagging
    now = json.loads(res.stdout)["methods"]
    saved = json.loads((old / "metrics.json").read_text())["methods"]
    saved["text_baseline"] = saved.pop("prototype")
    assert now == saved
    from kgdistill.predict import Predictor

    note = (old / "data" / "note.txt").read_text().splitlines()[0]
    a = Predictor.from_run_dir(old).predict_texts([note], top_k=3)[0]
    b = Predictor.from_run_dir(tiny_run).predict_texts([note], top_k=3)[0]
    assert [(p.concept_id, round(p.score, 5)) for p in a] == [(p.concept_id, round(p.score, 5)) for p in b]


def test_a_config_file_with_old_keys_trains_with_one_warning_line(tmp_path, cli):
    """A user's YAML with the old names runs (config checked, here by a failing data path) and says once which
    keys were renamed, as one line."""
    cfg = tmp_path / "old.yaml"
    cfg.write_text("base: quick.yaml\neval: {prototype: set_match}\nstudent:\n  methods:\n    kg_guided:\n"
                   "      prototypes: gnn\n      losses: [{name: ce}]\n")
    from kgdistill.config import load_config

    with pytest.warns(FutureWarning) as caught:
        loaded = load_config(cfg)
    assert loaded.eval.text_baseline.name == "set_match" and loaded.student.methods["kg_guided"].concepts == "gnn"
    assert len(caught) == 1 and "student.methods.kg_guided.prototypes -> concepts" in str(caught[0].message)
    res = cli("train", str(cfg), "--set", "data.source=paired", "--set", f"data.path={tmp_path / 'none'}",
              "--out", str(tmp_path / "run"))
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("kgdistill: warning: ")]
    assert len(warnings) == 1 and "eval.prototype -> eval.text_baseline" in warnings[0], res.stderr


def test_a_damaged_model_description_is_one_line(tiny_run, tmp_path, cli):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_run, bad)
    (bad / "checkpoints" / "model.json").write_text("{}")
    res = cli("predict", str(bad), "--text", "Seizures.")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "model.json: damaged model description" in res.stderr


def test_a_wdcnn_student_loads_without_the_run_data(tmp_path):
    """WDCNN sizes its dense layer from the series length, which the standardisation tables (shared over time)
    do not hold: the model keeps one sample's shape, so the students alone score new windows exactly as the
    model loaded with its data does (this failed before the shape was kept)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from deploy_fixtures import train_sensor_run

    from kgdistill.model import DistilledModel
    from kgdistill.run_dir import RunDir
    from kgdistill.task import build_task

    run = train_sensor_run(tmp_path, ["student.encoder={name: wdcnn}", "student.epochs=2", "teacher.epochs=2"],
                           per_class=(4, 2, 2))
    rd = RunDir.open(run)
    task = build_task(rd.config(), rd.path, torch.device("cpu"))
    full, alone = DistilledModel.load(run, task), DistilledModel.load(run, methods=["kg_guided"])
    assert alone.input_scaling["shape"].tolist() == [2, 1024]
    x = torch.from_numpy(task.ds.modalities[task.student_modality].values[task.idx("test")]).float()
    assert torch.allclose(alone.score_inputs("kg_guided", x), full.score_inputs("kg_guided", x), atol=1e-5)
