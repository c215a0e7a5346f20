"""``kgdistill export``: a run's student as a folder ONNX Runtime scores without the training code.

The folder holds the ONNX graph of the student's scoring (calibrated, fused scores over every candidate; text: from
the sentence vectors, with the sentence transformer as a graph of its own, so the server can encode sentences in
length-sorted chunks without padding every one to the batch's longest), the candidates with their names, the
tokenizer (text), the linked findings' vectors (text evidence), and a manifest with the source run, the graph,
the validation range of best scores (drift) and checksums.
It is written beside ``--out`` and renamed into place only when complete."""
from __future__ import annotations

import json
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..data.paired import PairedDataset, load_paired
from ..data.prepare import STANDARDISE_AXES
from ..errors import ArtefactError, KGDistillError
from ..fileio import new_folder
from ..eval.calibration import Calibration
from ..graph.loader import load_graph
from ..model import REQUIRED, DistilledModel
from ..run_dir import RunDir
from . import artefact
from .compress import prune_weights, quantize_model
from .graphs import Head, InputScorer, SentenceEncoder, TextScorer, Traced, baseline_module

OPSET = 17
EVIDENCE_THRESHOLD = 0.55   # as kgdistill predict (Predictor)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def export_run(run_dir: str | Path, out: str | Path, *, method: str = "kg_guided", quantize: str | None = None,
               prune: float | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export ``method``'s student of a complete run into the new folder ``out``; returns the manifest."""
    rd = RunDir.open(run_dir, required=REQUIRED)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArtefactError("--out exists and is not empty; choose a new folder", source=str(out))
    model = DistilledModel.load(rd.path, methods=[method] if method in rd.config().student.methods else [])
    model.student(method)  # a method the run does not have: one clear error
    ds = _run_dataset(rd, model)
    graphs = _text_graphs(model, method) if model.roles.student_kind == "text" else [_input_graph(model, method, ds)]
    pruned = prune_weights(graphs[0].module.encoder, prune) if prune else 0
    with new_folder(out) as work:
        for traced in graphs:
            _write_onnx(traced, work, quantize)
        graph = _write_concepts(rd, model, work)
        info = _describe(rd, graph, model, method, ds, {"precision": quantize or "fp32", "pruned": prune or 0.0,
                                                         "pruned_weights": pruned})
        manifest = artefact.write_manifest(work, info)
    log(f"exported {method} ({model.roles.student_kind} student, {model.num_candidates} candidates) to {out}")
    return manifest


def _run_dataset(rd: RunDir, model: DistilledModel) -> PairedDataset | None:
    """The run's data (its copy under data/, else the configured path), for input shapes and the validation
    range; None when it is gone (then a text student exports without a validation range)."""
    for p in (rd.path / "data", rd.config().data.path):
        if p and (Path(p).expanduser() / "dataset.yaml").is_file() or (p and Path(p).expanduser().is_file()):
            try:
                return load_paired(Path(p).expanduser())
            except KGDistillError:
                continue
    if model.roles.student_kind != "text":
        raise ArtefactError("the run's data is gone: exporting a non-text student needs one sample to fix the "
                            "input shape", source=str(rd.path))
    return None


def _text_graphs(model: DistilledModel, method: str) -> list[Traced]:
    """The scoring graph (sentence vectors, notes, polarity -> scores) and the sentence encoder's (tokens ->
    sentence vectors)."""
    from ..encoders.text_embedder import load_text_model

    st = model.student(method)
    if getattr(st.encoder, "mode", "frozen") != "frozen":
        raise ArtefactError(f"{method}: export reads text students with a frozen sentence encoder only")
    tok, transformer = load_text_model(model.embedder.model_path, attn_implementation="eager")
    cal = model.calibrations.get(method, Calibration())
    fused = bool(cal.beta) and model.text_baseline is not None
    scorer = TextScorer(st.encoder, Head(st.concepts(), model.seen, cal.gamma), cal.beta,
                        baseline_module(model.text_baseline) if fused else None).eval()
    enc = tok(["One finding.", "Another finding was noted", "A third."], padding=True, return_tensors="pt")
    sentences = SentenceEncoder(transformer).eval()
    with torch.no_grad():
        table = sentences(enc["input_ids"], enc["attention_mask"])
    # an affirmed, a negated and a dropped sentence, so every polarity path is traced
    example = (table, torch.tensor([[0, 1], [2, -1]]), torch.tensor([1.0, -1.0, 0.0]))
    return [Traced(artefact.MODEL, scorer, example, (["sentence_vectors", "notes", "polarity"], ["scores"]),
                   {"sentence_vectors": {0: "sentences"}, "notes": {0: "batch", 1: "items"},
                    "polarity": {0: "sentences"}, "scores": {0: "batch"}}),
            Traced(artefact.SENTENCES, sentences, (enc["input_ids"], enc["attention_mask"]),
                   (["input_ids", "attention_mask"], ["sentence_vectors"]),
                   {"input_ids": {0: "sentences", 1: "tokens"}, "attention_mask": {0: "sentences", 1: "tokens"},
                    "sentence_vectors": {0: "sentences"}})]


def _input_graph(model: DistilledModel, method: str, ds: PairedDataset) -> Traced:
    st = model.student(method)
    cal = model.calibrations.get(method, Calibration())
    sc = model.input_scaling
    scorer = InputScorer(st.encoder, Head(st.concepts(), model.seen, cal.gamma), sc.get("mean"), sc.get("std"))
    sample = np.asarray(ds.modalities[model.roles.student].values[:2], dtype=np.float32)
    free = [a for a in STANDARDISE_AXES.get(model.roles.student_kind, ()) if a > 0]
    axes = {"inputs": {0: "batch", **{a: f"axis{a}" for a in free}}, "scores": {0: "batch"}}
    return Traced(artefact.MODEL, scorer.eval(), (torch.from_numpy(sample),), (["inputs"], ["scores"]), axes)


@torch.no_grad()
def _write_onnx(t: Traced, folder: Path, quantize: str | None) -> None:
    path = folder / t.file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(t.module, t.example, str(path), dynamo=False, opset_version=OPSET,
                          input_names=t.names[0], output_names=t.names[1], dynamic_axes=t.axes,
                          do_constant_folding=True)
    if quantize:
        fp32 = path.with_suffix(".fp32.onnx")
        path.rename(fp32)
        quantize_model(fp32, path, quantize)
        fp32.unlink()


def _write_concepts(rd: RunDir, model: DistilledModel, work: Path):
    """Candidates in score order with names and seen flags; text: each one's linked findings (by index into
    ``findings``), their name vectors and the tokenizer, for evidence and for reading notes."""
    from safetensors.numpy import save_file

    graph = load_graph(rd.path / "graph")
    text = model.roles.student_kind == "text"
    src, dst = np.asarray(graph.edge_src), np.asarray(graph.edge_dst)
    findings: dict[int, int] = {}
    rows = []
    for i, cid in enumerate(model.candidates):
        node = graph.index[cid]
        row: dict[str, Any] = {"id": cid, "name": graph.names[node], "seen": bool(model.seen[i])}
        if text:
            row["evidence"] = [findings.setdefault(int(j), len(findings)) for j in dst[src == node]]
        rows.append(row)
    table = [{"id": graph.ids[n], "name": graph.names[n]} for n in findings]
    (work / artefact.CONCEPTS).write_text(json.dumps({"candidates": rows, "findings": table}, ensure_ascii=False),
                                          encoding="utf-8")
    if text:
        names = [f["name"] for f in table]
        vectors = model.embedder.embed(names) if names else np.zeros((0, 1), np.float32)
        save_file({"vectors": np.ascontiguousarray(vectors, dtype=np.float32)}, str(work / artefact.FINDINGS))
        (work / artefact.TOKENIZER).mkdir()
        for name in TOKENIZER_FILES:
            if (Path(model.embedder.model_path) / name).is_file():
                shutil.copy2(Path(model.embedder.model_path) / name, work / artefact.TOKENIZER / name)
    return graph


def _describe(rd: RunDir, graph, model: DistilledModel, method: str, ds: PairedDataset | None,
              variant: dict[str, Any]) -> dict[str, Any]:
    from .._version import __version__

    kind = model.roles.student_kind
    if kind == "text":
        from ..data.prepare import MAX_ITEMS

        inputs: dict[str, Any] = {"kind": kind, "max_length": model.embedder.max_length, "max_items": MAX_ITEMS,
                                  "tokenizer": f"{artefact.TOKENIZER}/tokenizer.json"}
    else:
        free = set(STANDARDISE_AXES.get(kind, ()))
        shape = np.asarray(ds.modalities[model.roles.student].values[0]).shape
        inputs = {"kind": kind, "shape": [None if a + 1 in free else n for a, n in enumerate(shape)],
                  "sample_rate": model.sample_rate}
    info = rd.info
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "kgdistill_version": __version__,
            "source_run": {"path": str(rd.path.resolve()), "run_id": info.get("run_id"),
                           "config_hash": info.get("config_hash"), "code": info.get("code")},
            "graph": {"source": info.get("graph_source"), "nodes": graph.num_nodes, "edges": graph.num_edges},
            "method": method, "student": {"modality": model.roles.student, "kind": kind},
            "candidates": model.num_candidates, "variant": variant, "input": inputs, "opset": OPSET,
            "evidence_threshold": EVIDENCE_THRESHOLD, "validation_best_score": _validation_range(model, method, ds)}


@torch.no_grad()
def _validation_range(model: DistilledModel, method: str, ds: PairedDataset | None) -> dict[str, float] | None:
    """Percentiles of the best final score on the run's validation samples: what served inputs' best scores are
    compared with (a share of inputs below the 5th percentile that grows is drift)."""
    idx = ds.split_idx("val") if ds is not None else []
    if len(idx) == 0:
        return None
    values = ds.modalities[model.roles.student].values
    best = []
    for s in range(0, len(idx), 256):
        part = [values[i] for i in idx[s:s + 256]]
        scores = (model.score_texts(part, method) if model.roles.student_kind == "text"
                  else model.score_inputs(method, torch.from_numpy(np.asarray(part, dtype=np.float32))))
        best.append(scores.max(1).values)
    b = torch.cat(best).double().numpy()
    return {"samples": int(len(b)), "min": float(b.min()), "p05": float(np.percentile(b, 5)),
            "p50": float(np.median(b)), "max": float(b.max())}
