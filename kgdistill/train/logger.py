"""Per-epoch logs: a CSV per stage always, TensorBoard when it is installed."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class StageLogger:
    def __init__(self, folder: Path | None, stage: str):
        self.stage = stage
        self.rows: list[dict[str, Any]] = []
        self.path = None if folder is None else Path(folder) / f"{stage}.csv"
        self._tb = None
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(folder) / "tensorboard" / stage))
            except Exception:  # tensorboard not installed: CSV only
                self._tb = None

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self._tb.add_scalar(k, v, row["epoch"])
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
