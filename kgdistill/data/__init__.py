"""Paired data: the dataset format, modality readers (registered here), tensor preparation, data sets."""
from . import audio, image, modalities  # noqa: F401  (registers every modality kind)
