"""Trigger phrases for the ConText categories beyond negation, in negspacy's termset form.

Negation uses negspacy's own ``en_clinical`` termset (NegEx, Chapman et al. 2001) plus the phrasings
listed in ``NEGATION_EXTRA``, less the terminations in ``NEGATION_NOT_TERMINATING`` ("involving" would
cut "No amelia involving the upper limbs" in two).  "relative" alone is no family trigger ("relative
macrocephaly" is an HPO term).  The hypothetical and family-history lists follow the categories of ConText
(Harkema et al., J Biomed Inform 2009), written for this project.  Each termset has the four keys negspacy
expects: ``pseudo_negations`` (phrases that look like a trigger but are not, e.g. "parents report"),
``preceding_negations`` (the trigger comes before the finding), ``following_negations`` (after it) and
``termination`` (words that end a trigger's scope, e.g. "but").
"""
from __future__ import annotations

NEGATION_EXTRA = {
    "pseudo_negations": ["no change in", "not only", "no longer"],
    "preceding_negations": ["no history of", "no signs or symptoms of", "unremarkable for", "did not show",
                            "did not have", "does not have", "has no", "had no", "showed no", "shows no",
                            "there was no", "there is no", "excluded"],
    "following_negations": ["was excluded", "were excluded", "has been excluded", "have been excluded",
                            "is absent", "was absent", "were absent", "are absent", "not present",
                            "was not observed", "were not observed", "not observed", "not seen", "not detected",
                            "was not found", "were not found", "was negative", "were negative", "has been ruled out",
                            "have been ruled out", "is ruled out"],
    "termination": ["whereas", "while", "and no", "with no"],
}

NEGATION_NOT_TERMINATING = ("involving",)

HYPOTHETICAL = {
    "pseudo_negations": ["not possible", "no suspicion", "likely due to", "is likely to be caused"],
    "preceding_negations": ["possible", "possibly", "probable", "probably", "suspected", "suspicion of",
                            "suspicious for", "suspect", "concern for", "concerning for", "questionable",
                            "question of", "may have", "might have", "could have", "may be", "might be", "presumed",
                            "presumably", "if", "in case of", "should she develop", "should he develop",
                            "at risk for", "at risk of", "risk of", "risk for", "evaluate for", "evaluation for",
                            "screen for", "screening for", "to assess for", "evaluated for", "assessed for",
                            "screened for", "tested for", "work-up for", "workup for", "to exclude", "consider", "considered",
                            "differential diagnosis includes", "differential includes", "query", "cannot exclude",
                            "cannot rule out", "can not exclude", "can not rule out", "rule out", "r/o"],
    "following_negations": ["is possible", "was possible", "is suspected", "was suspected", "were suspected",
                            "is likely", "is questionable", "was considered", "cannot be excluded",
                            "can not be excluded", "cannot be ruled out", "can not be ruled out", "not excluded",
                            "not ruled out", "not been ruled out", "to be excluded", "to be ruled out", "?"],
    "termination": ["but", "however", "although", "though", "whereas", "while", "because", "which", "due to"],
}

_RELATIVES = ["mother", "father", "sister", "brother", "sibling", "siblings", "sib", "sibs", "aunt", "uncle",
              "grandmother", "grandfather", "grandparent", "grandparents", "cousin", "cousins", "parent", "parents",
              "son", "daughter", "twin", "niece", "nephew", "relatives", "a relative with", "one relative", "maternal", "paternal",
              "mother's", "father's", "family member", "family members", "half-sister", "half-brother"]

FAMILY = {
    "pseudo_negations": ["parents report", "parents reported", "parents reports", "parent reports",
                         "parents noted", "parents describe", "parents described", "mother reports",
                         "mother reported", "mother noted", "father reports", "father reported", "per mother",
                         "per parents", "per the parents", "according to the parents", "according to the mother",
                         "according to his mother", "according to her mother", "family reports",
                         "family reported", "parents noticed", "mother noticed"],
    "preceding_negations": [*_RELATIVES, "family history of", "family history", "fh of", "fhx of", "familial history of",
                            "her mother", "his mother", "her father", "his father", "in the family",
                            "runs in the family"],
    "following_negations": ["in her mother", "in his mother", "in the mother", "in her father", "in his father",
                            "in the father", "in a sibling", "in siblings", "in her sister", "in his sister",
                            "in her brother", "in his brother", "in the family", "in family members",
                            "runs in the family", "in a relative", "in relatives"],
    "termination": ["but", "however", "although", "though", "whereas", "while", "patient", "the patient",
                    "the child", "proband", "the proband", "our patient"],
}
