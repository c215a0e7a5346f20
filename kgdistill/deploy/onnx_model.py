"""An exported student scored with ONNX Runtime, numpy and the ``tokenizers`` library only (no torch, no
training code): what ``kgdistill serve`` runs, and what a user embeds in their own program::

    model = ExportedModel("exports/hpo")              # checks every file against the manifest first
    ranked = model.predict(["Seizures. No hearing loss."], top_k=5)
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ArtefactError, DataError
from ..text.sentences import split_sentences
from . import artefact


CPU = ["CPUExecutionProvider"]
SENTENCE_CHUNK = 32     # sentences per encoder call: sorted by length, each chunk padded to its own longest


@dataclass
class Ranked:
    concept_id: str
    name: str
    score: float
    seen: bool
    evidence: list[dict[str, Any]] = field(default_factory=list)


class ExportedModel:
    def __init__(self, folder: str | Path, *, threads: int | None = None, verify: bool = True):
        import onnxruntime as ort

        self.folder = Path(folder)
        self.manifest = artefact.read_manifest(self.folder, verify)
        self.kind = self.manifest["student"]["kind"]
        opts = ort.SessionOptions()
        # A server meets a new input shape with almost every merged batch; ONNX Runtime's arena and its memory
        # pattern per shape each kept the largest buffers they had seen (resident memory rose in steps for 30,000
        # requests, to 372 MB).  Without them it stays in a lower band (max 323-336 MB), at about 5% more CPU for
        # a lone request and the same throughput under load (docs/benchmarks/deploy.md).
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.folder / artefact.MODEL), opts, providers=CPU)
            self.sentences = (ort.InferenceSession(str(self.folder / artefact.SENTENCES), opts, providers=CPU)
                              if self.kind == "text" else None)
            concepts = json.loads((self.folder / artefact.CONCEPTS).read_text(encoding="utf-8"))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types; one line for the user
            raise ArtefactError(f"cannot load the exported model: {' '.join(str(exc).split())[:200]}",
                                source=str(self.folder)) from None
        self.concepts = concepts["candidates"]
        self.findings = concepts["findings"]
        self.candidates = [c["id"] for c in self.concepts]
        self.index = {c: i for i, c in enumerate(self.candidates)}
        self.inputs = self.manifest["input"]
        if self.kind == "text":
            self._load_text_parts()

    def _load_text_parts(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.folder / self.inputs["tokenizer"]))
        tok.enable_truncation(int(self.inputs["max_length"]))
        tok.no_padding()                  # each chunk of sentences is padded to its own longest (sentence_vectors)
        self.pad_id = tok.token_to_id("[PAD]") or 0
        self.tokenizer = tok
        self.finding_vectors = load_file(str(self.folder / artefact.FINDINGS))["vectors"]

    @property
    def version(self) -> str:
        """run id / method / variant / the graph file's checksum prefix: what the metrics call the model."""
        m = self.manifest
        v = m["variant"]
        variant = v["precision"] + (f"-pruned{v['pruned']:g}" if v.get("pruned") else "")
        return f"{m['source_run'].get('run_id')}/{m['method']}/{variant}/{m['files'][artefact.MODEL][:12]}"

    @property
    def validation_range(self) -> dict[str, float] | None:
        return self.manifest.get("validation_best_score")

    # ------------------------------------------------------------------ scoring
    def text_inputs(self, texts: Sequence[str]) -> tuple[np.ndarray, list[str], list[list[str]], np.ndarray]:
        """As ``DistilledModel.text_inputs``: rows of indices (-1 padding) into the batch's unique sentences, the
        sentences, each note's, and each sentence's polarity (+1 affirmed, -1 negated, 0 hypothetical or a
        relative's; ``kgdistill.text.negation``)."""
        per = [split_sentences(t)[:int(self.inputs["max_items"])] for t in texts]
        uniq: dict[str, int] = {}
        rows = [[uniq.setdefault(s, len(uniq)) for s in sents] for sents in per]
        notes = np.full((len(rows), max(map(len, rows), default=1)), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            notes[i, :len(r)] = r
        return notes, list(uniq), per, polarity_reader()(list(uniq))

    def score_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[str]],
                                                         np.ndarray]:
        """Final scores [n, K], the sentence vectors, the notes' index rows, each note's sentences and each
        sentence's polarity."""
        if self.kind != "text":
            raise DataError(f"this model reads {self.kind} input, not text")
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise DataError("empty text; expected at least one non-empty input")
        notes, sentences, per, polarity = self.text_inputs(texts)
        vectors = self.sentence_vectors(sentences)
        scores = self.session.run(None, {"sentence_vectors": vectors, "notes": notes,
                                         "polarity": polarity.astype(np.float32)})[0]
        return scores, vectors, notes, per, polarity

    def sentence_vectors(self, sentences: Sequence[str]) -> np.ndarray:
        """Unit vectors [n, d] of the sentences, encoded in chunks of similar length: padding every sentence of a
        batch of notes to its longest one cost more per note than encoding each note alone."""
        enc = self.tokenizer.encode_batch(list(sentences))
        lengths = np.asarray([len(e.ids) for e in enc])
        order = np.argsort(lengths, kind="stable")
        parts = []
        for start in range(0, len(order), SENTENCE_CHUNK):
            rows = order[start:start + SENTENCE_CHUNK]
            ids = np.full((len(rows), lengths[rows].max()), self.pad_id, dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, :lengths[i]] = enc[i].ids
                mask[r, :lengths[i]] = 1
            parts.append(self.sentences.run(None, {"input_ids": ids, "attention_mask": mask})[0])
        vectors = np.empty((len(order), parts[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(parts)
        return vectors

    def score_inputs(self, x: np.ndarray) -> np.ndarray:
        """Final scores [n, K] of raw inputs of the training shape (free axes: any length)."""
        if self.kind == "text":
            raise DataError("this model reads text; send notes, not arrays")
        x = np.asarray(x, dtype=np.float32)
        want = self.inputs["shape"]
        if x.ndim != len(want) + 1 or any(w is not None and w != n for w, n in zip(want, x.shape[1:])) \
                or x.shape[0] == 0:
            shown = tuple("any" if w is None else w for w in want)
            raise DataError(f"inputs have shape {tuple(x.shape[1:])} per row, the model expects {shown}")
        return self.session.run(None, {"inputs": x})[0]

    def predict(self, inputs: Sequence[Any], top_k: int = 10) -> tuple[list[list[Ranked]], np.ndarray]:
        """Ranked concepts per input (text: with the sentences that name a linked finding), and each input's best
        score (what drift is measured on)."""
        if self.kind == "text":
            scores, vectors, notes, per, polarity = self.score_texts(list(inputs))
        else:
            scores, per = self.score_inputs(np.asarray(inputs, dtype=np.float32)), None
        k = min(top_k, len(self.candidates))
        out = []
        for i, row in enumerate(scores):
            top = np.argsort(-row, kind="stable")[:k]
            rows = None if per is None else notes[i][notes[i] >= 0]
            sents = None if per is None else (per[i], vectors[rows], polarity[rows])
            out.append([self._ranked(int(j), float(row[j]), sents) for j in top])
        return out, scores.max(1)

    def _ranked(self, j: int, score: float, sents) -> Ranked:
        c = self.concepts[j]
        r = Ranked(c["id"], c["name"], score, bool(c["seen"]))
        links = c.get("evidence") or []
        if sents is not None and links:
            r.evidence = self._evidence(links, *sents)
        return r

    def _evidence(self, links: list[int], text: list[str], vecs: np.ndarray, polarity: np.ndarray
                  ) -> list[dict[str, Any]]:
        """As ``Predictor``: sentences that name (closely) a linked finding, affirmed ones as support, negated
        ones as evidence against (listed after the support); hypothetical and family-history ones are neither."""
        sim = vecs @ self.finding_vectors[links].T
        best, arg = sim.max(1), sim.argmax(1)
        thr = float(self.manifest["evidence_threshold"])
        ev = [{"text": text[s], "finding_id": self.findings[links[a]]["id"],
               "finding_name": self.findings[links[a]]["name"], "similarity": float(b), "against": bool(p < 0)}
              for s, (b, a, p) in enumerate(zip(best, arg, polarity)) if b >= thr and p != 0]
        return sorted(ev, key=lambda e: (e["against"], -e["similarity"]))


def polarity_reader() -> Callable[[Sequence[str]], np.ndarray]:
    """``kgdistill.text.negation.sentence_polarity``, loaded without torch where torch is not loaded yet: spaCy's
    thinc imports torch whenever it is installed, which would cost the server seconds at start and hundreds of
    MB; the blank tokenizer negspacy reads needs none of it."""
    if "thinc.compat" not in sys.modules and "torch" not in sys.modules:
        sys.modules["torch"] = None      # type: ignore[assignment]  # ``import torch`` fails: thinc does without
        try:
            import spacy  # noqa: F401
            import negspacy.negation  # noqa: F401
        finally:
            del sys.modules["torch"]
    from ..text.negation import sentence_polarity

    return sentence_polarity
