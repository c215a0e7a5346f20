"""kgdistill export: the ONNX artefact scores like the PyTorch student, its manifest is checked on load, and
compression does what it says.  Tolerance: fp32 scores within 1e-4 (absolute) of DistilledModel's."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_fixtures import sensor_export, sensor_run, text_export  # noqa: E402,F401 - fixtures

FP32_TOL = 1e-4


def _test_inputs(run, kind):
    from kgdistill.data.paired import load_paired
    from kgdistill.run_dir import RunDir

    cfg = RunDir.open(run).config()
    ds = load_paired(run / "data" if (run / "data" / "dataset.yaml").is_file() else cfg.data.path)
    values = ds.modalities[ds.student].values
    idx = ds.split_idx("test")
    return [values[i] for i in idx] if kind == "text" else np.asarray(values[idx], dtype=np.float32)


def test_text_export_scores_like_the_student_on_the_test_set(tiny_run, text_export):
    from kgdistill.deploy.onnx_model import ExportedModel
    from kgdistill.model import DistilledModel

    texts = _test_inputs(tiny_run, "text")
    want = DistilledModel.load(tiny_run, methods=["kg_guided"]).score_texts(texts, "kg_guided").numpy()
    got = ExportedModel(text_export).score_texts(texts)[0]
    assert got.shape == want.shape == (len(texts), 12)
    assert np.abs(got - want).max() < FP32_TOL
    assert (got.argmax(1) == want.argmax(1)).all()


#: issue 16's note (a negated sentence), one with hypothetical, family-history and negated sentences, and the first
#: one with its finding affirmed: unique sentences in order, with their polarity (+1 affirmed, -1 negated, 0 dropped)
NEGATION_NOTES = [
    "The child has seizures and global developmental delay. MRI showed cerebellar hypoplasia. No hearing loss.",
    "Possible scoliosis. His brother has autism. Hypotonia was noted. Hearing loss was ruled out.",
    "The child has seizures and global developmental delay. MRI showed cerebellar hypoplasia. Hearing loss.",
]
POLARITY = [1, 1, -1, 0, 0, 1, -1, 1]


def _scores_like_the_student(model, exported, texts):
    """Within the tolerance of the student's scores, and far from them read with every sentence affirmed."""
    want = model.score_texts(texts, "kg_guided").numpy()
    got = exported.score_texts(texts)[0]
    assert got.shape == want.shape == (len(texts), 12)
    assert np.abs(got - want).max() < FP32_TOL
    x, table, per, _ = model.text_inputs(NEGATION_NOTES)
    affirmed = model.score_inputs("kg_guided", x, table, None, model.sentences_of(x, per)).numpy()
    assert np.abs(got[:len(NEGATION_NOTES)] - affirmed).max() > 1e-3


def test_text_export_reads_negated_hypothetical_and_family_sentences_as_the_student(tiny_run, text_export):
    from kgdistill.deploy.onnx_model import ExportedModel
    from kgdistill.model import DistilledModel

    exported = ExportedModel(text_export)
    notes, sentences, _, polarity = exported.text_inputs(NEGATION_NOTES)
    assert polarity.tolist() == POLARITY and sentences[2] == "No hearing loss."
    assert notes.tolist() == [[0, 1, 2, -1], [3, 4, 5, 6], [0, 1, 7, -1]]
    model = DistilledModel.load(tiny_run, methods=["kg_guided"])
    _scores_like_the_student(model, exported, NEGATION_NOTES + _test_inputs(tiny_run, "text")[:6])


@pytest.mark.parametrize("baseline", ["likelihood", "mean"])
def test_fused_baselines_read_polarity_as_the_student(tiny_run, text_export, tmp_path, baseline):
    """The tiny run fuses no baseline; here each exportable one is fused (beta 0.5) into its model and export."""
    from kgdistill.deploy.export import _text_graphs, _write_onnx
    from kgdistill.deploy.onnx_model import ExportedModel
    from kgdistill.eval.calibration import Calibration
    from kgdistill.eval.text_baseline import build_text_baseline
    from kgdistill.graph.loader import load_graph
    from kgdistill.model import DistilledModel

    model = DistilledModel.load(tiny_run, methods=["kg_guided"])
    kg = load_graph(tiny_run / "graph")
    nodes = np.array([kg.index[c] for c in model.candidates])
    model.text_baseline = build_text_baseline(baseline, kg, nodes, torch.from_numpy(model.embedder.embed(kg.names)))
    model.calibrations["kg_guided"] = Calibration(gamma=0.1, beta=0.5)
    copy = tmp_path / "fused"
    shutil.copytree(text_export, copy)
    _write_onnx(_text_graphs(model, "kg_guided")[0], copy, None)      # model.onnx; sentences.onnx as exported
    exported = ExportedModel(copy, verify=False)
    _scores_like_the_student(model, exported, NEGATION_NOTES + _test_inputs(tiny_run, "text")[:6])
    x, table, _, polarity = model.text_inputs(NEGATION_NOTES)
    read = model.text_baseline.scores
    assert (read(x, table, polarity) - read(x, table)).abs().max() > 1e-3     # the baseline's own polarity term


def test_sensor_export_scores_like_the_student_on_the_test_set(sensor_run, sensor_export):
    from kgdistill.deploy.onnx_model import ExportedModel
    from kgdistill.model import DistilledModel

    x = _test_inputs(sensor_run, "timeseries")
    want = DistilledModel.load(sensor_run, methods=["kg_guided"]).score_inputs("kg_guided", torch.from_numpy(x))
    model = ExportedModel(sensor_export)
    got = model.score_inputs(x)
    assert np.abs(got - want.numpy()).max() < FP32_TOL
    assert model.inputs["shape"] == [2, None]      # channels fixed, time steps free (standardised over time)
    opts = model.session.get_session_options()   # every input length is a new shape: no buffers kept per shape
    assert not opts.enable_cpu_mem_arena and not opts.enable_mem_pattern
    assert np.abs(model.score_inputs(x[:, :, :512]) - DistilledModel.load(sensor_run, methods=["kg_guided"])
                  .score_inputs("kg_guided", torch.from_numpy(x[:, :, :512])).numpy()).max() < FP32_TOL


def test_manifest_records_the_source_and_every_file(tiny_run, text_export):
    m = json.loads((text_export / "manifest.json").read_text())
    run = json.loads((tiny_run / "run.json").read_text())
    assert m["source_run"]["run_id"] == run["run_id"] and m["method"] == "kg_guided"
    assert m["candidates"] == 12 and m["student"]["kind"] == "text"
    assert m["graph"]["nodes"] > 12 and m["graph"]["edges"] > 0
    on_disk = {p.relative_to(text_export).as_posix() for p in text_export.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(m["files"]) == on_disk
    assert {"model.onnx", "sentences.onnx", "concepts.json", "tokenizer/tokenizer.json",
            "findings.safetensors"} <= on_disk
    for name, digest in m["files"].items():
        assert hashlib.sha256((text_export / name).read_bytes()).hexdigest() == digest
    cands = json.loads((text_export / "concepts.json").read_text())["candidates"]
    assert [c["id"] for c in cands] == (tiny_run / "checkpoints" / "candidates.txt").read_text().split()
    lo = m["validation_best_score"]
    assert lo["samples"] == 36 and lo["min"] <= lo["p05"] <= lo["p50"] <= lo["max"]


def test_a_changed_or_missing_file_is_refused_in_one_line(text_export, tmp_path):
    from kgdistill.deploy.onnx_model import ExportedModel
    from kgdistill.errors import ArtefactError

    copy = tmp_path / "copy"
    shutil.copytree(text_export, copy)
    with open(copy / "concepts.json", "ab") as f:
        f.write(b" ")
    with pytest.raises(ArtefactError, match=r"concepts.json does not match its checksum in the manifest"):
        ExportedModel(copy)
    (copy / "concepts.json").unlink()
    with pytest.raises(ArtefactError, match=r"concepts.json is listed in the manifest but missing"):
        ExportedModel(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ArtefactError, match="no manifest.json: not an exported model"):
        ExportedModel(copy)


def test_predict_ranks_with_names_and_graph_evidence(tiny_run, text_export):
    from kgdistill.deploy.onnx_model import ExportedModel
    from kgdistill.predict import Predictor

    text = _test_inputs(tiny_run, "text")[0]
    ranked, best = ExportedModel(text_export).predict([text], top_k=3)
    want = Predictor.from_run_dir(tiny_run).predict_texts([text], 3)[0]
    assert [r.concept_id for r in ranked[0]] == [w.concept_id for w in want]
    assert [r.name for r in ranked[0]] == [w.name for w in want]
    assert best[0] == pytest.approx(ranked[0][0].score)
    for r, w in zip(ranked[0], want):
        assert [(e["text"], e["finding_id"]) for e in r.evidence] == [(e.text, e.finding_id) for e in w.evidence]


def test_int8_and_pruned_exports(tiny_run, text_export, cli, tmp_path):
    import onnx

    from kgdistill.deploy.onnx_model import ExportedModel
    from kgdistill.model import DistilledModel

    r = cli("export", str(tiny_run), "--out", str(tmp_path / "q"), "--quantize", "int8")
    assert r.returncode == 0, r.stderr
    for graph in ("model.onnx", "sentences.onnx"):          # the student's scoring and the sentence transformer
        ops = {n.op_type for n in onnx.load(str(tmp_path / "q" / graph)).graph.node}
        assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops, graph
    assert (tmp_path / "q" / "sentences.onnx").stat().st_size < 0.4 * (text_export / "sentences.onnx").stat().st_size
    texts = _test_inputs(tiny_run, "text")
    fp32, int8 = ExportedModel(text_export).score_texts(texts)[0], ExportedModel(tmp_path / "q").score_texts(texts)[0]
    assert np.isfinite(int8).all() and np.corrcoef(fp32.ravel(), int8.ravel())[0, 1] > 0.9

    r = cli("export", str(tiny_run), "--out", str(tmp_path / "p"), "--prune", "0.5")
    assert r.returncode == 0, r.stderr
    enc = DistilledModel.load(tiny_run, methods=["kg_guided"]).student("kg_guided").encoder
    n = sum(m.weight.numel() for m in enc.modules() if isinstance(m, torch.nn.Linear))
    m = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert m["variant"] == {"precision": "fp32", "pruned": 0.5, "pruned_weights": round(0.5 * n)}
    assert not np.allclose(ExportedModel(tmp_path / "p").score_texts(texts)[0], fp32)


@pytest.mark.parametrize("args,message", [
    (["--quantize", "int4"], "--quantize: 'int4'; expected one of int8"),
    (["--prune", "1.5"], "--prune: 1.5; expected a share of weights between 0 and 1"),
    (["--format", "tflite"], "--format: 'tflite'; expected onnx"),
    (["--method", "nope"], "method 'nope' not in this run"),
])
def test_bad_export_options_are_one_line(tiny_run, cli, tmp_path, args, message):
    r = cli("export", str(tiny_run), "--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x").exists()


def test_export_into_a_non_empty_folder_is_refused(tiny_run, cli, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    r = cli("export", str(tiny_run), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "--out exists and is not empty" in r.stderr
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_the_exported_model_reads_polarity_without_importing_torch(text_export):
    import subprocess

    code = ("import sys; from kgdistill.deploy.onnx_model import ExportedModel; "
            f"m = ExportedModel({str(text_export)!r}); print(m.text_inputs({NEGATION_NOTES!r})[3].tolist()); "
            "m.predict(['Seizures. No hearing loss.']); "
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'torch'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == [str([float(p) for p in POLARITY]), "[]"]
