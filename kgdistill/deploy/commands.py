"""``kgdistill export`` and ``kgdistill serve``.  Mounted by cli.py as top-level commands."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def export(run_dir: Path = typer.Argument(..., help="A complete run directory."),
           out: Path = typer.Option(..., "--out", help="The folder to write (new or empty)."),
           format: str = typer.Option("onnx", "--format", help="Only onnx for now."),
           quantize: Optional[str] = typer.Option(None, "--quantize", help="int8: dynamic int8 quantisation."),
           prune: Optional[float] = typer.Option(None, "--prune", help="Zero this share of the student's weights "
                                                 "(global L1 magnitude), e.g. 0.3."),
           method: str = typer.Option("kg_guided", "--method", help="Which student of the run.")):
    """A run's student as a self-contained ONNX model folder (tokenizer, candidates, manifest with checksums)
    that ONNX Runtime scores without the training code."""
    from ..errors import ConfigError
    from .export import export_run

    if format != "onnx":
        raise ConfigError(f"--format: {format!r}; expected onnx")
    export_run(run_dir, out, method=method, quantize=quantize, prune=prune)


def serve(path: Path = typer.Argument(..., help="An exported model folder, or a run directory (exported first "
                                                "into RUN/exports/METHOD)."),
          host: str = typer.Option("127.0.0.1", "--host"),
          port: int = typer.Option(8000, "--port"),
          workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (each loads the model)."),
          token_file: Optional[Path] = typer.Option(None, "--token-file", help="Bearer tokens, one a line (also: "
                                                    "KGDISTILL_TOKENS, comma-separated)."),
          method: str = typer.Option("kg_guided", "--method", help="With a run directory: which student."),
          max_body_bytes: int = typer.Option(1 << 20, "--max-body-bytes", min=1),
          max_batch: int = typer.Option(64, "--max-batch", min=1),
          max_input_length: int = typer.Option(20_000, "--max-input-length", min=1,
                                               help="Characters of a note; numbers of a signal."),
          timeout: float = typer.Option(10.0, "--timeout", min=0.001, help="Seconds to receive a body, and to "
                                        "score it."),
          threads: Optional[int] = typer.Option(None, "--threads", min=1, help="ONNX Runtime threads per "
                                                "worker (default: its own choice)."),
          max_inflight: int = typer.Option(2, "--max-inflight", min=1, help="Model calls at once per worker; "
                                           "requests that arrive meanwhile wait (within --timeout) and are scored "
                                           "together, up to --max-batch inputs per call.")):
    """Serve a student over HTTP: predict, concept lookup, health, readiness, Prometheus metrics, OpenAPI."""
    from .artefact import is_export
    from .requests import Limits
    from .serve import run_server

    folder = path
    if not is_export(path):
        folder = path / "exports" / method
        if not is_export(folder):
            from .export import export_run  # torch and the training code: only to export, never to serve

            export_run(path, folder, method=method)
    run_server(str(folder), host=host, port=port, workers=workers,
               token_file=str(token_file) if token_file else None, threads=threads,
               limits=Limits(max_body_bytes, max_batch, max_input_length, timeout, max_inflight=max_inflight))
