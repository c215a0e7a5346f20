"""The ``kgdistill`` command line.

User mistakes (bad files, bad config keys, incomplete runs) are reported as one line
on stderr with exit code 2; nothing is marked complete unless it is.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import List, Optional

import click
import typer

from .errors import KGDistillError, TrainingInterrupted

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Knowledge-graph-guided cross-modal knowledge distillation.")
graph_app = typer.Typer(no_args_is_help=True, help="Inspect and load knowledge graphs.")
app.add_typer(graph_app, name="graph")


def _default_out(name: str) -> Path:
    return Path("runs") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


OVERWRITE_HELP = "Replace an unfinished run in --out (a failed run with nothing to resume is replaced anyway)."


def _train(cfg, out: Optional[Path], quiet: bool, resume: bool = False, overwrite: bool = False) -> None:
    from .eval.report import metrics_table
    from .pipeline import run_pipeline

    out = out or _default_out(cfg.name)
    rd = run_pipeline(cfg, out, progress=not quiet, log=(lambda *_: None) if quiet else print, resume=resume,
                      overwrite=overwrite)
    if rd is not None:  # None on torchrun ranks other than 0
        print(metrics_table(rd.metrics()))
        print(f"\nrun directory: {rd.path}")


@app.command()
def demo(quick: bool = typer.Option(False, "--quick", help="The task's reduced form (minutes on 2 CPU cores)."),
         task: Optional[str] = typer.Option(None, "--task", help="Which demo: patients (default: real published patients, "
                                                           "phenopacket-store), simulated, bearings, spoken-digits; see the README."),
         out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default: a new folder under runs/)."),
         seed: int = typer.Option(0, "--seed"),
         set_: List[str] = typer.Option([], "--set", help="Override a config key, e.g. --set student.epochs=10."),
         quiet: bool = typer.Option(False, "--quiet"),
         overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP)):
    """A packaged task end to end (default: rare-disease diagnosis of real published patients on the Human
    Phenotype Ontology)."""
    from .config import demo_config, load_config

    cfg = load_config(demo_config(task, quick), [f"seed={seed}", *set_])
    _train(cfg, out, quiet, overwrite=overwrite)


@app.command()
def train(config: Optional[Path] = typer.Argument(None, help="YAML configuration (optional with --resume)."),
          set_: List[str] = typer.Option([], "--set", help="Override a config key: --set a.b=value (repeatable)."),
          out: Optional[Path] = typer.Option(None, "--out"),
          resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted or killed run."),
          quiet: bool = typer.Option(False, "--quiet"),
          overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP)):
    """Train teacher and students from a configuration file and evaluate them.

    Under torchrun (``torchrun --nproc_per_node N -m kgdistill train CONFIG``) each process trains on its slice
    of every batch; see docs/distributed.md."""
    from .config import load_config
    from .errors import ConfigError

    if resume is not None:
        if out is not None and out != resume:
            raise ConfigError("--out and --resume name different folders; --resume continues in place")
        if overwrite:
            raise ConfigError("--overwrite and --resume: give one (--resume continues the run, --overwrite replaces it)")
        _train(load_config(config, set_) if config is not None else None, resume, quiet, resume=True)
    elif config is None:
        raise ConfigError("train needs a CONFIG file (or --resume RUN_DIR)")
    else:
        _train(load_config(config, set_), out, quiet, overwrite=overwrite)


@app.command("eval")
def eval_(run_dir: Path = typer.Argument(...), as_json: bool = typer.Option(False, "--json"),
          device: Optional[str] = typer.Option(None, "--device", help="Default: cpu; with --out, the run's own "
                                               "train.device."),
          set_: List[str] = typer.Option([], "--set", help="Another eval.* setting, e.g. --set "
                                         "eval.text_baseline=mean (needs --out)."),
          out: Optional[Path] = typer.Option(None, "--out", help="Write a new complete run directory evaluated with "
                                             "the --set settings; the trained models are reused.  With --data: "
                                             "a folder for metrics.json and report.md."),
          data: Optional[Path] = typer.Option(None, "--data", help="Score the run on this dataset folder's test "
                                              "samples instead (same candidates, the run's graph; no training)."),
          quiet: bool = typer.Option(False, "--quiet")):
    """Re-score a finished run's test set from its checkpoints; with --data, score it on another dataset folder
    over the same graph (a new hospital's patients); with --set and --out, evaluate it again with other settings
    (e.g. another text baseline) into a new run directory, without training it again."""
    from .errors import ConfigError
    from .eval.report import metrics_table
    from .fileio import strict_json
    from .reevaluate import evaluate_on_data, evaluate_run, reevaluate_run

    if data is not None:
        if set_:
            raise ConfigError("--set and --data: score another dataset with the run's own settings")
        m = evaluate_on_data(run_dir, data, device or "cpu", out)
        print(json.dumps(strict_json(m), indent=2, allow_nan=False) if as_json else metrics_table(m))
        return
    if out is None:
        if set_:
            raise ConfigError("--set needs --out: evaluating with other settings writes a new run directory")
        m = evaluate_run(run_dir, device or "cpu")
    else:
        rd = reevaluate_run(run_dir, out, set_, device_name=device, progress=not quiet,
                            log=(lambda *_: None) if quiet else print)
        m = rd.metrics()
    print(json.dumps(strict_json(m), indent=2, allow_nan=False) if as_json else metrics_table(m))
    if out is not None and not as_json:
        print(f"\nrun directory: {out}")


@app.command()
def predict(run_dir: Path = typer.Argument(...),
            text: Optional[str] = typer.Option(None, "--text", help="One input text (e.g. a clinical note)."),
            input_: Optional[Path] = typer.Option(None, "--input", help="A file of inputs in the student's format."),
            top_k: int = typer.Option(10, "--top-k", min=1),
            method: str = typer.Option("kg_guided", "--method"),
            as_json: bool = typer.Option(False, "--json")):
    """Rank concepts for new inputs, with the graph evidence for each."""
    from dataclasses import asdict

    from .errors import DataError
    from .predict import Predictor

    if (text is None) == (input_ is None):
        raise DataError("give exactly one of --text or --input")
    p = Predictor.from_run_dir(run_dir, method)
    results = p.predict_texts([text], top_k) if text is not None else p.predict_file(input_, top_k)
    if as_json:
        print(json.dumps([[asdict(r) for r in res] for res in results], indent=2))
        return
    for n, res in enumerate(results):
        if len(results) > 1:
            print(f"# input {n + 1}")
        for rank, r in enumerate(res, 1):
            tag = "" if r.seen else "  [unseen: predicted from the graph]"
            print(f"{rank:>3}. {r.concept_id:<16} {r.score:+.3f}  {r.name}{tag}")
            for e in r.evidence:
                kind = "against " if e.against else "evidence"
                print(f"       {kind}: \"{e.text}\" -> {e.finding_id} {e.finding_name} ({e.similarity:.2f})")


@graph_app.command("inspect")
def graph_inspect(path: Path = typer.Argument(..., help="Graph file or folder (OBO, Turtle, RDF/XML, N-Triples, GraphML, CSV)."),
                  format: str = typer.Option("auto", "--format"), as_json: bool = typer.Option(False, "--json"),
                  relation: List[str] = typer.Option([], "--relation", help="An RDF/OWL property to read as a "
                                                     "relation although it is not a declared object property "
                                                     "(IRI or CURIE as shown; repeatable)."),
                  candidates: Optional[Path] = typer.Option(None, "--candidates", help="A candidates.txt (one "
                                                            "concept id per line): say which of them the graph "
                                                            "cannot tell apart.")):
    """Node, edge and relation counts, which predicates were not taken as relations, roots, cycles, dangling ids;
    with --candidates, the candidates whose neighbourhoods are identical or nearly so."""
    from .graph import format_inspection, inspect_graph, load_graph
    from .graph.distinct import candidate_report

    kg = load_graph(path, format=format, **({"extra_relations": relation} if relation else {}))
    info = inspect_graph(kg)
    if candidates is not None:
        info["indistinguishable"] = candidate_report(kg, candidates)
    print(json.dumps(info, indent=2, default=str) if as_json else format_inspection(info))


@graph_app.command("load")
def graph_load(
        uri: str = typer.Argument(..., help="bolt://host:port of the Neo4j server holding the graph "
                                            "(credentials from NEO4J_USER / NEO4J_PASSWORD)."),
        label: List[str] = typer.Option(..., "--label", help="Node label of the graph's concepts (repeatable)."),
        rel: List[str] = typer.Option([], "--rel", help="Relationship type to read (repeatable; default: every "
                                                        "type between those nodes)."),
        id_property: str = typer.Option("id", "--id-property", help="Node property holding the concept id."),
        name_property: str = typer.Option("name", "--name-property", help="Node property holding the name."),
        text_property: Optional[str] = typer.Option(None, "--text-property", help="Node property with a definition."),
        type_property: Optional[str] = typer.Option(None, "--type-property", help="Node property with the node "
                                                                                  "type (default: its label)."),
        synonyms_property: Optional[str] = typer.Option(None, "--synonyms-property", help="List property (or "
                                                                                          "'|'-separated text)."),
        weight_property: Optional[str] = typer.Option(None, "--weight-property", help="Relationship weight "
                                                                                      "property."),
        reverse: List[str] = typer.Option([], "--reverse", help="Relationship type whose edges point general -> "
                                                                "specific (flipped on reading; repeatable)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Save the graph as nodes.csv + edges.csv here."),
        as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Read a domain graph from Neo4j into the project's typed graph (same as the file loaders)."""
    from .graph.neo4j_io import load_neo4j

    kg = load_neo4j(uri, label, rel or None, id_property=id_property, name_property=name_property,
                    text_property=text_property, type_property=type_property, synonyms_property=synonyms_property,
                    weight_property=weight_property, reverse_types=reverse)
    saved = str(kg.save_csv(out)) if out is not None else None
    info = {"source": kg.source, "nodes": kg.num_nodes, "edges": kg.num_edges, "relations": kg.relation_counts(),
            "types": kg.type_counts(), "saved_to": saved}
    if as_json:
        print(json.dumps(info, indent=2, ensure_ascii=False, default=str))
        return
    print(f"Read {kg.num_nodes} nodes and {kg.num_edges} edges from {kg.source}")
    for r, c in info["relations"].items():
        print(f"  {r}: {c}")
    if saved:
        print(f"Saved to {saved} (nodes.csv, edges.csv)")


def _embed_text(text: str, run_dir: Path):
    """What ``align query --text`` compares with the store: the run's student vector of ``text``."""
    from .predict import Predictor

    return Predictor.from_run_dir(run_dir).embed_texts([text])[0]


def _mount_store_commands() -> None:
    from .store.commands import align_app

    app.add_typer(align_app, name="align")


_mount_store_commands()


def _mount_data_commands() -> None:
    from .data.commands import data_app

    app.add_typer(data_app, name="data")


_mount_data_commands()


def _mount_deploy_commands() -> None:
    from .deploy import commands

    app.command("export")(commands.export)
    app.command("serve")(commands.serve)


_mount_deploy_commands()


def _quiet_third_party() -> None:
    """Library deprecation chatter is not the user's business; our own warnings still show."""
    import os
    import warnings

    for cat in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=cat, module=r"(torch|torch_geometric|transformers)(\..*)?$")
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _one_line_warnings() -> None:
    """Our warnings (an old config key) as one line each, like our errors."""
    import warnings

    warnings.formatwarning = lambda message, category, *_a, **_k: f"kgdistill: warning: {message}\n"


def main(argv: Optional[list[str]] = None) -> None:
    _quiet_third_party()
    _one_line_warnings()
    try:
        app(args=argv, prog_name="kgdistill", standalone_mode=False, obj={"embed_text": _embed_text})
    except TrainingInterrupted as exc:
        print(f"kgdistill: interrupted: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KGDistillError as exc:
        print(f"kgdistill: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("kgdistill: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
