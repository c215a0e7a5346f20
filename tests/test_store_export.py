"""Reading a run directory's alignment export, and the records every store derives from it (no server)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_fixtures import TRICKY_CONCEPTS, TRICKY_SAMPLE, make_run_dir  # noqa: E402

from kgdistill.errors import RunDirError  # noqa: E402
from kgdistill.graph.kg import GraphBuilder  # noqa: E402
from kgdistill.store.export import MATCH_TYPES, CorrespondenceRule, concept_uid, read_run_dir  # noqa: E402


@pytest.fixture
def run(tmp_path):
    return make_run_dir(tmp_path / "run", K=40, d=16, n_samples=160, seed=1)


def test_reads_fixture_run(run):
    ex = read_run_dir(run.path)
    assert ex.run_id == run.run_id and ex.status == "complete"
    assert ex.concept_ids == run.concept_ids
    assert [c[0] for c in TRICKY_CONCEPTS] == ex.concept_ids[:len(TRICKY_CONCEPTS)]
    assert ex.concept_names[:len(TRICKY_CONCEPTS)] == [c[1] for c in TRICKY_CONCEPTS]
    assert ex.gnn.shape == (40, 16) and ex.gnn.dtype == np.float32
    assert TRICKY_SAMPLE in {s["sample_id"] for s in ex.sample_rows()}
    assert len(ex.samples["sample_id"]) == 160 * 2 * run.top_k
    assert ex.num_alignments == len(ex.samples["sample_id"]) + len(ex.prototype_alignments())
    assert ex.metrics["note"] == "fixture 'run' {x}"
    # the digest is a function of the files: same dir, same digest
    assert read_run_dir(run.path).digest == ex.digest


def test_prototype_alignments_and_neighbours(run):
    ex = read_run_dir(run.path)
    valid_s = ex.valid("student")
    assert not valid_s[-1] and not valid_s[-2]          # the fixture's unsampled concepts have no centroid
    by_src = {}
    for a in ex.prototype_alignments():
        by_src.setdefault((a["concept_id"], a["modality"]), []).append(a)
    for (cid, _), rows in by_src.items():
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        assert all(rows[i]["score"] >= rows[i + 1]["score"] for i in range(len(rows) - 1))
    # the teacher centroid of a well-separated concept aligns first with its own prototype
    own_first = sum(rows[0]["target_id"] == cid for (cid, m), rows in by_src.items() if m == "teacher")
    assert own_first >= 0.8 * sum(1 for (_, m) in by_src if m == "teacher")
    for n in ex.neighbours():
        assert n["concept_id"] != n["other_id"]
    assert {n["space"] for n in ex.neighbours()} == {"teacher", "student"}


def test_correspondence_rule():
    rule = CorrespondenceRule(exact=0.9, close=0.7, related=0.5)
    assert rule.classify(3, 3, 0.95, rank=1) == "exactMatch"
    assert rule.classify(3, 3, 0.95, rank=2) == "closeMatch"
    assert rule.classify(3, 3, 0.75, rank=1) == "closeMatch"
    assert rule.classify(3, 3, 0.6, rank=1) == "relatedMatch"
    assert rule.classify(3, 3, 0.4, rank=1) is None
    assert rule.classify(3, 4, 0.99, rank=1) == "relatedMatch"
    assert rule.classify(3, 4, 0.8, rank=1, broader=True) == "broadMatch"
    assert rule.classify(3, 4, 0.8, rank=1, narrower=True) == "narrowMatch"
    assert rule.classify(3, 4, 0.45, rank=1, broader=True) is None


def test_correspondences_cover_match_types_and_use_hierarchy(run):
    ex = read_run_dir(run.path)
    corr = ex.correspondences()
    assert corr and {c["match"] for c in corr} <= set(MATCH_TYPES)
    assert {"exactMatch", "relatedMatch"} <= {c["match"] for c in corr}
    assert all(c["confidence"] >= ex.rule.related for c in corr)
    other = [c for c in corr if c["match"] == "relatedMatch" and c["concept_id"] != c["other_id"]]
    assert other, "fixture should produce cross-concept correspondences"
    pair = other[0]
    # a graph that makes the teacher-side concept an ancestor of the student-side one: broadMatch
    def match_with_edge(child: str, parent: str) -> str:
        b = GraphBuilder("h")
        for cid in ex.concept_ids:
            b.add_node(cid)
        b.add_edge(child, parent, "is_a")
        got = read_run_dir(run.path, hierarchy=b.build()).correspondences()
        return {(c["concept_id"], c["other_id"]): c["match"] for c in got}[(pair["concept_id"], pair["other_id"])]

    assert match_with_edge(pair["concept_id"], pair["other_id"]) == "broadMatch"
    assert match_with_edge(pair["other_id"], pair["concept_id"]) == "narrowMatch"


def test_disagreements_follow_their_definition(run):
    ex = read_run_dir(run.path)
    recs = ex.disagreements()
    assert [r["rank"] for r in recs] == list(range(1, len(recs) + 1))
    assert all(recs[i]["score"] >= recs[i + 1]["score"] for i in range(len(recs) - 1))
    # recompute one record from the CSV files
    r = recs[0]
    cid = r["concept_id"]
    with open(run.path / "alignments" / "samples.csv", newline="", encoding="utf-8") as f:
        rows = [x for x in csv.DictReader(f) if x["true_id"] == cid and x["rank"] == "1"]
    top1 = {}
    for x in rows:
        top1.setdefault(x["sample_id"], {})[x["modality"]] = x["concept_id"]
    rate = np.mean([v["teacher"] != v["student"] for v in top1.values()])
    assert r["sample_rate"] == pytest.approx(rate)
    i = ex.index[cid]
    t, s = ex.teacher[i], ex.student[i]
    cos = float(t @ s / np.linalg.norm(t) / np.linalg.norm(s))
    assert r["centroid_cos"] == pytest.approx(cos, abs=1e-5)
    assert r["score"] == pytest.approx(np.mean([rate, abs(r["top1_gap"]), (1 - cos) / 2]), abs=1e-6)
    assert all(x["concept_id"] not in run.concept_ids[-2:] for x in recs)   # no test samples: no record


def _rewrite_csv(path: Path, edit) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows = edit(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("status", ["running", "failed"])
def test_incomplete_run_is_refused(tmp_path, status):
    run = make_run_dir(tmp_path / "r", K=10, n_samples=20, status=status)
    with pytest.raises(RunDirError) as exc:
        read_run_dir(run.path)
    msg = _one_line(exc)
    assert str(run.path) in msg and status in msg and "complete" in msg


def test_missing_pieces_are_one_line_errors(tmp_path):
    with pytest.raises(RunDirError) as exc:
        read_run_dir(tmp_path / "nowhere")
    assert "nowhere" in _one_line(exc)
    run = make_run_dir(tmp_path / "r", K=10, n_samples=20)
    (run.path / "alignments" / "per_concept.csv").unlink()
    with pytest.raises(RunDirError) as exc:
        read_run_dir(run.path)
    assert "per_concept.csv" in _one_line(exc) and str(run.path) in str(exc.value)
    (run.path / "run.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunDirError) as exc:
        read_run_dir(run.path)
    assert "run.json" in _one_line(exc)


@pytest.mark.parametrize("case", ["bad_modality", "unknown_concept", "bad_score", "missing_column",
                                  "duplicate_concept", "bad_seen", "bad_per_concept"])
def test_malformed_csv_names_file_and_line(tmp_path, case):
    run = make_run_dir(tmp_path / "r", K=10, n_samples=20)
    al = run.path / "alignments"
    if case == "bad_modality":
        _rewrite_csv(al / "samples.csv", lambda r: r[:3] + [[*r[3][:2], "radiology", *r[3][3:]]] + r[4:])
        target, line = "samples.csv", 4
    elif case == "unknown_concept":
        _rewrite_csv(al / "samples.csv", lambda r: r[:5] + [[*r[5][:4], "NOPE:1", *r[5][5:]]] + r[6:])
        target, line = "samples.csv", 6
    elif case == "bad_score":
        _rewrite_csv(al / "samples.csv", lambda r: r[:2] + [[*r[2][:6], "high"]] + r[3:])
        target, line = "samples.csv", 3
    elif case == "missing_column":
        _rewrite_csv(al / "samples.csv", lambda r: [[c for j, c in enumerate(x) if j != 5] for x in r])
        target, line = "samples.csv", 1
    elif case == "duplicate_concept":
        _rewrite_csv(al / "concepts.csv", lambda r: r + [r[1]])
        target, line = "concepts.csv", 12
    elif case == "bad_seen":
        _rewrite_csv(al / "concepts.csv", lambda r: r[:2] + [[*r[2][:3], "maybe"]] + r[3:])
        target, line = "concepts.csv", 3
    else:
        _rewrite_csv(al / "per_concept.csv", lambda r: r[:2] + [[r[2][0], "many", *r[2][2:]]] + r[3:])
        target, line = "per_concept.csv", 3
    with pytest.raises(RunDirError) as exc:
        read_run_dir(run.path)
    msg = _one_line(exc)
    assert f"{target}:{line}:" in msg, msg


@pytest.mark.parametrize("case", ["shape", "missing", "nan", "zero_prototype"])
def test_bad_embeddings(tmp_path, case):
    from safetensors.numpy import load_file, save_file

    run = make_run_dir(tmp_path / "r", K=10, n_samples=20)
    f = run.path / "alignments" / "embeddings.safetensors"
    t = load_file(str(f))
    if case == "shape":
        t["concept_student"] = t["concept_student"][:5]
    elif case == "missing":
        del t["concept_teacher"]
    elif case == "nan":
        t["concept_gnn"][2, 3] = np.nan
    else:
        t["concept_gnn"][4] = 0
    save_file(t, str(f))
    with pytest.raises(RunDirError) as exc:
        read_run_dir(run.path)
    assert "embeddings.safetensors" in _one_line(exc)


def test_concept_uid_is_unambiguous():
    assert concept_uid("a|b", "c") != concept_uid("a", "b|c")
    assert json.loads(concept_uid("g", "it's \"x\"")) == ["g", "it's \"x\""]
