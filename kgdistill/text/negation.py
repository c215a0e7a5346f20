"""Is a finding in a sentence the patient's, denied, only suspected, or a relative's?

A NegEx/ConText trigger-and-scope reading built on negspacy (NegEx for spaCy, maintained on PyPI) over a
blank spaCy English tokenizer (no model download): one negspacy component per category, each with its
trigger list (``kgdistill.text.triggers``): ``negated`` (negspacy's ``en_clinical`` termset plus a few
phrasings), ``hypothetical`` and ``family``.  A trigger reaches the findings after it (preceding
triggers) or before it (following triggers) up to the end of the sentence or a termination word ("but");
a pseudo-trigger ("parents report", "no change in") blocks one.

Findings ("mentions") are given as character spans, or found as the runs of words between triggers that
hold a content word (``The patient presents with`` alone is no finding).  A mention's label is the first
that applies of ``family``, ``hypothetical``, ``negated``, else ``affirmed``; a sentence is ``affirmed``
when one of its mentions is, else it takes the first such label among its mentions.

    >>> classify_sentence("Hearing loss was ruled out.").label
    'negated'
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .triggers import FAMILY, HYPOTHETICAL, NEGATION_EXTRA, NEGATION_NOT_TERMINATING

AFFIRMED, NEGATED, HYPOTHETICAL_LABEL, FAMILY_LABEL = "affirmed", "negated", "hypothetical", "family"
LABELS = (AFFIRMED, NEGATED, HYPOTHETICAL_LABEL, FAMILY_LABEL)
PRIORITY = (FAMILY_LABEL, HYPOTHETICAL_LABEL, NEGATED)          # the first that applies names a mention
SPAN_KEY = "kgdistill_mentions"

#: words that carry no finding of their own: a run of only these (and stop words) is no mention
FILLER = frozenset("""patient patients child infant boy girl baby proband individual he she his her they
presents presented presenting present noted note notable examination exam revealed reveals reveal shows showed
show shown found find history significant evidence documented review report reports reported clinical assessment
observed observe findings finding include includes included including features feature diagnosis diagnosed made
phenotype comprised comprises other also further additional sign signs symptom symptoms developed develops
has had have having was were is are be been there we our case parents family demonstrated demonstrates
displayed displays exhibited exhibits complained complains""".split())


@dataclass(frozen=True)
class Mention:
    text: str
    start: int       # character offsets in the sentence
    end: int
    label: str


@dataclass(frozen=True)
class SentenceContext:
    text: str
    label: str
    mentions: tuple[Mention, ...]
    triggers: tuple[tuple[str, str], ...]    # (category, trigger text) found, pseudo-triggers left out


def _termset(base: dict, extra: dict | None = None, drop: dict | None = None) -> dict:
    """A fresh copy (negspacy's own termset objects share and mutate one module-level dict)."""
    keys = ("pseudo_negations", "preceding_negations", "following_negations", "termination")
    return {k: sorted((set(base[k]) | set((extra or {}).get(k, ()))) - set((drop or {}).get(k, ()))) for k in keys}


class ContextDetector:
    """Build once (about a second: spaCy and the phrase matchers), then call :meth:`classify` per sentence."""

    CATEGORIES = ((NEGATED, "negated"), (HYPOTHETICAL_LABEL, "hypothetical"), (FAMILY_LABEL, "family"))

    def __init__(self) -> None:
        import spacy
        from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)
        from negspacy.termsets import termset

        self.nlp = spacy.blank("en")
        self.nlp.add_pipe("sentencizer")
        sets = {NEGATED: _termset(termset("en_clinical").get_patterns(), NEGATION_EXTRA,
                                  {"termination": NEGATION_NOT_TERMINATING}),
                HYPOTHETICAL_LABEL: _termset(HYPOTHETICAL), FAMILY_LABEL: _termset(FAMILY)}
        self.pipes = {}
        phrases = {t.lower() for ts in sets.values() for k in ("preceding_negations", "following_negations",
                                                                "pseudo_negations") for t in ts[k]}
        # a sentence with none of these phrases has no trigger: affirmed without running the pipeline
        self.any_trigger = re.compile("|".join(rf"(?<!\w){re.escape(t)}(?!\w)" for t in sorted(phrases, key=len,
                                                                                               reverse=True)))
        for label, ext in self.CATEGORIES:
            self.pipes[label] = self.nlp.add_pipe("negex", name=f"context_{label}", config={
                "neg_termset": sets[label], "extension_name": f"kgd_{ext}", "span_keys": [SPAN_KEY]})

    def _covered(self, doc) -> tuple[set[int], list[tuple[str, str]]]:
        covered: set[int] = set()
        found: list[tuple[str, str]] = []
        for label, pipe in self.pipes.items():
            covered.update(i for _, start, end in pipe.matcher(doc) for i in range(start, end))
            preceding, following, _ = pipe.process_negations(doc)      # pseudo-triggers already left out
            found += [(label, doc[start:end].text) for _, start, end in sorted(preceding + following,
                                                                                key=lambda m: m[1:])]
        return covered, found

    def _runs(self, doc, covered: set[int]) -> list:
        runs, cur = [], []
        for tok in list(doc) + [None]:
            if tok is None or tok.i in covered or tok.is_punct:
                if cur:
                    runs.append(cur)
                cur = []
            else:
                cur.append(tok)
        spans = []
        for run in runs:
            content = [t for t in run if not (t.is_stop or t.lower_ in FILLER)]
            if content:                     # trim filler at both ends, keep inner words ("loss of vision")
                first = next(i for i, t in enumerate(run) if t in content)
                last = max(i for i, t in enumerate(run) if t in content)
                spans.append(doc[run[first].i: run[last].i + 1])
        return spans

    def classify(self, sentence: str, mentions: Sequence[tuple[int, int]] | None = None) -> SentenceContext:
        """One sentence; ``mentions``: character spans of the findings, if known (else found as above)."""
        doc = self.nlp.make_doc(sentence)
        doc = self.nlp.get_pipe("sentencizer")(doc)
        covered, found = self._covered(doc)
        if mentions is None:
            spans = self._runs(doc, covered)
        else:
            spans = [doc.char_span(s, e, alignment_mode="expand") for s, e in mentions]
            spans = [sp for sp in spans if sp is not None]
        doc.spans[SPAN_KEY] = spans
        for pipe in self.pipes.values():
            pipe(doc)
        out = []
        for sp in doc.spans[SPAN_KEY]:
            flags = {label: sp._.get(f"kgd_{ext}") for label, ext in self.CATEGORIES}
            label = next((lab for lab in PRIORITY if flags[lab]), AFFIRMED)
            out.append(Mention(sp.text, sp.start_char, sp.end_char, label))
        if any(m.label == AFFIRMED for m in out) or not out:
            label = AFFIRMED
        else:
            label = next(lab for lab in PRIORITY if any(m.label == lab for m in out))
        return SentenceContext(sentence, label, tuple(out), tuple(found))

    def label(self, sentence: str) -> str:
        """The sentence's label alone, quickly for a sentence without any trigger phrase."""
        if not self.any_trigger.search(sentence.lower()):
            return AFFIRMED
        return self.classify(sentence).label

    def classify_note(self, text: str) -> list[SentenceContext]:
        """Every sentence of a note, split as the text modality reads it (``split_sentences``)."""
        from .sentences import split_sentences

        return [self.classify(s) for s in split_sentences(text)]


@lru_cache(maxsize=1)
def default_detector() -> ContextDetector:
    return ContextDetector()


#: what a sentence's label makes of its findings: support (+1), none (0: only suspected, or a relative's), or
#: evidence against (-1: denied)
POLARITY = {AFFIRMED: 1.0, NEGATED: -1.0, HYPOTHETICAL_LABEL: 0.0, FAMILY_LABEL: 0.0}


def sentence_polarity(sentences: Sequence[str]) -> np.ndarray:
    """[S] float32: +1 affirmed, -1 negated, 0 hypothetical or family history, per sentence.  Negation is
    information, never support: the text baselines and the student read it so (about 1.6 ms per sentence with a
    trigger on 2 CPU cores; sentences without one are affirmed at once)."""
    return np.fromiter((_polarity(s) for s in sentences), dtype=np.float32, count=len(sentences))


@lru_cache(maxsize=1 << 16)
def _polarity(sentence: str) -> float:
    """Remembered for the sentences seen last (the runs of one benchmark read the same notes again), and only
    for those: a server must neither grow without bound nor keep every note it was sent."""
    return POLARITY[default_detector().label(sentence)]


def classify_sentence(sentence: str, mentions: Sequence[tuple[int, int]] | None = None) -> SentenceContext:
    """``classify_sentence("No hearing loss.").label == "negated"``; see :class:`ContextDetector`."""
    return default_detector().classify(sentence, mentions)
