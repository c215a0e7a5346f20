"""What an export traces: a student's scoring as one torch module with no Python branching on data.

The module bakes in everything :meth:`DistilledModel.score_inputs` reads (the concept matrix, calibration, input
scaling, the fused text baseline), so the ONNX graph scores exactly as the run does.  Text scores from sentence
vectors; the frozen sentence transformer (tokenised sentences -> sentence vectors) is a graph of its own."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ArtefactError
from ..eval.text_baseline import (LinkLikelihood, MeanTextBaseline, TextBaseline, mean_item_embedding,
                                  with_polarity)


@dataclass
class Traced:
    """One ONNX file of an export: the module, an example input to trace it with, its input and output names
    and their free axes."""
    file: str
    module: nn.Module
    example: tuple[torch.Tensor, ...]
    names: tuple[list[str], list[str]]
    axes: dict[str, dict[int, str]]


class Head(nn.Module):
    """Cosine to the fixed concept matrix, minus gamma on seen concepts."""

    def __init__(self, concepts: torch.Tensor, seen: torch.Tensor, gamma: float):
        super().__init__()
        self.register_buffer("concepts", nn.functional.normalize(concepts.float(), dim=-1))
        self.register_buffer("offset", gamma * seen.float())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(z.float(), dim=-1) @ self.concepts.T - self.offset


class MeanBaseline(nn.Module):
    def __init__(self, b: MeanTextBaseline):
        super().__init__()
        self.register_buffer("concepts", b.concepts.float())

    def forward(self, x: torch.Tensor, table: torch.Tensor, polarity: torch.Tensor) -> torch.Tensor:
        return mean_item_embedding(with_polarity(x, polarity, 1.0), table) @ self.concepts.T


class LikelihoodBaseline(nn.Module):
    """:class:`LinkLikelihood` with its sparse link matrix made dense (ONNX has no sparse product): affirmed
    sentences add ``log(floor + P(sentence | concept))``, a negated one ``log(1 - 0.9 q)`` (``q``: the chance that
    the finding it denies is linked to the concept), over the number of affirmed sentences."""

    def __init__(self, b: LinkLikelihood):
        super().__init__()
        links = b.links.coalesce()
        self.register_buffer("emb", b.emb.float())
        self.register_buffer("links", links.to_dense().float())          # [K, T]
        support = torch.sparse_coo_tensor(links.indices(), torch.ones_like(links.values()), links.shape,
                                          check_invariants=False)
        self.register_buffer("support", support.to_dense().float())      # [K, T] 1 where linked
        self.temperature, self.floor = b.temperature, b.floor

    def forward(self, x: torch.Tensor, table: torch.Tensor, polarity: torch.Tensor) -> torch.Tensor:
        pos = (with_polarity(x, polarity, 1.0) >= 0).unsqueeze(-1).float()
        neg = (with_polarity(x, polarity, -1.0) >= 0).unsqueeze(-1).float()
        table = nn.functional.normalize(table, dim=-1)
        names = torch.softmax(table[x.clamp_min(0)] @ self.emb.T / self.temperature, dim=-1)   # [n, m, T]
        logp = torch.log(self.floor + names @ self.links.T) * pos
        against = torch.log1p(-0.9 * (names @ self.support.T).clamp(0, 1)) * neg
        return (logp.sum(1) + against.sum(1)) / pos.sum(1).clamp_min(1)


def baseline_module(b: TextBaseline) -> nn.Module:
    if isinstance(b, LinkLikelihood):
        return LikelihoodBaseline(b)
    if isinstance(b, MeanTextBaseline):
        return MeanBaseline(b)
    raise ArtefactError(f"the run fuses the {type(b).__name__} text baseline, which export does not support yet "
                        f"(supported: likelihood, mean); export a method without fusion")


class SentenceEncoder(nn.Module):
    """Tokenised sentences -> L2-normalised mean-pooled transformer vectors (the run's ``TextEmbedder``)."""

    def __init__(self, transformer: nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        return nn.functional.normalize(pooled, dim=-1)


class TextScorer(nn.Module):
    """The vectors of the batch's unique sentences (:class:`SentenceEncoder`), notes as rows of sentence indices
    (-1 padding) and each sentence's polarity (+1 affirmed, -1 negated, 0 hypothetical or family) -> final
    scores [n, K].  Polarity is read as the run's student reads it (``TextEncoder._signed``): polarity-0
    sentences are dropped, negated ones enter as their vector's negation."""

    def __init__(self, encoder: nn.Module, head: Head, beta: float, baseline: nn.Module | None):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.beta = beta
        self.baseline = baseline

    def forward(self, table, notes, polarity):
        pol = polarity[notes.clamp_min(0)]
        read = torch.where((notes >= 0) & (pol != 0), notes, torch.full_like(notes, -1))
        z = self.encoder.head(self.encoder.pool.forward_table(table, read, negated=pol < 0))
        scores = self.head(z)
        if self.baseline is not None:
            scores = scores + self.beta * self.baseline(notes, table, polarity)
        return scores


class InputScorer(nn.Module):
    """Raw inputs (a signal, an image, a vector) -> standardised with the training statistics -> scores."""

    def __init__(self, encoder: nn.Module, head: Head, mean: torch.Tensor | None, std: torch.Tensor | None):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.scaled = mean is not None
        if self.scaled:
            self.register_buffer("mean", mean.float())
            self.register_buffer("std", std.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scaled:
            x = (x.float() - self.mean) / self.std
        return self.head(self.encoder(x))
