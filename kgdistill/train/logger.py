"""Per-epoch logs: a CSV per stage always, TensorBoard live when ``train.tracking`` lists it."""
from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any


def tensorboard_folder(log_dir: Path) -> Path:
    """``RUN/logs/tensorboard`` for the final pass's stages and ``RUN/logs/tensorboard/calibration`` for the
    calibration pass's (its logs live in ``RUN/logs/calibration``)."""
    return log_dir.parent / "tensorboard" / "calibration" if log_dir.name == "calibration" else log_dir / "tensorboard"


class StageLogger:
    def __init__(self, folder: Path | None, stage: str, tensorboard: bool = False):
        self.stage = stage
        self.rows: list[dict[str, Any]] = []
        self.path = None if folder is None else Path(folder) / f"{stage}.csv"
        self._tb = None
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        if folder is not None and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(tensorboard_folder(Path(folder)) / stage))
            except Exception as exc:  # noqa: BLE001 - not installed, unwritable: CSV only, one warning
                warnings.warn(f"TensorBoard logging is off ({type(exc).__name__}: {exc}); the CSV logs are written",
                              RuntimeWarning, stacklevel=2)

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self._tb is not None:
            try:
                for k, v in row.items():
                    if isinstance(v, (int, float)) and k != "epoch":
                        self._tb.add_scalar(k, v, row["epoch"])
            except Exception as exc:  # noqa: BLE001 - tracking never stops a run
                warnings.warn(f"TensorBoard logging stopped ({type(exc).__name__}: {exc})", RuntimeWarning, stacklevel=2)
                self._tb = None
        self._write()

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """On resume: the CSV holds exactly the epochs the checkpoint had seen (none twice)."""
        self.rows = [dict(r) for r in rows]
        self._write()

    def _write(self) -> None:
        if self.path is not None:
            keys = list(dict.fromkeys(k for r in self.rows for k in r))
            with open(self.path, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=keys)
                w.writeheader()
                w.writerows(self.rows)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
