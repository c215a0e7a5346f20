"""Data a run generates itself (the demos' tasks): ``data.source`` names a writer that fills ``RUN/data`` with a
dataset folder in the paired format, from its own ``data.<section>`` settings and the run's seed.

A new task registers one function; ``paired`` (the user's own folder at ``data.path``) needs no writer::

    @DATASET_WRITERS.register("my_task")
    def write_my_task(out: Path, data: DataConfig, seed: int) -> Path:   # returns the folder holding dataset.yaml
        ...
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..registry import Registry
from .hpo_benchmark import generate_hpo_benchmark
from .store_patients import write_patients
from .spoken_digits import write_spoken_digits

DATASET_WRITERS: Registry[Callable[[Path, Any, int], Path]] = Registry("data source")


@DATASET_WRITERS.register("hpo_benchmark")
def write_hpo_benchmark(out: Path, data: Any, seed: int) -> Path:
    """Patients simulated from the HPO disease annotations (``data.hpo``)."""
    return generate_hpo_benchmark(out, data.hpo, seed=seed)


@DATASET_WRITERS.register("phenopackets")
def write_phenopackets(out: Path, data: Any, seed: int) -> Path:
    """Real published patients: phenopacket-store 0.1.24 split by publication (``data.patients``)."""
    return write_patients(out, data, seed)


@DATASET_WRITERS.register("bearings")
def write_bearings(out: Path, data: Any, seed: int) -> Path:
    """The shipped CWRU recordings cut into one of the bearing tasks (``data.bearings``)."""
    from .bearings import write_bearing_task

    return write_bearing_task(out, data.bearings, seed)


@DATASET_WRITERS.register("spoken_digits")
def write_spoken_digits_source(out: Path, data: Any, seed: int) -> Path:
    """Spoken digits (shipped FSDD copy) paired with scikit-learn's digit images (``data.spoken_digits``)."""
    sd = data.spoken_digits
    return write_spoken_digits(out, seed=seed, labelled_per_digit=sd.labelled_per_digit, heldout=tuple(sd.heldout),
                               teacher_sees_heldout=sd.teacher_sees_heldout, seconds=sd.seconds).parent
