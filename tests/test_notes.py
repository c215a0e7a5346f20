"""Notes rendered from real patients' terms: deterministic, faithful to the terms, varied, with negations."""
from __future__ import annotations

import re

import numpy as np
import pytest

from kgdistill.data.hpo_terms import hpo_terms
from kgdistill.data.modalities import split_sentences
from kgdistill.data.notes import NEGATED, PRESENT, NoteSpec, patient_rng, render_note, render_notes
from kgdistill.data.phenopackets import load_store_table


@pytest.fixture(scope="module")
def patients():
    store = {r.id: r for r in load_store_table()}
    return [store["PMID_38428335_Patient"], store["PMID_10077612_Family_A_III_10"]]


def _pattern(template: str) -> re.Pattern:
    body = re.escape(template).replace(r"\{x\}", "(?P<x>.+)").replace(r"\{X\}", "(?P<x>.+)")
    return re.compile("^" + body + "$", re.IGNORECASE)


def test_deterministic_per_seed_and_per_patient(patients):
    a = render_notes(patients, seed=3)
    assert a == render_notes(patients, seed=3)
    assert render_notes(patients[1:], seed=3) == a[1:]        # a patient's note ignores the other patients
    assert render_notes(patients, seed=4)[0].text != a[0].text


def test_every_sentence_names_one_real_term_by_its_label(patients):
    """No synonyms, no lists, nothing left out: each sentence is a template around one term's label."""
    terms = hpo_terms()
    spec = NoteSpec(omit_fraction=0.0, synonym_rate=0.0, list_rate=0.0, max_negated=3)
    r = patients[0]                                           # CHD8 patient: 14 observed, 16 excluded terms
    note = render_note(r.observed, r.excluded, patient_rng(0, r.id), spec)
    assert sorted(note.mentioned) == sorted(r.observed) and len(note.negated) == 3
    assert set(note.negated) <= set(r.excluded)
    sentences = split_sentences(note.text)
    assert len(sentences) == 14 + 3
    labels = {terms.names[t].lower(): t for t in r.observed + r.excluded}
    negated_found, present_found = [], []
    for s in sentences:
        for pool, found in ((NEGATED, negated_found), (PRESENT, present_found)):
            m = next((m for m in map(lambda t: _pattern(t).match(s), pool) if m and m["x"].lower() in labels), None)
            if m:
                found.append(labels[m["x"].lower()])
                break
        else:
            raise AssertionError(f"sentence {s!r} is no template around a term label")
    assert present_found == list(note.mentioned) and negated_found == list(note.negated)


def test_layperson_synonyms_are_used():
    """Hearing impairment (HP:0000365) has the layperson synonyms Deafness, Hearing defect and Hearing loss."""
    spec = NoteSpec(omit_fraction=0.0, synonym_rate=1.0, layperson_share=1.0, list_rate=0.0)
    said = {render_note(["HP:0000365"], [], np.random.default_rng(s), spec).text for s in range(40)}
    names = {re.search(r"(deafness|hearing defect|hearing loss)", t, re.I).group(1).lower() for t in said}
    assert names == {"deafness", "hearing defect", "hearing loss"}
    assert hpo_terms().layperson["HP:0000365"] == ("Deafness", "Hearing defect", "Hearing impairment", "Hearing loss")


def test_omitting_findings_keeps_one_and_lists_join_several(patients):
    r = patients[0]
    one = render_note(r.observed, (), np.random.default_rng(0), NoteSpec(omit_fraction=1.0))
    assert len(one.mentioned) == 1 and one.negated == ()
    listed = render_note(r.observed, (), np.random.default_rng(0), NoteSpec(omit_fraction=0.0, list_rate=1.0))
    assert len(split_sentences(listed.text)) < len(r.observed) and " and " in listed.text
    assert render_note((), (), np.random.default_rng(0)).text == "No phenotypic abnormality was recorded."
    with pytest.raises(ValueError, match="omit_fraction=1.5"):
        NoteSpec(omit_fraction=1.5)


def test_sentences_record_their_terms_and_polarity(patients):
    for note in render_notes(patients, seed=5):
        assert " ".join(note.sentences) == note.text
        assert len(note.sentences) == len(note.sentence_terms) == len(note.sentence_negated)
        assert [t for ts, n in zip(note.sentence_terms, note.sentence_negated) if not n for t in ts] == \
            list(note.mentioned)
        assert [t for ts, n in zip(note.sentence_terms, note.sentence_negated) if n for t in ts] == list(note.negated)
