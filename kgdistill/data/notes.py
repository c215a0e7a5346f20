"""A free-text clinical note per patient, rendered from that patient's real HPO terms.

The clinical content is real (the observed and excluded terms of a published case); the wording is
rendered: each present finding becomes a sentence from varied templates, named by its HPO label or a
synonym (HPO's layperson synonyms among them, e.g. "Deafness" for *Hearing impairment*), excluded
findings become negated sentences ("No hearing loss.", "Scoliosis was excluded."), some findings are
left out as a real note would, and the sentences are shuffled.  Deterministic given the seed and the
patient id: one patient's note does not depend on which other patients are rendered.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .hpo_benchmark import _surface
from .hpo_terms import HpoTerms, hpo_terms

PRESENT = (
    "The patient presents with {x}.",
    "{X} was noted on examination.",
    "Examination revealed {x}.",
    "History is significant for {x}.",
    "There is evidence of {x}.",
    "Parents report {x}.",
    "{X} is present.",
    "On review, {x} was documented.",
    "Clinical assessment shows {x}.",
    "The child has {x}.",
    "We observed {x}.",
    "The patient was found to have {x}.",
    "A diagnosis of {x} was made.",
    "Notable for {x}.",
)
LISTED = ("Findings include {x}.", "Other features were {x}.", "The phenotype comprised {x}.")
NEGATED = (
    "No {x}.",
    "There was no {x}.",
    "{X} was excluded.",
    "Negative for {x}.",
    "{X} was not observed.",
    "No evidence of {x}.",
    "The patient did not have {x}.",
    "{X} was ruled out.",
    "Absence of {x}.",
)
NOTHING = "No phenotypic abnormality was recorded."


@dataclass(frozen=True)
class NoteSpec:
    """How a note is worded; the defaults are what ``kgdistill data from-phenopackets`` writes."""

    omit_fraction: float = 0.2      # each observed finding is left out with this probability (one is always kept)
    max_negated: int = 4            # at most this many excluded findings are written, chosen at random
    synonym_rate: float = 0.5       # a finding is named by a synonym rather than its label
    layperson_share: float = 0.5    # ... and then by a layperson synonym, when the term has one
    list_rate: float = 0.15         # two or three present findings share one sentence

    def __post_init__(self) -> None:
        for name in ("omit_fraction", "synonym_rate", "layperson_share", "list_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)}; expected a number in [0, 1]")
        if self.max_negated < 0:
            raise ValueError(f"max_negated={self.max_negated}; expected >= 0")


@dataclass(frozen=True)
class RenderedNote:
    text: str                                     # the sentences joined by single spaces
    mentioned: tuple[str, ...]                    # observed terms the note names, in the note's order
    negated: tuple[str, ...]                      # excluded terms the note names as absent, in the note's order
    sentences: tuple[str, ...] = ()
    sentence_terms: tuple[tuple[str, ...], ...] = ()   # the terms each sentence names
    sentence_negated: tuple[bool, ...] = ()            # whether it names them as absent


def patient_rng(seed: int, patient_id: str) -> np.random.Generator:
    """A random stream of its own for each (seed, patient)."""
    digest = hashlib.sha256(patient_id.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _name(term: str, rng: np.random.Generator, spec: NoteSpec, terms: HpoTerms) -> str:
    name = terms.names.get(term, term)
    # inverted forms ("Developmental delay, global") read badly in a sentence and are left out
    synonyms = [s for s in terms.synonyms.get(term, ()) if s.lower() != name.lower() and "," not in s]
    lay = [s for s in terms.layperson.get(term, ()) if s.lower() != name.lower() and "," not in s]
    if synonyms and rng.random() < spec.synonym_rate:
        pool = lay if lay and rng.random() < spec.layperson_share else synonyms
        name = pool[int(rng.integers(len(pool)))]
    return _surface(name)


def _fill(template: str, x: str) -> str:
    return template.format(x=x, X=x[:1].upper() + x[1:])


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def render_note(observed: Sequence[str], excluded: Sequence[str], rng: np.random.Generator,
                spec: NoteSpec = NoteSpec(), terms: HpoTerms | None = None) -> RenderedNote:
    """One note; ``rng`` decides every choice (see :func:`patient_rng`)."""
    terms = terms or hpo_terms()
    keep = [t for t in observed if rng.random() >= spec.omit_fraction]
    if observed and not keep:
        keep = [observed[int(rng.integers(len(observed)))]]
    neg = [excluded[i] for i in sorted(rng.permutation(len(excluded))[:spec.max_negated])]
    groups: list[tuple[bool, list[str]]] = []
    order = [keep[i] for i in rng.permutation(len(keep))]
    while order:
        size = int(rng.integers(2, 4)) if len(order) > 1 and rng.random() < spec.list_rate else 1
        groups.append((False, order[:size]))
        order = order[size:]
    groups += [(True, [t]) for t in neg]
    groups = [groups[i] for i in rng.permutation(len(groups))]
    sentences, mentioned, negated = [], [], []
    for is_negated, group in groups:
        names = [_name(t, rng, spec, terms) for t in group]
        if is_negated:
            template = NEGATED[int(rng.integers(len(NEGATED)))]
            negated += group
        else:
            pool = LISTED if len(group) > 1 else PRESENT
            template = pool[int(rng.integers(len(pool)))]
            mentioned += group
        sentences.append(_fill(template, _join(names)))
    if not sentences:
        return RenderedNote(NOTHING, (), (), (NOTHING,), ((),), (True,))
    return RenderedNote(" ".join(sentences), tuple(mentioned), tuple(negated), tuple(sentences),
                        tuple(tuple(g) for _, g in groups), tuple(n for n, _ in groups))


def render_notes(patients: Iterable, seed: int = 0, spec: NoteSpec = NoteSpec(),
                 terms: HpoTerms | None = None) -> list[RenderedNote]:
    """A note for each patient (anything with ``id``, ``observed`` and ``excluded``, e.g. a PhenopacketRecord)."""
    terms = terms or hpo_terms()
    return [render_note(p.observed, p.excluded, patient_rng(seed, p.id), spec, terms) for p in patients]
