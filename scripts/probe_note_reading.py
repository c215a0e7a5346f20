#!/usr/bin/env python3
"""Diagnosis: how much of the text student's shortfall comes from how it reads the note?  On a finished
real-patient run, the trained teacher reads each test patient three ways, and every row is then fused with the
training-free text baseline as kg_guided is.  No model of the run is trained again.

- ``curated``: the patient's curated terms (the teacher's own input: a perfect reader of a note that left nothing out);
- ``reader``: the terms the note's sentences name, as a reader fitted here finds them: a linear correction on the
  sentence and term vectors (identity at the start), trained on the paired training notes by multiple-instance
  learning (each affirmed sentence names one of its patient's observed terms, each negated one an excluded term);
- ``nearest``: each sentence's nearest term by the frozen sentence vectors (the reader before training);
- ``kg_guided``: the run's own graph-guided student, for comparison.

Each teacher row's "calibrated" figures use the teacher's calibration (no fusion), kg_guided's its own (fused,
as the run reports it).  Every row's fused "ceiling" takes the (gamma, beta) of a grid that gives the best test H
("ceiling_all": the best all-patient top-1, target 4's figure): chosen on test, so an optimistic bound for every
row alike, never a result.

    python scripts/probe_note_reading.py RUN_DIR [RUN_DIR ...] --out probe.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GAMMAS = (-0.6, -0.4, -0.3, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6)
BETAS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class TermReader(torch.nn.Module):
    """Sentence -> term scores: cosine of corrected sentence and term vectors (the corrections start at zero)."""

    def __init__(self, terms: torch.Tensor):
        super().__init__()
        d = terms.shape[1]
        self.register_buffer("terms", F.normalize(terms.float(), dim=-1))
        self.q, self.k = torch.nn.Linear(d, d), torch.nn.Linear(d, d)
        for lin in (self.q, self.k):
            torch.nn.init.zeros_(lin.weight)
            torch.nn.init.zeros_(lin.bias)
        self.log_scale = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        q = F.normalize(s + self.q(s), dim=-1)
        k = F.normalize(self.terms + self.k(self.terms), dim=-1)
        return q @ k.T * self.log_scale.exp()

    @torch.no_grad()
    def best(self, s: torch.Tensor, block: int = 4096) -> torch.Tensor:
        return torch.cat([self(s[i:i + block]).argmax(1) for i in range(0, len(s), block)])


def sentence_targets(task, vocab_pos: torch.Tensor, rows) -> tuple[torch.Tensor, torch.Tensor]:
    """(sentence row, [L] vocabulary positions of its patient's terms of the sentence's polarity) per affirmed or
    negated sentence of the training notes."""
    n, pol = len(vocab_pos), task.student.tables["polarity"]
    sent, sets = [], []
    for srow, trow in zip(task.student.x[rows].tolist(), task.teacher.x[rows].tolist()):
        obs = [int(vocab_pos[t]) for t in trow if 0 <= t < n and vocab_pos[t] >= 0]
        exc = [int(vocab_pos[t - n]) for t in trow if t >= n and vocab_pos[t - n] >= 0]
        for s in srow:
            terms = obs if s >= 0 and pol[s] > 0 else exc if s >= 0 and pol[s] < 0 else []
            if terms:
                sent.append(s)
                sets.append(terms)
    out = torch.full((len(sets), max(map(len, sets))), -1, dtype=torch.long)
    for i, t in enumerate(sets):
        out[i, :len(t)] = torch.tensor(t)
    return torch.tensor(sent), out


def fit_reader(reader: TermReader, sentences: torch.Tensor, sent: torch.Tensor, sets: torch.Tensor,
               epochs: int, seed: int, lr: float = 1e-3) -> list[float]:
    """Multiple-instance learning: maximise the probability mass a sentence puts on its patient's terms."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(reader.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        perm, total = torch.randperm(len(sent), generator=gen), 0.0
        for i in range(0, len(perm), 512):
            b = perm[i:i + 512]
            logp = reader(sentences[sent[b]]).log_softmax(-1)
            on = logp.gather(1, sets[b].clamp_min(0)).masked_fill(sets[b] < 0, -torch.inf)
            loss = -on.logsumexp(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        losses.append(total / len(sent))
    return losses


def note_sets(x: torch.Tensor, term_of_sentence: torch.Tensor, polarity: torch.Tensor, n: int) -> torch.Tensor:
    """Notes [N, L] of sentence rows -> concept sets the teacher reads: each sentence's term, excluded (+ n) when
    the sentence is negated, left out when hypothetical or a relative's."""
    rows = x.clamp_min(0)
    signed = torch.where(polarity < 0, term_of_sentence + n, term_of_sentence)[rows]
    return torch.where((x >= 0) & (polarity[rows] != 0), signed, torch.full_like(x, -1))


def figures(scores: torch.Tensor, y: torch.Tensor, seen: torch.Tensor) -> dict[str, float]:
    """Seen, unseen and all-patient top-1 / top-10 in %, and H; ``seen`` per candidate."""
    from kgdistill.eval.metrics import grouped_metrics, harmonic_mean

    g = grouped_metrics(scores, y, seen, (1, 10))
    out = {f"{part}_top{k}": 100 * g[part][f"top{k}"] for part in ("seen", "unseen", "all") for k in (1, 10)}
    out["H"] = harmonic_mean(out["seen_top1"], out["unseen_top1"])
    return out


def ceilings(raw: torch.Tensor, base: torch.Tensor, seen: torch.Tensor, y: torch.Tensor) -> dict[str, dict]:
    """The grid points with the best test H and the best all-patient top-1 (optimistic bounds, chosen on test)."""
    from kgdistill.eval.calibration import Calibration

    best: dict[str, dict] = {}
    for beta in BETAS:
        for gamma in GAMMAS:
            f = {**figures(Calibration(gamma, beta).apply(raw, seen, base), y, seen), "gamma": gamma, "beta": beta}
            for key, metric in (("ceiling", "H"), ("ceiling_all", "all_top1")):
                if key not in best or f[metric] > best[key][metric]:
                    best[key] = f
    return best


def probe(run: Path, epochs: int) -> dict:
    from kgdistill.eval.calibration import Calibration
    from kgdistill.gnn.concepts import cosine_logits
    from kgdistill.model import DistilledModel
    from kgdistill.run_dir import RunDir
    from kgdistill.task import build_task

    rd = RunDir.open(run)
    cpu = torch.device("cpu")
    task = build_task(rd.config(), rd.path, cpu, progress=False)
    model = DistilledModel.load(run, task)
    n = task.kg.num_nodes
    vocab = torch.tensor(sorted(set(range(n)) - {int(c) for c in task.cand_nodes}))  # every non-candidate node
    vocab_pos = torch.full((n,), -1, dtype=torch.long)
    vocab_pos[vocab] = torch.arange(len(vocab))
    sentences = F.normalize(task.student.tables["sentences"].float(), dim=-1)
    polarity = task.student.tables["polarity"]
    torch.manual_seed(rd.config().seed)
    reader = TermReader(task.name_emb[vocab])
    nearest = vocab[reader.best(sentences)]
    losses = fit_reader(reader, sentences, *sentence_targets(task, vocab_pos, torch.as_tensor(task.idx("train"))),
                        epochs, rd.config().seed)
    te = torch.as_tensor(task.idx("test"))
    y, seen, xs = torch.as_tensor(task.y[te]), torch.as_tensor(task.seen), task.student.x[te]
    inputs = {"curated": task.teacher.x[te], "reader": note_sets(xs, vocab[reader.best(sentences)], polarity, n),
              "nearest": note_sets(xs, nearest, polarity, n)}
    teacher_cal = model.calibrations.get("teacher", Calibration())
    base = task.baseline_scores(te.numpy())
    rows = {}
    for name, x in inputs.items():
        raw = cosine_logits(model.teacher_embeddings(x, cpu), model.concepts, 1.0)
        rows[name] = {"calibrated": figures(teacher_cal.apply(raw, seen, None), y, seen),
                      **ceilings(raw, base, seen, y)}
    raw = cosine_logits(model.student_embeddings("kg_guided", xs, cpu),
                        model.student("kg_guided").concepts().float(), 1.0)
    rows["kg_guided"] = {"calibrated": figures(model.calibrations["kg_guided"].apply(raw, seen, base), y, seen),
                         **ceilings(raw, base, seen, y)}
    return {"run": str(run), "candidates": task.num_candidates, "reader_losses": losses,
            "teacher_gamma": teacher_cal.gamma, "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=6, help="the reader's epochs over the training sentences")
    args = p.parse_args()
    results = []
    for run in args.runs:
        results.append(probe(run, args.epochs))
        for name, r in results[-1]["rows"].items():
            u, c = r["calibrated"], r["ceiling"]
            print(f"{run.parent.name}/{run.name} {name:10s} seen {u['seen_top1']:5.1f} unseen {u['unseen_top1']:5.1f} | ceiling "
                  f"H {c['H']:5.1f} (seen {c['seen_top1']:5.1f} unseen {c['unseen_top1']:5.1f}, "
                  f"gamma {c['gamma']}, beta {c['beta']})", flush=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
