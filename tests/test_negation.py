"""The NegEx/ConText reading of sentences: negated, hypothetical and family-history findings."""
from __future__ import annotations

import random
import re

import pytest

from kgdistill.text.negation import LABELS, classify_sentence, default_detector


@pytest.mark.parametrize("sentence,label", [
    ("No hearing loss.", "negated"),
    ("Hearing loss was ruled out.", "negated"),
    ("Hearing loss was excluded.", "negated"),
    ("Negative for microcephaly.", "negated"),
    ("Hypotonia was not observed.", "negated"),
    ("The patient did not have seizures.", "negated"),
    ("The patient presents with no hearing loss.", "negated"),
    ("Absence of seizures.", "negated"),
    ("Possible scoliosis.", "hypothetical"),
    ("Seizures were suspected.", "hypothetical"),
    ("Scoliosis cannot be excluded.", "hypothetical"),
    ("She was evaluated for seizures.", "hypothetical"),
    ("Scoliosis?", "hypothetical"),
    ("Her mother has seizures.", "family"),
    ("Epilepsy in his mother.", "family"),
    ("There is no family history of epilepsy.", "family"),
    ("A sibling had a similar phenotype.", "family"),
    ("The child has seizures and global developmental delay.", "affirmed"),
    ("MRI showed cerebellar hypoplasia.", "affirmed"),
    ("Parents report autism.", "affirmed"),                    # a pseudo-trigger: the parents only report it
    ("No change in seizure frequency.", "affirmed"),           # negspacy's pseudo-negation
    ("Relative macrocephaly was noted on examination.", "affirmed"),
])
def test_sentence_labels(sentence, label):
    assert classify_sentence(sentence).label == label


def test_mentions_carry_their_own_labels_and_spans():
    s = "The child has seizures but no hearing loss."
    ctx = classify_sentence(s)
    assert ctx.label == "affirmed"
    assert [(m.text, m.label, s[m.start:m.end]) for m in ctx.mentions] == [
        ("seizures", "affirmed", "seizures"), ("hearing loss", "negated", "hearing loss")]
    assert ctx.triggers == (("negated", "no"),)
    fam = classify_sentence("Her mother has seizures.")
    assert [(m.text, m.label) for m in fam.mentions] == [("seizures", "family")]
    assert set(LABELS) == {"affirmed", "negated", "hypothetical", "family"}


def test_known_mention_spans_keep_a_negative_word_inside_a_term():
    """'No speech development' is an HPO term (a present finding): given as the mention, it is affirmed."""
    s = "No speech development was noted."
    assert classify_sentence(s).label == "negated"                   # found on its own, NegEx reads a negation
    assert classify_sentence(s, mentions=[(0, 21)]).mentions[0].label == "affirmed"


def test_a_note_sentence_by_sentence():
    note = "The child has seizures and global developmental delay. MRI showed cerebellar hypoplasia. No hearing loss."
    assert [c.label for c in default_detector().classify_note(note)] == ["affirmed", "affirmed", "negated"]


def test_agrees_with_the_rendered_notes_of_real_patients():
    """Every sentence of 300 rendered notes: negated exactly when the renderer wrote an excluded finding, except
    for findings whose HPO name or synonym itself says absence ('No speech development')."""
    from kgdistill.data.hpo_terms import hpo_terms
    from kgdistill.data.notes import render_notes
    from kgdistill.data.phenopackets import load_store_table

    terms_ = hpo_terms()
    said = {t: (terms_.names[t], *terms_.synonyms[t]) for t in terms_.names}   # a note names a term either way
    notes = render_notes(random.Random(1).sample(load_store_table(), 300), seed=1)
    det = default_detector()
    total, wrong = 0, []
    for note in notes:
        for s, terms, neg in zip(note.sentences, note.sentence_terms, note.sentence_negated):
            total += 1
            if (det.classify(s).label == "negated") != neg:
                wrong.append((s, terms, neg))
    assert total > 2500 and len(wrong) <= total // 200
    for s, terms, neg in wrong:
        assert not neg and any(re.match(r"(no|absen|lack)", n, re.I) or " not " in n for t in terms for n in said[t]), s


def test_polarity_is_remembered_for_a_bounded_number_of_sentences():
    """A served model reads sentence_polarity on every note: its memo must not grow with every note sent."""
    from kgdistill.text.negation import _polarity, sentence_polarity

    _polarity.cache_clear()
    assert sentence_polarity(["No hearing loss.", "Seizures.", "No hearing loss."]).tolist() == [-1.0, 1.0, -1.0]
    info = _polarity.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, 2) and info.maxsize == 1 << 16
