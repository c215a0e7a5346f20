"""Everything a run needs, materialised once: dataset, graph, features, modalities, candidates.

Built the same way for the HPO benchmark and for a user's own paired data: the
benchmark generator writes an ordinary dataset folder first.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig
from .data.modalities import concept_ids
from .data.paired import PairedDataset, load_paired
from .data.prepare import PreparedModality, prepare_modality
from .data.sources import DATASET_WRITERS
from .encoders.text_embedder import TextEmbedder
from .errors import DataError
from .eval.metrics import concept_similarity
from .eval.text_baseline import TextBaseline, build_text_baseline, centroid_scores
from .graph.kg import KnowledgeGraph
from .graph.loader import load_graph


@dataclass
class Task:
    ds: PairedDataset
    kg: KnowledgeGraph
    graph_data: object                 # torch_geometric Data
    node_features: torch.Tensor        # [V, F]: name and definition embeddings
    name_emb: torch.Tensor             # [V, E]
    candidates: list[str]
    cand_nodes: np.ndarray             # [K] node index of each candidate
    y: np.ndarray                      # [N] candidate index of each sample's label, -1 if none
    seen: np.ndarray                   # [K] bool: has labelled training samples
    teacher: PreparedModality
    student: PreparedModality
    concept_sim: torch.Tensor          # [K, K] Jaccard of implication sets
    text_baseline: TextBaseline | None  # the training-free text scorer (eval.text_baseline; text students only)
    embedder: TextEmbedder
    teacher_modality: str = ""
    student_modality: str = ""

    @property
    def num_candidates(self) -> int:
        return len(self.candidates)

    def idx(self, split: str) -> np.ndarray:
        return self.ds.split_idx(split)

    def baseline_scores(self, idx: np.ndarray) -> torch.Tensor:
        """[n, K] scores of the training-free baseline row: the text baseline for a text student, else the
        nearest centroid of the labelled student training samples (which cannot rank unseen concepts)."""
        if self.text_baseline is not None:
            return self.text_baseline.scores(self.student.x[torch.as_tensor(idx)], self.student.tables["sentences"],
                                             self.student.tables.get("polarity")).cpu()
        tr = self.idx("train")
        lab = tr[(self.y[tr] >= 0) & self.ds.student_labelled[tr]]
        return centroid_scores(self.student.x[lab], torch.as_tensor(self.y[lab]), self.student.x[idx],
                               self.num_candidates)


def materialise_dataset(cfg: RunConfig, workdir: Path) -> PairedDataset:
    """The user's dataset folder (``data.source: paired``), or the one the run's data source writes into
    ``RUN/data`` (reused when the run is opened again)."""
    if cfg.data.source == "paired":
        return load_paired(Path(cfg.data.path).expanduser())
    if (workdir / "data" / "dataset.yaml").is_file():  # re-opening a run: reuse its generated data
        return load_paired(workdir / "data")
    return load_paired(DATASET_WRITERS.get(cfg.data.source)(workdir / "data", cfg.data, cfg.seed))


def restrict_graph(kg: KnowledgeGraph, ds: PairedDataset) -> KnowledgeGraph:
    """Keep candidates, the concepts samples mention, and everything those reach."""
    start = {kg.index[c] for c in ds.candidates}
    for mod in ds.modalities.values():
        if mod.kind == "concept_set":
            start.update(kg.index[c] for items in mod.values for c in concept_ids(items))
    keep = set().union(*kg.reachable(sorted(start)))
    return kg.subgraph(keep)


def load_task_graph(cfg: RunConfig, ds: PairedDataset) -> KnowledgeGraph:
    """The graph from graph.path (a file, a folder or a bolt:// Neo4j server) or the dataset's own."""
    if cfg.graph.path and cfg.graph.path.startswith(("bolt://", "neo4j://")):
        from .graph.neo4j_io import load_neo4j

        return load_neo4j(cfg.graph.path, **cfg.graph.neo4j.model_dump())
    gpath = Path(cfg.graph.path).expanduser() if cfg.graph.path else ds.graph_path
    if gpath is None:
        raise DataError("no graph: set graph.path in the config or 'graph' in dataset.yaml", source=str(ds.root))
    extra = {"extra_relations": cfg.graph.extra_relations} if cfg.graph.extra_relations else {}
    return load_graph(gpath, format=cfg.graph.format, **extra)


def build_task(cfg: RunConfig, workdir: Path, device: torch.device, progress: bool = False,
               seen: np.ndarray | None = None) -> Task:
    """``seen``: which candidates count as seen (a trained model's, when it scores another dataset); default: those
    with labelled training samples in this dataset."""
    ds = materialise_dataset(cfg, workdir)
    teacher_name = cfg.data.teacher_modality or ds.teacher
    student_name = cfg.data.student_modality or ds.student
    for role, name in (("data.teacher_modality", teacher_name), ("data.student_modality", student_name)):
        if name not in ds.modalities:
            raise DataError(f"{role}: modality {name!r} not in the dataset ({', '.join(ds.modalities)})")
    kg = load_task_graph(cfg, ds)
    ds.validate_against(kg.index)
    if cfg.graph.restrict_to_candidates:
        kg = restrict_graph(kg, ds)

    embedder = TextEmbedder.from_config(cfg.text, device)
    name_emb = torch.from_numpy(embedder.embed(kg.names, progress=progress))
    text_emb = torch.from_numpy(embedder.embed([kg.node_text(i, cfg.graph.text_max_chars) for i in range(kg.num_nodes)],
                                               progress=progress))
    node_features = torch.cat([name_emb, text_emb], dim=1)

    candidates = list(ds.candidates)
    pos = {c: i for i, c in enumerate(candidates)}
    y = np.array([pos[lab] if lab else -1 for lab in ds.labels], dtype=np.int64)
    train = ds.split_idx("train")
    if seen is None:
        seen = np.zeros(len(candidates), dtype=bool)
        seen[y[train][y[train] >= 0]] = True
    if not seen.any():
        raise DataError("no labelled training samples: nothing to train on", source=str(ds.root / "samples.tsv"))
    cand_nodes = np.array([kg.index[c] for c in candidates], dtype=np.int64)

    prep = {name: prepare_modality(ds.modalities[name], graph=kg, node_features=node_features, embedder=embedder,
                                   train_idx=train)
            for name in dict.fromkeys([teacher_name, student_name])}
    student = prep[student_name]
    reach = kg.reachable(cand_nodes.tolist())
    baseline = None
    if student.kind == "text":
        tb = cfg.eval.text_baseline
        baseline = build_text_baseline(tb.name, kg, cand_nodes, name_emb, **tb.params)
    return Task(ds=ds, kg=kg, graph_data=kg.to_pyg(), node_features=node_features, name_emb=name_emb,
                candidates=candidates, cand_nodes=cand_nodes, y=y, seen=seen, teacher=prep[teacher_name],
                student=student, concept_sim=torch.from_numpy(concept_similarity(reach)),
                text_baseline=baseline, embedder=embedder, teacher_modality=teacher_name,
                student_modality=student_name)
