"""One call from configuration to a complete run directory.

1. build the task (data, graph, features);
2. calibration pass: hold out some seen concepts as stand-ins for unseen ones,
   train everything, choose each method's calibration on validation patients;
3. final pass: train on all seen concepts, score the test patients, apply the
   chosen calibration, write metrics, checkpoints, alignments, plots and report;
4. mark the run complete (only now).

``reevaluate_run`` makes a new run from a finished one with other ``eval.*`` settings, reusing its models.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .config import RunConfig
from .eval.calibration import (Calibration, ValidationScores, calibrations_from_json, calibrations_to_json,
                               choose_calibration)
from .eval.metrics import grouped_metrics, harmonic_mean, mistake_severity
from .eval.prototype import centroid_scores
from .errors import ConfigError, RunDirError, TrainingInterrupted
from .run_dir import RunDir, write_json_atomic
from .task import Task, build_task
from .train.checkpoint import save_tensors
from .train.device import pick_device, seed_everything, set_threads
from .train.distill import Fitted, fit_models, sample_embeddings, score_samples
from .train.distributed import init_from_env, shutdown
from .train.state import graceful_stop

TEACHER = "teacher"
VALIDATION_SCORES = "validation_scores.safetensors"  # in checkpoints/ (and state/ until the run completes)
PROTOTYPE = "prototype"
KG_GUIDED = "kg_guided"


def prototype_scores(task: Task, idx: np.ndarray) -> torch.Tensor:
    if task.prototype is not None:
        return task.prototype.scores(task.student.x[torch.as_tensor(idx)], task.student.tables["sentences"]).cpu()
    tr = task.idx("train")
    lab = tr[(task.y[tr] >= 0) & task.ds.student_labelled[tr]]
    return centroid_scores(task.student.x[lab], torch.as_tensor(task.y[lab]), task.student.x[idx], task.num_candidates)


def choose_holdout(task: Task, fraction: float, seed: int) -> np.ndarray:
    seen_idx = np.flatnonzero(task.seen)
    n = max(1, int(round(fraction * len(seen_idx))))
    rng = np.random.default_rng(seed + 7919)
    held = np.zeros_like(task.seen)
    held[rng.choice(seen_idx, size=n, replace=False)] = True
    return held


def calibrate(cfg: RunConfig, task: Task, device, log_dir: Path | None, progress: bool,
              state_dir: Path | None = None, students: list[str] | None = None
              ) -> tuple[dict[str, Calibration], ValidationScores | None]:
    """Per method: calibrated-stacking gamma (and fusion beta) chosen on held-out seen concepts; and the fused
    methods' validation scores, which let a finished run choose their calibration again under another prototype.

    ``students``: only these students (and the teacher, which they learn from); each is trained with its own
    seed, so its calibration equals the one a pass over every method chooses."""
    methods = {TEACHER: (True, False)} | calibrated_methods(cfg, students)
    if not can_calibrate(cfg, task):
        return {m: Calibration() for m in methods}, None
    held = choose_holdout(task, cfg.calibration.holdout_fraction, cfg.seed)
    fitted = fit_models(cfg, task, task.seen & ~held, device, log_dir, progress, methods=students,
                        state_dir=state_dir)
    va = _calibration_patients(task)
    scores = score_samples(task, fitted, va, device)
    fused = {m: scores[m] for m, (_, fusion) in methods.items() if fusion}
    kept = None  # nothing to choose again without fused methods reading a prototype
    if fused and task.prototype is not None:
        kept = ValidationScores(torch.as_tensor(va), torch.as_tensor(held), fused)
    return choose_calibrations(cfg, task, methods, va, held, scores), kept


def calibrated_methods(cfg: RunConfig, students: list[str] | None = None, *, fused_only: bool = False
                       ) -> dict[str, tuple[bool, bool]]:
    """Student method -> (calibrate, fusion), for ``students`` (None: all) or only the fused ones."""
    return {m: (c.calibrate, c.fusion) for m, c in cfg.student.methods.items()
            if (students is None or m in students) and (c.fusion or not fused_only)}


def can_calibrate(cfg: RunConfig, task: Task) -> bool:
    """Calibration needs seen concepts to hold out (at least 5) and unseen ones to calibrate for."""
    return bool(cfg.calibration.enabled and task.seen.sum() >= 5 and not task.seen.all())


def _calibration_patients(task: Task) -> np.ndarray:
    va = task.idx("val")
    return va[task.seen[task.y[va]]]  # only seen concepts' patients: real unseen concepts are never tuned on


def choose_calibrations(cfg: RunConfig, task: Task, methods: dict[str, tuple[bool, bool]], va: np.ndarray,
                        held: np.ndarray, scores: dict[str, torch.Tensor]) -> dict[str, Calibration]:
    """``methods``: name -> (calibrate, fusion); ``scores``: their raw scores on the patients ``va``, from models
    trained without the seen concepts ``held``."""
    fused = any(fusion for _, fusion in methods.values())
    proto = prototype_scores(task, va) if fused and task.prototype is not None else None
    y = torch.as_tensor(task.y[va])
    tm, hm = torch.as_tensor(task.seen & ~held), torch.as_tensor(held)
    out: dict[str, Calibration] = {}
    for m, (do_cal, fusion) in methods.items():
        gammas = cfg.calibration.gammas if do_cal else [0.0]
        betas = cfg.calibration.fusion_weights if fusion else [0.0]
        out[m] = choose_calibration(scores[m], y, tm, hm, proto if fusion else None, gammas, betas)
        if fusion:
            out[m + "_no_fusion"] = choose_calibration(scores[m], y, tm, hm, None, gammas, [0.0])
    return out


def evaluate(cfg: RunConfig, task: Task, fitted: Fitted, cal: dict[str, Calibration], device) -> tuple[dict, dict]:
    te = task.idx("test")
    y = torch.as_tensor(task.y[te])
    seen = torch.as_tensor(task.seen)
    top_k = tuple(cfg.eval.top_k)
    raw = score_samples(task, fitted, te, device)
    proto = prototype_scores(task, te)
    final: dict[str, torch.Tensor] = {PROTOTYPE: proto}
    for m, s in raw.items():
        c = cal.get(m, Calibration())
        final[m] = c.apply(s, seen, proto if c.beta else None)
        if m + "_no_fusion" in cal:
            final[m + "_no_fusion"] = cal[m + "_no_fusion"].apply(s, seen, None)
    methods: dict[str, dict] = {}
    sim = task.concept_sim
    for m, s in final.items():
        g = grouped_metrics(s, y, seen, top_k)
        entry = {k: v for k, v in g.items() if k in ("seen", "unseen", "all")}
        if m == PROTOTYPE and task.prototype is None:
            entry.pop("unseen", None)  # nearest centroid cannot rank unseen concepts
        entry["mistake_severity"] = mistake_severity(s, y, sim)["mean"]
        if "seen" in entry and "unseen" in entry:
            entry["harmonic_top1"] = harmonic_mean(entry["seen"]["top1"], entry["unseen"]["top1"])
        if m in cal:
            entry["calibration"] = asdict(cal[m])
            if m in raw:  # what calibration changed: the model's own ranking (gamma = beta = 0)
                u = grouped_metrics(raw[m], y, seen, top_k)
                entry["uncalibrated"] = {k: u[k] for k in ("seen", "unseen") if k in u}
                if len(entry["uncalibrated"]) == 2:
                    entry["uncalibrated"]["harmonic_top1"] = harmonic_mean(u["seen"]["top1"], u["unseen"]["top1"])
        methods[m] = entry
    return methods, final


def export_alignments(rd: RunDir, task: Task, fitted: Fitted, final: dict[str, torch.Tensor], z_t: torch.Tensor,
                      z_s: torch.Tensor, top_k: int, method: str = KG_GUIDED) -> None:
    """What `align push` reads: concepts, their embeddings in each space, top-k of every test sample.

    ``z_t`` / ``z_s``: normalised teacher and ``method`` student embeddings of the test samples."""
    import csv

    from safetensors.torch import save_file

    te = task.idx("test")
    y = task.y[te]
    k, d = fitted.concepts.shape
    base = torch.nn.functional.normalize(fitted.concepts.cpu(), dim=-1)
    cent_t, cent_s = base.clone(), base.clone()
    yt = torch.as_tensor(y)
    for c in np.unique(y):
        sel = yt == int(c)
        cent_t[c] = torch.nn.functional.normalize(z_t[sel].mean(0), dim=0)
        cent_s[c] = torch.nn.functional.normalize(z_s[sel].mean(0), dim=0)
    save_file({"concept_gnn": base.contiguous(), "concept_teacher": cent_t.contiguous(),
               "concept_student": cent_s.contiguous()}, str(rd.alignments / "embeddings.safetensors"))
    with open(rd.alignments / "concepts.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name", "type", "seen"])
        for i, c in enumerate(task.candidates):
            n = int(task.cand_nodes[i])
            w.writerow([c, task.kg.names[n], task.kg.types[n], int(task.seen[i])])
    top1 = {}
    with open(rd.alignments / "samples.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", "split", "modality", "true_id", "concept_id", "rank", "score"])
        for modality, m in (("teacher", TEACHER), ("student", method)):
            vals, idx = final[m].topk(min(top_k, k), dim=1)
            top1[modality] = idx[:, 0].numpy()
            for r, s in enumerate(te):
                for j in range(idx.shape[1]):
                    w.writerow([task.ds.sample_ids[s], "test", modality, task.candidates[y[r]],
                                task.candidates[int(idx[r, j])], j + 1, f"{float(vals[r, j]):.6f}"])
    with open(rd.alignments / "per_concept.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "n_test", "teacher_top1", "student_top1"])
        for c in range(k):
            sel = y == c
            n = int(sel.sum())
            t1 = float((top1["teacher"][sel] == c).mean()) if n else 0.0
            s1 = float((top1["student"][sel] == c).mean()) if n else 0.0
            w.writerow([task.candidates[c], n, f"{t1:.4f}", f"{s1:.4f}"])


def save_models(rd: RunDir, fitted: Fitted) -> None:
    save_tensors({f"encoder.{k}": v for k, v in fitted.teacher.state_dict().items()}
                 | {f"gnn.{k}": v for k, v in fitted.teacher_concepts.gnn.state_dict().items()},
                 rd.checkpoints / "teacher.safetensors")
    for name, (enc, src) in fitted.students.items():
        save_tensors({f"encoder.{k}": v for k, v in enc.state_dict().items()}
                     | {f"concepts.{k}": v for k, v in src.state_dict().items()},
                     rd.checkpoints / f"student_{name}.safetensors")


def save_evaluation_state(rd: RunDir, task: Task, fitted: Fitted, cal: dict[str, Calibration],
                          val_scores: ValidationScores | None = None) -> None:
    """What scoring needs beside the models: concept embeddings, the graph prototype, input scaling,
    candidates and the chosen calibrations (and what choosing them again needs: ``val_scores``)."""
    extra = {"concepts": fitted.concepts, "seen": torch.as_tensor(task.seen)}
    if task.prototype is not None:
        extra |= {f"prototype.{k}": v for k, v in task.prototype.tensors().items()}
    for k, v in task.student.tables.items():
        if k in ("mean", "std", "rate"):  # input scaling; audio's sample rate
            extra[f"student_input.{k}"] = v
    save_tensors(extra, rd.checkpoints / "concepts.safetensors")
    (rd.checkpoints / "candidates.txt").write_text("\n".join(task.candidates) + "\n", encoding="utf-8")
    if val_scores is not None:
        val_scores.save(rd.checkpoints / VALIDATION_SCORES)
    write_json_atomic(rd.path / "calibration.json", calibrations_to_json(cal))


def run_pipeline(cfg: RunConfig | None, out: str | Path, *, progress: bool = True, log=print,
                 resume: bool = False) -> RunDir | None:
    """Train, evaluate and export; returns the complete run directory (None on torchrun ranks other than 0).

    ``resume``: continue the run in ``out`` (its saved config runs; ``cfg``, if given, must equal it); finished
    stages are restored, the unfinished one continues from its last checkpoint.  Under torchrun every rank runs
    this; ranks other than 0 work in a private scratch folder and write nothing the user sees."""
    known = cfg if cfg is not None else RunDir.open(out, require_complete=False).config()
    dist, device_name = init_from_env(known.train.device)
    with contextlib.ExitStack() as scope:
        if dist.enabled:
            scope.callback(shutdown)
        if resume:
            rd, saved = RunDir.resume(out, cfg) if dist.is_main else (None, RunDir(Path(out)).config())
            cfg = saved
        if not dist.is_main:
            scratch = Path(scope.enter_context(tempfile.TemporaryDirectory(prefix=f"kgdistill-rank{dist.rank}-")))
            rd = RunDir.create(scratch / "run", cfg)
            progress, log = False, (lambda *_: None)
        elif not resume:
            rd = RunDir.create(out, cfg)
        state = Path(out) / "state"  # rank 0 writes it; every rank reads it on resume
        with graceful_stop():
            return _run(cfg, rd, state, dist, device_name, progress, log)


@contextlib.contextmanager
def _marks_failure(rd: RunDir):
    """A run that stops early is marked interrupted or failed (never complete), with how to continue."""
    try:
        yield
    except TrainingInterrupted as exc:
        rd.mark_failed(f"{exc}; continue with: kgdistill train --resume {rd.path}", status="interrupted")
        raise TrainingInterrupted(f"{exc}; the run is marked interrupted; continue with: "
                                  f"kgdistill train --resume {rd.path}", exc.signum) from None
    except KeyboardInterrupt:
        rd.mark_failed("interrupted", status="interrupted")
        raise
    except OSError as exc:  # the output folder filled up or became unwritable mid-run
        rd.mark_failed(f"{type(exc).__name__}: {exc}")
        raise RunDirError(f"cannot write {exc.filename or 'the run directory'}: {exc.strerror or exc}; the run is "
                          "marked failed and its last checkpoints are intact; fix it, then continue with "
                          f"kgdistill train --resume {rd.path}", source=str(rd.path)) from None
    except BaseException as exc:
        rd.mark_failed(f"{type(exc).__name__}: {exc}")
        raise


def _build(cfg: RunConfig, rd: RunDir, device, progress: bool, log, dist=None) -> Task:
    """The task, with the graph as loaded saved beside the run."""
    if dist is not None and not dist.is_main:
        dist.barrier()  # rank 0 builds first, so the others find the text cache warm
    task = build_task(cfg, rd.path, device, progress=progress)
    if dist is not None and dist.is_main:
        dist.barrier()
    rd.update(graph_source=str(task.kg.source))
    task.kg.save_csv(rd.path / "graph")
    log(f"[kgdistill] {len(task.ds)} samples, {task.num_candidates} candidates "
        f"({int(task.seen.sum())} seen, {int((~task.seen).sum())} unseen), graph {task.kg.num_nodes} nodes / "
        f"{task.kg.num_edges} edges; text cache: {task.embedder.stats}")
    return task


def _run(cfg: RunConfig, rd: RunDir, state: Path, dist, device_name: str, progress: bool, log) -> RunDir | None:
    t0 = time.perf_counter()
    with _marks_failure(rd):
        seed_everything(cfg.seed)
        set_threads(cfg.train.num_threads)
        device = pick_device(device_name)
        log(f"[kgdistill] run {rd.info['run_id']} on {device}"
            + (f" x {dist.world_size} ranks" if dist.enabled else "") + f" -> {rd.path}")
        task = _build(cfg, rd, device, progress, log, dist)
        t1 = time.perf_counter()
        cal = _load_calibration(state / "calibration.json")
        kept = _load_validation_scores(state / VALIDATION_SCORES) if cal is not None else None
        if cal is None:
            cal, kept = calibrate(cfg, task, device, rd.path / "logs" / "calibration", progress,
                                  state / "calibration")
            if dist.is_main:
                state.mkdir(parents=True, exist_ok=True)
                if kept is not None:
                    kept.save(state / VALIDATION_SCORES)
                write_json_atomic(state / "calibration.json", calibrations_to_json(cal))  # last: the pass is done
        log(f"[kgdistill] calibration pass done in {time.perf_counter() - t1:.1f}s")
        t2 = time.perf_counter()
        fitted = fit_models(cfg, task, task.seen, device, rd.path / "logs", progress, state_dir=state / "final")
        log(f"[kgdistill] final pass done in {time.perf_counter() - t2:.1f}s")
        if not dist.is_main:
            return None  # rank 0 evaluates and writes the results
        save_models(rd, fitted)
        training = {k: {"best_epoch": r.best_epoch, "best_val_mrr": r.best_val, "seconds": round(r.seconds, 2),
                        "epochs_run": len(r.history)} for k, r in fitted.results.items()}
        _finish(cfg, rd, task, fitted, cal, device, training, t0, log, val_scores=kept)
        shutil.rmtree(state, ignore_errors=True)  # resume state is of no use once the run is complete
        return rd


def _finish(cfg: RunConfig, rd: RunDir, task: Task, fitted: Fitted, cal: dict[str, Calibration], device,
            training: dict, t0: float, log, val_scores: ValidationScores | None = None, **extra) -> None:
    """Evaluate the test set and write everything a complete run holds beside its models; mark it complete."""
    methods, final = evaluate(cfg, task, fitted, cal, device)
    metrics = {
        "run_id": rd.info["run_id"], "dataset": task.ds.name, "num_candidates": task.num_candidates,
        "num_seen": int(task.seen.sum()), "num_unseen": int((~task.seen).sum()),
        "num_test": int(len(task.idx("test"))), "chance_top1": 1.0 / task.num_candidates,
        "chance_top10": min(10, task.num_candidates) / task.num_candidates,
        "methods": methods, "training": training, **extra,
        "device": str(device), "seconds": round(time.perf_counter() - t0, 1),
    }
    save_evaluation_state(rd, task, fitted, cal, val_scores)
    z_t, z_s = sample_embeddings(task, fitted, task.idx("test"), KG_GUIDED, device)  # once, for both uses
    export_alignments(rd, task, fitted, final, z_t, z_s, cfg.eval.export_top_k)
    write_json_atomic(rd.path / "metrics.json", metrics)
    from .eval.report import write_plots, write_report

    if cfg.eval.plots:
        write_plots(rd, task, fitted, z_t, z_s, KG_GUIDED)
    write_report(rd, metrics)
    rd.mark_complete()
    log(f"[kgdistill] complete in {time.perf_counter() - t0:.1f}s: {rd.path / 'report.md'}")


# settings a finished run can be evaluated again with, without training its models again
REEVALUATION_KEYS = ("name", "eval")


def training_difference(a: RunConfig, b: RunConfig) -> str | None:
    """The first key outside ``REEVALUATION_KEYS`` where two configurations differ (None: same models)."""
    from .run_dir import first_difference

    da, db = a.with_absolute_paths().model_dump(mode="json"), b.with_absolute_paths().model_dump(mode="json")
    for key in dict.fromkeys([*da, *db]):
        if key not in REEVALUATION_KEYS and da.get(key) != db.get(key):
            return first_difference(da.get(key), db.get(key), key)
    return None


def reevaluate_run(source: str | Path, out: str | Path, overrides: Sequence[str] = (), *,
                   cfg: RunConfig | None = None, device_name: str | None = None, progress: bool = True,
                   log=print) -> RunDir:
    """A new complete run that differs from a finished one only in ``eval.*`` settings (e.g. another graph
    prototype), for a fraction of the cost of training it.  Training never reads those settings, so the final
    models and the generated data are copied; when the prototype changes, the fused methods' calibration is
    chosen again from the calibration pass's validation scores the run kept (no training), or, for a run made
    before they were kept, by retraining the calibration-pass models (and the teacher) with the run's seeds.
    Either way the result equals a fresh run of the new configuration on the code, device and process count that
    trained the source (tested); retraining matches only when it runs on those too.

    The new settings: ``overrides`` (``key=value``) applied to the run's config, or a whole ``cfg``.  A
    re-evaluation that fails leaves nothing behind: it has no state worth resuming."""
    from .config import apply_overrides, read_yaml, validate_config
    from .train.distill import load_fitted

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("evaluating a run again is one process; run it without torchrun")
    if overrides and cfg is not None:
        raise ValueError("give overrides or cfg, not both")
    src = RunDir.open(source)
    old = src.config()
    said = "--set " if cfg is None else ""
    if cfg is None:
        tree = apply_overrides(read_yaml(src.path / "config.yaml"), list(overrides))
        cfg = validate_config(tree, source=f"{src.path / 'config.yaml'} with --set")
    cfg = cfg.with_absolute_paths()
    changed = training_difference(old, cfg)
    if changed is not None:
        raise ConfigError(f"{said}{changed}: changes how the models are trained; a run can be evaluated again "
                          "only with other name or eval.* settings (train a new run instead)")
    try:
        device = pick_device(device_name or cfg.train.device)
    except ConfigError:
        raise ConfigError(f"--device {device_name or cfg.train.device}: no CUDA device here; evaluate with "
                          "--device cpu") from None
    # everything read from the source before anything is written, so a damaged run fails at once
    cal, trained = _saved_calibrations(src), src.read_json("metrics.json")
    kept = ValidationScores.load(src.checkpoints / VALIDATION_SCORES)
    missing = [n for n in ("teacher", *(f"student_{m}" for m in cfg.student.methods))
               if not (src.checkpoints / f"{n}.safetensors").is_file()]
    if missing:
        raise RunDirError(f"checkpoints/{missing[0]}.safetensors is missing; the run cannot be evaluated again",
                          source=str(src.path))
    t0 = time.perf_counter()
    out = Path(out)
    if out.resolve() == src.path.resolve():
        raise RunDirError("--out names the run itself; give a new folder", source=str(out))
    rd = RunDir.create(out, cfg)
    try:
        with graceful_stop():
            rd.update(reevaluated_from=str(src.path.resolve()),  # its models are the source's code's work
                      trained_with_code=src.info.get("code"),
                      **({"resumed_with_code": src.info["resumed_with_code"]} if "resumed_with_code" in src.info
                         else {}))
            shutil.copytree(src.path / "logs", rd.path / "logs", dirs_exist_ok=True)  # training curves
            if (src.path / "data" / "dataset.yaml").is_file():  # generated data: the very patients trained on
                shutil.copytree(src.path / "data", rd.path / "data")
            seed_everything(cfg.seed)
            set_threads(cfg.train.num_threads)
            log(f"[kgdistill] run {rd.info['run_id']}: {src.path} evaluated again on {device} -> {rd.path}")
            task = _build(cfg, rd, device, progress, log)
            if list(task.candidates) != (src.checkpoints / "candidates.txt").read_text(encoding="utf-8").split():
                raise RunDirError("its data now gives other candidate concepts than it was trained on; train "
                                  "a new run instead", source=str(src.path))
            fused = calibrated_methods(cfg, fused_only=True)
            prototype_changed = (old.eval.prototype, old.eval.prototype_params) != (cfg.eval.prototype,
                                                                                   cfg.eval.prototype_params)
            if fused and prototype_changed and task.prototype is not None and can_calibrate(cfg, task):
                t1 = time.perf_counter()
                if kept is not None and fused.keys() <= kept.scores.keys():
                    _check_validation_scores(kept, cfg, task, src)
                    cal |= choose_calibrations(cfg, task, fused, kept.val.numpy(), kept.held.numpy(), kept.scores)
                    how = "from the calibration pass's saved validation scores"
                else:  # a run made before validation scores were kept
                    _warn_if_trained_differently(src, rd, trained.get("device"), device, log)
                    again, kept = calibrate(cfg, task, device, rd.path / "logs" / "calibration", progress,
                                            students=list(fused))
                    cal |= {m: c for m, c in again.items() if m != TEACHER}
                    how = "by training its calibration pass again"
                log(f"[kgdistill] calibration of {', '.join(fused)} chosen again {how} in "
                    f"{time.perf_counter() - t1:.1f}s")
            fitted = load_fitted(cfg, task, src.checkpoints)
            for f in src.checkpoints.glob("*.safetensors"):
                if f.name not in ("concepts.safetensors", VALIDATION_SCORES):  # the models: the rest is written anew
                    shutil.copy2(f, rd.checkpoints / f.name)
            _finish(cfg, rd, task, fitted, cal, device, trained.get("training", {}), t0, log, val_scores=kept,
                    reevaluated_from=str(src.path.resolve()))
    except BaseException as exc:
        shutil.rmtree(rd.path, ignore_errors=True)
        if isinstance(exc, TrainingInterrupted):
            raise TrainingInterrupted(f"{exc}; {rd.path} was removed (nothing to resume): run the same "
                                      "command again", exc.signum) from None
        if isinstance(exc, OSError):
            raise RunDirError(f"cannot write {exc.filename or 'the run directory'}: {exc.strerror or exc}; "
                              "it was removed; fix it and run the same command again", source=str(rd.path)) from None
        raise
    return rd


def _check_validation_scores(kept: ValidationScores, cfg: RunConfig, task: Task, src: RunDir) -> None:
    """Saved scores choose the same calibration as retraining only for the same patients and hold-out."""
    held = choose_holdout(task, cfg.calibration.holdout_fraction, cfg.seed)
    if not (np.array_equal(kept.val.numpy(), _calibration_patients(task)) and np.array_equal(kept.held.numpy(), held)):
        raise RunDirError(f"checkpoints/{VALIDATION_SCORES} scores other validation patients or held-out concepts "
                          "than its data and config give; train a new run instead", source=str(src.path))


def _warn_if_trained_differently(src: RunDir, rd: RunDir, trained_on: str | None, device, log) -> None:
    """The retrained calibration pass matches the source's only on the same code and device."""
    trained_by, now = src.info.get("code", {}), rd.info["code"]
    if not trained_by.get("commit") or trained_by.get("commit") != now.get("commit") or trained_by.get("modified"):
        log(f"[kgdistill] note: {src.path} was trained by code {trained_by.get('commit') or 'of unknown commit'}"
            f"{' (modified)' if trained_by.get('modified') else ''}; its calibration pass now retrains with "
            f"{now.get('commit') or 'code of unknown commit'}: the calibration equals a fresh run's only if "
            "training has not changed in between")
    if trained_on and trained_on != str(device):
        log(f"[kgdistill] note: {src.path} was trained on {trained_on}, its calibration pass now retrains on "
            f"{device}: the chosen calibration can differ from the original run's")


def _load_calibration(path: Path) -> dict[str, Calibration] | None:
    """The calibration pass's outcome, if a resumed run already finished that pass."""
    if not path.is_file():
        return None
    try:
        return calibrations_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, AttributeError):
        raise RunDirError("damaged resume state; delete it to redo the calibration pass", source=str(path)) from None


def _load_validation_scores(path: Path) -> ValidationScores | None:
    try:
        return ValidationScores.load(path)
    except RunDirError as exc:
        raise RunDirError(f"{exc}; delete {path.parent / 'calibration.json'} to redo the calibration pass "
                          "from its stage checkpoints") from None


def _saved_calibrations(rd: RunDir) -> dict[str, Calibration]:
    try:
        return calibrations_from_json(rd.read_json("calibration.json"))
    except (TypeError, AttributeError):
        raise RunDirError("calibration.json does not hold per-method calibrations", source=str(rd.path)) from None


def evaluate_run(path: str | Path, device_name: str = "cpu") -> dict:
    """Re-score a finished run's test set from its checkpoints (no training)."""
    from .train.distill import load_fitted

    rd = RunDir.open(path)
    cfg = rd.config()
    device = pick_device(device_name)
    task = build_task(cfg, rd.path, device)
    fitted = load_fitted(cfg, task, rd.checkpoints)
    methods, _ = evaluate(cfg, task, fitted, _saved_calibrations(rd), device)
    return {"run_id": rd.info["run_id"], "chance_top1": 1.0 / task.num_candidates,
            "chance_top10": min(10, task.num_candidates) / task.num_candidates, "methods": methods}
