"""Predictions from a finished run: ranked concepts with scores and the graph evidence behind them.

``Predictor.from_run_dir`` loads the run's :class:`DistilledModel` (students only: no data needed); new text is
read through the same frozen sentence encoder (and its cache) that training used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .data.modalities import MODALITY_READERS, OptionError
from .errors import DataError
from .graph.loader import load_graph
from .model import REQUIRED, DistilledModel
from .run_dir import RunDir


@dataclass
class Evidence:
    text: str
    finding_id: str
    finding_name: str
    similarity: float
    against: bool = False     # the sentence denies the finding: evidence against the concept, never support


@dataclass
class Prediction:
    concept_id: str
    name: str
    score: float
    seen: bool
    evidence: list[Evidence] = field(default_factory=list)


class Predictor:
    def __init__(self, rd: RunDir, method: str = "kg_guided", evidence_threshold: float = 0.55):
        self.rd = rd
        self.model = DistilledModel.load(rd.path, methods=[method] if method in rd.config().student.methods else [])
        self.model.student(method)  # a method the run does not have: one clear error
        self.method = method
        self.evidence_threshold = evidence_threshold
        self.graph = load_graph(rd.path / "graph")

    @classmethod
    def from_run_dir(cls, path: str | Path, method: str = "kg_guided") -> "Predictor":
        return cls(RunDir.open(path, required=REQUIRED), method)

    @property
    def candidates(self) -> list[str]:
        return self.model.candidates

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised student-space vectors, comparable with the concepts' GNN embeddings."""
        x, table, per, polarity = self.model.text_inputs(texts)
        return self.model.student_vectors(self.method, x, table, polarity, self.model.sentences_of(x, per)).numpy()

    @torch.no_grad()
    def predict_texts(self, texts: Sequence[str], top_k: int = 10) -> list[list[Prediction]]:
        x, table, per, polarity = self.model.text_inputs(texts)
        scores = self.model.score_inputs(self.method, x, table, polarity, self.model.sentences_of(x, per))
        rows = [x[i][x[i] >= 0] for i in range(len(per))]
        return [self._rank(scores[i], top_k, per[i], table[rows[i]], polarity[rows[i]]) for i in range(len(per))]

    @torch.no_grad()
    def predict_file(self, path: str | Path, top_k: int = 10) -> list[list[Prediction]]:
        path = Path(path)
        kind = self.model.roles.student_kind
        rate = self.model.sample_rate
        try:  # audio: WAV files must have the rate the model was trained at
            mod = MODALITY_READERS.get(kind)("input", path, **({"rate": rate} if rate else {}))
        except OptionError as exc:
            raise DataError(str(exc), source=str(path)) from None
        if kind == "text":
            return self.predict_texts(mod.values, top_k)
        x = torch.from_numpy(np.asarray(mod.values, dtype=np.float32))
        try:
            scores = self.model.score_inputs(self.method, x)
        except DataError as exc:  # the input's shape: name the file
            raise DataError(str(exc), source=str(path)) from None
        return [self._rank(scores[i], top_k, [], None, None) for i in range(len(x))]

    def _rank(self, scores: torch.Tensor, top_k: int, sentences: list[str], sent_emb, polarity) -> list[Prediction]:
        vals, idx = scores.topk(min(top_k, len(self.candidates)))
        out = []
        for v, i in zip(vals.tolist(), idx.tolist()):
            cid = self.candidates[i]
            node = self.graph.index[cid]
            out.append(Prediction(cid, self.graph.names[node], float(v), bool(self.model.seen[i]),
                                  self._evidence(node, sentences, sent_emb, polarity) if sentences else []))
        return out

    def _evidence(self, node: int, sentences: list[str], sent_emb: torch.Tensor,
                  polarity: torch.Tensor) -> list[Evidence]:
        """Input sentences that name (closely) a finding the concept links to in the graph: affirmed ones as
        support, negated ones as evidence against; hypothetical and family-history sentences are neither."""
        linked = self.graph.edge_dst[self.graph.edge_src == node]
        if len(linked) == 0:
            return []
        names = [self.graph.names[j] for j in linked]
        emb = torch.from_numpy(self.model.embedder.embed(names))
        sim = sent_emb @ emb.T
        best, arg = sim.max(1)
        ev = [Evidence(sentences[s], self.graph.ids[int(linked[a])], names[a], float(b), against=bool(p < 0))
              for s, (b, a, p) in enumerate(zip(best.tolist(), arg.tolist(), polarity.tolist()))
              if b >= self.evidence_threshold and p != 0]
        return sorted(ev, key=lambda e: (e.against, -e.similarity))
