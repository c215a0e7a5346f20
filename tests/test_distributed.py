"""torchrun with 2 gloo processes on the CPU trains the same models as one process with the same global batch."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import ROOT, TINY  # noqa: E402

# Every sample labelled, no dropout, and loss terms that are means over the batch: the setting in which data
# parallelism is exactly the single-process computation (docs/distributed.md explains the others).
SETS = TINY + [
    "data.hpo.labelled_per_disease=6", "teacher.encoder.dropout=0", "student.encoder.dropout=0", "gnn.dropout=0",
    "train.num_threads=1", "teacher.epochs=8", "student.epochs=8", "eval.plots=false",
    "student.methods.kg_guided.losses=[{name: ce}, {name: kd, temperature: 4.0}, {name: anchor, weight: 0.5}]",
]
QUICK = str(ROOT / "kgdistill" / "configs" / "quick.yaml")


def _train(out: Path, launcher: list[str]) -> subprocess.CompletedProcess:
    args = [a for s in SETS for a in ("--set", s)]
    return subprocess.run([sys.executable, *launcher, "-m", "kgdistill", "train", QUICK, *args, "--out", str(out),
                           "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)


def _curves(run: Path) -> dict[str, list[dict[str, float]]]:
    return {str(p.relative_to(run / "logs")): [{k: float(v) for k, v in row.items()} for row in csv.DictReader(p.open())]
            for p in sorted((run / "logs").rglob("*.csv"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    single = _train(base / "single", [])
    assert single.returncode == 0, single.stderr
    ddp = _train(base / "ddp", ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    return base / "single", base / "ddp", ddp


def test_two_gloo_ranks_match_one_process(runs):
    single, ddp, _ = runs
    a, b = _curves(single), _curves(ddp)
    assert a.keys() == b.keys() and len(a) >= 8  # teacher + 3 students, in both passes
    for stage in a:
        assert len(a[stage]) == len(b[stage]) == 8
        for ra, rb in zip(a[stage], b[stage]):
            for k in ra:
                assert rb[k] == pytest.approx(ra[k], rel=1e-4, abs=1e-6), (stage, ra["epoch"], k)
    ma = json.loads((single / "metrics.json").read_text())["methods"]
    mb = json.loads((ddp / "metrics.json").read_text())["methods"]
    for method, entry in ma.items():
        for group in ("seen", "unseen", "all"):
            for k, v in entry.get(group, {}).items():
                assert mb[method][group][k] == pytest.approx(v, abs=1e-5), (method, group, k)


def test_only_rank_zero_writes_and_prints(runs):
    _, ddp, proc = runs
    assert json.loads((ddp / "run.json").read_text())["status"] == "complete"
    assert proc.stdout.count("run directory:") == 1
    assert not (ddp / "state").exists()
    assert (ddp / "report.md").is_file() and (ddp / "checkpoints" / "teacher.safetensors").is_file()


def test_sigterm_under_torchrun_then_resume_equals_an_uninterrupted_run(tmp_path, record_property):
    """The ranks stop together at one step, rank 0 checkpoints every rank's RNG, and resuming is bit-exact."""
    import signal
    import time

    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    sets = [a for s in TINY + ["teacher.epochs=30", "student.epochs=30", "teacher.patience=100", "student.patience=100",
                               "train.num_threads=1", "eval.plots=false"] for a in ("--set", s)]

    def cmd(*args):
        return [*launcher, "-m", "kgdistill", "train", *args, "--quiet"]

    ref = subprocess.run(cmd(QUICK, *sets, "--out", str(tmp_path / "ref")), cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    run = tmp_path / "run"
    proc = subprocess.Popen(cmd(QUICK, *sets, "--out", str(run)), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 300
    while not (run / "state" / "final" / "teacher.pt").exists():
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # to torchrun, which forwards it to both ranks
    proc.communicate(timeout=120)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and "--resume" in info["error"]
    res = subprocess.run(cmd("--resume", str(run)), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["methods"] == \
        json.loads((tmp_path / "ref" / "metrics.json").read_text())["methods"]
    record_property("reliability", {
        "kind": "fault", "fault": "SIGTERM to torchrun (2 ranks)", "injected": "SIGTERM to the launcher while the "
        "final pass's teacher trains", "outcome": "the ranks stop at the same step, rank 0 checkpoints both ranks' "
        "RNG states, run `interrupted`; resuming under torchrun gives metrics equal to an uninterrupted 2-rank run"})
