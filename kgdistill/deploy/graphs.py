"""What an export traces: a student's scoring as one torch module with no Python branching on data.

The module bakes in everything :meth:`DistilledModel.score_inputs` reads (the concept matrix, calibration, input
scaling, the fused text baseline), so the ONNX graph scores exactly as the run does.  Text adds the frozen
sentence transformer in front: tokenised sentences -> sentence vectors -> the student -> scores."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ArtefactError
from ..eval.text_baseline import LinkLikelihood, MeanTextBaseline, TextBaseline, mean_item_embedding


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

    def forward(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return mean_item_embedding(x, table) @ self.concepts.T


class LikelihoodBaseline(nn.Module):
    """:class:`LinkLikelihood` with its sparse link matrix made dense (ONNX has no sparse product)."""

    def __init__(self, b: LinkLikelihood):
        super().__init__()
        self.register_buffer("emb", b.emb.float())
        self.register_buffer("links", b.links.to_dense().float())          # [K, T]
        self.temperature, self.floor = b.temperature, b.floor

    def forward(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        mask = (x >= 0).unsqueeze(-1).float()
        table = nn.functional.normalize(table, dim=-1)
        names = torch.softmax(table[x.clamp_min(0)] @ self.emb.T / self.temperature, dim=-1)   # [n, m, T]
        logp = torch.log(self.floor + names @ self.links.T) * mask
        return logp.sum(1) / mask.sum(1).clamp_min(1)


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
    """(input_ids, attention_mask) of the batch's unique sentences, notes as rows of sentence indices (-1
    padding) -> final scores [n, K] and the sentence vectors (for evidence)."""

    def __init__(self, sentences: SentenceEncoder, encoder: nn.Module, head: Head, beta: float,
                 baseline: nn.Module | None):
        super().__init__()
        self.sentences, self.encoder, self.head = sentences, encoder, head
        self.beta = beta
        self.baseline = baseline

    def forward(self, input_ids, attention_mask, notes):
        table = self.sentences(input_ids, attention_mask)
        z = self.encoder.head(self.encoder.pool.forward_table(table, notes))
        scores = self.head(z)
        if self.baseline is not None:
            scores = scores + self.beta * self.baseline(notes, table)
        return scores, table


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
