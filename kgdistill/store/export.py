"""Read a finished run's alignment export and derive everything an alignment store holds.

The run directory (written by the training pipeline) contains::

    run.json                          {"run_id", "status", "created", "finished", "config_hash", "graph_source"}
    metrics.json                      any JSON object
    alignments/concepts.csv           id,name,type,seen           (row order = rows of the matrices)
    alignments/embeddings.safetensors concept_gnn, concept_teacher, concept_student: float [K, d]
    alignments/samples.csv            sample_id,split,modality,true_id,concept_id,rank,score
    alignments/per_concept.csv        id,n_test,teacher_top1,student_top1

Only ``status == "complete"`` runs are read.  Everything a store writes is computed here,
once, from these files, so that every store implementation holds (and answers) the same thing:

* **sample alignments** — each row of ``samples.csv``: sample -> concept (modality, rank, score).
* **prototype alignments** — for each concept j and modality m, the ``neighbours`` learned concept
  prototypes (``concept_gnn`` rows) nearest to j's m-centroid: "the teacher's / student's embeddings
  of concept j align with concepts i1, i2, ..." (cosine score, rank 1 = nearest).
* **neighbours** — per space (teacher, student): the concepts whose centroids lie nearest to a concept's
  centroid in that space (self excluded).
* **correspondences** (teacher space vs student space, SKOS-style), see :class:`CorrespondenceRule`.
* **disagreements** — per concept with test samples, see :func:`RunExport.disagreements`.

A concept's *centroid* in a space is its row of ``concept_teacher`` / ``concept_student``; a concept
without test samples (``n_test == 0``) or with an all-zero centroid has no place in that space.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import RunDirError

MODALITIES = ("teacher", "student")
SPACES = ("teacher", "student")
MATCH_TYPES = ("exactMatch", "closeMatch", "broadMatch", "narrowMatch", "relatedMatch")
MATRICES = ("concept_gnn", "concept_teacher", "concept_student")
RUN_FIELDS = ("run_id", "status", "created", "finished", "config_hash", "graph_source")
CONCEPT_COLUMNS = ("id", "name", "type", "seen")
SAMPLE_COLUMNS = ("sample_id", "split", "modality", "true_id", "concept_id", "rank", "score")
PER_CONCEPT_COLUMNS = ("id", "n_test", "teacher_top1", "student_top1")
_EPS = 1e-12


@dataclass(frozen=True)
class CorrespondenceRule:
    """How a concept's student-space centroid is matched to teacher-space concepts (SKOS vocabulary).

    For concept *i*, the ``candidates`` teacher centroids nearest (cosine) to *i*'s student centroid are
    considered in rank order; a candidate *j* with cosine ``c`` becomes

    * ``exactMatch``   if j == i, j is the nearest (rank 1) and c >= ``exact``;
    * ``closeMatch``   if j == i and c >= ``close`` (but not exact);
    * ``broadMatch``   if j != i and j is an ancestor of i in the graph (j is broader; needs a graph);
    * ``narrowMatch``  if j != i and j is a descendant of i (j is narrower; needs a graph);
    * ``relatedMatch`` otherwise (including j == i with ``related`` <= c < ``close``);

    and is kept only if c >= ``related``.  The confidence is the cosine c.
    """

    exact: float = 0.9
    close: float = 0.7
    related: float = 0.5
    candidates: int = 3

    def classify(self, i: int, j: int, cos: float, rank: int, broader: bool = False,
                 narrower: bool = False) -> str | None:
        if cos < self.related:
            return None
        if i == j:
            if rank == 1 and cos >= self.exact:
                return "exactMatch"
            return "closeMatch" if cos >= self.close else "relatedMatch"
        if broader:
            return "broadMatch"
        if narrower:
            return "narrowMatch"
        return "relatedMatch"


@dataclass
class RunExport:
    """A complete run's alignment export, validated, with the derived records stores write."""

    run_dir: Path
    run_id: str
    status: str
    created: str
    finished: str
    config_hash: str
    graph_source: str
    metrics: dict[str, Any]
    concept_ids: list[str]
    concept_names: list[str]
    concept_types: list[str]
    seen: np.ndarray                      # bool [K]
    gnn: np.ndarray                       # float32 [K, d]
    teacher: np.ndarray                   # float32 [K, d]
    student: np.ndarray                   # float32 [K, d]
    samples: dict[str, list]              # column -> values, one entry per samples.csv row
    per_concept: dict[str, tuple[int, float | None, float | None]]
    digest: str
    neighbours_k: int = 10
    aligned_k: int = 5
    rule: CorrespondenceRule = field(default_factory=CorrespondenceRule)
    hierarchy: Any = None                 # optional KnowledgeGraph for broadMatch / narrowMatch

    # ---------------------------------------------------------------- basics
    @property
    def dim(self) -> int:
        return int(self.gnn.shape[1])

    @property
    def num_concepts(self) -> int:
        return len(self.concept_ids)

    @cached_property
    def index(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.concept_ids)}

    def concept_uid(self, concept_id: str) -> str:
        return concept_uid(self.graph_source, concept_id)

    def run_properties(self) -> dict[str, Any]:
        """What a Run node / row holds (metrics as a JSON string)."""
        return {
            "id": self.run_id, "config_hash": self.config_hash, "created": self.created,
            "finished": self.finished, "graph_source": self.graph_source,
            "metrics": json.dumps(self.metrics, sort_keys=True, ensure_ascii=False),
            "digest": self.digest, "dim": self.dim, "run_dir": str(self.run_dir.resolve()),
            "n_concepts": self.num_concepts, "n_samples": len(self.sample_rows()),
            "n_alignments": self.num_alignments,
        }

    # --------------------------------------------------------------- records
    def concept_rows(self) -> list[dict[str, Any]]:
        return [{"uid": self.concept_uid(cid), "id": cid, "name": self.concept_names[i],
                 "type": self.concept_types[i], "source": self.graph_source}
                for i, cid in enumerate(self.concept_ids)]

    def prototype_rows(self) -> list[dict[str, Any]]:
        """One per concept: the run's learned prototype (GNN embedding) and the concept's accuracy."""
        rows = []
        for i, cid in enumerate(self.concept_ids):
            n_test, t1, s1 = self.per_concept.get(cid, (0, None, None))
            rows.append({
                "concept_id": cid, "uid": self.concept_uid(cid), "row": i, "seen": bool(self.seen[i]),
                "n_test": n_test, "teacher_top1": t1, "student_top1": s1,
                "embedding": self.gnn[i].tolist(),
            })
        return rows

    def sample_rows(self) -> list[dict[str, Any]]:
        """One per distinct sample: id, split, true concept id."""
        return list(self._samples_by_id.values())

    @cached_property
    def _samples_by_id(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        s = self.samples
        for sid, split, true_id in zip(s["sample_id"], s["split"], s["true_id"]):
            if sid not in out:
                out[sid] = {"sample_id": sid, "split": split, "true_id": true_id}
        return out

    def sample_alignments(self) -> list[dict[str, Any]]:
        s = self.samples
        return [{"sample_id": a, "concept_id": c, "modality": m, "rank": r, "score": v}
                for a, c, m, r, v in zip(s["sample_id"], s["concept_id"], s["modality"], s["rank"], s["score"])]

    @cached_property
    def _prototype_alignments(self) -> list[dict[str, Any]]:
        out = []
        gnn = _normalise(self.gnn)
        for m in MODALITIES:
            centroids, valid = self.centroids(m), self.valid(m)
            rows = np.flatnonzero(valid)
            idx, sims = _top_k(centroids[rows], gnn, self.aligned_k)
            for q, src in enumerate(rows.tolist()):
                for rank, (j, v) in enumerate(zip(idx[q].tolist(), sims[q].tolist()), start=1):
                    out.append({"concept_id": self.concept_ids[src], "target_id": self.concept_ids[j],
                                "modality": m, "rank": rank, "score": float(v)})
        return out

    def prototype_alignments(self) -> list[dict[str, Any]]:
        return self._prototype_alignments

    @property
    def num_alignments(self) -> int:
        return len(self.samples["sample_id"]) + len(self._prototype_alignments)

    @cached_property
    def _neighbours(self) -> list[dict[str, Any]]:
        out = []
        for space in SPACES:
            centroids, valid = self.centroids(space), self.valid(space)
            rows = np.flatnonzero(valid)
            if len(rows) < 2:
                continue
            idx, sims = _top_k(centroids[rows], centroids[rows], self.neighbours_k, exclude_self=True)
            for q, src in enumerate(rows.tolist()):
                for rank, (j, v) in enumerate(zip(idx[q].tolist(), sims[q].tolist()), start=1):
                    out.append({"concept_id": self.concept_ids[src], "other_id": self.concept_ids[rows[j]],
                                "space": space, "rank": rank, "score": float(v)})
        return out

    def neighbours(self) -> list[dict[str, Any]]:
        return self._neighbours

    @cached_property
    def _nearest_teacher(self) -> dict[int, list[tuple[int, float]]]:
        """For each concept with a student centroid: the nearest teacher centroids (index, cosine)."""
        s_rows = np.flatnonzero(self.valid("student"))
        t_rows = np.flatnonzero(self.valid("teacher"))
        if len(s_rows) == 0 or len(t_rows) == 0:
            return {}
        idx, sims = _top_k(self.centroids("student")[s_rows], self.centroids("teacher")[t_rows],
                           self.rule.candidates)
        return {int(i): [(int(t_rows[j]), float(v)) for j, v in zip(idx[q].tolist(), sims[q].tolist())]
                for q, i in enumerate(s_rows.tolist())}

    @cached_property
    def _ancestors(self) -> list[set[int]] | None:
        kg = self.hierarchy
        if kg is None:
            return None
        present = [kg.index.get(cid) for cid in self.concept_ids]
        starts = [p for p in present if p is not None]
        closure = dict(zip(starts, kg.reachable(starts)))
        back = {p: i for i, p in enumerate(present) if p is not None}
        return [{back[a] for a in closure.get(p, ()) if a in back and a != p} if p is not None else set()
                for p in present]

    @cached_property
    def _correspondences(self) -> list[dict[str, Any]]:
        out = []
        anc = self._ancestors
        for i, cands in self._nearest_teacher.items():
            for rank, (j, cos) in enumerate(cands, start=1):
                broader = anc is not None and j in anc[i]
                narrower = anc is not None and i in anc[j]
                match = self.rule.classify(i, j, cos, rank, broader, narrower)
                if match is None:
                    continue
                out.append({"concept_id": self.concept_ids[i], "other_id": self.concept_ids[j],
                            "match": match, "confidence": cos, "rank": rank})
        return out

    def correspondences(self) -> list[dict[str, Any]]:
        return self._correspondences

    @cached_property
    def _disagreements(self) -> list[dict[str, Any]]:
        """Per concept with test samples, how far teacher and student part ways.

        * ``sample_rate``: share of the concept's samples (``true_id`` = concept) whose top-1 teacher
          prediction differs from the top-1 student prediction;
        * ``top1_gap``: teacher_top1 - student_top1 (from per_concept.csv);
        * ``centroid_cos``: cosine of the concept's teacher and student centroids;
        * ``score``: mean of the available terms ``sample_rate``, ``|top1_gap|``, ``(1 - centroid_cos) / 2``
          (each in [0, 1]); records are ranked by score (desc), then concept id.
        """
        top1: dict[tuple[str, str], tuple[int, str]] = {}
        s = self.samples
        for sid, m, c, r in zip(s["sample_id"], s["modality"], s["concept_id"], s["rank"]):
            key = (sid, m)
            if key not in top1 or r < top1[key][0]:
                top1[key] = (r, c)
        differ: dict[str, list[int]] = {}
        for sid, smp in self._samples_by_id.items():
            t, st = top1.get((sid, "teacher")), top1.get((sid, "student"))
            if t is None or st is None:
                continue
            differ.setdefault(smp["true_id"], []).append(int(t[1] != st[1]))
        vt, vs = self.valid("teacher"), self.valid("student")
        tn, sn = _normalise(self.teacher), _normalise(self.student)
        matches = {(c["concept_id"], c["other_id"]): c["match"] for c in self._correspondences}
        recs = []
        for i, cid in enumerate(self.concept_ids):
            n_test, t1, s1 = self.per_concept.get(cid, (0, None, None))
            d = differ.get(cid)
            rate = float(np.mean(d)) if d else None
            gap = (t1 - s1) if (t1 is not None and s1 is not None and n_test > 0) else None
            cos = float(np.dot(tn[i], sn[i])) if (vt[i] and vs[i]) else None
            terms = [x for x in (rate, abs(gap) if gap is not None else None,
                                 (1.0 - cos) / 2.0 if cos is not None else None) if x is not None]
            if not terms:
                continue
            near = self._nearest_teacher.get(i)
            nearest_id = self.concept_ids[near[0][0]] if near else None
            nearest_cos = near[0][1] if near else None
            match = matches.get((cid, nearest_id))
            recs.append({"concept_id": cid, "score": float(np.mean(terms)), "sample_rate": rate,
                         "top1_gap": gap, "centroid_cos": cos, "teacher_top1": t1, "student_top1": s1,
                         "n_test": n_test, "n_samples": len(d) if d else 0,
                         "nearest_teacher": nearest_id, "nearest_teacher_cos": nearest_cos, "match": match})
        recs.sort(key=lambda r: (-r["score"], r["concept_id"]))
        for rank, r in enumerate(recs, start=1):
            r["rank"] = rank
        return recs

    def disagreements(self) -> list[dict[str, Any]]:
        return self._disagreements

    # --------------------------------------------------------------- spaces
    def centroids(self, space: str) -> np.ndarray:
        return _normalise(self.teacher if space == "teacher" else self.student)

    def valid(self, space: str) -> np.ndarray:
        """Concepts that have a centroid in ``space`` (test samples and a non-zero vector)."""
        return self._valid[space]

    @cached_property
    def _valid(self) -> dict[str, np.ndarray]:
        has_test = np.array([self.per_concept.get(c, (1, None, None))[0] > 0 for c in self.concept_ids], dtype=bool)
        return {space: (np.linalg.norm(m, axis=1) > _EPS) & has_test
                for space, m in (("teacher", self.teacher), ("student", self.student))}


# --------------------------------------------------------------------- reading
def concept_uid(source: str, concept_id: str) -> str:
    """A concept's identity across runs: its graph source plus its id (unambiguous JSON pair)."""
    return json.dumps([source, concept_id], ensure_ascii=False)


def read_run_dir(run_dir: str | Path, *, neighbours: int = 10, aligned: int = 5,
                 rule: CorrespondenceRule | None = None, hierarchy: Any = None) -> RunExport:
    """Validate and read a run directory; any problem is a one-line :class:`RunDirError`."""
    run_dir = Path(run_dir)
    where = str(run_dir)
    if not run_dir.is_dir():
        raise RunDirError("not a run directory (no such folder)", source=where)
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        raise RunDirError("not a run directory: run.json is missing", source=where)
    run = _read_json(run_json)
    if not isinstance(run, dict):
        raise RunDirError("run.json must hold a JSON object", source=str(run_json))
    status = run.get("status")
    if status != "complete":
        raise RunDirError(f"run status is {status!r}, not 'complete'; only finished runs can be pushed",
                          source=where)
    missing = [k for k in RUN_FIELDS if not isinstance(run.get(k), str) or (k == "run_id" and not run[k].strip())]
    if missing:
        raise RunDirError(f"run.json lacks string field(s): {', '.join(missing)}", source=str(run_json))
    metrics_path = run_dir / "metrics.json"
    metrics = _read_json(metrics_path) if metrics_path.is_file() else None
    if not isinstance(metrics, dict):
        raise RunDirError("metrics.json is missing or not a JSON object", source=where)
    al = run_dir / "alignments"
    files = [al / "concepts.csv", al / "embeddings.safetensors", al / "samples.csv", al / "per_concept.csv"]
    absent = [f.name for f in files if not f.is_file()]
    if absent:
        raise RunDirError(f"run is not complete: alignments/ lacks {', '.join(absent)}", source=where)

    ids, names, types, seen = _read_concepts(files[0])
    gnn, teacher, student = _read_matrices(files[1], len(ids))
    index = {c: i for i, c in enumerate(ids)}
    samples = _read_samples(files[2], index)
    per_concept = _read_per_concept(files[3], index)

    h = hashlib.sha256()
    for f in [run_json, metrics_path, *files]:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return RunExport(
        run_dir=run_dir, run_id=run["run_id"], status=status, created=run["created"], finished=run["finished"],
        config_hash=run["config_hash"], graph_source=run["graph_source"], metrics=metrics,
        concept_ids=ids, concept_names=names, concept_types=types, seen=seen,
        gnn=gnn, teacher=teacher, student=student, samples=samples, per_concept=per_concept,
        digest=h.hexdigest(), neighbours_k=neighbours, aligned_k=aligned,
        rule=rule or CorrespondenceRule(), hierarchy=hierarchy,
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"cannot read: {exc}", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"invalid JSON: {exc.msg}", source=str(path), line=exc.lineno) from None


def _csv_rows(path: Path, required: Sequence[str]) -> Iterable[tuple[int, dict[str, str]]]:
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise RunDirError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    with f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        lacking = [c for c in required if c not in header]
        if lacking:
            raise RunDirError(f"missing column(s) {', '.join(lacking)}; header is {','.join(header) or '(empty)'}",
                              source=str(path), line=1)
        try:
            for row in reader:
                yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise RunDirError(f"unreadable CSV: {exc}", source=str(path), line=reader.line_num) from None


def _read_concepts(path: Path) -> tuple[list[str], list[str], list[str], np.ndarray]:
    ids, names, types, seen = [], [], [], []
    known: set[str] = set()
    for line, row in _csv_rows(path, CONCEPT_COLUMNS):
        cid = row["id"]
        if cid is None or cid == "":
            raise RunDirError("empty concept id", source=str(path), line=line)
        if cid in known:
            raise RunDirError(f"duplicate concept id {cid!r}", source=str(path), line=line)
        known.add(cid)
        flag = (row["seen"] or "").strip().lower()
        if flag not in ("1", "0", "true", "false"):
            raise RunDirError(f"seen must be 1 or 0, got {row['seen']!r}", source=str(path), line=line)
        ids.append(cid)
        names.append(row["name"] if row["name"] else cid)
        types.append(row["type"] or "concept")
        seen.append(flag in ("1", "true"))
    if not ids:
        raise RunDirError("no concepts", source=str(path))
    return ids, names, types, np.asarray(seen, dtype=bool)


def _read_matrices(path: Path, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunDirError(f"unreadable safetensors file: {exc}", source=str(path)) from None
    out = []
    dim = None
    for name in MATRICES:
        if name not in tensors:
            raise RunDirError(f"tensor {name!r} is missing (has: {', '.join(sorted(tensors)) or 'none'})",
                              source=str(path))
        m = tensors[name]
        if m.ndim != 2 or m.shape[0] != k or not np.issubdtype(m.dtype, np.floating):
            raise RunDirError(f"tensor {name!r} must be float [{k}, d] (one row per concepts.csv row), "
                              f"got {m.dtype} {list(m.shape)}", source=str(path))
        if dim is not None and m.shape[1] != dim:
            raise RunDirError(f"tensor {name!r} has width {m.shape[1]}, expected {dim}", source=str(path))
        dim = m.shape[1]
        m = np.ascontiguousarray(m, dtype=np.float32)
        if not np.isfinite(m).all():
            raise RunDirError(f"tensor {name!r} holds NaN or infinite values", source=str(path))
        out.append(m)
    zero = np.flatnonzero(np.linalg.norm(out[0], axis=1) <= _EPS)
    if len(zero):
        raise RunDirError(f"concept_gnn row {int(zero[0])} is all zeros (a prototype needs a direction)",
                          source=str(path))
    return out[0], out[1], out[2]


def _read_samples(path: Path, index: dict[str, int]) -> dict[str, list]:
    cols: dict[str, list] = {c: [] for c in SAMPLE_COLUMNS}
    seen_keys: set[tuple[str, str, str]] = set()
    for line, row in _csv_rows(path, SAMPLE_COLUMNS):
        sid, m, cid = row["sample_id"], row["modality"], row["concept_id"]
        if not sid:
            raise RunDirError("empty sample_id", source=str(path), line=line)
        if m not in MODALITIES:
            raise RunDirError(f"modality must be teacher or student, got {m!r}", source=str(path), line=line)
        if cid not in index:
            raise RunDirError(f"concept_id {cid!r} is not in concepts.csv", source=str(path), line=line)
        key = (sid, m, cid)
        if key in seen_keys:
            raise RunDirError(f"duplicate prediction of {cid!r} for sample {sid!r} ({m})", source=str(path), line=line)
        seen_keys.add(key)
        try:
            rank = int(row["rank"])
            score = float(row["score"])
        except (TypeError, ValueError):
            raise RunDirError(f"rank must be an integer and score a number, got {row['rank']!r}, {row['score']!r}",
                              source=str(path), line=line) from None
        if not math.isfinite(score):
            raise RunDirError(f"score must be finite, got {row['score']!r}", source=str(path), line=line)
        cols["sample_id"].append(sid)
        cols["split"].append(row["split"] or "")
        cols["modality"].append(m)
        cols["true_id"].append(row["true_id"] or "")
        cols["concept_id"].append(cid)
        cols["rank"].append(rank)
        cols["score"].append(score)
    return cols


def _read_per_concept(path: Path, index: dict[str, int]) -> dict[str, tuple[int, float | None, float | None]]:
    out: dict[str, tuple[int, float | None, float | None]] = {}
    for line, row in _csv_rows(path, PER_CONCEPT_COLUMNS):
        cid = row["id"]
        if cid not in index:
            raise RunDirError(f"concept id {cid!r} is not in concepts.csv", source=str(path), line=line)
        try:
            n = int(float(row["n_test"] or 0))
            t1, s1 = _opt_float(row["teacher_top1"]), _opt_float(row["student_top1"])
        except ValueError:
            raise RunDirError(f"n_test, teacher_top1, student_top1 must be numbers, got "
                              f"{row['n_test']!r}, {row['teacher_top1']!r}, {row['student_top1']!r}",
                              source=str(path), line=line) from None
        out[cid] = (n, t1, s1)
    return out


def _opt_float(s: str | None) -> float | None:
    if s is None or s.strip() == "" or s.strip().lower() in ("nan", "none", "null"):
        return None
    v = float(s)
    return v if math.isfinite(v) else None


# ----------------------------------------------------------------------- maths
def _normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return (m / np.where(norms > _EPS, norms, 1.0)).astype(np.float32)


def _top_k(queries: np.ndarray, keys: np.ndarray, k: int, exclude_self: bool = False,
           block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosines of the k nearest keys per (normalised) query row; ties by lower index."""
    q = _normalise(queries)
    kk = _normalise(keys)
    n_keys = kk.shape[0] - (1 if exclude_self else 0)
    k = max(0, min(k, n_keys))
    idx_out = np.zeros((q.shape[0], k), dtype=np.int64)
    sim_out = np.zeros((q.shape[0], k), dtype=np.float64)
    for start in range(0, q.shape[0], block):
        sims = (q[start:start + block] @ kk.T).astype(np.float64)
        if exclude_self:
            rows = np.arange(sims.shape[0])
            sims[rows, rows + start] = -np.inf
        for r in range(sims.shape[0]):
            row = sims[r]
            if k < row.shape[0]:
                part = np.argpartition(-row, k - 1)[:k]
                # include every key tied with the k-th score so the tie-break below is by index
                kth = row[part].min()
                part = np.flatnonzero(row >= kth)
            else:
                part = np.arange(row.shape[0])
            order = np.lexsort((part, -row[part]))[:k]
            idx_out[start + r] = part[order]
            sim_out[start + r] = row[part[order]]
    return idx_out, np.round(sim_out, 7)
