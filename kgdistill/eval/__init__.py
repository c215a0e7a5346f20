"""Evaluation: metrics, calibration, training-free scorers (importing the package registers every prototype)."""
from . import phenomizer  # noqa: F401  (registers the "phenomizer" prototype)
