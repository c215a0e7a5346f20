"""scripts/probe_note_reading.py: the multiple-instance reader learns which term a sentence names from patient-level
pairs alone, notes become the signed concept sets the teacher reads, and the ceiling picks the best grid point."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_loader import load_script  # noqa: E402


@pytest.fixture(scope="module")
def probe():
    return load_script("probe_note_reading", "probe_note_reading")


def test_the_reader_learns_sentence_terms_from_patient_level_pairs(probe):
    """Each sentence lies nearer a wrong term than its own (a paraphrase the frozen vectors misread); every
    patient names two terms, and the reader only ever sees the pair, never which sentence names which."""
    g = torch.Generator().manual_seed(0)
    terms = torch.nn.functional.normalize(torch.randn(6, 16, generator=g), dim=-1)
    decoy = [1, 2, 3, 4, 5, 0]                                   # sentence i sits nearer term decoy[i] than i
    sentences = torch.nn.functional.normalize(0.45 * terms + 0.55 * terms[decoy], dim=-1)
    reader = probe.TermReader(terms)
    assert not torch.equal(reader.best(sentences), torch.arange(6))   # the frozen vectors misread them
    pairs = [(0, 2), (0, 4), (1, 3), (1, 5), (2, 4), (3, 5), (0, 3), (2, 5), (1, 4)]
    sent = torch.tensor([s for p in pairs for s in p])
    sets = torch.tensor([list(p) for p in pairs for _ in p])
    torch.manual_seed(0)
    losses = probe.fit_reader(reader, sentences, sent, sets, epochs=40, seed=0, lr=0.03)
    assert losses[-1] < losses[0]
    assert torch.equal(reader.best(sentences), torch.arange(6))


def test_notes_become_signed_concept_sets(probe):
    """A negated sentence's term enters as excluded (+ n), a hypothetical one is left out, padding stays -1."""
    x = torch.tensor([[0, 1, 2, -1]])
    term = torch.tensor([7, 8, 9])
    polarity = torch.tensor([1.0, -1.0, 0.0])
    assert probe.note_sets(x, term, polarity, n=20).tolist() == [[7, 28, -1, -1]]


def test_the_ceiling_takes_the_grid_point_with_the_best_harmonic_mean(probe):
    """Two patients, one of a seen disease (0) and one of an unseen (1): only a seen penalty with the baseline's
    help puts both first."""
    raw = torch.tensor([[1.0, 0.0], [1.0, 0.9]])
    base = torch.tensor([[0.0, 0.0], [0.0, 0.5]])
    seen = torch.tensor([True, False])
    y = torch.tensor([0, 1])
    best = probe.ceilings(raw, base, seen, y)
    assert best["ceiling"]["H"] == pytest.approx(100.0)
    assert best["ceiling"]["all_top1"] == pytest.approx(100.0)
    g, b = best["ceiling"]["gamma"], best["ceiling"]["beta"]
    assert 0.9 - 1.0 + g + 0.5 * b > 0 and 1.0 - g > 0              # the chosen point ranks both truths first
    assert probe.figures(raw, y, seen)["H"] == 0.0               # without it the unseen patient is wrong
