"""Evaluation: metrics, calibration, training-free text baselines (importing the package registers every one)."""
from . import phenomizer  # noqa: F401  (registers the "phenomizer" text baseline)
