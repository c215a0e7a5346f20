"""End to end on real data: the run directory is complete, honest and reusable by eval and predict."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chance import ALPHA, p_group  # noqa: E402

from kgdistill.errors import DataError, RunDirError  # noqa: E402

REQUIRED = ("teacher", "student_alone", "kd", "text_baseline", "kg_guided")


def test_run_directory_is_complete(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["status"] == "complete" and info["finished"]
    import subprocess

    import kgdistill

    assert info["code"]["version"] == kgdistill.__version__
    repo = Path(kgdistill.__file__).resolve().parents[1]
    if (repo / ".git").exists():  # which commit trained it, so a figure can be traced to its code
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert info["code"]["commit"] == head.strip() and isinstance(info["code"]["modified"], bool)
    for f in ("config.yaml", "metrics.json", "report.md", "calibration.json", "plots/training_curves.png",
              "plots/shared_space.png", "logs/teacher.csv", "logs/student_kg_guided.csv", "graph/nodes.csv",
              "checkpoints/teacher.safetensors", "checkpoints/student_kg_guided.safetensors",
              "checkpoints/validation_scores.safetensors",
              "alignments/concepts.csv", "alignments/samples.csv", "alignments/per_concept.csv",
              "alignments/embeddings.safetensors"):
        assert (tiny_run / f).is_file(), f
    assert (tiny_run / "plots/shared_space.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tiny_run.rglob("*.pt")) and not list(tiny_run.rglob("*.pkl"))  # no pickle anywhere


def test_metrics_have_the_promised_shape(tiny_run):
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert m["chance_top1"] == pytest.approx(1 / 12)
    for name in REQUIRED:
        entry = m["methods"][name]
        for group in ("seen", "unseen"):
            for key in ("top1", "top10", "mrr"):
                assert 0.0 <= entry[group][key] <= 1.0
        assert entry["seen"]["top1"] <= entry["seen"]["top10"]
    for name in ("student_alone", "kd", "kg_guided"):
        severity = m["methods"][name]["mistake_severity"]
        if severity is None:  # no wrong top-1 guess, so no mistake to weigh
            assert m["methods"][name]["all"]["top1"] == 1.0, name
        else:
            assert 0.0 <= severity <= 1.0, name
    assert m["num_seen"] + m["num_unseen"] == 12


def test_the_tiny_run_trains_and_its_fused_row_is_the_baselines(tiny_run):
    """The shared tiny run (4 epochs, 36 test samples) is too small to show learning: a random model would pass
    its old bounds (teacher MRR > 3x chance top-1, fused unseen top-10 >= chance) about half the time.  What it
    can show: training lowers the teacher's loss, and kg_guided's figures here are the training-free text
    baseline's (fused, and already perfect), so the student's own space is the ``kg_guided_no_fusion`` row.
    Learning is shown where a random model passes with p < 1/1000: tests/test_it_learns.py, and
    test_pipeline_trains_with_sampled_neighbourhoods / test_generic_path_on_the_fault_taxonomy."""
    m = json.loads((tiny_run / "metrics.json").read_text())
    methods = m["methods"]
    assert methods["kg_guided"]["calibration"]["beta"] > 0 and "kg_guided_no_fusion" in methods
    assert methods["kg_guided_no_fusion"]["calibration"]["beta"] == 0.0
    log = (tiny_run / "logs" / "teacher.csv").read_text().splitlines()
    header = log[0].split(",")
    first, last = (dict(zip(header, r.split(","))) for r in (log[1], log[-1]))
    assert float(last["loss_total"]) < float(first["loss_total"])


def test_eval_reproduces_metrics_from_checkpoints(tiny_run):
    from kgdistill.reevaluate import evaluate_run

    saved = json.loads((tiny_run / "metrics.json").read_text())["methods"]
    again = evaluate_run(tiny_run)["methods"]
    for name in REQUIRED:
        for group in ("seen", "unseen"):
            for key in ("top1", "top10", "mrr"):
                assert again[name][group][key] == pytest.approx(saved[name][group][key], abs=1e-6), (name, group, key)


def test_predict_ranks_concepts_with_graph_evidence(tiny_run):
    from kgdistill.predict import Predictor

    p = Predictor.from_run_dir(tiny_run)
    note = (tiny_run / "data" / "note.txt").read_text().splitlines()[0]
    [res] = p.predict_texts([note], top_k=5)
    assert len(res) == 5
    assert [r.score for r in res] == sorted((r.score for r in res), reverse=True)
    assert set(r.concept_id for r in res) <= set(p.candidates)
    assert any(r.evidence for r in res)
    ev = next(e for r in res for e in r.evidence)
    assert ev.text in note and ev.finding_id.startswith("HP:")
    z = p.embed_texts([note, "Seizures and hypotonia."])
    assert z.shape == (2, p.model.concepts.shape[1])
    assert torch.allclose(torch.linalg.norm(torch.from_numpy(z), dim=1), torch.ones(2), atol=1e-5)
    with pytest.raises(DataError, match="empty text"):
        p.embed_texts([" "])


def test_incomplete_run_is_refused(tiny_run, tmp_path):
    import shutil

    from kgdistill.predict import Predictor
    from kgdistill.run_dir import RunDir

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    RunDir(broken).update(status="running")
    with pytest.raises(RunDirError, match="run is not complete"):
        Predictor.from_run_dir(broken)
    with pytest.raises(RunDirError, match="not a run directory"):
        RunDir.open(tmp_path)


def test_failed_run_is_marked_failed_not_complete(tmp_path, tiny_config):
    from kgdistill.pipeline import run_pipeline

    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "dataset.yaml").write_text("graph: g.csv\nsamples: s.tsv\nmodalities: {a: {kind: text, path: a.txt}}\n")
    (ds / "s.tsv").write_text("id\tlabel\tsplit\nx\tNOPE\ttrain\ny\tB\ttest\n")
    (ds / "a.txt").write_text("one.\ntwo.\n")
    (ds / "g.csv").write_text("source,target\nA,B\n")
    cfg = tiny_config.model_copy(update={"data": tiny_config.data.model_copy(update={"source": "paired", "path": str(ds)})})
    with pytest.raises(DataError, match=r"s.tsv:2: label 'NOPE'"):
        run_pipeline(cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "failed" and "NOPE" in info["error"]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_generic_path_on_the_fault_taxonomy(tmp_path, cli):
    """Concept-set teacher and vector student over a Turtle graph, through the same pipeline."""
    import subprocess
    import sys
    from pathlib import Path

    from kgdistill.config import load_config
    from kgdistill.pipeline import run_pipeline

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "scripts" / "make_fault_example.py"), str(tmp_path / "data"),
                    "--train", "12", "--test", "4"], check=True, capture_output=True)
    cfg = load_config(root / "configs" / "machine_faults.yaml",
                      [f"data.path={tmp_path / 'data'}", "teacher.epochs=15", "student.epochs=15"])
    rd = run_pipeline(cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    m = rd.metrics()
    assert "unseen" not in m["methods"]["nearest_centroid"]  # it cannot rank unseen faults
    # 84 seen test samples, 25 faults: top-1 counts a random ranking reaches with p < 1/1000 (binomial tail;
    # about 44 of 84 are reached, p ~ 1e-30)
    for method in ("teacher", "kg_guided"):
        seen = m["methods"][method]["seen"]
        assert seen["n"] == 84 and p_group(seen, 25, "top1") < ALPHA, (method, seen)
    out = cli("predict", str(rd.path), "--input", str(tmp_path / "data" / "vibration.npy"), "--top-k", "3", "--json")
    assert out.returncode == 0, out.stderr
    preds = json.loads(out.stdout)
    n_samples = len((tmp_path / "data" / "samples.tsv").read_text().splitlines()) - 1
    assert len(preds) == n_samples
    assert all(len(p) == 3 for p in preds)


def test_the_run_directory_saves_absolute_paths(tmp_path, monkeypatch, tiny_config):
    """eval, predict and --resume read the saved config from wherever they are started."""
    from kgdistill.run_dir import RunDir

    monkeypatch.chdir(tmp_path)
    cfg = tiny_config.model_copy(update={"data": tiny_config.data.model_copy(update={"path": "data/ds"}),
                                         "graph": tiny_config.graph.model_copy(update={"path": "bolt://h:1"})})
    rd = RunDir.create(tmp_path / "run", cfg)
    saved = rd.config()
    assert saved.data.path == str(tmp_path / "data" / "ds") and saved.graph.path == "bolt://h:1"
    monkeypatch.chdir("/")
    _, resumed = RunDir.resume(tmp_path / "run", cfg.with_absolute_paths(tmp_path))  # the same config, written relatively
    assert resumed == saved


def test_reduced_gnn_inputs_train_and_evaluate_again_from_checkpoints(tmp_path, cli):
    """gnn.input_dim: the GNN reads principal components; eval rebuilds the same ones, so saved weights give the
    saved metrics.  Too many components is a one-line error naming the key, and the run is marked failed."""
    import subprocess
    import sys
    from pathlib import Path

    from kgdistill.reevaluate import evaluate_run

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "scripts" / "make_fault_example.py"), str(tmp_path / "data"),
                    "--train", "8", "--test", "3"], check=True, capture_output=True)
    common = [str(root / "configs" / "machine_faults.yaml"), "--set", f"data.path={tmp_path / 'data'}",
              "--set", "teacher.epochs=6", "--set", "student.epochs=4", "--quiet"]
    out = cli("train", *common, "--set", "gnn.input_dim=8", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["methods"]
    # the GNN reads 8 components and kg_guided still ranks 63 seen samples (25 faults) so well within its top 10
    # that a random ranking would do it with p < 1/1000 (binomial tail; about 1e-8 seen)
    assert saved["kg_guided"]["seen"]["n"] == 63 and p_group(saved["kg_guided"]["seen"], 25, "top10") < ALPHA
    again = evaluate_run(tmp_path / "run")["methods"]
    assert again["kg_guided"]["seen"]["mrr"] == pytest.approx(saved["kg_guided"]["seen"]["mrr"], abs=1e-6)

    bad = cli("train", *common, "--set", "gnn.input_dim=5000", "--out", str(tmp_path / "bad"))
    assert bad.returncode != 0
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "gnn.input_dim: 5000 is more than the" in lines[0], bad.stderr
    assert json.loads((tmp_path / "bad" / "run.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("baseline", ["likelihood", "set_match", "mean"])
def test_each_text_baseline_through_the_pipeline_and_the_predictor(tmp_path, tiny_config_with, baseline):
    """eval.text_baseline through the real pipeline: the training-free baseline ranks unseen diseases, and the
    predictor (fed the test notes as plain text) ranks exactly as the run's evaluation did, fusion included."""
    import csv

    from kgdistill.pipeline import run_pipeline
    from kgdistill.predict import Predictor

    rd = run_pipeline(tiny_config_with(f"eval.text_baseline={baseline}", "eval.plots=false"), tmp_path / "run",
                      progress=False, log=lambda *_: None).path
    m = json.loads((rd / "metrics.json").read_text())
    assert m["methods"]["text_baseline"]["unseen"]["top1"] > m["chance_top1"]

    p = Predictor.from_run_dir(rd)
    assert p.model.text_baseline.registry_name == baseline
    assert p.model.calibrations["kg_guided"].beta > 0  # the baseline is part of the scores compared below
    with open(rd / "data" / "samples.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    notes = (rd / "data" / "note.txt").read_text().splitlines()
    test = [(notes[i], r["label"]) for i, r in enumerate(rows) if r["split"] == "test"]
    preds = p.predict_texts([n for n, _ in test], top_k=1)
    top1 = sum(res[0].concept_id == label for res, (_, label) in zip(preds, test)) / len(test)
    assert top1 == pytest.approx(m["methods"]["kg_guided"]["all"]["top1"], abs=1e-6)
    from kgdistill.errors import RunDirError

    p.model.text_baseline.dim += 1  # as if the run were read with another text model
    with pytest.raises(RunDirError, match="text model gives"):
        p.predict_texts([test[0][0]])


def _figures(methods: dict) -> dict[str, float]:
    """Every number of a metrics.json ``methods`` entry, by its path."""
    out: dict[str, float] = {}

    def walk(node, key):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else k)
        elif isinstance(node, (int, float)):
            out[key] = float(node)

    walk(methods, "")
    return out


@pytest.fixture(scope="module")
def mean_run(tmp_path_factory, tiny_config_with):
    """The tiny run trained from scratch with the mean-embedding text baseline."""
    from kgdistill.pipeline import run_pipeline

    return run_pipeline(tiny_config_with("eval.text_baseline=mean", "eval.plots=false"),
                        tmp_path_factory.mktemp("runs") / "mean", progress=False, log=lambda *_: None).path


def test_evaluating_again_with_another_text_baseline_equals_training_with_it(tmp_path, tiny_run, mean_run, cli):
    """`eval RUN --set eval.text_baseline=... --out NEW` reuses the trained models and chooses the fused methods'
    calibration again from the validation scores the run kept, training nothing: every figure equals that of a
    run trained from scratch with that baseline."""
    from kgdistill.eval.calibration import ValidationScores
    from kgdistill.predict import Predictor

    again = tmp_path / "again"
    r = cli("eval", str(tiny_run), "--set", "eval.text_baseline=mean", "--out", str(again))
    assert r.returncode == 0, r.stderr
    # the fusion weight is not copied from the source
    assert "calibration of kg_guided chosen again from the calibration pass's saved validation scores" in r.stdout
    assert "| kg_guided |" in r.stdout and str(again) in r.stdout
    info = json.loads((again / "run.json").read_text())
    assert info["status"] == "complete" and info["reevaluated_from"] == str(tiny_run.resolve())
    assert info["trained_with_code"] == json.loads((tiny_run / "run.json").read_text())["code"]
    _assert_same_results(again, mean_run)
    chosen = [json.loads((d / "calibration.json").read_text())["kg_guided"] for d in (again, tiny_run)]
    assert chosen[0] != chosen[1]  # chosen with the new baseline (here its validation figures differ)
    assert Predictor.from_run_dir(again).model.text_baseline.registry_name == "mean"
    assert (again / "data" / "dataset.yaml").read_bytes() == (tiny_run / "data" / "dataset.yaml").read_bytes()
    for f in ("alignments/samples.csv", "report.md", "logs/teacher.csv", "plots/training_curves.png"):
        assert (again / f).is_file(), f
    kept = {d: ValidationScores.load(d / "checkpoints" / "validation_scores.safetensors") for d in (again, mean_run)}
    assert kept[again].scores.keys() == kept[mean_run].scores.keys() == {"kg_guided"}  # the fused method's only
    assert torch.equal(kept[again].scores["kg_guided"], kept[mean_run].scores["kg_guided"])
    assert torch.equal(kept[again].val, kept[mean_run].val) and torch.equal(kept[again].held, kept[mean_run].held)


def test_a_run_without_validation_scores_is_evaluated_again_by_retraining_its_calibration_pass(
        tmp_path, tiny_run, mean_run):
    """Runs made before the scores were kept: the calibration pass of the fused methods trains again, with
    the same result, and the new run keeps the scores so that its next re-evaluation trains nothing."""
    import shutil

    from kgdistill.reevaluate import reevaluate_run

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    (old / "checkpoints" / "validation_scores.safetensors").unlink()
    said: list[str] = []
    again = reevaluate_run(old, tmp_path / "again", ["eval.text_baseline=mean"], progress=False, log=said.append).path
    from kgdistill.eval.calibration import ValidationScores

    assert any("calibration of kg_guided chosen again by training its calibration pass again" in m for m in said)
    _assert_same_results(again, mean_run)
    kept = [ValidationScores.load(d / "checkpoints" / "validation_scores.safetensors") for d in (again, mean_run)]
    assert torch.equal(kept[0].scores["kg_guided"], kept[1].scores["kg_guided"])  # the very models retrained


def test_validation_scores_that_do_not_match_the_data_are_refused(tmp_path, tiny_run):
    import shutil

    from kgdistill.eval.calibration import ValidationScores
    from kgdistill.reevaluate import reevaluate_run

    odd = tmp_path / "odd"
    shutil.copytree(tiny_run, odd)
    path = odd / "checkpoints" / "validation_scores.safetensors"
    kept = ValidationScores.load(path)
    ValidationScores(kept.val, ~kept.held, kept.scores).save(path)
    with pytest.raises(RunDirError, match="scores other validation samples or held-out concepts"):
        reevaluate_run(odd, tmp_path / "new", ["eval.text_baseline=mean"], progress=False, log=lambda *_: None)
    assert not (tmp_path / "new").exists()

    ValidationScores(kept.val, kept.held.to(torch.uint8), kept.scores).save(path)  # 0/1 would pass as a mask
    with pytest.raises(RunDirError, match=r"expected tensors val \(int64 \[n\]\), held \(bool"):
        reevaluate_run(odd, tmp_path / "new", ["eval.text_baseline=mean"], progress=False, log=lambda *_: None)
    assert not (tmp_path / "new").exists()

    path.write_bytes(b"not safetensors")  # damaged: refused before anything is written
    with pytest.raises(RunDirError, match="not a readable safetensors checkpoint"):
        reevaluate_run(odd, tmp_path / "new", ["eval.text_baseline=mean"], progress=False, log=lambda *_: None)
    assert not (tmp_path / "new").exists()


def _assert_same_results(a: Path, b: Path) -> None:
    want = _figures(json.loads((b / "metrics.json").read_text())["methods"])
    got = _figures(json.loads((a / "metrics.json").read_text())["methods"])
    assert got.keys() == want.keys()
    assert {k: round(v, 6) for k, v in got.items()} == {k: round(v, 6) for k, v in want.items()}
    assert json.loads((a / "calibration.json").read_text()) == json.loads((b / "calibration.json").read_text())


def test_evaluating_again_refuses_settings_that_change_training(tmp_path, tiny_run, cli):
    bad = cli("eval", str(tiny_run), "--set", "student.epochs=9", "--out", str(tmp_path / "bad"))
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1, bad.stderr
    assert "--set student.epochs: changes how the models are trained" in lines[0]
    assert not (tmp_path / "bad").exists()

    typo = cli("eval", str(tiny_run), "--set", "eval.text_baseline=bayes", "--out", str(tmp_path / "typo"))
    assert typo.returncode == 2 and "eval.text_baseline: unknown text baseline 'bayes'" in typo.stderr, typo.stderr
    assert not (tmp_path / "typo").exists()

    no_out = cli("eval", str(tiny_run), "--set", "eval.text_baseline=mean")
    assert no_out.returncode == 2 and "--set needs --out" in no_out.stderr, no_out.stderr

    itself = cli("eval", str(tiny_run), "--set", "eval.text_baseline=mean", "--out", str(tiny_run))
    assert itself.returncode == 2 and "--out names the run itself" in itself.stderr, itself.stderr


def test_evaluating_a_damaged_run_again_fails_before_writing_anything(tmp_path, tiny_run, cli):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_run, damaged)
    (damaged / "checkpoints" / "student_kd.safetensors").unlink()
    r = cli("eval", str(damaged), "--set", "eval.text_baseline=mean", "--out", str(tmp_path / "new"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "checkpoints/student_kd.safetensors is missing" in lines[0]
    assert not (tmp_path / "new").exists()


def test_an_unfinished_evaluation_is_not_resumed_as_training(tmp_path, tiny_run):
    """A re-evaluation killed half-way (SIGKILL: no cleanup) copies models and trains nothing, so resuming it
    would train from scratch under its name; resume refuses it, naming what to do."""
    from kgdistill.pipeline import run_pipeline
    from kgdistill.run_dir import RunDir

    rd = RunDir.create(tmp_path / "half", RunDir.open(tiny_run).config())
    rd.update(reevaluated_from=str(tiny_run))
    with pytest.raises(RunDirError, match="an unfinished evaluation of .* delete it and run kgdistill eval"):
        run_pipeline(None, rd.path, progress=False, log=lambda *_: None, resume=True)
