"""`kgdistill align push|query` end to end through the real command line, on the embedded store (no server)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_fixtures import TRICKY_CONCEPTS, make_run_dir, unique_tag  # noqa: E402

from kgdistill.store import read_run_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgdistill", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=300)


@pytest.fixture
def runs(tmp_path):
    tag = unique_tag()
    a = make_run_dir(tmp_path / "a", seed=21, run_id=f"cli-a-{tag} {{'x'}}")
    b = make_run_dir(tmp_path / "b", seed=22, run_id=f"cli-b-{tag}")
    return a, b


def test_push_and_query_json(tmp_path, runs):
    a, b = runs
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    p = cli("align", "push", str(a.path), "--store", store, "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["outcome"] == "pushed" and res["run_id"] == a.run_id and res["n_alignments"] > 0
    p = cli("align", "push", str(a.path), "--store", store, "--json")
    assert json.loads(p.stdout)["outcome"] == "unchanged"
    assert cli("align", "push", str(b.path), "--store", store).returncode == 0

    listing = json.loads(cli("align", "query", "--store", store, "--json").stdout)
    assert [r["run_id"] for r in listing["runs"]] == [b.run_id, a.run_id]     # newest first

    cid, name = TRICKY_CONCEPTS[3]
    rep = json.loads(cli("align", "query", "--store", store, "--concept", cid, "--run", a.run_id,
                         "--top-k", "3", "--json").stdout)
    assert (rep["id"], rep["name"], rep["run_id"]) == (cid, name, a.run_id)
    assert len(rep["neighbours"]["student"]) == 3 and set(rep["samples"]) == {"teacher", "student"}
    # without --run: the newest pushed run
    assert json.loads(cli("align", "query", "--store", store, "--concept", cid, "--json").stdout)["run_id"] == b.run_id

    dis = json.loads(cli("align", "query", "--store", store, "--disagreements", "--run", a.run_id,
                         "--top-k", "4", "--json").stdout)
    want = read_run_dir(a.path).disagreements()[:4]
    assert [d["id"] for d in dis["disagreements"]] == [w["concept_id"] for w in want]


def test_readable_tables_do_not_interpret_markup(tmp_path, runs):
    a, _ = runs
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert cli("align", "push", str(a.path), "--store", store).returncode == 0
    cid, name = TRICKY_CONCEPTS[5]           # its name holds "[bold]...[/bold]"
    p = cli("align", "query", "--store", store, "--concept", cid, "--run", a.run_id)
    assert p.returncode == 0, p.stderr
    assert "[bold]not markup[/bold]" in p.stdout and "Correspondences" in p.stdout
    p = cli("align", "query", "--store", store, "--disagreements", "--run", a.run_id, "--top-k", "3")
    assert p.returncode == 0 and "disagree" in p.stdout


def test_default_store_is_embedded(tmp_path, runs):
    a, _ = runs
    p = cli("align", "push", str(a.path), cwd=tmp_path, env={"KGDISTILL_STORE": ""})
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "runs" / "alignments.sqlite").is_file()
    p = cli("align", "query", "--json", cwd=tmp_path, env={"KGDISTILL_STORE": ""})
    assert json.loads(p.stdout)["runs"][0]["run_id"] == a.run_id


def _error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_user_errors_are_one_line(tmp_path, runs):
    a, _ = runs
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    unfinished = make_run_dir(tmp_path / "unfinished", K=10, n_samples=20, status="running")
    assert str(unfinished.path) in _error_line(cli("align", "push", str(unfinished.path), "--store", store))
    assert "run.json is missing" in _error_line(cli("align", "push", str(tmp_path), "--store", store))
    assert "no alignment store" in _error_line(cli("align", "query", "--store", f"sqlite:///{tmp_path / 'none.db'}"))
    assert cli("align", "push", str(a.path), "--store", store).returncode == 0
    assert "not among the concepts" in _error_line(cli("align", "query", "--store", store, "--concept", "NOPE"))
    assert "is not in" in _error_line(cli("align", "query", "--store", store, "--disagreements", "--run", "nope"))
    assert "give one of" in _error_line(cli("align", "query", "--store", store, "--concept", "x",
                                            "--disagreements"))
    assert "unsupported store URI scheme" in _error_line(cli("align", "query", "--store", "mongodb://x"))
    missing_dir = "is not here; pass --run-dir"
    assert missing_dir in _error_line(cli("align", "query", "--store", store, "--text", "seizures",
                                          "--run-dir", str(tmp_path / "gone")))


def test_text_query_goes_through_the_runs_predictor(tmp_path, tiny_run):
    """--text on a real pipeline run: the run's student encoder embeds the note, the store ranks concepts."""
    import numpy as np

    from kgdistill.predict import Predictor
    from kgdistill.store import open_store

    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    pushed = cli("align", "push", str(tiny_run), "--store", store)
    assert pushed.returncode == 0, pushed.stderr
    note = (tiny_run / "data" / "note.txt").read_text(encoding="utf-8").splitlines()[0]
    res = cli("align", "query", "--store", store, "--text", note, "--top-k", "5", "--json")
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)["hits"]
    assert len(hits) == 5
    vec = Predictor.from_run_dir(tiny_run).embed_texts([note])[0]
    with open_store(store) as s:
        direct = s.query_vector(vec, k=5)
    assert [h["id"] for h in hits] == [h.id for h in direct]
    candidates = set((tiny_run / "checkpoints" / "candidates.txt").read_text().split())
    assert {h["id"] for h in hits} <= candidates
    assert np.isfinite([h["score"] for h in hits]).all()
