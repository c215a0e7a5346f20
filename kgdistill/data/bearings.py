"""Bearing-fault diagnosis from a far sensor: CWRU recordings cut into paired dataset folders.

Teacher = the drive-end accelerometer (next to the faulty bearing), student = the fan-end one; one sample is
the same ``window`` samples of both (kind ``timeseries``, ``[N, 1, window]``, ``rate: 12000``), labelled with
its recording's fault class (a node of ``graphs/bearing_faults.ttl``).  Each recording is split into three
contiguous segments, train | gap | val | gap | test, with gaps of at least one window, and windows are cut
inside a segment only: no window of one split overlaps a window of another, nor comes within a gap of it.

Three tasks (docs/data-format.md for the folder; ``windows.tsv`` there says where each window came from):

- ``one_load``: one load; ``labelled_per_class`` labelled fan-end windows per class, the rest paired only;
- ``cross_load``: labelled windows at the source load, paired unlabelled windows at the target load,
  validation at the source and tests at the target load (``load_pairs``: every ordered pair);
- ``unseen``: one load with ``held_out`` classes that have no training window at all (graph only).

    python -m kgdistill.data.bearings one_load OUT [--load 0] [--labelled 5] [--seed 0]
    python -m kgdistill.data.bearings cross_load OUT --source 0 --target 1
    python -m kgdistill.data.bearings unseen OUT [--held-out cwru:DE_IR_014 ...]
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from ..errors import ConfigError, DataError, KGDistillError
from .cwru import BEARING_GRAPH, CWRU_FILE, CwruData, Recording, load_cwru

SEGMENTS = ("train", "val", "test")
DEFAULT_ENDS = ("none", "drive_end")               # normal + drive-end faults: the classic CWRU classes
HELD_OUT = ("cwru:DE_IR_014", "cwru:DE_B_021", "cwru:DE_OR6_007")  # one per location, one per size
TEACHER, STUDENT = "drive_end", "fan_end"


@dataclass(frozen=True)
class Windowing:
    """How recordings are cut: ``fractions`` of each recording (after the two gaps) go to train, val, test."""

    window: int = 2048
    stride: int = 1024                               # between window starts inside one segment
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    gap: int | None = None                           # samples between segments (default and minimum: one window)

    def __post_init__(self):
        if self.window < 1 or self.stride < 1:
            raise ConfigError(f"window {self.window}, stride {self.stride}: expected positive sample counts")
        if len(self.fractions) != 3 or min(self.fractions) <= 0 or abs(sum(self.fractions) - 1) > 1e-9:
            raise ConfigError(f"fractions {self.fractions}: expected three positive shares (train, val, test) "
                              "summing to 1")
        if self.gap is not None and self.gap < self.window:
            raise ConfigError(f"gap {self.gap}: expected at least one window ({self.window} samples) between segments")

    @property
    def gap_samples(self) -> int:
        return self.window if self.gap is None else self.gap


def segments(n: int, w: Windowing, name: str = "recording", source: str | None = None
             ) -> dict[str, tuple[int, int]]:
    """``[start, end)`` of the train, val and test segments of an ``n``-sample recording, in that order."""
    if n < w.window:
        raise DataError(f"{name}: {n} samples, shorter than one window ({w.window} samples)", source=source)
    usable = n - 2 * w.gap_samples
    sizes = [int(f * usable) for f in w.fractions]
    if usable <= 0 or min(sizes) < w.window:
        need = 2 * w.gap_samples + int(np.ceil(w.window / min(w.fractions)))
        raise DataError(f"{name}: {n} samples, too short for a {w.window}-sample window in each of train, val and "
                        f"test with {w.gap_samples}-sample gaps (at least {need} needed)", source=source)
    out, start = {}, 0
    for split, size in zip(SEGMENTS, sizes):
        out[split] = (start, start + size)
        start += size + w.gap_samples
    return out


def window_starts(n: int, w: Windowing, name: str = "recording", source: str | None = None
                  ) -> dict[str, np.ndarray]:
    """First sample of every window of each split; a window never leaves its segment."""
    return {split: np.arange(a, b - w.window + 1, w.stride) for split, (a, b) in segments(n, w, name, source).items()}


def check_finite(data: CwruData, rec: int) -> None:
    """A recording with NaN or infinite samples is refused, naming the sensor and the first bad run."""
    for s, sensor in enumerate(data.sensors):
        bad = ~np.isfinite(data.signals[rec, s])
        if bad.any():
            first = int(np.argmax(bad))
            length = int(np.argmin(bad[first:])) if not bad[first:].all() else len(bad) - first
            raise DataError(f"recording {data.recordings[rec].file}, sensor {sensor}: NaN or infinite values at "
                            f"samples {first}-{first + length - 1} ({length} in a row, {int(bad.sum())} in all); "
                            "expected finite numbers", source=data.source)


@dataclass
class _Row:
    rec: int
    start: int
    split: str
    label: str          # "" for paired windows without any label
    labelled: bool      # may the student see the label?


# role(recording, segment) -> (split of the dataset, carries its label?) or None to leave the segment out
Role = Callable[[Recording, str], "tuple[str, bool] | None"]


def _rows(data: CwruData, recs: Sequence[int], w: Windowing, role: Role) -> list[_Row]:
    rows = []
    for r in recs:
        check_finite(data, r)
        rec = data.recordings[r]
        starts = window_starts(data.signals.shape[-1], w, f"recording {rec.file}", data.source)
        for seg in SEGMENTS:
            if (what := role(rec, seg)) is not None:
                split, has_label = what
                rows += [_Row(r, int(s), split, rec.label if has_label else "", split != "train") for s in starts[seg]]
    return rows


def _pick_labelled(rows: list[_Row], per_class: int | None, seed: int) -> None:
    """``per_class`` labelled training windows of each class see their label in the student (None: all)."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row.split == "train" and row.label:
            by_class.setdefault(row.label, []).append(i)
    for label in sorted(by_class):
        idx = by_class[label]
        if per_class is not None and len(idx) < per_class:
            raise DataError(f"class {label}: {len(idx)} training windows, fewer than the {per_class} to label")
        for i in rng.permutation(idx)[: len(idx) if per_class is None else per_class]:
            rows[int(i)].labelled = True


def _resolve(data: CwruData | str | Path | None) -> CwruData:
    return data if isinstance(data, CwruData) else load_cwru(CWRU_FILE if data is None else data)


def _graph_ids(graph: str | Path) -> set[str]:
    from ..graph import load_graph
    return set(load_graph(graph).ids)


def _write(out: str | Path, name: str, data: CwruData, rows: list[_Row], candidates: list[str], graph: str | Path,
           w: Windowing, meta: dict) -> Path:
    """The dataset folder: samples.tsv, windows.tsv, one float16 .npy per sensor, candidates, dataset.yaml."""
    known = _graph_ids(graph)
    for c in candidates:
        if c not in known:
            first = next(r.file for r in data.recordings if r.label == c)
            raise DataError(f"fault class {c} (recording {first}) is not a node of the graph; expected every class "
                            "of the chosen recordings in it", source=str(graph))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [f"{data.recordings[r.rec].file}@{r.start:06d}" for r in rows]
    with open(out / "samples.tsv", "w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh, delimiter="\t", lineterminator="\n")
        wr.writerow(["id", "label", "split", "student_labelled"])
        wr.writerows((i, r.label, r.split, int(r.labelled and bool(r.label))) for i, r in zip(ids, rows))
    with open(out / "windows.tsv", "w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh, delimiter="\t", lineterminator="\n")
        wr.writerow(["id", "recording", "load_hp", "class", "start", "end"])
        wr.writerows((i, data.recordings[r.rec].file, data.recordings[r.rec].load_hp, data.recordings[r.rec].label,
                      r.start, r.start + w.window) for i, r in zip(ids, rows))
    rec = np.asarray([r.rec for r in rows])
    offsets = np.asarray([r.start for r in rows])[:, None] + np.arange(w.window)
    mods = {}
    for mod, sensor in ((TEACHER, "DE"), (STUDENT, "FE")):
        np.save(out / f"{mod}.npy", data.channel(sensor)[rec[:, None], offsets][:, None, :])
        mods[mod] = {"kind": "timeseries", "path": f"{mod}.npy", "rate": data.rate_hz}
    (out / "candidates.txt").write_text("\n".join(candidates) + "\n", encoding="utf-8")
    spec = {"name": name, "graph": str(Path(graph).resolve()), "samples": "samples.tsv",
            "candidates": "candidates.txt", "teacher": TEACHER, "student": STUDENT, "modalities": mods,
            "meta": {"source": "CWRU Bearing Data Center via srigas/CWRU_Bearing_NumPy (data/cwru/README.md)",
                     "windowing": {**asdict(w), "fractions": list(w.fractions)}, **meta}}
    (out / "dataset.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return out / "dataset.yaml"


def _classes(data: CwruData, recs: Sequence[int]) -> list[str]:
    return sorted({data.recordings[r].label for r in recs})


def write_one_load(out: str | Path, load: int = 0, labelled_per_class: int | None = 5, seed: int = 0,
                   windowing: Windowing = Windowing(), fault_ends: tuple[str, ...] = DEFAULT_ENDS,
                   data: CwruData | str | Path | None = None, graph: str | Path = BEARING_GRAPH) -> Path:
    """Task 1: one load, every class; ``labelled_per_class`` fan-end windows labelled per class (None: all)."""
    return write_unseen(out, load, (), labelled_per_class, seed, windowing, fault_ends, data, graph,
                        name=f"cwru-load{load}")


def write_unseen(out: str | Path, load: int = 0, held_out: Sequence[str] = HELD_OUT,
                 labelled_per_class: int | None = 5, seed: int = 0, windowing: Windowing = Windowing(),
                 fault_ends: tuple[str, ...] = DEFAULT_ENDS, data: CwruData | str | Path | None = None,
                 graph: str | Path = BEARING_GRAPH, name: str | None = None) -> Path:
    """Task 3: as task 1, but the ``held_out`` classes lose every training window (their val and test
    windows stay): only the graph can tell the student about them."""
    data = _resolve(data)
    recs = data.select((load,), fault_ends)
    classes = _classes(data, recs)
    if len(classes) < 2:
        raise DataError(f"load {load} hp: {len(classes)} classes with fault ends {', '.join(fault_ends)}; "
                        "expected at least 2", source=data.source)
    if missing := sorted(set(held_out) - set(classes)):
        raise DataError(f"held-out class {missing[0]} has no recording at {load} hp; expected one of "
                        f"{', '.join(classes)}", source=data.source)
    if len(set(classes) - set(held_out)) < 2:
        raise DataError(f"holding out {len(set(held_out))} of {len(classes)} classes leaves fewer than 2 to train on")
    rows = _rows(data, recs, windowing, lambda rec, seg: None if seg == "train" and rec.label in held_out
                 else (seg, True))
    _pick_labelled(rows, labelled_per_class, seed)
    meta = {"task": "unseen" if held_out else "one_load", "load_hp": load, "seed": seed,
            "labelled_per_class": labelled_per_class, "held_out": list(held_out), "fault_ends": list(fault_ends)}
    return _write(out, name or f"cwru-load{load}-unseen", data, rows, classes, graph, windowing, meta)


def write_cross_load(out: str | Path, source: int, target: int, labelled_per_class: int | None = None,
                     seed: int = 0, windowing: Windowing = Windowing(), fault_ends: tuple[str, ...] = DEFAULT_ENDS,
                     data: CwruData | str | Path | None = None, graph: str | Path = BEARING_GRAPH) -> Path:
    """Task 2: the classes both loads have; source training windows labelled (``labelled_per_class`` of them
    for the student; None: all), target training windows paired without labels, validation on the source's
    val segments, tests on the target's test segments."""
    if source == target:
        raise ConfigError(f"source and target load are both {source} hp; expected two different loads")
    data = _resolve(data)
    src, tgt = data.select((source,), fault_ends), data.select((target,), fault_ends)
    classes = sorted(set(_classes(data, src)) & set(_classes(data, tgt)))
    if len(classes) < 2:
        raise DataError(f"loads {source} and {target} hp share {len(classes)} classes; expected at least 2",
                        source=data.source)
    recs = [r for r in src + tgt if data.recordings[r].label in classes]
    plan = {(source, "train"): ("train", True), (source, "val"): ("val", True),
            (target, "train"): ("train", False), (target, "test"): ("test", True)}
    rows = _rows(data, recs, windowing, lambda rec, seg: plan.get((rec.load_hp, seg)))
    _pick_labelled(rows, labelled_per_class, seed)
    meta = {"task": "cross_load", "source_load_hp": source, "target_load_hp": target, "seed": seed,
            "labelled_per_class": labelled_per_class, "fault_ends": list(fault_ends)}
    return _write(out, f"cwru-load{source}-to-load{target}", data, rows, classes, graph, windowing, meta)


def load_pairs(data: CwruData | str | Path | None = None, fault_ends: tuple[str, ...] = DEFAULT_ENDS,
               min_classes: int = 2) -> list[tuple[int, int]]:
    """Every ordered (source, target) pair of loads sharing at least ``min_classes`` classes."""
    data = _resolve(data)
    loads = sorted({r.load_hp for r in data.recordings})
    cls = {ld: set(_classes(data, data.select((ld,), fault_ends))) for ld in loads}
    return [(s, t) for s in loads for t in loads if s != t and len(cls[s] & cls[t]) >= min_classes]


def write_bearing_task(out: str | Path, cfg, seed: int) -> Path:
    """``data.source: bearings``: the task ``cfg`` (a ``config.BearingsConfig``) names, written into ``out``."""
    kw: dict = {"labelled_per_class": cfg.labelled_per_class, "seed": seed,
                "windowing": Windowing(cfg.window, cfg.stride),
                "fault_ends": DEFAULT_ENDS + (("fan_end",) if cfg.fan_end_faults else ()),
                "data": Path(cfg.file).expanduser() if cfg.file else None,
                "graph": Path(cfg.graph).expanduser() if cfg.graph else BEARING_GRAPH}
    if cfg.task == "cross_load":
        return write_cross_load(out, cfg.source_load, cfg.target_load, **kw).parent
    if cfg.task == "unseen":
        return write_unseen(out, cfg.load, tuple(cfg.held_out), **kw).parent
    return write_one_load(out, cfg.load, **kw).parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=("one_load", "cross_load", "unseen"))
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, default=CWRU_FILE, help="the derived CWRU file (default: data/cwru/)")
    ap.add_argument("--graph", type=Path, default=BEARING_GRAPH)
    ap.add_argument("--load", type=int, default=0)
    ap.add_argument("--source", type=int)
    ap.add_argument("--target", type=int)
    ap.add_argument("--labelled", type=int, help="labelled student windows per class (default: the task's)")
    ap.add_argument("--all-labelled", action="store_true", help="the student sees every training label")
    ap.add_argument("--held-out", nargs="+", default=list(HELD_OUT), help="unseen: classes without training windows")
    ap.add_argument("--fan-end-faults", action="store_true", help="also the faults seeded in the fan-end bearing")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--window", type=int, default=2048)
    ap.add_argument("--stride", type=int, default=1024)
    args = ap.parse_args(argv)
    try:
        w = Windowing(args.window, args.stride)
        kw: dict = {"seed": args.seed, "windowing": w, "data": args.data, "graph": args.graph,
                    "fault_ends": DEFAULT_ENDS + (("fan_end",) if args.fan_end_faults else ())}
        if args.all_labelled or args.labelled is not None:
            kw["labelled_per_class"] = None if args.all_labelled else args.labelled
        if args.task == "cross_load":
            if args.source is None or args.target is None:
                raise ConfigError("cross_load: expected --source and --target loads (0-3 hp)")
            path = write_cross_load(args.out, args.source, args.target, **kw)
        elif args.task == "unseen":
            path = write_unseen(args.out, args.load, tuple(args.held_out), **kw)
        else:
            path = write_one_load(args.out, args.load, **kw)
    except KGDistillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
