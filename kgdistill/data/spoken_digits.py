"""Spoken digits (student) paired with handwritten digit images (teacher), written as a paired dataset folder.

The audio is the shipped Free Spoken Digit Dataset copy (``fsdd.py``: 6 speakers x 10 digits x 50, 8 kHz);
the images are scikit-learn's 1,797 8x8 handwritten digits (``sklearn.datasets.load_digits``: the UCI
optdigits test images, inside the scikit-learn wheel, so nothing is downloaded and nothing extra installed).
As in AV-MNIST, each recording is paired with an image of the same digit drawn from the same split's image
pool, so no image is shared between training and evaluation.

- **Split by speaker**: training speakers, a validation speaker, test speakers never heard in training.
- **Few labels**: ``labelled_per_digit`` training recordings per digit carry a label for the student.
- **Two digits never heard labelled** (``heldout``): by default they have no training row at all, neither
  image nor recording, so the teacher never sees them either and they are the run's *unseen* concepts,
  reached only through the graph (the strict reading of "never heard labelled", as in ``mfeat_zsl``).
  ``teacher_sees_heldout=True`` keeps their training pairs, labelled for the teacher but not for the student,
  which then hears them only through the teacher; they are then *seen* concepts of the run.

    python -m kgdistill.data.spoken_digits OUT_DIR [--seed 0] [--labelled 5] [--heldout 3 7]
        [--teacher-sees-heldout] [--seconds 1.0]
"""
from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
import yaml

from ..errors import DataError
from .audio import fit_length
from .external import GRAPHS
from .fsdd import RATE, load_fsdd

SPEAKERS = {"train": ("george", "jackson", "nicolas"), "val": ("lucas",), "test": ("theo", "yweweler")}
IMAGE_SHARE = {"train": 0.6, "val": 0.2}   # of each digit's images; the test pool gets the rest
GRAPH = GRAPHS / "spoken_digits.ttl"


def _image_pools(labels: np.ndarray, rng: np.random.Generator) -> dict[tuple[str, int], np.ndarray]:
    """(split, digit) -> indices of sklearn's images: each digit's images shuffled and cut 60 / 20 / 20."""
    pools = {}
    for d in range(10):
        rows = rng.permutation(np.flatnonzero(labels == d))
        a = round(IMAGE_SHARE["train"] * len(rows))
        b = a + round(IMAGE_SHARE["val"] * len(rows))
        pools["train", d], pools["val", d], pools["test", d] = rows[:a], rows[a:b], rows[b:]
    return pools


def _check_args(heldout: tuple[int, ...], labelled_per_digit: int, speakers: dict[str, tuple[str, ...]],
                known: set[str]) -> None:
    if len(set(heldout)) != len(heldout) or not all(0 <= d <= 9 for d in heldout) or len(heldout) > 8:
        raise DataError(f"heldout digits {list(heldout)}: expected distinct digits 0-9, leaving at least 2 seen")
    if not 1 <= labelled_per_digit <= 50:
        raise DataError(f"labelled_per_digit {labelled_per_digit}: expected 1 to 50")
    named = [s for split in ("train", "val", "test") for s in speakers.get(split, ())]
    if unknown := sorted(set(named) - known):
        raise DataError(f"speaker {unknown[0]!r}; expected some of {', '.join(sorted(known))}")
    if len(named) != len(set(named)) or not all(speakers.get(s) for s in ("train", "val", "test")):
        raise DataError("speakers: every split needs its own speakers, none shared between splits")


def write_spoken_digits(out: str | Path, seed: int = 0, labelled_per_digit: int = 5, heldout: tuple[int, ...] = (3, 7),
                        teacher_sees_heldout: bool = False, seconds: float = 1.0,
                        speakers: dict[str, tuple[str, ...]] | None = None) -> Path:
    """Write the dataset folder (dataset.yaml, samples.tsv, voice.npy, digit_image.npy, the graph); returns
    the path of dataset.yaml.  Everything drawn (image pools, pairings, labelled recordings) follows ``seed``."""
    from sklearn.datasets import load_digits  # the images ship inside the scikit-learn wheel

    speakers = speakers or SPEAKERS
    _check_args(tuple(heldout), labelled_per_digit, speakers, {s for v in SPEAKERS.values() for s in v})
    fsdd, images = load_fsdd(), load_digits()
    rng = np.random.default_rng(seed)
    pools = _image_pools(images.target, rng)
    rows, image_idx, labelled = [], [], []
    for split in ("train", "val", "test"):
        for d in range(10):
            if split == "train" and d in heldout and not teacher_sees_heldout:
                continue
            recs = np.flatnonzero(np.isin(fsdd.speakers, speakers[split]) & (fsdd.digits == d))
            pool = pools[split, d]
            pairing = rng.permutation(len(recs)) % len(pool)      # every image of the pool used about equally
            flags = np.ones(len(recs), dtype=bool) if split != "train" else np.zeros(len(recs), dtype=bool)
            if split == "train" and d not in heldout:
                flags[rng.choice(len(recs), labelled_per_digit, replace=False)] = True
            rows += [(r, split) for r in recs]
            image_idx += pool[pairing].tolist()
            labelled += flags.tolist()
    rec = np.array([r for r, _ in rows])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wav = fit_length([fsdd.waves[r] for r in rec], round(seconds * RATE))
    np.save(out / "voice.npy", np.clip(np.round(wav * 32768), -32768, 32767).astype(np.int16))
    np.save(out / "digit_image.npy", images.images[image_idx].astype(np.uint8))
    with open(out / "samples.tsv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "label", "split", "student_labelled", "image"])
        for (r, split), flag, img in zip(rows, labelled, image_idx):
            w.writerow([fsdd.files[r].removesuffix(".wav"), f"digit:d{fsdd.digits[r]}", split, int(flag), img])
    (out / "candidates.txt").write_text("".join(f"digit:d{d}\n" for d in range(10)), encoding="utf-8")
    shutil.copyfile(GRAPH, out / GRAPH.name)
    meta = {"audio": "Free Spoken Digit Dataset (Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0), "
                     "8-bit mu-law copy shipped in kgdistill/data/fsdd",
            "images": "scikit-learn load_digits (UCI optdigits, 8x8, values 0-16)", "seed": seed,
            "labelled_per_digit": labelled_per_digit, "heldout": [f"digit:d{d}" for d in heldout],
            "teacher_sees_heldout": teacher_sees_heldout, "speakers": {k: list(v) for k, v in speakers.items()}}
    spec = {"name": "spoken-digits", "graph": GRAPH.name, "samples": "samples.tsv", "candidates": "candidates.txt",
            "teacher": "digit_image", "student": "voice",
            "modalities": {"digit_image": {"kind": "image", "path": "digit_image.npy"},
                           "voice": {"kind": "audio", "path": "voice.npy", "rate": RATE}}, "meta": meta}
    (out / "dataset.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return out / "dataset.yaml"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--labelled", type=int, default=5, help="labelled training recordings per digit (5)")
    ap.add_argument("--heldout", type=int, nargs="*", default=[3, 7], help="digits never heard labelled (3 7)")
    ap.add_argument("--teacher-sees-heldout", action="store_true",
                    help="keep the held-out digits' training pairs, labelled for the teacher only")
    ap.add_argument("--seconds", type=float, default=1.0, help="recordings cut or padded to this length (1.0)")
    args = ap.parse_args(argv)
    print(write_spoken_digits(args.out, seed=args.seed, labelled_per_digit=args.labelled, heldout=tuple(args.heldout),
                              teacher_sees_heldout=args.teacher_sees_heldout, seconds=args.seconds))


if __name__ == "__main__":
    main()
