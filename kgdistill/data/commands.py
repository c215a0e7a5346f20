"""``kgdistill data ...``: turn outside data into a dataset folder.  Mounted by cli.py as the ``data`` group."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Convert data into dataset folders.")
SHOWN_PROBLEMS = 20


@data_app.command("from-phenopackets")
def from_phenopackets(folder: Path = typer.Argument(..., help="A folder of GA4GH phenopacket v2 JSON files "
                                                              "(searched recursively)."),
                      out: Path = typer.Argument(..., help="The dataset folder to write (new or empty)."),
                      split_by_publication: Optional[str] = typer.Option(
                          None, "--split-by-publication", metavar="TRAIN,VAL,TEST",
                          help="Split by PubMed id with these fractions, e.g. 0.6,0.2,0.2 (default: all test)."),
                      seed: int = typer.Option(0, "--seed", help="Seed of the split and of the notes' wording."),
                      omit_fraction: float = typer.Option(0.2, "--omit-fraction",
                                                          help="Share of observed findings a note leaves out."),
                      candidates: str = typer.Option("omim", "--candidates",
                                                     help="omim: every OMIM disease of the HPO annotations; all: "
                                                          "OMIM, ORPHA and DECIPHER."),
                      graph: Optional[Path] = typer.Option(None, "--graph", help="Refer to this graph instead of "
                                                           "writing HPO + annotations into OUT/graph.")):
    """Phenopackets -> a paired dataset: HPO graph, diagnosis labels, observed and excluded terms (teacher),
    a note rendered from them (student).  A bad file is reported with its path and the rest is converted."""
    from ..errors import DataError
    from .from_phenopackets import parse_fractions, write_dataset
    from .notes import NoteSpec
    from .phenopackets import read_phenopackets

    fractions = parse_fractions(split_by_publication) if split_by_publication else None
    try:
        notes = NoteSpec(omit_fraction=omit_fraction)
    except ValueError as exc:
        raise DataError(f"--omit-fraction: {exc}") from None
    result = read_phenopackets(folder)
    conv = write_dataset(result, out, source=str(folder), fractions=fractions, seed=seed, notes=notes,
                         candidates=candidates, graph=str(graph.resolve()) if graph else None)
    for p in conv.problems[:SHOWN_PROBLEMS]:
        print(p, file=sys.stderr)
    if len(conv.problems) > SHOWN_PROBLEMS:
        print(f"... and {len(conv.problems) - SHOWN_PROBLEMS} more", file=sys.stderr)
    splits = ", ".join(f"{k} {v}" for k, v in conv.split_counts.items() if v)
    print(f"{conv.patients} patients from {result.files} files ({splits}); {conv.remapped} HPO ids mapped from "
          f"alternative or obsolete ids; {len(conv.problems)} problems (listed in {out / 'problems.txt'})")
    print(f"dataset folder: {conv.path}")
