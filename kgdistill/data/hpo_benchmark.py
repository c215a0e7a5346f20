"""Simulated rare-disease patients from real HPO annotations (the Phenomizer protocol).

A patient of disease *d* shows k of d's annotated phenotypes drawn by frequency,
some replaced by a less precise parent term, plus unrelated noise terms.  The
teacher sees the set of HPO ids (structured findings); the student sees a free-text
note that names each finding by its label or a synonym in varied sentences.  With
``withheld_links`` the graph leaves out some of each disease's annotations that its
patients still show, as real annotations are incomplete.  The output is an ordinary
paired dataset folder (see ``kgdistill.data.paired``), so the HPO path and the
generic path share all later code.  Deterministic given the seed.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import yaml

from ..config import HPOBenchmarkConfig
from ..errors import DataError
from ..graph.hpo import ROOT_TERMS, build_hpo_graph, hpo_annotations, hpo_ontology

TEMPLATES = (
    "The patient presents with {x}.",
    "{X} was noted on examination.",
    "Examination revealed {x}.",
    "History is significant for {x}.",
    "There is evidence of {x}.",
    "Parents report {x}.",
    "Findings include {x}.",
    "{X} is present.",
    "On review, {x} was documented.",
    "Clinical assessment shows {x}.",
)
NEGATED = ("No {x}.", "Negative for {x}.", "There is no {x}.", "{X} was ruled out.")



def _surface(term: str) -> str:
    """Lower-case a label for mid-sentence use, keeping abbreviations (ERG, IgA) intact."""
    return term if re.search(r"[A-Z]{2}|[a-z][A-Z]", term) else term[:1].lower() + term[1:]


class _PatientSampler:
    def __init__(self, spec: HPOBenchmarkConfig, diseases: list[str], rng: np.random.Generator):
        self.spec, self.rng = spec, rng
        onto, ann = hpo_ontology(), hpo_annotations(spec.default_frequency)
        self.onto = onto
        self.ann = {d: {t: f for t, f in ann.phenotypes[d].items() if t in onto.index} for d in diseases}
        self.parents = onto.adjacency(["is_a"])
        self.roots = {onto.index[r] for r in ROOT_TERMS if r in onto.index}
        self.pool = sorted({t for d in diseases for t in self.ann[d]})

    def label(self, term: str) -> str:
        i = self.onto.index[term]
        syns = self.onto.synonyms.get(i, [])
        if syns and self.rng.random() < 0.5:
            return syns[int(self.rng.integers(len(syns)))]
        return self.onto.names[i]

    def sentence(self, term: str, templates=TEMPLATES) -> str:
        x = _surface(self.label(term))
        tpl = templates[int(self.rng.integers(len(templates)))]
        return tpl.format(x=x, X=x[:1].upper() + x[1:])

    def patient(self, disease: str) -> tuple[list[str], str]:
        s, rng = self.spec, self.rng
        terms = sorted(self.ann[disease])
        freq = np.array([self.ann[disease][t] for t in terms], dtype=np.float64)
        k = min(int(rng.integers(s.min_phenotypes, s.max_phenotypes + 1)), len(terms))
        drawn = list(rng.choice(len(terms), size=k, replace=False, p=freq / freq.sum()))
        findings: list[str] = []
        for j in drawn:
            t = terms[j]
            if rng.random() < s.imprecision:
                ps = [p for p in self.parents[self.onto.index[t]] if p not in self.roots]
                if ps:
                    t = self.onto.ids[ps[int(rng.integers(len(ps)))]]
            findings.append(t)
        annotated = set(terms)
        for _ in range(int(rng.poisson(s.noise_rate))):
            t = self.pool[int(rng.integers(len(self.pool)))]
            if t not in annotated:
                findings.append(t)
        findings = list(dict.fromkeys(findings))
        sentences = [self.sentence(t) for t in findings]
        if rng.random() < s.negation_rate:
            t = self.pool[int(rng.integers(len(self.pool)))]
            if t not in annotated and t not in findings:
                sentences.append(self.sentence(t, NEGATED))
        rng.shuffle(sentences)
        return sorted(findings), " ".join(sentences)


def eligible_diseases(spec: HPOBenchmarkConfig) -> list[str]:
    ann = hpo_annotations(spec.default_frequency)
    onto = hpo_ontology()
    out = []
    for d, ph in ann.phenotypes.items():
        if spec.source != "any" and not d.startswith(spec.source + ":"):
            continue
        if sum(1 for t in ph if t in onto.index) >= spec.min_annotations:
            out.append(d)
    return sorted(out)


def withhold_links(diseases: list[str], spec: HPOBenchmarkConfig, seed: int) -> dict[str, set[str]]:
    """Per disease, the annotated phenotypes whose link the graph leaves out (each with probability
    ``spec.withheld_links``, at least one kept).  Its own random stream, so the patients are the same draw as with a complete graph."""
    if spec.withheld_links == 0.0:
        return {}
    rng = np.random.default_rng([seed, 1])
    onto, ann = hpo_ontology(), hpo_annotations(spec.default_frequency)
    out: dict[str, set[str]] = {}
    for d in diseases:
        terms = sorted(t for t in ann.phenotypes[d] if t in onto.index)
        left_out = rng.random(len(terms)) < spec.withheld_links
        if left_out.all():
            left_out[int(rng.integers(len(terms)))] = False
        out[d] = {t for t, w in zip(terms, left_out) if w}
    return out


def generate_hpo_benchmark(out_dir: str | Path, spec: HPOBenchmarkConfig = HPOBenchmarkConfig(), seed: int = 0) -> Path:
    """Write a paired dataset folder; returns the path of its dataset.yaml."""
    rng = np.random.default_rng(seed)
    pool = eligible_diseases(spec)
    if spec.num_diseases < 2 or spec.num_diseases > len(pool):
        raise DataError(f"num_diseases={spec.num_diseases}; expected 2..{len(pool)} diseases with "
                        f">= {spec.min_annotations} annotations")
    diseases = sorted(rng.choice(pool, size=spec.num_diseases, replace=False).tolist())
    order = rng.permutation(len(diseases))
    n_unseen = int(round(spec.unseen_fraction * len(diseases)))
    unseen = sorted(diseases[i] for i in order[:n_unseen])
    seen = sorted(diseases[i] for i in order[n_unseen:])
    sampler = _PatientSampler(spec, diseases, rng)

    rows, findings, notes = [], [], []

    def add(d: str, split: str, labelled: bool) -> None:
        f, note = sampler.patient(d)
        rows.append((f"p{len(rows):06d}", d, split, int(labelled)))
        findings.append(" ".join(f))
        notes.append(note)

    for d in seen:
        for j in range(spec.train_per_disease):
            add(d, "train", j < spec.labelled_per_disease)
    for split, n in (("val", spec.val_per_disease), ("test", spec.test_per_disease)):
        for d in diseases:
            for _ in range(n):
                add(d, split, True)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    withheld = withhold_links(diseases, spec, seed)
    build_hpo_graph(diseases, default_frequency=spec.default_frequency, withheld=withheld).save_csv(out / "graph")
    if withheld:  # what the graph does not know, for whoever analyses the runs
        with open(out / "withheld_links.tsv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(["disease", "phenotype"])
            w.writerows((d, t) for d in diseases for t in sorted(withheld[d]))
    with open(out / "samples.tsv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "label", "split", "student_labelled"])
        w.writerows(rows)
    (out / "findings.txt").write_text("\n".join(findings) + "\n", encoding="utf-8")
    (out / "note.txt").write_text("\n".join(notes) + "\n", encoding="utf-8")
    (out / "candidates.txt").write_text("\n".join(diseases) + "\n", encoding="utf-8")
    meta = {"generator": "hpo_benchmark", "seed": seed, "spec": spec.model_dump(), "seen": len(seen), "unseen": len(unseen)}
    dataset = {
        "name": f"hpo-rare-disease-{spec.num_diseases}",
        "graph": "graph",
        "samples": "samples.tsv",
        "candidates": "candidates.txt",
        "teacher": "findings",
        "student": "note",
        "modalities": {"findings": {"kind": "concept_set", "path": "findings.txt"},
                       "note": {"kind": "text", "path": "note.txt"}},
        "meta": meta,
    }
    (out / "dataset.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False), encoding="utf-8")
    return out / "dataset.yaml"
