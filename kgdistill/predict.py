"""Predictions from a finished run: ranked concepts with scores and the graph evidence behind them.

``Predictor.from_run_dir`` rebuilds the student encoder from its safetensors
checkpoint and the run's configuration; new text is read through the same frozen
sentence encoder (and its cache) that training used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .data.modalities import MODALITY_READERS, OptionError, split_sentences
from .data.prepare import MAX_ITEMS, STANDARDISE_AXES, PreparedModality
from .encoders import build_encoder
from .encoders.text_embedder import TextEmbedder
from .errors import ConfigError, DataError, RunDirError
from .eval.calibration import Calibration
from .eval.prototype import PROTOTYPES, ConceptLinks, MeanPrototype, TextPrototype
from .graph.loader import load_graph
from .run_dir import RunDir
from .train.checkpoint import load_state, load_tensors


@dataclass
class Evidence:
    text: str
    finding_id: str
    finding_name: str
    similarity: float


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
        self.cfg = rd.config()
        if method not in self.cfg.student.methods:
            raise RunDirError(f"method {method!r} not in this run ({', '.join(self.cfg.student.methods)})",
                              source=str(rd.path))
        self.method = method
        self.evidence_threshold = evidence_threshold
        self.candidates = (rd.checkpoints / "candidates.txt").read_text(encoding="utf-8").split()
        extra = load_tensors(rd.checkpoints / "concepts.safetensors")
        self.seen = extra["seen"].bool()
        self.prototype = self._saved_prototype(extra, rd.checkpoints / "concepts.safetensors")
        cal = rd.read_json("calibration.json").get(method, {})
        try:
            self.calibration = Calibration(**cal)
        except TypeError:
            raise RunDirError(f"entry {method!r} is not a calibration of this version",
                              source=str(rd.path / "calibration.json")) from None
        self.graph = load_graph(rd.path / "graph")
        self.kind = self._student_kind()
        self.embedder = TextEmbedder(self.cfg.text.model_path, cache_dir=self.cfg.text.cache_dir,
                                     max_length=self.cfg.text.max_length, batch_size=self.cfg.text.batch_size)
        self.encoder = self._build_encoder(extra)
        ckpt = rd.checkpoints / f"student_{method}.safetensors"
        load_state(self.encoder, ckpt, prefix="encoder.")
        tensors = load_tensors(ckpt)
        self.concepts = torch.nn.functional.normalize(
            tensors.get("concepts.embeddings", tensors.get("concepts.weight")).float(), dim=-1)
        self.encoder.eval()

    @classmethod
    def from_run_dir(cls, path: str | Path, method: str = "kg_guided") -> "Predictor":
        return cls(RunDir.open(path), method)

    def _saved_prototype(self, extra: dict[str, torch.Tensor], path: Path) -> TextPrototype | None:
        """The run's graph prototype (``prototype.*``); runs saved before it had one key read as they ran:
        ``concept_links.*`` (set matching) or ``prototype_concepts`` (mean)."""
        saved = {k.split(".", 1)[1]: v for k, v in extra.items() if k.startswith("prototype.")}
        links = {k.split(".", 1)[1]: v for k, v in extra.items() if k.startswith("concept_links.")}
        try:
            if saved:
                proto = PROTOTYPES.get(self.cfg.eval.prototype).from_tensors(saved)
            elif links:
                proto = ConceptLinks.from_tensors(links)
            elif "prototype_concepts" in extra:
                proto = MeanPrototype(extra["prototype_concepts"])
            else:
                return None
        except (KeyError, RuntimeError, ValueError, IndexError, ConfigError):
            raise RunDirError(f"the saved {self.cfg.eval.prototype} prototype has missing or invalid tensors "
                              "(damaged checkpoint)", source=str(path)) from None
        if proto.num_concepts != len(self.candidates):
            raise RunDirError(f"the saved {self.cfg.eval.prototype} prototype scores {proto.num_concepts} concepts, "
                              f"the run has {len(self.candidates)} candidates (damaged checkpoint)", source=str(path))
        return proto

    def _student_kind(self) -> str:
        import yaml

        local = self.rd.path / "data" / "dataset.yaml"
        if local.is_file():
            yml = local
        elif self.cfg.data.path:
            p = Path(self.cfg.data.path).expanduser()
            yml = p / "dataset.yaml" if p.is_dir() else p
        else:
            raise RunDirError("cannot find the dataset description of this run", source=str(self.rd.path))
        try:
            ds = yaml.safe_load(yml.read_text(encoding="utf-8"))
            name = self.cfg.data.student_modality or ds.get("student") or list(ds["modalities"])[-1]
            kind = str(ds["modalities"][name]["kind"])
        except (OSError, ValueError, yaml.YAMLError, LookupError, TypeError, AttributeError):
            raise RunDirError("cannot read the student modality's kind from the dataset description",
                              source=str(yml)) from None
        return kind

    def _build_encoder(self, extra: dict[str, torch.Tensor]):
        enc_cfg = self.cfg.student.encoder
        tables: dict[str, torch.Tensor] = {}
        self.rate: int | None = None
        if self.kind == "text":
            dim = self.embedder.embed(["probe"]).shape[1]
            tables["sentences"] = torch.zeros(1, dim)
            x = torch.zeros(1, 1, dtype=torch.long)
        else:
            self.mean, self.std = extra["student_input.mean"], extra["student_input.std"]
            x = torch.zeros((1, *self.mean.shape[1:]))
            if self.kind == "audio":  # the spectrogram's sample rate
                if "student_input.rate" not in extra:
                    raise RunDirError("the audio student's sample rate is missing (damaged checkpoint)",
                                      source=str(self.rd.checkpoints / "concepts.safetensors"))
                tables["rate"] = extra["student_input.rate"]
                self.rate = int(tables["rate"])
        prepared = PreparedModality("student", self.kind, x, tables, sentences=[""], text_model=self.embedder.model_path)
        return build_encoder(enc_cfg, prepared, self.cfg.space.dim, "student.encoder")

    # ------------------------------------------------------------------ text
    def _text_inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        per = [split_sentences(t)[:MAX_ITEMS] for t in texts]  # what the model read in training
        uniq: dict[str, int] = {}
        rows = [[uniq.setdefault(s, len(uniq)) for s in sents] for sents in per]
        table = torch.from_numpy(self.embedder.embed(list(uniq)))
        width = max(len(r) for r in rows)
        x = torch.full((len(rows), width), -1, dtype=torch.long)
        for i, r in enumerate(rows):
            x[i, : len(r)] = torch.as_tensor(r)
        return x, table, per

    def _checked_text_inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        if self.kind != "text":
            raise DataError(f"this run's student reads {self.kind} input, not text")
        texts = list(texts)
        if not texts or any(not t.strip() for t in texts):
            raise DataError("empty text; expected at least one non-empty input")
        return self._text_inputs(texts)

    def _student_vectors(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        self.encoder.sentence_table = table
        return torch.nn.functional.normalize(self.encoder(x), dim=-1)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised student-space vectors, comparable with the concepts' GNN embeddings."""
        x, table, _ = self._checked_text_inputs(texts)
        return self._student_vectors(x, table).numpy()

    @torch.no_grad()
    def predict_texts(self, texts: Sequence[str], top_k: int = 10) -> list[list[Prediction]]:
        x, table, per = self._checked_text_inputs(texts)
        z = self._student_vectors(x, table)
        if self.prototype is not None and self.prototype.dim != table.shape[1]:
            raise RunDirError(f"the saved prototype reads {self.prototype.dim}-d text vectors, the text model gives "
                              f"{table.shape[1]}-d (text.model_path changed since the run?)", source=str(self.rd.path))
        proto = None if self.prototype is None else self.prototype.scores(x, table)
        scores = self.calibration.apply(z @ self.concepts.T, self.seen, proto)
        return [self._rank(scores[i], top_k, per[i], table[x[i][x[i] >= 0]]) for i in range(len(per))]

    @torch.no_grad()
    def predict_file(self, path: str | Path, top_k: int = 10) -> list[list[Prediction]]:
        path = Path(path)
        if self.kind == "text":
            return self.predict_texts(MODALITY_READERS.get("text")("input", path).values, top_k)
        options = {"rate": self.rate} if self.rate else {}
        try:
            mod = MODALITY_READERS.get(self.kind)("input", path, **options)  # audio: WAV files must have the rate
        except OptionError as exc:
            raise DataError(str(exc), source=str(path)) from None
        x = torch.from_numpy(np.asarray(mod.values, dtype=np.float32))
        # the training shape, except along axes the scaling is shared over (time steps, pixels, waveform samples)
        free = set(STANDARDISE_AXES[self.kind])
        want = tuple("any" if a in free else n for a, n in enumerate(self.mean.shape) if a > 0)
        if x.ndim != self.mean.ndim or any(w not in ("any", n) for w, n in zip(want, x.shape[1:])):
            raise DataError(f"input rows have shape {tuple(x.shape[1:])}, the model expects {want}", source=str(path))
        z = torch.nn.functional.normalize(self.encoder((x - self.mean) / self.std), dim=-1)
        scores = self.calibration.apply(z @ self.concepts.T, self.seen, None)
        return [self._rank(scores[i], top_k, [], None) for i in range(len(x))]

    def _rank(self, scores: torch.Tensor, top_k: int, sentences: list[str], sent_emb) -> list[Prediction]:
        vals, idx = scores.topk(min(top_k, len(self.candidates)))
        out = []
        for v, i in zip(vals.tolist(), idx.tolist()):
            cid = self.candidates[i]
            node = self.graph.index[cid]
            out.append(Prediction(cid, self.graph.names[node], float(v), bool(self.seen[i]),
                                  self._evidence(node, sentences, sent_emb) if sentences else []))
        return out

    def _evidence(self, node: int, sentences: list[str], sent_emb: torch.Tensor) -> list[Evidence]:
        """Input sentences that name (closely) a finding the concept links to in the graph."""
        linked = self.graph.edge_dst[self.graph.edge_src == node]
        if len(linked) == 0:
            return []
        names = [self.graph.names[j] for j in linked]
        emb = torch.from_numpy(self.embedder.embed(names))
        sim = sent_emb @ emb.T
        best, arg = sim.max(1)
        ev = [Evidence(sentences[s], self.graph.ids[int(linked[a])], names[a], float(b))
              for s, (b, a) in enumerate(zip(best.tolist(), arg.tolist())) if b >= self.evidence_threshold]
        return sorted(ev, key=lambda e: -e.similarity)
