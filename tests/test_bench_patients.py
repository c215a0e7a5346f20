"""The real-patient benchmark's targets (issue 16), checked by scripts/bench_quality.py from seed means."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_loader import load_script  # noqa: E402


@pytest.fixture(scope="module")
def bq():
    return load_script("bench_quality", "bench_quality_patients")


def _summary(rows: dict[str, dict[str, float]]) -> dict:
    return {m: {k: {"mean": v, "std": 0.0, "n": 3} for k, v in r.items()} for m, r in rows.items()}


def test_the_four_targets_from_hand_made_means(bq):
    s = _summary({
        "kg_guided": {"seen_top1": 0.60, "unseen_top10": 0.40, "harmonic_top1": 0.30, "mistake_severity": 0.50,
                      "all_top1": 0.46, "all_top10": 0.64},
        "text_baseline": {"seen_top1": 0.40, "unseen_top10": 0.42, "harmonic_top1": 0.24, "mistake_severity": 0.55},
        "phenomizer": {"seen_top1": 0.44, "unseen_top10": 0.38, "harmonic_top1": 0.20, "mistake_severity": 0.60},
        "kd": {"seen_top1": 0.57, "harmonic_top1": 0.02, "mistake_severity": 0.45},
        "student_alone": {"seen_top1": 0.50, "harmonic_top1": 0.0, "mistake_severity": 0.70},
    })
    t = bq.patient_targets(s, None, published=False)
    assert t["1_seen_top1_vs_training_free"]["best_baseline"] == "phenomizer"
    assert t["1_seen_top1_vs_training_free"]["margin"] == pytest.approx(0.16) and t["1_seen_top1_vs_training_free"]["met"]
    assert t["1_seen_top1_vs_non_graph"]["best_baseline"] == "kd" and t["1_seen_top1_vs_non_graph"]["met"]  # +3.0
    assert not t["2_unseen_top10_vs_training_free"]["met"]                  # 40 < 42
    assert t["2_harmonic_top1"]["best_baseline"] == "text_baseline" and t["2_harmonic_top1"]["met"]   # +6
    assert t["3_mistake_severity"]["best_baseline"] == "kd" and not t["3_mistake_severity"]["met"]
    pub = bq.patient_targets(s, None, published=True)
    assert pub["4_all_top1"]["met"] and not pub["4_all_top10"]["met"]
    task = bq.TASKS["patients_published"]
    assert bq.check_targets(task, s)["4_all_top10"]["kg_guided"] == pytest.approx(0.64)
    lines = bq.target_lines("patients_published", {"targets": pub})
    assert lines == ["- patients_published target 4_all_top1: met: kg_guided 46.0 (required 45)",
                     "- patients_published target 4_all_top10: MISSED: kg_guided 64.0 (required 65)"]


def test_the_all_labels_run_labels_every_training_note(bq):
    tree = bq.task_tree(bq.TASKS["patients_quick_independent"], ["seed=2"])
    assert tree["data"]["source"] == "phenopackets" and tree["gnn"]["input_dim"] == 128
    every = bq.all_labels_tree(tree)
    assert every["data"]["patients"]["labelled_per_disease"] == bq.ALL_NOTES
    assert tree["data"]["patients"]["labelled_per_disease"] == 2
    assert set(every["student"]["methods"]) == {"kg_guided", "student_alone"}
