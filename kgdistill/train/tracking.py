"""Experiment tracking (``train.tracking: [tensorboard, mlflow]``): a finished run sent to the tools users
already watch.

It reads only what the run wrote (config, per-epoch CSV logs of every stage of both passes, metrics.json,
report and plots) after the run is marked complete, so tracking can neither change a figure nor stop a run: a
failure is one warning line.  MLflow: one MLflow run per kgdistill run, in the experiment named after the
config's ``name``, in a local store inside the run directory (``RUN/mlruns``, MLflow's file store) unless
``train.tracking_uri`` names another (``sqlite:///...``, ``http://...``).  TensorBoard: the per-epoch
scalars are written live by ``logger.StageLogger`` into ``RUN/logs/tensorboard``; this adds the final metrics
and the report.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from ..config import RunConfig

MLFLOW_BATCH = 500            # MLflow accepts at most 1000 metrics and 100 params per log_batch call
PARAM_LIMIT = 6000            # MLflow's longest param value


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1, {"c": 2}]}}`` -> ``{"a.b.0": 1, "a.b.1.c": 2}``; an empty mapping or list stays one entry."""
    if isinstance(tree, dict) and tree:
        return {k: v for key, sub in tree.items() for k, v in flatten(sub, f"{prefix}{key}.").items()}
    if isinstance(tree, list) and tree:
        return {k: v for i, sub in enumerate(tree) for k, v in flatten(sub, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): tree}


def epoch_metrics(run: Path) -> Iterator[tuple[str, int, float]]:
    """(stage/metric, epoch, value) from every stage's CSV log; the calibration pass's stages as
    ``calibration/<stage>/<metric>``."""
    logs = run / "logs"
    for path in sorted(logs.glob("*.csv")) + sorted((logs / "calibration").glob("*.csv")):
        stage = path.stem if path.parent == logs else f"calibration/{path.stem}"
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                epoch = int(float(row["epoch"]))
                for key, raw in row.items():
                    value = _number(raw)
                    if key != "epoch" and value is not None:
                        yield f"{stage}/{key}", epoch, value


def final_metrics(run: Path) -> dict[str, float]:
    """metrics.json's per-method test figures, ``test/<method>/<group>_<metric>``, finite numbers only."""
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    out: dict[str, float] = {}
    for method, entry in metrics["methods"].items():
        for key, value in flatten(entry).items():
            if _number(value) is not None and not key.startswith("calibration"):
                out[f"test/{method}/{key.replace('.', '_')}"] = float(value)
    return out


def artefacts(run: Path) -> list[Path]:
    return [p for p in (run / "report.md", run / "metrics.json", run / "config.yaml") if p.is_file()] + sorted(
        (run / "plots").glob("*.png"))


def track_run(cfg: RunConfig, run: Path, log: Callable[[str], Any] = print) -> None:
    """Send the finished run to each tool of ``train.tracking``; a failure is one warning, never an error."""
    for tool in cfg.train.tracking:
        try:
            TRACKERS[tool](cfg, Path(run))
        except Exception as exc:  # noqa: BLE001 - tracking must never stop or change a run
            log(f"[kgdistill] warning: tracking with {tool} failed ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:300]}); the run and its results are complete and unaffected")


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """Environment settings for the tracking call only (a remote store that is down fails fast)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items() if old[k] is None})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)


def mlflow_uri(cfg: RunConfig, run: Path) -> str:
    return cfg.train.tracking_uri or (run.resolve() / "mlruns").as_uri()


def to_mlflow(cfg: RunConfig, run: Path) -> None:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    with _env(MLFLOW_ALLOW_FILE_STORE="true", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="20"):
        client = MlflowClient(tracking_uri=mlflow_uri(cfg, run))
        exp = client.get_experiment_by_name(cfg.name)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(cfg.name)
        run_id = json.loads((run / "run.json").read_text(encoding="utf-8")).get("run_id", run.name)
        rid = client.create_run(exp_id, run_name=str(run_id), tags={"kgdistill.run_dir": str(run.resolve())}).info.run_id
        params = [Param(k, json.dumps(v) if not isinstance(v, str) else v)
                  for k, v in flatten(json.loads(json.dumps(cfg.to_dict()))).items()]
        params = [Param(p.key, p.value[:PARAM_LIMIT]) for p in params]
        metrics = [Metric(k, v, 0, step) for k, step, v in epoch_metrics(run)]
        metrics += [Metric(k, v, 0, 0) for k, v in final_metrics(run).items()]
        for i in range(0, len(params), 100):
            client.log_batch(rid, params=params[i:i + 100])
        for i in range(0, len(metrics), MLFLOW_BATCH):
            client.log_batch(rid, metrics=metrics[i:i + MLFLOW_BATCH])
        for path in artefacts(run):
            client.log_artifact(rid, str(path), artifact_path="plots" if path.suffix == ".png" else None)
        client.set_terminated(rid)


def to_tensorboard(cfg: RunConfig, run: Path) -> None:
    """The final metrics as scalars and the report as text (the per-epoch curves are written live)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run / "logs" / "tensorboard" / "final"))
    try:
        for key, value in final_metrics(run).items():
            writer.add_scalar(key, value, 0)
        if (run / "report.md").is_file():
            writer.add_text("report", (run / "report.md").read_text(encoding="utf-8"), 0)
    finally:
        writer.close()


TRACKERS: dict[str, Callable[[RunConfig, Path], None]] = {"mlflow": to_mlflow, "tensorboard": to_tensorboard}


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
