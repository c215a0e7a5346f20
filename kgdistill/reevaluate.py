"""A finished run scored again: its test set from its checkpoints (``evaluate_run``), another dataset folder over
the same graph (``evaluate_on_data``: a new hospital's patients, a newer store release), or a new complete run that
differs from it only in ``eval.*`` settings (``reevaluate_run``), with no training."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import RunConfig, apply_overrides, read_yaml, validate_config
from .errors import ConfigError, DataError, RunDirError, TrainingInterrupted
from .eval.calibration import Calibration, ValidationScores
from .model import REQUIRED as MODEL_FILES, TEACHER, DistilledModel
from .pipeline import build_run_task
from .results import chance_fields, evaluate, finish_run
from .run_dir import RunDir, first_difference
from .task import Task, build_task
from .train.calibration_pass import (calibrate, calibrated_methods, calibration_samples, can_calibrate,
                                     choose_for_task, choose_holdout)
from .train.device import pick_device, seed_everything, threads
from .train.state import graceful_stop

# settings a finished run can be evaluated again with, without training its models again
REEVALUATION_KEYS = ("name", "eval")


def evaluate_run(path: str | Path, device_name: str = "cpu") -> dict:
    """Re-score a finished run's test set from its checkpoints (no training)."""
    rd = RunDir.open(path, required=MODEL_FILES)
    cfg = rd.config()
    device = pick_device(device_name)
    task = build_task(cfg, rd.path, device)
    methods, _ = evaluate(cfg, task, DistilledModel.load(rd.path, task), device)
    return {"run_id": rd.info["run_id"], "num_candidates": task.num_candidates, **chance_fields(task.num_candidates),
            "methods": methods}


def evaluate_on_data(path: str | Path, data: str | Path, device_name: str = "cpu",
                     out: str | Path | None = None) -> dict:
    """A finished run's models scored on the test samples of another dataset folder, over the run's own graph,
    with the run's seen concepts and calibration and the same metrics (no training).  The folder must rank the
    run's candidates, and its graph (if it names one) must hold the same concepts; ``out``: also write
    ``metrics.json`` and ``report.md`` there."""
    from .data.paired import load_paired
    from .graph.loader import load_graph

    rd = RunDir.open(path, required=MODEL_FILES)
    ds = load_paired(Path(data).expanduser())
    candidates = (rd.checkpoints / "candidates.txt").read_text(encoding="utf-8").split()
    src = str(ds.candidates_path or ds.root / "dataset.yaml")
    if list(ds.candidates) != candidates:
        extra = sorted(set(ds.candidates) - set(candidates))[:1] or sorted(set(candidates) - set(ds.candidates))[:1]
        raise DataError(f"its {len(ds.candidates)} candidates differ from the {len(candidates)} the run ranks "
                        f"(e.g. {extra[0] if extra else 'their order'}); score a dataset over the run's candidates",
                        source=src)
    graph = load_graph(rd.path / "graph")
    if ds.graph_path is not None and set(load_graph(ds.graph_path).index) - set(graph.index):
        other = sorted(set(load_graph(ds.graph_path).index) - set(graph.index))
        raise DataError(f"its graph holds {len(other)} concepts the run's graph lacks (e.g. {other[0]}); a run scores "
                        "data over its own graph", source=str(ds.graph_path))
    base = rd.config().model_dump(mode="json")
    base["data"] |= {"source": "paired", "path": str(ds.root.resolve())}
    base["graph"] |= {"path": str((rd.path / "graph").resolve()), "format": "auto"}
    cfg = validate_config(base, source=str(rd.path / "config.yaml"))
    device = pick_device(device_name)
    model = DistilledModel.load(rd.path, methods=())
    task = build_task(cfg, rd.path, device, seen=model.seen.numpy())
    if len(task.idx("test")) == 0:
        raise DataError("no test samples (split test) to score", source=str(ds.samples_path or ds.root))
    methods, _ = evaluate(cfg, task, DistilledModel.load(rd.path, task), device)
    metrics = {"run_id": rd.info["run_id"], "dataset": ds.name, "data": str(ds.root.resolve()),
               "graph": str(rd.path / "graph"), "num_candidates": task.num_candidates,
               "num_seen": int(task.seen.sum()), "num_unseen": int((~task.seen).sum()),
               "num_test": int(len(task.idx("test"))), "chance_top1": 1.0 / task.num_candidates,
               "chance_top10": min(10, task.num_candidates) / task.num_candidates, "methods": methods}
    if out is not None:
        from .eval.report import metrics_table
        from .fileio import write_json_atomic

        Path(out).mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(out) / "metrics.json", metrics)
        (Path(out) / "report.md").write_text(f"# {rd.info['run_id']} scored on {ds.name}\n\n"
                                             f"Data: {ds.root}; graph: the run's own ({rd.path / 'graph'}).\n\n"
                                             + metrics_table(metrics) + "\n", encoding="utf-8")
    return metrics


def training_difference(a: RunConfig, b: RunConfig) -> str | None:
    """The first key outside ``REEVALUATION_KEYS`` where two configurations differ (None: same models)."""
    da, db = a.with_absolute_paths().model_dump(mode="json"), b.with_absolute_paths().model_dump(mode="json")
    for key in dict.fromkeys([*da, *db]):
        if key not in REEVALUATION_KEYS and da.get(key) != db.get(key):
            return first_difference(da.get(key), db.get(key), key)
    return None


def _new_config(src: RunDir, overrides: Sequence[str], cfg: RunConfig | None) -> RunConfig:
    """The source's config with ``overrides`` (or ``cfg``), refused if it changes how the models are trained."""
    if overrides and cfg is not None:
        raise ValueError("give overrides or cfg, not both")
    said = "--set " if cfg is None else ""
    if cfg is None:
        tree = apply_overrides(read_yaml(src.path / "config.yaml"), list(overrides))
        cfg = validate_config(tree, source=f"{src.path / 'config.yaml'} with --set")
    cfg = cfg.with_absolute_paths()
    changed = training_difference(src.config(), cfg)
    if changed is not None:
        raise ConfigError(f"{said}{changed}: changes how the models are trained; a run can be evaluated again "
                          "only with other name or eval.* settings (train a new run instead)")
    return cfg


def reevaluate_run(source: str | Path, out: str | Path, overrides: Sequence[str] = (), *,
                   cfg: RunConfig | None = None, device_name: str | None = None, progress: bool = True,
                   log=print) -> RunDir:
    """A new complete run that differs from a finished one only in ``eval.*`` settings (e.g. another text
    baseline), for a fraction of the cost of training it.  Training never reads those settings, so the final
    models and the generated data are copied; when the baseline changes, the fused methods' calibration is chosen
    again from the calibration pass's validation scores the run kept (no training), or, for a run made before
    they were kept, by retraining the calibration-pass models (and the teacher) with the run's seeds.  Either
    way the result equals a fresh run of the new configuration on the code, device and process count that
    trained the source (tested); retraining matches only when it runs on those too.

    The new settings: ``overrides`` (``key=value``) applied to the run's config, or a whole ``cfg``.  A
    re-evaluation that fails leaves nothing behind: it has no state worth resuming."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("evaluating a run again is one process; run it without torchrun")
    src = RunDir.open(source, required=MODEL_FILES)
    cfg = _new_config(src, overrides, cfg)
    try:
        device = pick_device(device_name or cfg.train.device)
    except ConfigError:
        raise ConfigError(f"--device {device_name or cfg.train.device}: no CUDA device here; evaluate with "
                          "--device cpu") from None
    # everything read from the source before anything is written, so a damaged run fails at once
    trained = src.read_json("metrics.json")
    saved = DistilledModel.load(src.path, methods=())   # its calibrations, kept scores, candidates
    missing = [n for n in ("teacher", *(f"student_{m}" for m in cfg.student.methods))
               if not (src.checkpoints / f"{n}.safetensors").is_file()]
    if missing:
        raise RunDirError(f"checkpoints/{missing[0]}.safetensors is missing; the run cannot be evaluated again",
                          source=str(src.path))
    out = Path(out)
    if out.resolve() == src.path.resolve():
        raise RunDirError("--out names the run itself; give a new folder", source=str(out))
    t0 = time.perf_counter()
    rd = RunDir.create(out, cfg)
    try:
        with graceful_stop(), threads(cfg.train.num_threads):
            _reevaluate(src, rd, cfg, saved, trained, device, progress, log, t0)
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


def _reevaluate(src: RunDir, rd: RunDir, cfg: RunConfig, saved: DistilledModel, trained: dict, device, progress: bool,
                log, t0: float) -> None:
    rd.update(reevaluated_from=str(src.path.resolve()),  # its models are the source's code's work
              trained_with_code=src.info.get("code"),
              **({"resumed_with_code": src.info["resumed_with_code"]} if "resumed_with_code" in src.info else {}))
    shutil.copytree(src.path / "logs", rd.path / "logs", dirs_exist_ok=True)  # training curves
    if (src.path / "data" / "dataset.yaml").is_file():  # generated data: the very samples trained on
        shutil.copytree(src.path / "data", rd.path / "data")
    seed_everything(cfg.seed)
    log(f"[kgdistill] run {rd.info['run_id']}: {src.path} evaluated again on {device} -> {rd.path}")
    task = build_run_task(cfg, rd, device, progress, log)
    if list(task.candidates) != saved.candidates:
        raise RunDirError("its data now gives other candidate concepts than it was trained on; train "
                          "a new run instead", source=str(src.path))
    cal, kept = _recalibrate(src, rd, cfg, task, saved, trained.get("device"), device, progress, log)
    model = DistilledModel.load(src.path, task)
    model.config, model.text_baseline = cfg, task.text_baseline   # the new eval settings' baseline
    model.calibrations, model.validation_scores = cal, kept
    for f in DistilledModel.weight_files(src.path):
        if f.is_file():
            shutil.copy2(f, rd.checkpoints / f.name)
    finish_run(cfg, rd, task, model, device, trained.get("training", {}), t0, log, weights=False,
               reevaluated_from=str(src.path.resolve()))


def _recalibrate(src: RunDir, rd: RunDir, cfg: RunConfig, task: Task, saved: DistilledModel, trained_on: str | None,
                 device, progress: bool, log) -> tuple[dict, ValidationScores | None]:
    """The source's calibrations; when the text baseline changed, the fused methods' chosen again."""
    cal, kept = dict(saved.calibrations), saved.validation_scores
    fused = calibrated_methods(cfg, fused_only=True)
    old = src.config().eval.text_baseline
    if not (fused and old != cfg.eval.text_baseline and task.text_baseline is not None and can_calibrate(cfg, task)):
        return cal, kept
    t1 = time.perf_counter()
    if kept is not None and fused.keys() <= kept.scores.keys():
        cal |= rechoose_from_kept(cfg, task, kept, src.path)
        how = "from the calibration pass's saved validation scores"
    else:  # a run made before validation scores were kept
        _warn_if_trained_differently(src, rd, trained_on, device, log)
        again, kept = calibrate(cfg, task, device, rd.path / "logs" / "calibration", progress, students=list(fused))
        cal |= {m: c for m, c in again.items() if m != TEACHER}
        how = "by training its calibration pass again"
    log(f"[kgdistill] calibration of {', '.join(fused)} chosen again {how} in {time.perf_counter() - t1:.1f}s")
    return cal, kept


def rechoose_from_kept(cfg: RunConfig, task: Task, kept: ValidationScores, run: Path) -> dict[str, Calibration]:
    """The fused methods' calibrations chosen under ``cfg.calibration`` from the validation scores ``run`` kept,
    no training.  Saved scores choose what retraining would only for the same samples and hold-out (checked)."""
    held = choose_holdout(task, cfg.calibration.holdout_fraction, cfg.seed)
    if not (np.array_equal(kept.val.numpy(), calibration_samples(task)) and np.array_equal(kept.held.numpy(), held)):
        raise RunDirError("checkpoints/validation_scores.safetensors scores other validation samples or held-out "
                          "concepts than its data and config give; train a new run instead", source=str(run))
    fused = calibrated_methods(cfg, fused_only=True)
    return choose_for_task(cfg, task, fused, kept.val.numpy(), kept.held.numpy(), kept.scores)


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
