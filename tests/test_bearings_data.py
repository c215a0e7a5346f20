"""Bearing datasets from the CWRU recordings: disjoint segments per split, class counts, determinism, bad input."""
from __future__ import annotations

import csv
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from kgdistill.data.bearings import (HELD_OUT, Windowing, load_pairs, main, segments, window_starts, write_cross_load,
                                     write_one_load, write_unseen)
from kgdistill.data.cwru import load_cwru
from kgdistill.data.paired import load_paired
from kgdistill.errors import ConfigError, DataError

sys.path.insert(0, str(Path(__file__).parent))
from cwru_fixtures import save, tiny_cwru  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DE13 = ["cwru:DE_B_007", "cwru:DE_B_014", "cwru:DE_B_021", "cwru:DE_IR_007", "cwru:DE_IR_014", "cwru:DE_IR_021",
        "cwru:DE_OR12_007", "cwru:DE_OR12_021", "cwru:DE_OR3_007", "cwru:DE_OR3_021", "cwru:DE_OR6_007",
        "cwru:DE_OR6_014", "cwru:DE_OR6_021"]


@pytest.fixture(scope="module")
def cwru():
    return load_cwru()


def read_tsv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def rows(folder: Path) -> list[dict]:
    """samples.tsv joined with windows.tsv."""
    win = {w["id"]: w for w in read_tsv(folder / "windows.tsv")}
    return [{**s, **win[s["id"]]} for s in read_tsv(folder / "samples.tsv")]


def test_segments_by_hand():
    # 54,000 samples, two 2,048-sample gaps: 49,904 shared 0.6 / 0.2 / 0.2 -> 29,942 / 9,980 / 9,980
    assert segments(54_000, Windowing()) == {"train": (0, 29_942), "val": (31_990, 41_970), "test": (44_018, 53_998)}
    starts = window_starts(54_000, Windowing())
    assert [len(starts[s]) for s in ("train", "val", "test")] == [28, 8, 8]
    assert starts["train"][-1] == 27 * 1024 and starts["train"][-1] + 2048 <= 29_942
    assert starts["val"][0] == 31_990 and starts["test"][-1] == 44_018 + 7 * 1024
    w = Windowing(window=100, stride=100, fractions=(0.5, 0.25, 0.25), gap=150)
    assert segments(1_300, w) == {"train": (0, 500), "val": (650, 900), "test": (1_050, 1_300)}


def test_one_load_windows_never_overlap_across_splits(tmp_path, cwru):
    folder = write_one_load(tmp_path / "ds", load=0, data=cwru).parent
    by_rec: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows(folder):
        by_rec[r["recording"]][r["split"]].append((int(r["start"]), int(r["end"])))
    assert len(by_rec) == 14
    for rec, splits in by_rec.items():
        spans = {s: (min(a for a, _ in w), max(b for _, b in w)) for s, w in splits.items()}
        assert spans["train"][1] + 2048 <= spans["val"][0], rec   # a gap of at least one window between them
        assert spans["val"][1] + 2048 <= spans["test"][0], rec
        assert spans["test"][1] <= 54_000 and all(b - a == 2048 for w in splits.values() for a, b in w)


def test_one_load_counts_and_content(tmp_path, cwru):
    folder = write_one_load(tmp_path / "ds", load=0, data=cwru).parent
    rs = rows(folder)
    per = Counter((r["label"], r["split"], r["student_labelled"]) for r in rs)
    classes = sorted({r["label"] for r in rs})
    assert classes == DE13 + ["cwru:Normal"]
    for c in classes:
        assert (per[(c, "train", "1")], per[(c, "train", "0")], per[(c, "val", "1")], per[(c, "test", "1")]) == (5, 23, 8, 8)
    ds = load_paired(folder)
    assert ds.teacher == "drive_end" and ds.student == "fan_end" and ds.rates == {"drive_end": 12000.0, "fan_end": 12000.0}
    assert ds.modalities["fan_end"].values.shape == (14 * 44, 1, 2048)
    files = [r.file for r in cwru.recordings]
    for i in (0, 100, len(rs) - 1):  # each window holds exactly its recording's samples, both sensors
        rec, start = files.index(rs[i]["recording"]), int(rs[i]["start"])
        for mod, s in (("drive_end", 0), ("fan_end", 1)):
            np.testing.assert_array_equal(ds.modalities[mod].values[i, 0],
                                          cwru.signals[rec, s, start:start + 2048].astype(np.float32))
    assert (folder / "candidates.txt").read_text().split() == classes


def test_same_seed_same_bytes_other_seed_other_labels(tmp_path, cwru):
    a = write_one_load(tmp_path / "a", seed=3, data=cwru).parent
    b = write_one_load(tmp_path / "b", seed=3, data=cwru).parent
    c = write_one_load(tmp_path / "c", seed=4, data=cwru).parent
    for name in ("samples.tsv", "windows.tsv", "drive_end.npy", "fan_end.npy", "candidates.txt"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ra, rc = read_tsv(a / "samples.tsv"), read_tsv(c / "samples.tsv")
    assert [r["id"] for r in ra] == [r["id"] for r in rc]      # the windows do not depend on the seed
    assert [r["student_labelled"] for r in ra] != [r["student_labelled"] for r in rc]
    assert (a / "fan_end.npy").read_bytes() == (c / "fan_end.npy").read_bytes()


def test_cross_load(tmp_path, cwru):
    assert load_pairs(cwru) == [(s, t) for s in range(4) for t in range(4) if s != t]
    folder = write_cross_load(tmp_path / "ds", source=0, target=2, data=cwru).parent
    per = Counter((r["load_hp"], r["split"], r["label"] != "", r["student_labelled"]) for r in rows(folder))
    # normal exists at 0 hp only: the 13 drive-end classes both loads share
    assert per == {("0", "train", True, "1"): 13 * 28, ("0", "val", True, "1"): 13 * 8,
                   ("2", "train", False, "0"): 13 * 28, ("2", "test", True, "1"): 13 * 8}
    assert (folder / "candidates.txt").read_text().split() == DE13
    few = write_cross_load(tmp_path / "few", source=0, target=2, labelled_per_class=5, data=cwru).parent
    assert Counter(r["student_labelled"] for r in rows(few) if r["split"] == "train" and r["label"]) == {"1": 65, "0": 299}
    with pytest.raises(ConfigError, match="both 1 hp"):
        write_cross_load(tmp_path / "x", source=1, target=1, data=cwru)


def test_unseen_classes_have_no_training_window(tmp_path, cwru):
    folder = write_unseen(tmp_path / "ds", load=0, data=cwru).parent
    per = Counter((r["label"], r["split"]) for r in rows(folder))
    for c in HELD_OUT:
        assert (per[(c, "train")], per[(c, "val")], per[(c, "test")]) == (0, 8, 8)
    for c in set(DE13) - set(HELD_OUT):
        assert per[(c, "train")] == 28
    ds = load_paired(folder)
    assert set(ds.candidates) - set(ds.seen) == set(HELD_OUT)
    with pytest.raises(DataError, match="held-out class cwru:FE_IR_007 has no recording at 0 hp"):
        write_unseen(tmp_path / "y", held_out=("cwru:FE_IR_007",), data=cwru)


# ------------------------------------------------------------------------------------------ bad input


def run_main(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def test_recording_shorter_than_one_window(tmp_path, capsys):
    short = save(tiny_cwru(n=1500), tmp_path / "short.npz")
    code, err = run_main(capsys, "one_load", tmp_path / "out", "--data", short)
    assert code == 2 and err.count("\n") == 0
    assert err == f"error: {short}: recording 1797_Normal: 1500 samples, shorter than one window (2048 samples)"
    assert not (tmp_path / "out" / "dataset.yaml").exists()
    with pytest.raises(DataError, match=r"recording 1797_Normal: 6000 samples, too short for a 2048-sample window"):
        write_one_load(tmp_path / "o2", data=tiny_cwru(n=6000))


def test_nan_run_in_a_signal(tmp_path, capsys):
    data = tiny_cwru(n=54_000)
    data.signals[1, 1, 100:150] = np.nan
    bad = save(data, tmp_path / "nan.npz")
    code, err = run_main(capsys, "one_load", tmp_path / "out", "--data", bad, "--labelled", "1")
    assert code == 2 and err == (f"error: {bad}: recording 1797_IR_7_DE12, sensor FE: NaN or infinite values at samples "
                                 "100-149 (50 in a row, 50 in all); expected finite numbers")
    assert not (tmp_path / "out" / "dataset.yaml").exists()


def test_fault_class_missing_from_the_graph(tmp_path, capsys):
    graph = ROOT / "graphs" / "machine_faults.ttl"
    code, err = run_main(capsys, "one_load", tmp_path / "out", "--graph", graph)
    assert code == 2 and err == (f"error: {graph}: fault class cwru:DE_B_007 (recording 1797_B_7_DE12) is not a node "
                                 "of the graph; expected every class of the chosen recordings in it")
    assert not (tmp_path / "out" / "dataset.yaml").exists()


def test_windowing_settings_are_checked(capsys, tmp_path):
    with pytest.raises(ConfigError, match="gap 1000: expected at least one window"):
        Windowing(gap=1000)
    with pytest.raises(ConfigError, match="fractions"):
        Windowing(fractions=(0.5, 0.5, 0.5))
    code, err = run_main(capsys, "cross_load", tmp_path / "o", "--source", "0")
    assert code == 2 and err == "error: cross_load: expected --source and --target loads (0-3 hp)"


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("bearings") / "ds"
    data = tiny_cwru(n=12_000)
    return write_one_load(out, data=data, labelled_per_class=1, windowing=Windowing(window=512, stride=512)).parent


def _edit_yaml(folder: Path, edit) -> Path:
    spec = yaml.safe_load((folder / "dataset.yaml").read_text())
    edit(spec)
    (folder / "dataset.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def _copy(src: Path, dst: Path) -> Path:
    import shutil
    return Path(shutil.copytree(src, dst))


@pytest.mark.parametrize("case", ["rate", "length"])
def test_bad_paired_data_through_train(case, small_dataset, tmp_path, cli):
    folder = _copy(small_dataset, tmp_path / "ds")
    if case == "rate":
        _edit_yaml(folder, lambda s: s["modalities"]["fan_end"].update(rate=48000))
        want = (f"{folder / 'dataset.yaml'}: modalities.fan_end.rate: 48000 Hz, but drive_end is sampled at 12000 Hz; "
                "paired series need one rate (resample one of them)")
    else:
        fe = np.load(folder / "fan_end.npy")
        np.save(folder / "fan_end.npy", fe[:, :, :256])
        want = (f"{folder / 'fan_end.npy'}: windows of 256 samples, but drive_end's have 512 at the same rate "
                "(12000 Hz); paired windows must cover the same time")
    res = cli("train", str(ROOT / "configs" / "machine_faults.yaml"), "--set", f"data.path={folder}",
              "--out", str(tmp_path / "run"))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and want in lines[0]
    run_json = tmp_path / "run" / "run.json"
    assert not run_json.exists() or json.loads(run_json.read_text())["status"] != "complete"


def test_rate_key_is_checked(small_dataset, tmp_path):
    for bad, msg in ((0, "expected a sampling rate in Hz"), ("fast", "expected a sampling rate in Hz"),
                     (True, "expected a sampling rate in Hz")):
        folder = _edit_yaml(_copy(small_dataset, tmp_path / f"rate-{bad}"),
                            lambda s: s["modalities"]["drive_end"].update(rate=bad))
        with pytest.raises(DataError, match=f"modalities.drive_end.rate: {msg}"):
            load_paired(folder)
    folder = _edit_yaml(_copy(small_dataset, tmp_path / "typo"), lambda s: s["modalities"]["drive_end"].update(rat=1))
    with pytest.raises(DataError, match="modalities.drive_end: unknown key 'rat' for kind timeseries; expected kind, path, rate"):
        load_paired(folder)


def test_shipped_config_reads_the_bearing_data():
    from kgdistill.config import load_config

    cfg = load_config(ROOT / "configs" / "bearings.yaml")
    assert cfg.data.source == "paired" and cfg.data.path == str((ROOT / "runs" / "data" / "bearings-load0").resolve())
    assert cfg.teacher.encoder.name == cfg.student.encoder.name == "wdcnn"
    assert sorted(cfg.student.methods) == ["kd", "kg_guided", "student_alone"]
