"""kgdistill: knowledge-graph-guided cross-modal knowledge distillation.

One call from Python::

    import kgdistill
    run = kgdistill.run("quick", out="runs/q", overrides=["seed=1"])   # a packaged config name or a YAML path
    print(run.metrics()["methods"]["kg_guided"]["unseen"])
"""
from __future__ import annotations

from pathlib import Path

from ._version import __version__  # noqa: F401


def run(config: str | Path = "default", out: str | Path | None = None, overrides: list[str] | None = None,
        progress: bool = False):
    """Train and evaluate from a packaged config name (``default``, ``quick``) or a YAML file; returns the RunDir."""
    from datetime import datetime

    from .config import load_config, packaged_config
    from .pipeline import run_pipeline

    path = packaged_config(str(config)) if packaged_config(str(config)).is_file() else Path(config)
    cfg = load_config(path, overrides)
    out = out or Path("runs") / f"{cfg.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    return run_pipeline(cfg, out, progress=progress, log=print if progress else (lambda *_: None))
