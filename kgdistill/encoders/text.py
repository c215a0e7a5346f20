"""Free text (clinical notes) read sentence by sentence with a local HuggingFace model.

``mode: frozen`` uses cached sentence embeddings (fast, the default on a CPU);
``mode: finetune`` runs the transformer on each batch's sentences and trains it.
Either way the note is a set of sentence vectors pooled into the shared space.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import ENCODERS, Encoder, SetPooling, mlp
from .text_embedder import load_text_model, mean_pool


@ENCODERS.register("text")
class TextEncoder(Encoder):
    kinds = ("text",)

    def __init__(self, sentence_table: torch.Tensor, dim: int, hidden: int = 256, dropout: float = 0.1,
                 mode: str = "frozen", sentences: list[str] | None = None, model_path: str | None = None,
                 max_length: int = 64, polarity: torch.Tensor | None = None):
        super().__init__(dim)
        if mode not in ("frozen", "finetune"):
            raise ConfigError(f"student.encoder.mode: {mode!r}; expected 'frozen' or 'finetune'")
        self.mode = mode
        self.register_buffer("sentence_table", sentence_table.float(), persistent=False)
        self.sentence_polarity: torch.Tensor | None = None
        self.set_polarity(polarity)
        self.pool = SetPooling(sentence_table.shape[1], hidden, dropout)
        self.head = mlp(self.pool.out_dim, hidden, dim, layers=2, dropout=dropout)
        if mode == "finetune":
            if sentences is None or model_path is None:
                raise ConfigError("text encoder in finetune mode needs the sentences and text.model_path")
            self.sentences = sentences
            self.tokenizer, self.transformer = load_text_model(model_path)
            self.max_length = max_length

    @classmethod
    def from_modality(cls, prepared, dim: int, **params) -> "TextEncoder":
        return cls(prepared.tables["sentences"], dim, sentences=prepared.sentences,
                   model_path=prepared.text_model, polarity=prepared.tables.get("polarity"), **params)

    def set_polarity(self, polarity: torch.Tensor | None) -> None:
        """Per sentence of the table: +1 affirmed, -1 negated (read as the negation of its vector, as an excluded
        finding is in a concept set), 0 hypothetical or a relative's (left out: no support).  None: all affirmed."""
        self.sentence_polarity = None if polarity is None else polarity.float().to(self.sentence_table.device)

    def _signed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The rows to read (hypothetical and family sentences dropped) and which of them are negated."""
        if self.sentence_polarity is None:
            return x, None
        pol = self.sentence_polarity.to(x.device)[x.clamp_min(0)]
        return torch.where((x >= 0) & (pol != 0), x, torch.full_like(x, -1)), pol < 0

    def _sentence_vectors(self, x: torch.Tensor) -> torch.Tensor:
        idx = x.clamp_min(0)
        if self.mode == "frozen":
            return self.sentence_table[idx]
        uniq, inverse = torch.unique(idx, return_inverse=True)
        enc = self.tokenizer([self.sentences[i] for i in uniq.tolist()], padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt").to(x.device)
        hidden = self.transformer(**enc).last_hidden_state
        vecs = nn.functional.normalize(mean_pool(hidden.float(), enc["attention_mask"]), dim=-1)
        return vecs[inverse]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, negated = self._signed(x)
        if self.mode == "frozen":
            return self.head(self.pool.forward_table(self.sentence_table, x, negated=negated))
        vecs = self._sentence_vectors(x)
        if negated is not None:
            vecs = torch.where(negated.unsqueeze(-1), -vecs, vecs)
        return self.head(self.pool(vecs, x >= 0))
