"""The CWRU bearing recordings shipped in ``data/cwru/`` and the names the graph gives their conditions.

``data/cwru/cwru_12k.npz`` (written by ``scripts/derive_cwru.py`` from ``srigas/CWRU_Bearing_NumPy``, see
``data/cwru/README.md``) holds, for every recording, the drive-end (DE) and fan-end (FE) accelerometer at
12 kHz as float16, and what the recording is: load, speed, which bearing carries the seeded fault, where, and
how large.  This module reads it back and names each condition as a node of ``graphs/bearing_faults.ttl``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

ROOT = Path(__file__).resolve().parents[2]
CWRU_FILE = ROOT / "data" / "cwru" / "cwru_12k.npz"
BEARING_GRAPH = ROOT / "graphs" / "bearing_faults.ttl"
RATE_HZ = 12_000
LOAD_RPM = {0: 1797, 1: 1772, 2: 1750, 3: 1730}  # motor load (hp) -> nominal shaft speed, CWRU Bearing Data Center
RPM_LOAD = {rpm: hp for hp, rpm in LOAD_RPM.items()}
LOCATIONS = {"IR": "inner_race", "B": "ball", "OR": "outer_race"}
ENDS = {"DE12": "drive_end", "DE48": "drive_end", "FE": "fan_end"}
# upstream file names: 1797_IR_14_DE12, 1730_OR@3_7_FE, 1772_Normal
_NAME = re.compile(r"^(?P<rpm>\d{4})_(?:Normal|(?P<loc>IR|B|OR)(?:@(?P<clock>3|6|12))?_(?P<size>\d+)_(?P<end>DE12|DE48|FE))$")
KEYS = ("signals", "sensor", "file", "load_hp", "rpm", "fault_end", "location", "clock", "size_mil",
        "source_rate_hz", "start", "rate_hz", "scale")


@dataclass(frozen=True)
class Recording:
    """One recording's conditions (``fault_end``/``location`` are ``none`` for the normal baseline)."""

    file: str
    load_hp: int
    rpm: int
    fault_end: str = "none"   # drive_end | fan_end | none: which bearing carries the seeded fault
    location: str = "none"    # inner_race | ball | outer_race | none
    clock: int = 0            # outer race: 3, 6 or 12 o'clock (6 = centred in the load zone); else 0
    size_mil: int = 0         # fault diameter in thousandths of an inch (7, 14, 21, 28); 0 for normal

    @property
    def label(self) -> str:
        return class_id(self.fault_end, self.location, self.clock, self.size_mil)


def class_id(fault_end: str, location: str, clock: int = 0, size_mil: int = 0) -> str:
    """The graph node of a condition: ``cwru:Normal``, ``cwru:DE_IR_014``, ``cwru:FE_OR3_007``."""
    if fault_end == "none":
        return "cwru:Normal"
    end = {"drive_end": "DE", "fan_end": "FE"}[fault_end]
    loc = {"inner_race": "IR", "ball": "B", "outer_race": f"OR{clock}"}[location]
    return f"cwru:{end}_{loc}_{size_mil:03d}"


def parse_file_name(name: str) -> tuple[Recording, int]:
    """An upstream file name (without ``.npz``) -> its conditions and its sampling rate in Hz."""
    m = _NAME.match(name)
    if m is None or int(m["rpm"]) not in RPM_LOAD:
        raise DataError(f"file name {name!r}; expected RPM_Normal or RPM_FAULT_SIZE_END "
                        f"(RPM one of {sorted(RPM_LOAD)}, END one of DE12, DE48, FE)")
    rpm = int(m["rpm"])
    if m["loc"] is None:  # the normal baselines were recorded at 48 kHz
        return Recording(name, RPM_LOAD[rpm], rpm), 48_000
    if (m["loc"] == "OR") != (m["clock"] is not None):
        raise DataError(f"file name {name!r}: outer race faults (and only they) carry a clock position")
    rec = Recording(name, RPM_LOAD[rpm], rpm, ENDS[m["end"]], LOCATIONS[m["loc"]], int(m["clock"] or 0),
                    int(m["size"]))
    return rec, 48_000 if m["end"] == "DE48" else 12_000


@dataclass
class CwruData:
    """``signals[r, s]`` is recording ``r``'s sensor ``sensors[s]`` (``DE``, ``FE``), float16 at ``rate_hz``;
    physical acceleration = stored value x ``scale``."""

    signals: np.ndarray
    sensors: tuple[str, ...]
    recordings: list[Recording]
    rate_hz: int
    scale: float
    source: str = ""

    def channel(self, sensor: str) -> np.ndarray:
        if sensor not in self.sensors:
            raise DataError(f"sensor {sensor!r}; expected one of {', '.join(self.sensors)}", source=self.source)
        return self.signals[:, self.sensors.index(sensor)]

    def select(self, loads: tuple[int, ...] | None = None, fault_ends: tuple[str, ...] = ("drive_end", "none")
               ) -> list[int]:
        """Indices of the recordings at these loads whose fault sits at one of ``fault_ends``."""
        return [i for i, r in enumerate(self.recordings)
                if (loads is None or r.load_hp in loads) and r.fault_end in fault_ends]


def load_cwru(path: str | Path = CWRU_FILE) -> CwruData:
    """Read the shipped (or any re-derived) file; every key checked, nothing pickled."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found; expected the derived CWRU file (scripts/derive_cwru.py writes it)",
                        source=str(path))
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in KEYS if k not in z.files]
            if missing:
                raise DataError(f"missing array {missing[0]!r}; expected {', '.join(KEYS)}", source=str(path))
            a = {k: z[k] for k in KEYS}
    except (OSError, ValueError) as exc:
        raise DataError(f"not a readable .npz file: {exc}", source=str(path)) from None
    sig = a["signals"]
    if sig.ndim != 3 or sig.shape[1] != len(a["sensor"]) or sig.shape[0] != len(a["file"]):
        raise DataError(f"signals of shape {sig.shape}; expected [recordings, sensors, samples]", source=str(path))
    recs = [Recording(str(f), int(h), int(r), str(e), str(lo), int(c), int(s)) for f, h, r, e, lo, c, s in
            zip(a["file"], a["load_hp"], a["rpm"], a["fault_end"], a["location"], a["clock"], a["size_mil"])]
    return CwruData(sig, tuple(str(s) for s in a["sensor"]), recs, int(a["rate_hz"]), float(a["scale"]), str(path))
