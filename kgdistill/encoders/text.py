"""Free text (clinical notes) read sentence by sentence with a local HuggingFace model.

``mode: frozen`` uses cached sentence embeddings (fast, the default on a CPU);
``mode: finetune`` runs the transformer on each batch's sentences and trains all of it;
``mode: lora`` runs it too but trains only low-rank adapters (``peft``) on some of its layers: the saved
weights hold the adapters and this encoder's own layers, never the base model (read again from
``text.model_path``).  Either way the note is a set of sentence vectors pooled into the shared space.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .base import ENCODERS, Encoder, SetPooling, take_rows, mlp
from .text_embedder import load_text_model, mean_pool

MODES = ("frozen", "finetune", "lora")
# the transformer's own learning rate when ``transformer_lr`` is not set: fine-tuning all of a pretrained model
# at a head's rate (the stage's, 2e-3) wrecks it (the LoRA benchmark's fine-tuned students were at chance);
# 2e-5 is BERT's usual rate.  LoRA's adapters start at zero and keep the stage's rate.
FINETUNE_LR = 2e-5
# BERT-style models (MiniLM) name their attention projections query/key/value
LORA_DEFAULTS: dict[str, Any] = {"rank": 8, "alpha": 16, "target_modules": ["query", "value"], "dropout": 0.05}


def lora_settings(lora: dict[str, Any] | None) -> dict[str, Any]:
    """The adapter settings with defaults filled in; a bad one raises ValueError naming ``lora.<key>``."""
    if lora is None:
        return dict(LORA_DEFAULTS)
    if not isinstance(lora, dict):
        raise ValueError(f"lora: expected a mapping of {', '.join(LORA_DEFAULTS)}, got {lora!r}")
    if unknown := sorted(set(lora) - set(LORA_DEFAULTS)):
        raise ValueError(f"lora.{unknown[0]}: unknown key; expected some of {', '.join(LORA_DEFAULTS)}")
    out = {**LORA_DEFAULTS, **lora}
    for key in ("rank", "alpha"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or (key == "rank" and v != int(v)):
            raise ValueError(f"lora.{key}: expected a {'whole ' if key == 'rank' else ''}number > 0, got {v!r}")
    mods = out["target_modules"]
    if isinstance(mods, str):
        mods = [mods]
    if not isinstance(mods, list) or not mods or not all(isinstance(m, str) and m.strip() for m in mods):
        raise ValueError(f"lora.target_modules: expected a list of module names (e.g. [query, value]), got {mods!r}")
    d = out["dropout"]
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d < 1:
        raise ValueError(f"lora.dropout: expected a number in [0, 1), got {d!r}")
    return {"rank": int(out["rank"]), "alpha": float(out["alpha"]), "target_modules": list(mods), "dropout": float(d)}


def with_lora(model: nn.Module, settings: dict[str, Any]) -> nn.Module:
    """The model with LoRA adapters on ``target_modules``; only the adapters train."""
    from peft import LoraConfig, get_peft_model

    conf = LoraConfig(r=settings["rank"], lora_alpha=settings["alpha"], target_modules=settings["target_modules"],
                      lora_dropout=settings["dropout"], bias="none")
    try:
        return get_peft_model(model, conf)
    except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"lora.target_modules: {settings['target_modules']} match no layer of the text model "
                         f"({' '.join(str(exc).split())[:120]}); its linear layers are named: {', '.join(names)}"
                         ) from None


@ENCODERS.register("text")
class TextEncoder(Encoder):
    kinds = ("text",)

    def __init__(self, sentence_table: torch.Tensor, dim: int, hidden: int = 256, dropout: float = 0.1,
                 mode: str = "frozen", sentences: list[str] | None = None, model_path: str | None = None,
                 max_length: int = 64, lora: dict[str, Any] | None = None, polarity: torch.Tensor | None = None,
                 transformer_lr: float | None = None):
        super().__init__(dim)
        self.check_params(mode=mode, lora=lora, transformer_lr=transformer_lr)
        self.mode = mode
        self.transformer_lr = transformer_lr
        self.register_buffer("sentence_table", sentence_table.float(), persistent=False)
        self.sentence_polarity: torch.Tensor | None = None
        self.set_polarity(polarity)
        self.pool = SetPooling(sentence_table.shape[1], hidden, dropout)
        self.head = mlp(self.pool.out_dim, hidden, dim, layers=2, dropout=dropout)
        if mode != "frozen":
            if sentences is None or model_path is None:
                raise ConfigError(f"text encoder in {mode} mode needs the sentences and text.model_path")
            self.sentences = sentences
            self.tokenizer, self.transformer = load_text_model(model_path)
            self.max_length = max_length
        if mode == "lora":
            self.transformer = with_lora(self.transformer, lora_settings(lora))
            self.register_state_dict_post_hook(_adapters_only)
            self.register_load_state_dict_pre_hook(_base_from_model)

    @classmethod
    def check_params(cls, mode: str = "frozen", lora: dict[str, Any] | None = None,
                     transformer_lr: float | None = None, **_: Any) -> None:
        """What a config can check before any data is read (``OptimConfig`` calls it at load)."""
        if mode not in MODES:
            raise ValueError(f"mode: {mode!r}; expected one of {', '.join(MODES)}")
        if lora is not None and mode != "lora":
            raise ValueError(f"lora: adapter settings need mode: lora (mode is {mode!r})")
        lora_settings(lora)
        if transformer_lr is not None:
            if mode == "frozen":
                raise ValueError("transformer_lr: the transformer trains only with mode: finetune or lora")
            if isinstance(transformer_lr, bool) or not isinstance(transformer_lr, (int, float)) \
                    or not 0 < transformer_lr < 1:
                raise ValueError(f"transformer_lr: expected a number in (0, 1), got {transformer_lr!r}")

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """The pooling and head at the stage's rate; the transformer's trainable weights (all of them, or the
        adapters) at ``transformer_lr`` (default: ``FINETUNE_LR`` when fine-tuning, the stage's rate for LoRA)."""
        if self.mode == "frozen":
            return super().param_groups(lr)
        inner = {id(p) for p in self.transformer.parameters()}
        trainable = [p for p in self.parameters() if p.requires_grad]
        own_lr = self.transformer_lr or (FINETUNE_LR if self.mode == "finetune" else lr)
        return [{"params": [p for p in trainable if id(p) not in inner], "lr": lr},
                {"params": [p for p in trainable if id(p) in inner], "lr": own_lr}]

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

    def use_sentences(self, table: torch.Tensor, sentences: list[str]) -> None:
        """Read new inputs: ``x`` indexes ``table`` (frozen) or ``sentences`` (finetune, lora)."""
        self.sentence_table = table.float()
        if self.mode != "frozen":
            self.sentences = list(sentences)

    def _sentence_vectors(self, x: torch.Tensor) -> torch.Tensor:
        idx = x.clamp_min(0)
        if self.mode == "frozen":
            return self.sentence_table[idx]
        uniq, inverse = torch.unique(idx, return_inverse=True)
        enc = self.tokenizer([self.sentences[i] for i in uniq.tolist()], padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt").to(x.device)
        hidden = self.transformer(**enc).last_hidden_state
        vecs = nn.functional.normalize(mean_pool(hidden.float(), enc["attention_mask"]), dim=-1)
        return take_rows(vecs, inverse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, negated = self._signed(x)
        if self.mode == "frozen":
            return self.head(self.pool.forward_table(self.sentence_table, x, negated=negated))
        vecs = self._sentence_vectors(x)
        if negated is not None:
            vecs = torch.where(negated.unsqueeze(-1), -vecs, vecs)
        return self.head(self.pool(vecs, x >= 0))


def _is_base_weight(key: str, prefix: str) -> bool:
    return key.startswith(prefix + "transformer.") and "lora_" not in key


def _adapters_only(module: nn.Module, state: dict[str, torch.Tensor], prefix: str, _meta: Any) -> None:
    """state_dict() of a LoRA encoder: the base model's weights are left out (they are ``text.model_path``'s)."""
    for key in [k for k in state if _is_base_weight(k, prefix)]:
        del state[key]


def _base_from_model(module: nn.Module, state: dict[str, torch.Tensor], prefix: str, *_: Any) -> None:
    """load_state_dict() of a LoRA encoder: the base weights come from the loaded base model, the rest from
    ``state`` (so a saved adapter still loads strictly: a missing adapter or head weight is an error)."""
    for key, value in module.transformer.state_dict(prefix=prefix + "transformer.").items():
        if "lora_" not in key:
            state.setdefault(key, value)
