"""A trained model's results on the test split, and everything a complete run holds beside its training:
metrics, the model's checkpoints, alignments, plots and report; the run is marked complete last."""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch

from .config import RunConfig
from .encoders import embed
from .encoders.adabn import adapt_batch_norm
from .errors import DataError
from .eval.evaluate import method_metrics
from .eval.metrics import chance_levels
from .gnn.concepts import cosine_logits
from .fileio import write_json_atomic
from .graph.distinct import indistinguishable, warning_line
from .model import TEACHER, DistilledModel
from .run_dir import RunDir
from .store.run_alignments import AlignmentInputs, write_alignments
from .task import Task
from .train.calibration_pass import skip_reason

KG_GUIDED = "kg_guided"        # the method the alignments, plots and report follow
TEXT_BASELINE = "text_baseline"          # the baseline row of a text student: training-free, reads the graph
NEAREST_CENTROID = "nearest_centroid"    # the baseline row otherwise: labelled samples' centroids, seen only
ADABN = "_adabn"                         # suffix of a student's row after AdaBN on the unlabelled domain


def chance_fields(num_candidates: int) -> dict[str, float]:
    """metrics.json's chance levels (``chance_top1``, ``chance_top10``): what a random ranking scores."""
    return {f"chance_{k}": v for k, v in chance_levels(num_candidates, (1, 10)).items() if k != "mrr"}


def baseline_row(task: Task) -> str:
    return TEXT_BASELINE if task.text_baseline is not None else NEAREST_CENTROID


def evaluate(cfg: RunConfig, task: Task, model: DistilledModel, device: torch.device
             ) -> tuple[dict[str, dict], dict[str, torch.Tensor]]:
    """Each method's metrics on the test samples, and its final scores [n, K] (the baseline row first)."""
    te = task.idx("test")
    raw = model.task_scores(task, te, device) | adabn_scores(cfg, task, model, te, device)
    baseline = task.baseline_scores(te)
    final = {baseline_row(task): baseline} | model.final_scores(raw, baseline)
    methods = method_metrics(final, raw, model.calibrations, torch.as_tensor(task.y[te]), torch.as_tensor(task.seen),
                             task.concept_sim, tuple(cfg.eval.top_k), seen_only=(NEAREST_CENTROID,))
    return methods, final


def adabn_pool(task: Task, key: str = "eval.adabn") -> np.ndarray:
    """The samples AdaBN re-estimates batch norms on: training samples without any label (checked before
    training, so a run that cannot score its ``eval.adabn`` rows or adapt its teacher stops at once)."""
    pool = task.idx("train")
    pool = pool[task.y[pool] < 0]
    if not len(pool):
        raise DataError(f"{key}: the dataset has no training sample without a label; expected a target "
                        "domain's unlabelled samples to re-estimate batch norms on", source=str(task.ds.root))
    return pool


def adabn_scores(cfg: RunConfig, task: Task, model: DistilledModel, idx: np.ndarray, device: torch.device
                 ) -> dict[str, torch.Tensor]:
    """Raw scores [n, K] of each ``eval.adabn`` student with its batch norms re-estimated on the training samples
    that carry no label at all (the target load's paired windows of a cross-load task), as ``<method>_adabn``."""
    if not cfg.eval.adabn:
        return {}
    pool = adabn_pool(task)
    out = {}
    for m in cfg.eval.adabn:
        st = model.student(m)
        enc = adapt_batch_norm(st.encoder, task.student.x[torch.as_tensor(pool)].to(device))
        out[m + ADABN] = cosine_logits(embed(enc, task.student.x[torch.as_tensor(idx)].to(device)),
                                       st.concepts().float(), 1.0).cpu()
    return out


def test_embeddings(task: Task, model: DistilledModel, method: str, device: torch.device
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised teacher and ``method`` student embeddings of the test samples."""
    te = torch.as_tensor(task.idx("test"))
    z_t = model.teacher_embeddings(task.teacher.x[te], device).cpu()
    z_s = model.student_embeddings(method, task.student.x[te], device).cpu()
    return torch.nn.functional.normalize(z_t, dim=-1), torch.nn.functional.normalize(z_s, dim=-1)


def finish_run(cfg: RunConfig, rd: RunDir, task: Task, model: DistilledModel, device: torch.device,
               training: dict, t0: float, log, *, weights: bool = True, **extra) -> None:
    """Evaluate the test set and write everything a complete run holds (``weights``: the model's too); mark it
    complete."""
    methods, final = evaluate(cfg, task, model, device)
    why = skip_reason(cfg, task)
    warnings = run_warnings(task, training)
    for w in warnings:
        log(f"[kgdistill] warning: {w}")
    metrics = {
        "run_id": rd.info["run_id"], "dataset": task.ds.name, "num_candidates": task.num_candidates,
        "num_seen": int(task.seen.sum()), "num_unseen": int((~task.seen).sum()),
        "num_test": int(len(task.idx("test"))), **chance_fields(task.num_candidates),
        "roles": asdict(model.roles) | {"teacher_concepts": model.config.teacher.concepts.name},
        "calibration_pass": {"ran": why is None, "reason": why},
        "methods": methods, "training": training, "warnings": warnings,
        **({"independent_graph": task.ds.meta["independent_graph"]} if "independent_graph" in task.ds.meta else {}),
        **extra,
        "device": str(device), "seconds": round(time.perf_counter() - t0, 1),
    }
    model.save(rd.path, weights=weights)
    z_t, z_s = test_embeddings(task, model, KG_GUIDED, device)  # once, for both uses
    write_alignments(rd.alignments, alignment_inputs(task, model, final, z_t, z_s), cfg.eval.export_top_k)
    write_json_atomic(rd.path / "metrics.json", metrics)
    from .eval.report import write_plots, write_report

    if cfg.eval.plots:
        write_plots(rd, model.concepts, task.seen, z_t, z_s, KG_GUIDED)
    write_report(rd, metrics)
    rd.mark_complete()
    log(f"[kgdistill] complete in {time.perf_counter() - t0:.1f}s: {rd.path / 'report.md'}")


def run_warnings(task: Task, training: dict) -> list[str]:
    """What a user should know before trusting the figures: a teacher that ranks validation samples worse than
    the student trained alone (distilling from it can only hurt), and unseen candidates the graph cannot tell
    apart (zero-shot figures on them are chance or below)."""
    out = []
    t, s = (training.get(k, {}).get("best_val_mrr") for k in ("teacher", "student_alone"))
    if t is not None and s is not None and t < s:
        out.append(f"the teacher ranks validation samples worse than the student trained alone (validation MRR "
                   f"{t:.3f} against {s:.3f}): distilling from it can only hurt; strengthen the teacher (epochs, "
                   "encoder, features) or check which modality should teach")
    unseen = [c for c, seen in zip(task.candidates, task.seen) if not seen]
    if unseen:
        groups = indistinguishable(task.kg, unseen, among=task.candidates)
        if groups:
            out.append(warning_line(groups, "unseen candidates"))
    return out


def alignment_inputs(task: Task, model: DistilledModel, final: dict[str, torch.Tensor], z_t: torch.Tensor,
                     z_s: torch.Tensor) -> AlignmentInputs:
    te = task.idx("test")
    nodes = [int(n) for n in task.cand_nodes]
    return AlignmentInputs(
        candidates=task.candidates, names=[task.kg.names[n] for n in nodes], types=[task.kg.types[n] for n in nodes],
        seen=np.asarray(task.seen), sample_ids=[task.ds.sample_ids[s] for s in te], y=task.y[te],
        concepts=model.concepts, scores={"teacher": final[TEACHER], "student": final[KG_GUIDED]}, z_t=z_t, z_s=z_s)
