"""Shared fixtures: one tiny but real end-to-end run (HPO data, MiniLM text, GNN), reused by many tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "name=tiny", "data.hpo.num_diseases=12", "data.hpo.train_per_disease=6", "data.hpo.labelled_per_disease=2",
    "data.hpo.val_per_disease=3", "data.hpo.test_per_disease=3", "teacher.epochs=4", "student.epochs=4",
    "teacher.batch_size=16",  # 72 training samples: 5 teacher steps an epoch, not 1, so its loss can fall
    "space.dim=32", "gnn.hidden=64", "teacher.encoder.hidden=64", "student.encoder.hidden=64",
    "eval.plots=true", "calibration.gammas=[0.0,0.1]", "calibration.fusion_weights=[0.0,0.5]",
]


@pytest.fixture(scope="session")
def tiny_config(tiny_config_with):
    return tiny_config_with()


@pytest.fixture(scope="session")
def tiny_config_with():
    """The tiny configuration with more ``key=value`` overrides."""
    from kgdistill.config import load_config, packaged_config

    return lambda *overrides: load_config(packaged_config("quick"), TINY + list(overrides))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_config):
    """A complete run directory from the real pipeline on 12 HPO diseases."""
    from kgdistill.pipeline import run_pipeline

    out = tmp_path_factory.mktemp("runs") / "tiny"
    return run_pipeline(tiny_config, out, progress=False, log=lambda *_: None).path


def kgdistill_cmd(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600):
    import subprocess
    import sys

    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "kgdistill", *args], cwd=cwd or ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def cli():
    return kgdistill_cmd
