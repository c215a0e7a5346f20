"""Training matters: on a seeded task where no training-free part is already right, the distilled student beats
the student trained alone, and the graph-guided student's own space (no fusion with a prototype) ranks unseen
concepts far above chance.  Each bound says how likely a random model (or, for a comparison, two equally good
students) would be to pass it, computed in tests/chance.py; every one is below 1 in 1,000.

The task: the machine-fault taxonomy (graphs/machine_faults.ttl, 25 faults, 4 of them unseen in training),
a concept-set teacher that reads recorded symptoms, and a vibration-feature student that sees the label of only
1 of its 12 training samples per seen fault (scripts/make_fault_example.py), 30 epochs each, one CPU thread."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chance import ALPHA, p_group, p_sign  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory):
    """One seeded run and every method's ranks of the truth on its 250 test samples (210 seen, 40 unseen)."""
    from kgdistill.config import load_config
    from kgdistill.eval.metrics import ranks_of_truth
    from kgdistill.model import DistilledModel
    from kgdistill.pipeline import run_pipeline
    from kgdistill.results import evaluate
    from kgdistill.task import build_task

    tmp = tmp_path_factory.mktemp("learns")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_fault_example.py"), str(tmp / "data"), "--seed", "0",
                    "--train", "12", "--labelled", "1", "--test", "10"], check=True, capture_output=True)
    cfg = load_config(ROOT / "configs" / "machine_faults.yaml", [
        f"data.path={tmp / 'data'}", "seed=0", "teacher.epochs=30", "student.epochs=30", "train.num_threads=1",
        "train.device=cpu", "eval.plots=false"])
    assert cfg.student.methods["kg_guided"].fusion is False  # its own space: no training-free prototype added
    rd = run_pipeline(cfg, tmp / "run", progress=False, log=lambda *_: None)
    task = build_task(cfg, rd.path, torch.device("cpu"))
    _, final = evaluate(cfg, task, DistilledModel.load(rd.path, task), torch.device("cpu"))
    y = torch.as_tensor(task.y[task.idx("test")])
    ranks = {m: ranks_of_truth(s, y) for m, s in final.items()}
    return rd.metrics(), ranks, torch.as_tensor(task.seen)[y]


def test_the_task_is_as_described(fault_run):
    m, ranks, seen = fault_run
    assert (m["num_candidates"], m["num_seen"], m["num_unseen"]) == (25, 21, 4)
    assert int(seen.sum()) == 210 and int((~seen).sum()) == 40
    assert set(ranks) >= {"teacher", "student_alone", "kd", "kg_guided"}


def test_the_distilled_student_beats_the_student_alone(fault_run):
    """KD from the teacher (which reads the symptoms) against the same student trained on its few labels alone,
    on the same 210 seen test samples: among the samples where exactly one of them ranks the truth first, KD
    must win so many that two equally good students would do so with probability < 1/1000 (exact sign test;
    seed 0 gives about 70 wins to 17, p ~ 4e-9)."""
    _, ranks, seen = fault_run
    kd, alone = ranks["kd"][seen] == 1, ranks["student_alone"][seen] == 1
    wins, losses = int((kd & ~alone).sum()), int((alone & ~kd).sum())
    assert wins > losses and p_sign(wins, losses) < ALPHA, (wins, losses, p_sign(wins, losses))


def test_the_graph_guided_students_own_space_ranks_unseen_concepts(fault_run):
    """kg_guided with fusion off, on the 40 test samples of the 4 faults it never saw a sample of: a random
    ranking of the 25 faults gets the truth first with probability 1/25 per sample; the run must reach a top-1
    count and an MRR that a random ranking reaches with probability < 1/1000 (exact binomial tail for top-1,
    Hoeffding for MRR).  Seed 0 gives about 32 of 40 (p ~ 1e-37).  The student trained alone, which has no
    graph, must not: it cannot tell an unseen fault from another."""
    m, _, _ = fault_run
    kg, alone = m["methods"]["kg_guided"]["unseen"], m["methods"]["student_alone"]["unseen"]
    assert kg["n"] == 40
    assert p_group(kg, 25, "top1") < ALPHA and p_group(kg, 25, "mrr") < ALPHA, kg
    assert p_group(alone, 25, "top1") > ALPHA


def test_the_teacher_learns(fault_run):
    """The teacher on the 210 seen test samples: top-1 and MRR a random ranking reaches with p < 1/1000."""
    m, _, _ = fault_run
    seen = m["methods"]["teacher"]["seen"]
    assert p_group(seen, 25, "top1") < ALPHA and p_group(seen, 25, "mrr") < ALPHA, seen
