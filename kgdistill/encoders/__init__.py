"""Modality encoders, all registered in :data:`ENCODERS`."""
from .base import ENCODERS, Encoder, build_encoder, embed
from . import audio, concept_set, image, mlp, text, timeseries, wdcnn  # noqa: F401  (registration)

__all__ = ["ENCODERS", "Encoder", "build_encoder", "embed"]
