"""Modality encoders, all registered in :data:`ENCODERS`."""
from .base import ENCODERS, Encoder, build_encoder
from . import audio, concept_set, image, mlp, text, timeseries  # noqa: F401  (registration)

__all__ = ["ENCODERS", "Encoder", "build_encoder"]
