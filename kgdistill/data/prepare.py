"""Turn raw modality values into one tensor per modality, ready to be indexed by batch.

Everything is materialised once (text through the embedding cache), so a training
step is a pure tensor gather: no Python per sample in the hot loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..graph.kg import KnowledgeGraph
from ..text.negation import sentence_polarity
from .modalities import Modality, split_sentences, split_signed


@dataclass
class PreparedModality:
    name: str
    kind: str
    x: torch.Tensor                                   # [N, ...] per-sample input
    tables: dict[str, torch.Tensor] = field(default_factory=dict)
    sentences: list[str] | None = None                # text: the unique sentences, row order of tables['sentences']
    text_model: str | None = None


def _pad(rows: list[list[int]], width: int | None = None) -> torch.Tensor:
    longest = max((len(r) for r in rows), default=1)
    width = min(width, longest) if width else longest
    out = torch.full((len(rows), max(width, 1)), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        r = r[:width]
        out[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


# numeric kinds are standardised with training statistics over these axes: per feature (vector), per channel
# (timeseries [N, C, T], image [N, C, H, W]), one scale for every waveform sample (audio [N, T]: a per-step
# statistic would mostly measure where recordings happen to be padded)
STANDARDISE_AXES = {"vector": (0,), "timeseries": (0, 2), "image": (0, 2, 3), "audio": (0, 1)}

MAX_ITEMS = 32  # findings or sentences read per sample, in training and in prediction alike


def sentence_index(texts: list[str], max_items: int = MAX_ITEMS) -> tuple[torch.Tensor, list[str], list[list[str]]]:
    """Notes as the text encoder reads them, in training and in prediction alike: rows of indices (-1 padding)
    into the notes' unique sentences, those sentences, and each note's sentences (its first ``max_items``)."""
    per = [split_sentences(t)[:max_items] for t in texts]
    uniq: dict[str, int] = {}
    rows = [[uniq.setdefault(s, len(uniq)) for s in sents] for sents in per]
    return _pad(rows), list(uniq), per


def prepare_modality(mod: Modality, *, graph: KnowledgeGraph, node_features: torch.Tensor, embedder,
                     train_idx: np.ndarray, max_items: int = MAX_ITEMS) -> PreparedModality:
    if mod.kind == "concept_set":  # an excluded concept (-ID) is its index + the number of nodes
        rows = [[graph.index[c] + len(node_features) * excluded for c, excluded in map(split_signed, items)]
                for items in mod.values]
        return PreparedModality(mod.name, mod.kind, _pad(rows, max_items), {"node_features": node_features})
    if mod.kind == "text":
        x, sentences, _ = sentence_index(mod.values, max_items)
        table = torch.from_numpy(embedder.embed(sentences))
        polarity = torch.from_numpy(sentence_polarity(sentences))     # negation is information, never support
        return PreparedModality(mod.name, mod.kind, x, {"sentences": table, "polarity": polarity}, sentences=sentences,
                                text_model=embedder.model_path)
    if mod.kind in STANDARDISE_AXES:
        arr = np.asarray(mod.values, dtype=np.float32)
        axes = STANDARDISE_AXES[mod.kind]
        mean = arr[train_idx].mean(axis=axes, keepdims=True)
        std = arr[train_idx].std(axis=axes, keepdims=True) + 1e-6
        tables = {"mean": torch.from_numpy(mean), "std": torch.from_numpy(std)}
        if mod.kind == "audio":  # the encoder's spectrogram needs it
            tables["rate"] = torch.tensor([int(mod.meta["rate"])], dtype=torch.long)
        return PreparedModality(mod.name, mod.kind, torch.from_numpy((arr - mean) / std), tables)
    raise ValueError(f"unknown modality kind {mod.kind}")  # pragma: no cover - readers check kinds
