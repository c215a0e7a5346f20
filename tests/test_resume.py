"""Exact resume and faults during training: SIGKILL, SIGTERM, a full disk, an unwritable output folder.

Every interrupted run is continued with ``--resume`` and must end with exactly the metrics of an uninterrupted
run with the same seed (CPU, one thread: bit-for-bit reproducible).
"""
from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import ROOT, TINY, kgdistill_cmd  # noqa: E402

from kgdistill.fileio import load_tensors, read_state  # noqa: E402
from kgdistill.run_dir import pid_alive  # noqa: E402

LONG = TINY + ["teacher.epochs=30", "student.epochs=30", "teacher.patience=100", "student.patience=100",
               "train.num_threads=1"]
QUICK = str(ROOT / "kgdistill" / "configs" / "quick.yaml")


def _sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _start(out: Path, *python_args: str, prefix: tuple[str, ...] | list[str] = ()) -> subprocess.Popen:
    return subprocess.Popen([*prefix, sys.executable, *python_args, "-m", "kgdistill", "train", QUICK, *_sets(LONG),
                             "--out", str(out), "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended before {path.name} appeared: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def _stop_when(proc: subprocess.Popen, path: Path, sig: int = signal.SIGTERM) -> str:
    """Send ``sig`` once ``path`` exists; the process's stderr."""
    _wait_for(path, proc)
    proc.send_signal(sig)
    return proc.communicate(timeout=120)[1]


def _methods(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())["methods"]


def _info(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every resumed run must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "run"
    r = kgdistill_cmd("train", QUICK, *_sets(LONG), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def _resume_and_compare(run: Path, reference: Path) -> None:
    r = kgdistill_cmd("train", "--resume", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    _same_as_reference(run, reference)


def _same_as_reference(run: Path, reference: Path) -> None:
    """A resumed run ended exactly like the uninterrupted one."""
    info = _info(run)
    assert info["status"] == "complete" and info["resumed"] >= 1
    assert _methods(run) == _methods(reference)
    assert not (run / "state").exists()  # resume state removed once complete
    scores = "checkpoints/validation_scores.safetensors"  # kept across the stop, for a later re-evaluation
    assert load_tensors(run / scores).keys() == load_tensors(reference / scores).keys()
    assert all(torch.equal(v, load_tensors(reference / scores)[k]) for k, v in load_tensors(run / scores).items())
    for log in (reference / "logs").glob("*.csv"):  # no epoch logged twice or lost
        assert (run / "logs" / log.name).read_text().count("\n") == log.read_text().count("\n")


def _record(record_property, fault: str, injected: str, outcome: str) -> None:
    """A line of docs/reliability.md's fault table (scripts/reliability_report.py collects it)."""
    record_property("reliability", {"kind": "fault", "fault": fault, "injected": injected, "outcome": outcome})


def test_sigkill_mid_stage_then_resume_matches_uninterrupted(tmp_path, reference, record_property):
    run = tmp_path / "run"
    proc = _start(run)
    _wait_for(run / "state" / "final" / "student_kd.pt", proc)  # the final pass's KD student is mid-training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _info(run)["status"] == "running"  # a killed process cannot say anything; resume accepts it
    ckpt = read_state(run / "state" / "final" / "student_kd.pt")
    assert 1 <= ckpt["epoch"] < 30 and {"optimizer", "scheduler", "rng", "generator", "best_state"} <= set(ckpt)
    assert (run / "state" / "final" / "teacher.done.pt").is_file()  # finished stages are not trained again
    _resume_and_compare(run, reference)
    _record(record_property, "process killed (SIGKILL) mid-training",
            f"kill -9 while the final pass's KD student trains (its checkpoint at epoch {ckpt['epoch']})",
            "run left `running`, every checkpoint whole; `--resume` restores the 5 finished stages and continues "
            "the 6th: metrics equal to an uninterrupted run, no epoch logged twice")


def test_sigterm_writes_a_checkpoint_marks_interrupted_and_resumes(tmp_path, reference, record_property):
    run = tmp_path / "run"
    proc = _start(run)
    err = _stop_when(proc, run / "state" / "calibration" / "teacher.pt")
    assert proc.returncode == 128 + signal.SIGTERM
    last = err.strip().splitlines()[-1]
    assert last.startswith("kgdistill: interrupted:") and f"--resume {run}" in last
    info = _info(run)
    assert info["status"] == "interrupted" and "--resume" in info["error"]
    assert not (run / "metrics.json").exists()
    _resume_and_compare(run, reference)
    _record(record_property, "SIGTERM during training", "SIGTERM while the calibration pass's teacher trains",
            "checkpoint at the current step, run marked `interrupted`, exit 143 with one line naming `--resume`; "
            "resumed metrics equal to an uninterrupted run")


def test_resume_twice_after_two_interruptions(tmp_path, reference, record_property):
    run = tmp_path / "run"
    _stop_when(_start(run), run / "state" / "calibration" / "student_kd.pt")
    proc = subprocess.Popen([sys.executable, "-m", "kgdistill", "train", "--resume", str(run), "--quiet"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _stop_when(proc, run / "state" / "final" / "teacher.pt", signal.SIGINT)  # Ctrl-C
    assert proc.returncode == 128 + signal.SIGINT and _info(run)["status"] == "interrupted"
    _resume_and_compare(run, reference)
    _record(record_property, "Ctrl-C, twice in one run", "SIGTERM, `--resume`, then SIGINT in a later stage",
            "each stop checkpoints and exits (143, then 130); the second resume ends equal to an uninterrupted run")


_FAULT = """
import errno, os, sys
import kgdistill.train.state as state
real_write, n = state.write_state, [0]
def failing_write(obj, path):
    n[0] += 1
    if n[0] > {after}:
        path.write_bytes(b"half a checkpoint")  # the device fills up part-way through the file
        raise OSError({errno}, os.strerror({errno}), str(path))
    return real_write(obj, path)
state.write_state = failing_write
sys.argv = ["kgdistill", *sys.argv[1:]]
from kgdistill.cli import main
main()
"""


@pytest.mark.parametrize("err, says", [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied")])
def test_disk_full_or_unwritable_mid_run_keeps_the_last_checkpoint(tmp_path, reference, err, says, record_property):
    """Injected, beside the real faults below: the 13th checkpoint write fails half-way through the file, a
    point a real full disk or a chmod cannot be aimed at, so the half-written temporary is always exercised."""
    run = tmp_path / "run"
    script = tmp_path / "fault.py"
    script.write_text(_FAULT.format(after=12, errno=err))
    r = subprocess.run([sys.executable, str(script), "train", QUICK, *_sets(LONG), "--out", str(run), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("kgdistill: error:") and says in last and "last good checkpoint is intact" in last
    assert "Traceback" not in r.stderr
    assert _info(run)["status"] == "failed"
    kept = read_state(run / "state" / "calibration" / "teacher.pt")  # whole and readable
    assert kept["epoch"] >= 1
    assert not list(run.rglob(".*.tmp*"))  # no half-written file left behind
    _resume_and_compare(run, reference)
    _record(record_property, "disk full" if err == errno.ENOSPC else "output folder becomes unwritable",
            f"the 13th checkpoint write fails half-way with {errno.errorcode[err]}",
            f"exit 2, one line ('{says}; the last good checkpoint is intact'), run marked `failed`, the "
            "half-written file removed; `--resume` ends equal to an uninterrupted run")


def test_a_real_full_disk_fails_in_one_line_and_resumes_once_space_is_freed(tmp_path, reference, record_property):
    """A real full disk, not an injected error: the run writes to a 4 MiB tmpfs mounted in a private mount
    namespace (``unshare -rm``: a user namespace, so no privileges are needed, and the mount vanishes with the
    process).  Wherever the disk fills, the run must stop with one line naming it (exit 2), leave no temporary
    file, and, once the tmpfs is enlarged (``mount -o remount,size=``, the user freeing space), ``--resume``
    must end exactly like an uninterrupted run; the run is marked failed unless the full disk refused run.json
    itself (then it stays `running` with a dead pid, as after a kill).  The resume runs inside the same namespace, since the run's
    saved paths point into the mount; the finished run is copied out to be compared."""
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    run = mnt / "run"
    train = " ".join(map(shlex.quote, [sys.executable, "-m", "kgdistill", "train", QUICK, *_sets(LONG), "--out",
                                       str(run), "--quiet"]))
    resume = " ".join(map(shlex.quote, [sys.executable, "-m", "kgdistill", "train", "--resume", str(run), "--quiet"]))
    script = (f"set -u; mount -t tmpfs -o size=4m none {mnt} || exit 99; "
              f"{train} 2> {out}/train.err; echo $? > {out}/train.rc; cp {run}/run.json {out}/failed.json; "
              f"find {run} -name '.*.tmp*' > {out}/leftovers; "
              f"mount -o remount,size=256m {mnt} && {resume} 2> {out}/resume.err; echo $? > {out}/resume.rc; "
              f"cp -a {run} {out}/run")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, f"unshare -rm / mount -t tmpfs failed (user namespaces off?): {r.stderr[-2000:]}"
    err = (out / "train.err").read_text()
    last = err.strip().splitlines()[-1]
    assert (out / "train.rc").read_text().strip() == "2", err[-3000:]
    assert last.startswith("kgdistill: error:") and ("disk is full" in last or "No space left on device" in last)
    assert "Traceback" not in err
    # marked failed where run.json could still be written; where the full disk refused that too, it stays
    # `running` with the pid of the process that has ended, which --resume accepts as after a kill (never complete)
    failed = json.loads((out / "failed.json").read_text())
    assert failed["status"] == "failed" or (failed["status"] == "running" and not pid_alive(failed["pid"])), failed
    assert (out / "leftovers").read_text() == ""  # no half-written file left behind
    assert (out / "resume.rc").read_text().strip() == "0", (out / "resume.err").read_text()[-3000:]
    _same_as_reference(out / "run", reference)
    _record(record_property, "disk full (real)", "the run directory on a 4 MiB tmpfs (unshare -rm, no privileges)",
            f"exit 2, one line ('{last.split(': ', 2)[-1][:80]}...'), run marked `failed`, no temporary left; after "
            "the tmpfs is enlarged, `--resume` ends equal to an uninterrupted run")


def test_a_really_unwritable_run_folder_fails_in_one_line_and_resumes(tmp_path, reference, record_property):
    """Permissions, not patching: the training runs with every capability dropped (``setpriv``), so even as
    root it cannot write past a folder's mode bits; once its first checkpoint exists, every folder of the run is
    made read-only (0555).  The next write fails for real with EACCES: one line (exit 2) saying permission is
    denied and the last good checkpoint is intact.  The run cannot mark itself failed (run.json's folder is
    read-only too), so it stays `running` with a dead pid, which ``--resume`` accepts, as after a kill; with the
    modes restored, the resume ends exactly like an uninterrupted run."""
    run = tmp_path / "run"
    proc = _start(run, prefix=["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"])
    _wait_for(run / "state" / "calibration" / "teacher.pt", proc)
    folders = [run, *(p for p in run.rglob("*") if p.is_dir())]
    for d in folders:
        d.chmod(0o555)
    try:
        _, err = proc.communicate(timeout=600)
    finally:
        for d in folders:
            d.chmod(0o755)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 2, err[-3000:]
    assert last.startswith("kgdistill: error:") and "permission denied" in last and "checkpoint is intact" in last
    assert "Traceback" not in err
    assert _info(run)["status"] == "running"
    assert not list(run.rglob(".*.tmp*"))
    read_state(run / "state" / "calibration" / "teacher.pt")  # the last good checkpoint reads back whole
    _resume_and_compare(run, reference)
    _record(record_property, "output folder unwritable (real)",
            "every run folder chmod 0555 mid-run, the training without capabilities (setpriv), so root obeys the modes",
            "exit 2, one line ('permission denied; the last good checkpoint is intact'); run left `running` "
            "(run.json unwritable); `--resume` ends equal to an uninterrupted run")


def test_resume_refuses_a_complete_run_a_live_run_and_a_different_config(tmp_path, reference, cli, record_property):
    r = cli("train", "--resume", str(reference))
    assert r.returncode == 2 and "already complete" in r.stderr
    run = tmp_path / "run"
    _stop_when(_start(run), run / "state" / "calibration" / "teacher.pt")
    interrupted = _info(run)
    with subprocess.Popen(["sleep", "60"]) as other:  # a live process that claims the run
        (run / "run.json").write_text(json.dumps(interrupted | {"status": "running", "pid": other.pid}))
        r = cli("train", "--resume", str(run))
        other.kill()
    assert r.returncode == 2 and f"still running (pid {other.pid})" in r.stderr
    (run / "run.json").write_text(json.dumps(interrupted))
    r = cli("train", QUICK, *_sets(LONG + ["student.lr=0.01"]), "--resume", str(run))
    assert r.returncode == 2 and "'student.lr'" in r.stderr
    assert _info(run)["status"] == "interrupted"  # a refused resume changes nothing
    r = cli("train", "--resume", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "nowhere" in r.stderr and "Traceback" not in r.stderr
    _record(record_property, "resume misused", "`--resume` on a complete run, on a run another live process "
            "holds, with a different config, on a missing folder",
            "one line each (exit 2) naming the reason (the differing key, the live pid); nothing changed")


def test_resuming_with_other_code_is_recorded(tmp_path, tiny_config, monkeypatch):
    """A run finished by a later commit than the one that started it says so in run.json, once per commit."""
    from kgdistill import run_dir

    rd = run_dir.RunDir.create(tmp_path / "run", tiny_config)
    first = rd.info["code"]
    run_dir.RunDir.resume(rd.path)
    assert "resumed_with_code" not in rd.info  # the same code: nothing to say
    later = {"version": first["version"], "commit": "0" * 40, "modified": False}
    monkeypatch.setattr(run_dir, "code_version", lambda: later)
    for _ in range(2):
        rd.mark_failed("stopped", status="interrupted")
        run_dir.RunDir.resume(rd.path)
    assert rd.info["code"] == first and rd.info["resumed_with_code"] == [later] and rd.info["resumed"] == 3


# --------------------------------------------------------------- the stage loop itself, in process
def _stage(tmp: Path, stop_at_step: int | None = None, monkeypatch=None):
    from kgdistill.losses import WeightedLoss
    from kgdistill.train.state import StageCheckpoint
    from kgdistill.train.trainer import StageData, StageSettings, fit_stage
    from kgdistill.gnn.concepts import LearnedConcepts

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=g)
    y = torch.randint(0, 5, (200,), generator=g)
    torch.manual_seed(3)
    enc = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Dropout(0.2), torch.nn.Linear(32, 8))
    concepts = LearnedConcepts(5, 8)
    if stop_at_step is not None:
        calls = {"n": 0}

        def fake_stop():
            calls["n"] += 1
            return signal.SIGTERM if calls["n"] >= stop_at_step else None
        monkeypatch.setattr("kgdistill.train.trainer.stop_requested", fake_stop)
    settings = StageSettings(epochs=6, batch_size=32, lr=1e-2, weight_decay=0.0, patience=100, temperature=0.1,
                             progress=False)
    res = fit_stage("s", enc, concepts, torch.arange(5), WeightedLoss([{"name": "ce", "weight": 1.0}]),
                    StageData(x=x, labels=y, x_val=x[:50], y_val=y[:50]), settings, device=torch.device("cpu"),
                    checkpoint=StageCheckpoint(tmp, "s"), seed=1)
    return res, enc


def test_stage_interrupted_mid_epoch_resumes_bit_for_bit(tmp_path, monkeypatch):
    from kgdistill.errors import TrainingInterrupted

    ref, ref_enc = _stage(tmp_path / "ref")
    with pytest.raises(TrainingInterrupted, match="SIGTERM at epoch 2"):
        _stage(tmp_path / "cut", stop_at_step=17, monkeypatch=monkeypatch)  # 7 batches per epoch: mid-epoch 2
    state = read_state(tmp_path / "cut" / "s.pt")
    assert (state["epoch"], state["batches_done"], state["step"]) == (2, 3, 17)
    monkeypatch.undo()
    torch.manual_seed(12345)  # whatever the global RNG did meanwhile, the checkpoint restores it
    res, enc = _stage(tmp_path / "cut")
    assert [r["val_mrr"] for r in res.history] == [r["val_mrr"] for r in ref.history]
    assert [r["loss_total"] for r in res.history] == [r["loss_total"] for r in ref.history]
    for a, b in zip(enc.state_dict().values(), ref_enc.state_dict().values()):
        assert torch.equal(a, b)
    assert not (tmp_path / "cut" / "s.pt").exists() and (tmp_path / "cut" / "s.done.pt").exists()
    again, enc2 = _stage(tmp_path / "cut")  # a finished stage is restored, not retrained
    assert again.history == res.history and all(torch.equal(a, b) for a, b in
                                                zip(enc2.state_dict().values(), enc.state_dict().values()))


def test_damaged_checkpoint_is_a_one_line_error(tmp_path):
    from kgdistill.errors import RunDirError
    from kgdistill.train.state import StageCheckpoint

    ck = StageCheckpoint(tmp_path, "teacher")
    ck.path.write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(RunDirError, match="damaged training checkpoint.*delete it"):
        ck.load()


def test_nan_loss_mid_training_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, record_property):
    from kgdistill.errors import TrainingError
    from kgdistill.losses import WeightedLoss

    real, calls = WeightedLoss.forward, {"n": 0}

    def diverging(self, batch):  # the 10th step (epoch 1) produces a NaN cross-entropy
        total, parts = real(self, batch)
        calls["n"] += 1
        if calls["n"] == 10:
            return total * float("nan"), {**parts, "ce": parts["ce"] * float("nan")}
        return total, parts
    monkeypatch.setattr(WeightedLoss, "forward", diverging)
    with pytest.raises(TrainingError, match=r"stage 's': loss term 'ce' became NaN or infinite \(epoch 1, step 10\)"):
        _stage(tmp_path)
    kept = read_state(tmp_path / "s.pt")
    assert (kept["epoch"], kept["batches_done"]) == (1, 0)  # written at the end of epoch 0, never after the NaN
    assert all(torch.isfinite(t).all() for t in kept["encoder"].values())
    assert not (tmp_path / "s.done.pt").exists()
    _record(record_property, "NaN loss", "the cross-entropy of step 10 (epoch 1) made NaN",
            "the stage stops at that step naming the term ('ce'); the epoch-0 checkpoint is kept, finite")
