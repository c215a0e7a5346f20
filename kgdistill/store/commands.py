"""``kgdistill align push|query``.

Mount with ``app.add_typer(align_app, name="align")``.  ``align query --text`` embeds the text with the run's
student through a function the caller passes in the click context (``obj={"embed_text": fn}``, ``fn(text,
run_dir) -> vector``), so the store never imports the model code.  User errors are raised as KGDistillError
subclasses (the main CLI prints one line and exits 2).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import ConfigError, StoreError

STORE_HELP = ("Store URI: bolt://host:port (Neo4j; credentials only from NEO4J_USER / NEO4J_PASSWORD) or "
              "sqlite:///path (embedded; sqlite:////absolute/path). Default: $KGDISTILL_STORE or "
              "sqlite:///runs/alignments.sqlite.")

align_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Push a finished run's concept alignments to a store (SQLite or Neo4j) and query them.")


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _console():
    from rich.console import Console

    con = Console(highlight=False, soft_wrap=False)
    if not con.is_terminal:  # piped: do not squeeze tables into 80 columns
        con = Console(highlight=False, soft_wrap=False, width=160)
    return con


def _table(title: str, columns: list[str], rows: list[list[Any]]):
    """A rich table whose cells are plain text (never parsed as markup: ids may contain [brackets])."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(title), title_justify="left", show_lines=False)
    for c in columns:
        t.add_column(Text(c), overflow="fold")
    for r in rows:
        t.add_row(*[Text(_fmt(v)) for v in r])
    return t


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


@align_app.command("push")
def push_command(
        run_dir: Path = typer.Argument(..., help="A finished run directory (run.json status 'complete')."),
        store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
        replace: bool = typer.Option(False, "--replace", help="Overwrite a run of the same id whose content differs."),
        force: bool = typer.Option(False, "--force", help="Write again even if the run is already in the store "
                                                          "(nothing is duplicated)."),
        as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Write a finished run's alignments to a store.  Pushing the same run again changes nothing."""
    from .base import open_store
    from .export import read_run_dir

    export = read_run_dir(run_dir)
    with open_store(store) as st:
        res = st.push(export, replace=replace, force=force)
    if as_json:
        _print_json(res.to_dict())
        return
    if res.outcome == "unchanged":
        typer.echo(f"Run {res.run_id!r} is already in {res.store}; nothing changed.")
        return
    verb = "Replaced" if res.outcome == "replaced" else "Pushed"
    typer.echo(f"{verb} run {res.run_id!r} to {res.store}: {res.n_alignments} alignments "
               f"({res.n_concepts} concepts, {res.n_samples} samples, {res.n_correspondences} correspondences, "
               f"{res.n_disagreements} disagreement records) in {res.seconds:.2f} s "
               f"({res.alignments_per_s:,.0f} alignments/s).")


@align_app.command("query")
def query_command(
        ctx: typer.Context,
        store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
        concept: Optional[str] = typer.Option(None, "--concept", help="A concept id: its aligned samples, nearest "
                                                                      "concepts in both spaces, accuracy."),
        text: Optional[str] = typer.Option(None, "--text", help="A new input: nearest concepts through the run's "
                                                                "student encoder and the vector index."),
        disagreements: bool = typer.Option(False, "--disagreements", help="Concepts where teacher and student "
                                                                          "differ most."),
        run: Optional[str] = typer.Option(None, "--run", help="Run id (default: the newest pushed run)."),
        top_k: int = typer.Option(10, "--top-k", min=1, help="How many results (per list)."),
        run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="For --text: the run directory holding the "
                                                                       "student encoder (default: where it was "
                                                                       "pushed from)."),
        as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Query a store; with no --concept / --text / --disagreements, list its runs."""
    from .base import open_store

    modes = [m for m, on in (("--concept", concept is not None), ("--text", text is not None),
                             ("--disagreements", disagreements)) if on]
    if len(modes) > 1:
        raise ConfigError(f"give one of --concept, --text, --disagreements (got {' and '.join(modes)})")
    with open_store(store) as st:
        if concept is not None:
            rep = st.concept(concept, run_id=run, top_k=top_k)
            if as_json:
                _print_json(rep.to_dict())
            else:
                _show_concept(rep)
        elif text is not None:
            summary = st.resolve_run(run)
            vec = _embed_text(ctx, text, run_dir or Path(summary.run_dir), summary.run_id)
            hits = st.query_vector(vec, k=top_k, run_id=summary.run_id)
            if as_json:
                _print_json({"run_id": summary.run_id, "text": text, "hits": [h.__dict__ for h in hits]})
            else:
                _console().print(_table(f"Nearest concepts (run {summary.run_id})", ["rank", "id", "name", "cosine"],
                                        [[h.rank, h.id, h.name, h.score] for h in hits]))
        elif disagreements:
            summary = st.resolve_run(run)
            recs = st.disagreements(run_id=summary.run_id, top_k=top_k)
            if as_json:
                _print_json({"run_id": summary.run_id, "disagreements": [r.to_dict() for r in recs]})
            else:
                _console().print(_table(
                    f"Where teacher and student disagree most (run {summary.run_id})",
                    ["rank", "id", "name", "score", "top-1 differ", "teacher top1", "student top1", "centroid cos",
                     "student -> teacher", "match"],
                    [[r.rank, r.id, r.name, r.score, r.sample_rate, r.teacher_top1, r.student_top1, r.centroid_cos,
                      r.nearest_teacher, r.match] for r in recs]))
        else:
            runs = st.runs()
            if as_json:
                _print_json({"store": st.uri, "runs": [r.to_dict() for r in runs]})
            else:
                _console().print(_table(f"Runs in {st.uri}", ["run", "status", "finished", "concepts", "alignments",
                                                              "config", "graph"],
                                        [[r.run_id, r.status, r.finished, r.n_concepts, r.n_alignments,
                                          r.config_hash, r.graph_source] for r in runs]))


def _embed_text(ctx: typer.Context, text: str, run_dir: Path, run_id: str):
    import numpy as np

    if not Path(run_dir).is_dir():
        raise StoreError(f"run directory {run_dir} of run {run_id!r} is not here; pass --run-dir")
    embed = (ctx.obj or {}).get("embed_text") if ctx is not None else None
    if embed is None:
        raise StoreError("--text needs the run's student encoder; run it through the kgdistill command")
    return np.asarray(embed(text, Path(run_dir)))


def _show_concept(rep) -> None:
    con = _console()
    from rich.text import Text

    con.print(Text(f"{rep.id}  {rep.name}  ({rep.type}, {'seen' if rep.seen else 'unseen'} in training; "
                   f"graph {rep.source}; run {rep.run_id})"))
    con.print(Text(f"test samples {rep.n_test}   teacher top-1 {_fmt(rep.teacher_top1)}   "
                   f"student top-1 {_fmt(rep.student_top1)}"))
    if rep.disagreement is not None:
        d = rep.disagreement
        con.print(Text(f"disagreement rank {d.rank} (score {_fmt(d.score)}); student centroid nearest teacher "
                       f"concept {d.nearest_teacher} ({_fmt(d.nearest_teacher_cos)}, {d.match or 'no match'})"))
    for modality in ("teacher", "student"):
        con.print(_table(f"Samples aligned to it ({modality})", ["sample", "true concept", "rank", "score"],
                         [[h.sample_id, h.true_id, h.rank, h.score] for h in rep.samples.get(modality, [])]))
    for space in ("teacher", "student"):
        con.print(_table(f"Nearest concepts in the {space}'s space", ["rank", "id", "name", "cosine"],
                         [[h.rank, h.id, h.name, h.score] for h in rep.neighbours.get(space, [])]))
    for modality in ("teacher", "student"):
        con.print(_table(f"Prototypes nearest its {modality} centroid", ["rank", "id", "name", "cosine"],
                         [[h.rank, h.id, h.name, h.score] for h in rep.aligned.get(modality, [])]))
    con.print(_table("Correspondences (student space -> teacher space)", ["rank", "id", "name", "match", "confidence"],
                     [[c.rank, c.id, c.name, c.match, c.confidence] for c in rep.correspondences]))
