"""Runs and exports the deployment tests share: the tiny text run of conftest.py exported (fp32), and a tiny
sensor run (two-channel vibration-like signals, one tone per class, 1-D CNN students) trained here in seconds."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TONES = (0.02, 0.05, 0.11, 0.23)     # class d: a sine at TONES[d] cycles per step, in noise


def signals(labels: list[int], rng: np.random.Generator, steps: int = 1024) -> np.ndarray:
    t = np.arange(steps)
    out = np.empty((len(labels), 2, steps), dtype=np.float32)
    for i, d in enumerate(labels):
        for c in range(2):
            out[i, c] = np.sin(2 * np.pi * TONES[d] * t + rng.uniform(0, 6)) + 0.3 * rng.standard_normal(steps)
    return out


def write_sensor_dataset(ds: Path, seed: int = 0, per_class: tuple[int, int, int] = (10, 3, 4)) -> None:
    """``per_class``: train, validation and test samples of each class (3 of the training ones labelled)."""
    rng = np.random.default_rng(seed)
    ds.mkdir(parents=True)
    rows, labels = ["id\tlabel\tsplit\tstudent_labelled"], []
    for split, per, labelled in zip(("train", "val", "test"), per_class, (3, per_class[1], per_class[2])):
        for d in range(4):
            for k in range(per):
                rows.append(f"s{len(labels):03d}\tdigit:d{d}\t{split}\t{int(k < labelled)}")
                labels.append(d)
    (ds / "samples.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    np.save(ds / "drive.npy", signals(labels, rng))
    np.save(ds / "fan.npy", signals(labels, rng))
    shutil.copy(ROOT / "graphs" / "spoken_digits.ttl", ds / "g.ttl")
    (ds / "dataset.yaml").write_text(yaml.safe_dump({
        "graph": "g.ttl", "samples": "samples.tsv", "teacher": "drive", "student": "fan",
        "modalities": {"drive": {"kind": "timeseries", "path": "drive.npy"},
                       "fan": {"kind": "timeseries", "path": "fan.npy"}}}))


SENSOR_OVERRIDES = ["teacher.encoder.name=conv1d", "student.encoder.name=conv1d", "student.encoder.hidden=32",
                    "teacher.encoder.hidden=32", "teacher.epochs=6", "student.epochs=6", "teacher.batch_size=8", "student.batch_size=8",
                    "space.dim=16", "gnn.hidden=32", "train.num_threads=1", "eval.plots=false",
                    "calibration.enabled=false"]


def train_sensor_run(root: Path, overrides: list[str] = (), per_class: tuple[int, int, int] = (10, 3, 4)) -> Path:
    from kgdistill.config import load_config
    from kgdistill.pipeline import run_pipeline

    write_sensor_dataset(root / "data", per_class=per_class)
    cfg = load_config(ROOT / "configs" / "bearings.yaml", [f"data.path={root / 'data'}", *SENSOR_OVERRIDES,
                                                            *overrides])
    return run_pipeline(cfg, root / "run", progress=False, log=lambda *_: None).path


@pytest.fixture(scope="session")
def sensor_run(tmp_path_factory):
    return train_sensor_run(tmp_path_factory.mktemp("sensor"))


@pytest.fixture(scope="session")
def text_export(tiny_run, tmp_path_factory):
    from kgdistill.deploy.export import export_run

    out = tmp_path_factory.mktemp("exports") / "text"
    export_run(tiny_run, out, log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def sensor_export(sensor_run, tmp_path_factory):
    from kgdistill.deploy.export import export_run

    out = tmp_path_factory.mktemp("exports") / "sensor"
    export_run(sensor_run, out, log=lambda *_: None)
    return out
