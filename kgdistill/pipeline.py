"""One call from configuration to a complete run directory; this module only puts the stages in order.

1. build the task (data, graph, features): ``task.build_task``;
2. calibration pass: hold out some seen concepts as stand-ins for unseen ones, train everything, choose each
   method's calibration on validation samples (``train/calibration_pass.py``);
3. final pass: train on all seen concepts (``train/distill.py``), giving the :class:`DistilledModel`;
4. evaluate it on the test samples and write the run, marked complete last (``results.py``).

Every stage resumes: a finished one is restored from ``RUN/state``, the running one continues from its last
checkpoint.  ``reevaluate.py`` evaluates a finished run again under other ``eval.*`` settings.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

from .config import RunConfig
from .errors import RunDirError, TrainingInterrupted
from .eval.calibration import Calibration, ValidationScores, calibrations_from_json, calibrations_to_json
from .fileio import write_json_atomic
from .model import VALIDATION_SCORES_FILE
from .results import adabn_pool, finish_run
from .run_dir import RunDir
from .task import Task, build_task
from .train.calibration_pass import calibrate
from .train.device import pick_device, seed_everything, threads
from .train.distill import fit_models
from .train.distributed import init_from_env, shutdown
from .train.tracking import track_run
from .train.state import graceful_stop

CALIBRATION_STATE = "calibration.json"   # in state/: the calibration pass is done


def run_pipeline(cfg: RunConfig | None, out: str | Path, *, progress: bool = True, log=print,
                 resume: bool = False, overwrite: bool = False) -> RunDir | None:
    """Train, evaluate and export; returns the complete run directory (None on torchrun ranks other than 0).

    ``resume``: continue the run in ``out`` (its saved config runs; ``cfg``, if given, must equal it); finished
    stages are restored, the unfinished one continues from its last checkpoint.  Under torchrun every rank runs
    this; ranks other than 0 work in a private scratch folder and write nothing the user sees.  ``out`` may hold a
    failed run with nothing to resume, which is replaced (``overwrite``: any unfinished run; see
    :meth:`RunDir.replaceable`)."""
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
            rd = RunDir.create(out, cfg, overwrite=overwrite, log=log)
        state = Path(out) / "state"  # rank 0 writes it; every rank reads it on resume
        with graceful_stop():
            return _run(cfg, rd, state, dist, device_name, progress, log)


@contextlib.contextmanager
def marks_failure(rd: RunDir):
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


def build_run_task(cfg: RunConfig, rd: RunDir, device, progress: bool, log, dist=None) -> Task:
    """The task, with the graph as loaded saved beside the run."""
    if dist is not None and not dist.is_main:
        dist.barrier()  # rank 0 builds first, so the others find the text cache warm
    task = build_task(cfg, rd.path, device, progress=progress)
    if dist is not None and dist.is_main:
        dist.barrier()
    if cfg.eval.adabn:
        adabn_pool(task)
    if cfg.teacher.adabn_unlabelled:
        adabn_pool(task, "teacher.adabn_unlabelled")
    rd.update(graph_source=str(task.kg.source))
    task.kg.save_csv(rd.path / "graph")
    log(f"[kgdistill] {len(task.ds)} samples, {task.num_candidates} candidates "
        f"({int(task.seen.sum())} seen, {int((~task.seen).sum())} unseen), graph {task.kg.num_nodes} nodes / "
        f"{task.kg.num_edges} edges; text cache: {task.embedder.stats}")
    return task


def _calibration_stage(cfg: RunConfig, rd: RunDir, task: Task, state: Path, dist, device, progress: bool, log
                       ) -> tuple[dict[str, Calibration], ValidationScores | None]:
    """The calibration pass, or its outcome from ``state`` when a resumed run already finished it."""
    t1 = time.perf_counter()
    cal = _load_calibration(state / CALIBRATION_STATE)
    kept = _load_validation_scores(state / VALIDATION_SCORES_FILE) if cal is not None else None
    if cal is None:
        cal, kept = calibrate(cfg, task, device, rd.path / "logs" / "calibration", progress, state / "calibration")
        if dist.is_main:
            state.mkdir(parents=True, exist_ok=True)
            if kept is not None:
                kept.save(state / VALIDATION_SCORES_FILE)
            write_json_atomic(state / CALIBRATION_STATE, calibrations_to_json(cal))  # last: the pass is done
    log(f"[kgdistill] calibration pass done in {time.perf_counter() - t1:.1f}s")
    return cal, kept


def _run(cfg: RunConfig, rd: RunDir, state: Path, dist, device_name: str, progress: bool, log) -> RunDir | None:
    t0 = time.perf_counter()
    with marks_failure(rd), threads(cfg.train.num_threads):
        seed_everything(cfg.seed)
        device = pick_device(device_name)
        log(f"[kgdistill] run {rd.info['run_id']} on {device}"
            + (f" x {dist.world_size} ranks" if dist.enabled else "") + f" -> {rd.path}")
        task = build_run_task(cfg, rd, device, progress, log, dist)
        cal, kept = _calibration_stage(cfg, rd, task, state, dist, device, progress, log)
        t2 = time.perf_counter()
        model, results = fit_models(cfg, task, task.seen, device, rd.path / "logs", progress,
                                    state_dir=state / "final")
        log(f"[kgdistill] final pass done in {time.perf_counter() - t2:.1f}s")
        if not dist.is_main:
            return None  # rank 0 evaluates and writes the results
        model.calibrations, model.validation_scores = cal, kept
        training = {k: {"best_epoch": r.best_epoch, "best_val_mrr": r.best_val, "seconds": round(r.seconds, 2),
                        "epochs_run": len(r.history)} for k, r in results.items()}
        finish_run(cfg, rd, task, model, device, training, t0, log)
        shutil.rmtree(state, ignore_errors=True)  # resume state is of no use once the run is complete
    track_run(cfg, rd.path, log)  # after the run is complete: a failure is one warning, the results stand
    return rd


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
        raise RunDirError(f"{exc}; delete {path.parent / CALIBRATION_STATE} to redo the calibration pass "
                          "from its stage checkpoints") from None
