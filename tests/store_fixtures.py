"""Shared fixtures for the alignment-store tests (imported by tests/test_store_*.py).

``make_run_dir`` writes a complete run directory in the training pipeline's export format with
deterministic random data and concept / sample / run ids that would break naive Cypher or CSV
handling (quotes, backticks, braces, Cypher keywords, commas, non-ASCII).

Neo4j: tests use the server started by ``scripts/neo4j.sh start`` at ``$KGDISTILL_NEO4J_URI``
(default bolt://127.0.0.1:17687) with ``NEO4J_USER`` / ``NEO4J_PASSWORD`` (default neo4j /
kgdistill-local, the script's defaults).  A server that does not answer FAILS the test.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
NEO4J_SCRIPT = REPO / "scripts" / "neo4j.sh"
DEFAULT_NEO4J_URI = "bolt://127.0.0.1:17687"
DEFAULT_USER, DEFAULT_PASSWORD = "neo4j", "kgdistill-local"

#: (id, name) pairs that must round-trip unchanged through every store
TRICKY_CONCEPTS = [
    ("it's \"quoted\"", "name with 'single' and \"double\" quotes"),
    ("back`tick`", "`backticks` `) DETACH DELETE n //"),
    ("{brace}", "{curly: 'map', $param: 1}"),
    ("MATCH (n) DETACH DELETE n", "MATCH (n) DETACH DELETE n"),
    ("x'}) DETACH DELETE n //", "'}) RETURN 1 UNION MATCH (m) DELETE m //"),
    ("ünï:cødé/概念", "Ünïcødé — 概念 [bold]not markup[/bold]"),
    ("a,b;c\"d", "comma, semicolon; and \"quote\""),
    ("back\\slash\\n", "back\\slash, not a newline"),
]
TRICKY_SAMPLE = "sample 'zero' {`x`: \"MATCH (n) DETACH DELETE n\"}"


@dataclass
class FixtureRun:
    path: Path
    run_id: str
    graph_source: str
    concept_ids: list[str]
    names: list[str]
    gnn: np.ndarray                 # [K, d] learned prototypes (not normalised)
    teacher_vecs: np.ndarray        # [n, d] teacher embeddings of the samples (normalised)
    student_vecs: np.ndarray        # [n, d] student embeddings of the samples (normalised)
    sample_ids: list[str]
    true_ids: list[str]
    top_k: int


def unique_tag() -> str:
    return uuid.uuid4().hex[:10]


def _norm(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(n > 0, n, 1.0)


def make_run_dir(path: str | Path, K: int = 40, d: int = 16, n_samples: int = 160, seed: int = 0,
                 top_k: int = 5, run_id: str | None = None, graph_source: str | None = None,
                 status: str = "complete", tricky: bool = True, n_unsampled: int = 2) -> FixtureRun:
    """Write a valid run directory with deterministic random data; returns what a test needs to check it.

    The last ``n_unsampled`` concepts get no test samples (zero centroids, n_test 0); every 7th concept is
    one the student confuses with its neighbour, so that disagreements are non-trivial.
    """
    rng = np.random.default_rng(seed)
    path = Path(path)
    al = path / "alignments"
    al.mkdir(parents=True, exist_ok=True)
    run_id = run_id if run_id is not None else f"run 'fixture' {{`{seed}`}} MATCH (n) DETACH DELETE n"
    graph_source = graph_source if graph_source is not None else f"fixture-graph-{seed}"

    pairs = list(TRICKY_CONCEPTS[:K]) if tricky else []
    while len(pairs) < K:
        i = len(pairs)
        pairs.append((f"C:{i:04d}", f"concept {i}"))
    ids = [p[0] for p in pairs]
    names = [p[1] for p in pairs]
    seen = [1 if (i % 4) != 3 else 0 for i in range(K)]
    types = ["disease" if i % 5 == 0 else "term" for i in range(K)]
    gnn = rng.normal(size=(K, d)).astype(np.float32)
    gnn_n = _norm(gnn)

    sampled = max(1, K - n_unsampled)
    true_idx = np.concatenate([np.arange(min(sampled, n_samples)),
                               rng.integers(0, sampled, size=max(0, n_samples - sampled))])[:n_samples]
    teacher = _norm(gnn_n[true_idx] + np.where((true_idx % 3) == 0, 0.15, 0.35)[:, None]
                    * rng.normal(size=(n_samples, d)))
    noise = np.where((true_idx % 3) == 0, 0.15, 0.6)[:, None]   # a third of the concepts: student close to teacher
    student = gnn_n[true_idx] + noise * rng.normal(size=(n_samples, d))
    confused = (true_idx % 7) == 3
    other = (true_idx + 1) % K
    student[confused] = 0.4 * gnn_n[true_idx[confused]] + 0.9 * gnn_n[other[confused]] \
        + 0.3 * rng.normal(size=(int(confused.sum()), d))
    student = _norm(student)
    teacher, student = teacher.astype(np.float32), student.astype(np.float32)

    sample_ids = [f"s{j:05d}" for j in range(n_samples)]
    if tricky and n_samples:
        sample_ids[0] = TRICKY_SAMPLE
    rows = []
    top1 = {"teacher": np.zeros(n_samples, dtype=np.int64), "student": np.zeros(n_samples, dtype=np.int64)}
    for modality, emb in (("teacher", teacher), ("student", student)):
        sims = emb @ gnn_n.T
        for j in range(n_samples):
            order = np.lexsort((np.arange(K), -sims[j]))[:top_k]
            top1[modality][j] = order[0]
            for rank, c in enumerate(order, start=1):
                rows.append([sample_ids[j], "test", modality, ids[true_idx[j]], ids[c], rank, f"{sims[j, c]:.6f}"])

    cent_t = np.zeros((K, d), dtype=np.float32)
    cent_s = np.zeros((K, d), dtype=np.float32)
    per_concept = []
    for i in range(K):
        mask = true_idx == i
        n = int(mask.sum())
        if n:
            cent_t[i] = teacher[mask].mean(axis=0)
            cent_s[i] = student[mask].mean(axis=0)
            t1 = float((top1["teacher"][mask] == i).mean())
            s1 = float((top1["student"][mask] == i).mean())
            per_concept.append([ids[i], n, f"{t1:.4f}", f"{s1:.4f}"])
        else:
            per_concept.append([ids[i], 0, "", ""])

    from safetensors.numpy import save_file

    save_file({"concept_gnn": gnn, "concept_teacher": cent_t, "concept_student": cent_s},
              str(al / "embeddings.safetensors"))
    _write_csv(al / "concepts.csv", ["id", "name", "type", "seen"],
               [[ids[i], names[i], types[i], seen[i]] for i in range(K)])
    _write_csv(al / "samples.csv", ["sample_id", "split", "modality", "true_id", "concept_id", "rank", "score"], rows)
    _write_csv(al / "per_concept.csv", ["id", "n_test", "teacher_top1", "student_top1"], per_concept)
    (path / "metrics.json").write_text(json.dumps({
        "teacher": {"top1": float(np.mean(top1["teacher"] == true_idx))},
        "student": {"top1": float(np.mean(top1["student"] == true_idx))}, "note": "fixture 'run' {x}"}),
        encoding="utf-8")
    (path / "run.json").write_text(json.dumps({
        "run_id": run_id, "status": status, "created": "2026-01-01T00:00:00+00:00",
        "finished": f"2026-01-01T00:{seed % 60:02d}:00+00:00", "config_hash": f"cfg{seed:04d}",
        "graph_source": graph_source}), encoding="utf-8")
    return FixtureRun(path=path, run_id=run_id, graph_source=graph_source, concept_ids=ids, names=names, gnn=gnn,
                      teacher_vecs=teacher, student_vecs=student, sample_ids=sample_ids,
                      true_ids=[ids[i] for i in true_idx], top_k=top_k)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# ---------------------------------------------------------------------- Neo4j
def neo4j_uri() -> str:
    return os.environ.get("KGDISTILL_NEO4J_URI") or DEFAULT_NEO4J_URI


def neo4j_credentials() -> tuple[str, str]:
    return (os.environ.get("NEO4J_USER") or DEFAULT_USER, os.environ.get("NEO4J_PASSWORD") or DEFAULT_PASSWORD)


@pytest.fixture
def neo4j_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """NEO4J_USER / NEO4J_PASSWORD set (to the script's defaults if unset) and the server answering; else FAIL."""
    user, password = neo4j_credentials()
    monkeypatch.setenv("NEO4J_USER", user)
    monkeypatch.setenv("NEO4J_PASSWORD", password)
    uri = neo4j_uri()
    require_neo4j(uri)
    return uri


_checked: dict[str, str] = {}


def require_neo4j(uri: str) -> None:
    """Fail (never skip) with a clear message when the Neo4j test server does not answer."""
    if uri in _checked:
        if _checked[uri]:
            pytest.fail(_checked[uri], pytrace=False)
        return
    from kgdistill.errors import StoreError
    from kgdistill.store.neo4j import connect

    try:
        connect(uri, neo4j_credentials(), attempts=2).close()
        _checked[uri] = ""
    except StoreError as exc:
        _checked[uri] = (f"Neo4j test server not available at {uri}: {exc}. Start it with `scripts/neo4j.sh start` "
                         f"(scripts/test.sh does this) or set KGDISTILL_NEO4J_URI.")
    if _checked[uri]:
        pytest.fail(_checked[uri], pytrace=False)


@pytest.fixture
def neo4j_store(neo4j_env: str):
    from kgdistill.store import open_store

    store = open_store(neo4j_env, retries=2, retry_wait=0.2)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path):
    from kgdistill.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'alignments.sqlite'}")
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """Each store implementation in turn; runs pushed through ``cleanup`` are deleted afterwards."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_store")
    else:
        yield request.getfixturevalue("neo4j_store")


@pytest.fixture
def cleanup(store):
    """Register run ids to delete from the store after the test (only the test's own runs)."""
    run_ids: list[str] = []
    yield run_ids
    for rid in run_ids:
        store.delete_run(rid)


@pytest.fixture
def fixture_run(tmp_path: Path) -> FixtureRun:
    tag = unique_tag()
    return make_run_dir(tmp_path / "run", seed=7, run_id=f"run-{tag} 'x' {{`y`}} MATCH (n) DETACH DELETE n",
                        graph_source=f"fixture-graph-{tag}")


@pytest.fixture
def run_under_test(tmp_path: Path, tiny_run: Path) -> Path:
    """A real pipeline run ($KGDISTILL_TEST_RUN_DIR, else the suite's tiny run); always a private copy.

    The copy gets a unique run id so that a test may push and delete it without touching the original
    run in a shared store.
    """
    src = os.environ.get("KGDISTILL_TEST_RUN_DIR") or str(tiny_run)
    tag = unique_tag()
    import shutil

    src_path, dst = Path(src), tmp_path / "real-run"
    dst.mkdir()
    shutil.copytree(src_path / "alignments", dst / "alignments")
    shutil.copy(src_path / "metrics.json", dst / "metrics.json")
    info = json.loads((src_path / "run.json").read_text(encoding="utf-8"))
    info["run_id"] = f"{info['run_id']}-test-{tag}"
    (dst / "run.json").write_text(json.dumps(info), encoding="utf-8")
    return dst


def neo4j_script(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run scripts/neo4j.sh (for tests that need a private server they can stop and restart)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(["bash", str(NEO4J_SCRIPT), *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
