"""The results table of a run: each method's ranking metrics from its final scores on the test samples."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from .calibration import Calibration
from .metrics import grouped_metrics, harmonic_mean, mistake_severity


def method_metrics(final: dict[str, torch.Tensor], raw: dict[str, torch.Tensor],
                   calibrations: dict[str, Calibration], y: torch.Tensor, seen: torch.Tensor,
                   similarity: torch.Tensor, top_k: tuple[int, ...], *, seen_only: tuple[str, ...] = ()
                   ) -> dict[str, dict[str, Any]]:
    """Per method (the rows of ``final``): ``seen`` / ``unseen`` / ``all`` ranking metrics, the harmonic mean of
    seen and unseen top-1, mistake severity, and for a calibrated method its calibration and the figures of its
    own ranking before calibration (``uncalibrated``, from ``raw``).  ``seen_only``: rows that cannot rank an
    unseen concept (a nearest centroid of labelled samples), whose unseen figures are left out."""
    methods: dict[str, dict[str, Any]] = {}
    for m, s in final.items():
        g = grouped_metrics(s, y, seen, top_k)
        entry: dict[str, Any] = {k: v for k, v in g.items() if k in ("seen", "unseen", "all")}
        if m in seen_only:
            entry.pop("unseen", None)
        entry["mistake_severity"] = mistake_severity(s, y, similarity)["mean"]
        if "seen" in entry and "unseen" in entry:
            entry["harmonic_top1"] = harmonic_mean(entry["seen"]["top1"], entry["unseen"]["top1"])
        if m in calibrations:
            entry["calibration"] = asdict(calibrations[m])
            if m in raw:  # what calibration changed: the model's own ranking (gamma = beta = 0)
                entry["uncalibrated"] = _uncalibrated(raw[m], y, seen, top_k)
        methods[m] = entry
    return methods


def _uncalibrated(raw: torch.Tensor, y: torch.Tensor, seen: torch.Tensor, top_k: tuple[int, ...]) -> dict[str, Any]:
    u = grouped_metrics(raw, y, seen, top_k)
    out: dict[str, Any] = {k: u[k] for k in ("seen", "unseen") if k in u}
    if len(out) == 2:
        out["harmonic_top1"] = harmonic_mean(u["seen"]["top1"], u["unseen"]["top1"])
    return out
