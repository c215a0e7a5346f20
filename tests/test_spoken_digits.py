"""The spoken-digits dataset: speakers split, labels few, held-out digits never heard labelled, every recording
paired with an image of its digit from its own split's pool, and the same folder for the same seed."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from sklearn.datasets import load_digits

from kgdistill.data.fsdd import load_fsdd
from kgdistill.data.paired import load_paired
from kgdistill.data.spoken_digits import write_spoken_digits
from kgdistill.errors import DataError
from kgdistill.graph import load_graph

SECONDS = 0.25   # short recordings keep the files small; the length rule is what is tested


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd")
    write_spoken_digits(root / "a", seed=0, seconds=SECONDS)
    return root


def rows(folder):
    with open(folder / "samples.tsv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_speakers_never_cross_splits_and_labels_are_few(built):
    ds = load_paired(built / "a")
    speaker = np.array([sid.split("_")[1] for sid in ds.sample_ids])
    assert {s: sorted(set(speaker[ds.splits == s])) for s in ("train", "val", "test")} == {
        "train": ["george", "jackson", "nicolas"], "val": ["lucas"], "test": ["theo", "yweweler"]}
    train = ds.split_idx("train")
    labels = np.array(ds.labels)
    assert len(train) == 3 * 8 * 50 and len(ds.split_idx("val")) == 500 and len(ds.split_idx("test")) == 1000
    assert sorted(set(labels[train])) == [f"digit:d{d}" for d in (0, 1, 2, 4, 5, 6, 8, 9)]  # 3 and 7: no pair
    for d in range(10):
        n = ds.student_labelled[train][labels[train] == f"digit:d{d}"].sum()
        assert n == (0 if d in (3, 7) else 5), d
    assert ds.seen == [f"digit:d{d}" for d in (0, 1, 2, 4, 5, 6, 8, 9)]
    assert ds.candidates == [f"digit:d{d}" for d in range(10)]
    assert (ds.teacher, ds.student) == ("digit_image", "voice")
    ds.validate_against(load_graph(ds.graph_path).index)


def test_each_recording_is_itself_and_pairs_with_an_image_of_its_digit(built):
    ds = load_paired(built / "a")
    table = rows(built / "a")
    fsdd, images = load_fsdd(), load_digits()
    files = {f.removesuffix(".wav"): i for i, f in enumerate(fsdd.files)}
    voice, pics = ds.modalities["voice"], ds.modalities["digit_image"]
    assert voice.meta == {"rate": 8000} and voice.values.shape == (2700, 2000) and pics.values.shape == (2700, 1, 8, 8)
    for i in (0, 777, 1500, 2699):
        w = fsdd.waves[files[ds.sample_ids[i]]]
        n = min(len(w), 2000)
        np.testing.assert_allclose(voice.values[i, :n], w[:n], atol=1 / 32768)   # int16 of the decoded recording
        assert not voice.values[i, n:].any()                                     # padded with silence
    image = np.array([int(r["image"]) for r in table])
    digit = np.array([int(r["label"][-1]) for r in table])
    assert (images.target[image] == digit).all()                                 # same digit
    np.testing.assert_array_equal(pics.values[:, 0], images.images[image])
    used = {s: set(image[ds.splits == s]) for s in ("train", "val", "test")}
    assert not used["train"] & used["test"] and not used["train"] & used["val"] and not used["val"] & used["test"]
    counts = np.bincount(image[ds.splits == "test"])
    assert set(counts[counts > 0]) <= {2, 3}   # 100 test recordings of a digit share its ~36 test images evenly


def test_same_seed_same_folder_other_seed_other_draws(built, tmp_path):
    write_spoken_digits(tmp_path / "again", seed=0, seconds=SECONDS)
    for f in ("samples.tsv", "voice.npy", "digit_image.npy", "dataset.yaml", "candidates.txt", "spoken_digits.ttl"):
        assert (tmp_path / "again" / f).read_bytes() == (built / "a" / f).read_bytes(), f
    write_spoken_digits(tmp_path / "other", seed=1, seconds=SECONDS)
    a, b = rows(built / "a"), rows(tmp_path / "other")
    assert [r["id"] for r in a] == [r["id"] for r in b]                           # the same recordings
    assert [r["student_labelled"] for r in a] != [r["student_labelled"] for r in b]
    assert [r["image"] for r in a] != [r["image"] for r in b]


def test_teacher_may_see_the_heldout_digits(tmp_path):
    ds = load_paired(write_spoken_digits(tmp_path / "t", seed=0, heldout=(2, 9), teacher_sees_heldout=True,
                                         labelled_per_digit=3, seconds=SECONDS))
    train = ds.split_idx("train")
    labels = np.array(ds.labels)[train]
    assert len(train) == 1500 and len(ds.seen) == 10
    for d in range(10):
        flags = ds.student_labelled[train][labels == f"digit:d{d}"]
        assert len(flags) == 150 and flags.sum() == (0 if d in (2, 9) else 3)


@pytest.mark.parametrize("kwargs,needle", [
    ({"heldout": (3, 3)}, r"heldout digits \[3, 3\]: expected distinct digits 0-9"),
    ({"labelled_per_digit": 0}, r"labelled_per_digit 0: expected 1 to 50"),
    ({"speakers": {"train": ("george",), "val": ("anna",), "test": ("theo",)}}, r"speaker 'anna'; expected some of"),
    ({"speakers": {"train": ("george",), "val": ("theo",), "test": ("theo",)}}, r"none shared between splits"),
])
def test_bad_arguments_are_one_line(tmp_path, kwargs, needle):
    with pytest.raises(DataError, match=needle):
        write_spoken_digits(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_the_demo_task_writes_its_own_data_from_the_shipped_files(tmp_path):
    """``kgdistill demo --task spoken-digits``: the packaged configs name the ``spoken_digits`` data source, which
    writes the same folder as the module's own writer, with the config's labels and held-out digits."""
    from kgdistill.config import demo_config, load_config
    from kgdistill.data.sources import DATASET_WRITERS

    full, quick = load_config(demo_config("spoken-digits", False)), load_config(demo_config("spoken-digits", True))
    assert (full.data.source, quick.data.source) == ("spoken_digits", "spoken_digits")
    assert full.student.encoder.name == "logmel" and full.teacher.encoder.name == "conv2d"
    assert quick.student.epochs < full.student.epochs and quick.data.spoken_digits.seconds == 0.8
    cfg = load_config(demo_config("spoken-digits", True), ["data.spoken_digits.labelled_per_digit=2",
                                                           "data.spoken_digits.heldout=[0, 9]",
                                                           f"data.spoken_digits.seconds={SECONDS}"])
    folder = DATASET_WRITERS.get(cfg.data.source)(tmp_path / "data", cfg.data, 4)
    ds = load_paired(folder)
    train, labels = ds.split_idx("train"), np.array(ds.labels)
    assert ds.seen == [f"digit:d{d}" for d in range(1, 9)] and len(ds.split_idx("test")) == 1000
    assert ds.student_labelled[train].sum() == 8 * 2
    write_spoken_digits(tmp_path / "direct", seed=4, labelled_per_digit=2, heldout=(0, 9), seconds=SECONDS)
    assert rows(folder) == rows(tmp_path / "direct")
    assert labels[train][ds.student_labelled[train]].tolist() == [r["label"] for r in rows(folder)
                                                                  if r["split"] == "train" and r["student_labelled"] == "1"]


@pytest.mark.parametrize("override, message", [
    ("data.spoken_digits.heldout=[3, 3]", "data.spoken_digits.heldout: expected distinct digits"),
    ("data.spoken_digits.heldout=[3, 12]", "data.spoken_digits.heldout.1: "),
    ("data.spoken_digits.labelled_per_digit=0", "data.spoken_digits.labelled_per_digit: "),
    ("data.source=spoken_digit", "data.source: "),
])
def test_bad_spoken_digits_settings_name_the_key(override, message):
    from kgdistill.config import demo_config, load_config
    from kgdistill.errors import ConfigError

    with pytest.raises(ConfigError, match="^--set " + override.replace("[", r"\[").replace("]", r"\]")) as exc:
        load_config(demo_config("spoken-digits", True), [override])
    assert message in str(exc.value)


@pytest.mark.slow
def test_the_demo_runs_from_the_cli_and_writes_its_data_into_the_run(cli, tmp_path):
    """``kgdistill demo --task spoken-digits --quick`` end to end (one epoch each, short recordings): the run
    holds the dataset it wrote, and scores the 1,000 test recordings of the two speakers never heard."""
    import json

    out = tmp_path / "run"
    res = cli("demo", "--task", "spoken-digits", "--quick", "--out", str(out), "--quiet", "--set", "teacher.epochs=1",
              "--set", "student.epochs=1", "--set", f"data.spoken_digits.seconds={SECONDS}", timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]
    ds = load_paired(out / "data")
    assert ds.modalities["voice"].values.shape == (2700, 2000) and ds.modalities["digit_image"].kind == "image"
    m = json.loads((out / "metrics.json").read_text())
    assert (m["num_test"], m["num_seen"], m["num_unseen"]) == (1000, 8, 2)
    assert m["roles"] == {"teacher": "digit_image", "teacher_kind": "image", "student": "voice", "student_kind": "audio",
                          "teacher_concepts": "gnn"}
    assert set(m["methods"]) >= {"teacher", "student_alone", "kd", "kg_guided"}
