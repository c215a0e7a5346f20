"""The trained model of a run: one object that owns everything scoring needs, and the only code that knows the
``checkpoints/`` layout of a run directory.

A :class:`DistilledModel` holds the teacher encoder, every student (encoder + concept source), the frozen concept
matrix and candidate list, which candidates are seen, the training-free text baseline, each method's calibration,
the student's input scaling, and the calibration pass's validation scores of the fused methods (what choosing
their calibration again needs).  Training builds one (``train.distill.fit_models``); ``save`` writes it into a
run directory; ``load`` reads it back, with the task's data (``eval``, re-evaluation) or without (``predict``:
students only, for new inputs)::

    model = DistilledModel.load("runs/my-run")
    scores = model.score_texts(["Seizures. No hearing loss."], "kg_guided")       # [1, K] final scores
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .config import MethodConfig, RunConfig
from .data.prepare import STANDARDISE_AXES, PreparedModality, sentence_index
from .encoders import build_encoder, embed
from .encoders.text_embedder import TextEmbedder
from .errors import ConfigError, DataError, RunDirError
from .eval.calibration import Calibration, ValidationScores, calibrations_from_json, calibrations_to_json
from .eval.text_baseline import TEXT_BASELINES, ConceptLinks, MeanTextBaseline, TextBaseline
from .fileio import load_state, load_tensors, save_tensors, write_json_atomic
from .gnn.concepts import CONCEPT_SOURCES, cosine_logits
from .text.negation import sentence_polarity

TEACHER = "teacher"
NO_FUSION = "_no_fusion"   # suffix of a fused method's row scored without the text baseline

# the checkpoints/ layout (and calibration.json at the run's root)
CHECKPOINTS = "checkpoints"
TEACHER_FILE = "teacher.safetensors"            # encoder.* and the teacher's GNN (gnn.*)
CONCEPTS_FILE = "concepts.safetensors"          # concepts, seen, text_baseline.*, student_input.mean/std
CANDIDATES_FILE = "candidates.txt"
VALIDATION_SCORES_FILE = "validation_scores.safetensors"
MODEL_FILE = "model.json"                       # the modalities' names and kinds (runs before it: dataset.yaml)
CALIBRATION_FILE = "calibration.json"
REQUIRED = (f"{CHECKPOINTS}/{CANDIDATES_FILE}", f"{CHECKPOINTS}/{CONCEPTS_FILE}", f"{CHECKPOINTS}/{TEACHER_FILE}",
            CALIBRATION_FILE)


# the student's input tables kept with the model: standardisation, and audio's sample rate (its spectrogram's);
# plus "shape", one sample's (encoders such as WDCNN size their layers from the series length)
INPUT_TABLES = ("mean", "std", "rate")


def input_tables(prepared: PreparedModality) -> dict[str, torch.Tensor]:
    """What the model keeps of the student's prepared modality to read new inputs without the run's data."""
    out = {k: v for k, v in prepared.tables.items() if k in INPUT_TABLES}
    if prepared.kind != "text":
        out["shape"] = torch.tensor(prepared.x.shape[1:], dtype=torch.long)
    return out


def student_file(method: str) -> str:
    return f"student_{method}.safetensors"


@dataclass
class Student:
    """One student variant: its encoder and where its concept embeddings come from."""

    encoder: nn.Module
    concepts: nn.Module

    def eval(self) -> "Student":
        self.encoder.eval()
        self.concepts.eval()
        return self


@dataclass(frozen=True)
class Roles:
    """Which modality taught and which learned, with their kinds."""

    teacher: str
    teacher_kind: str
    student: str
    student_kind: str


def build_teacher_encoder(cfg: RunConfig, prepared: PreparedModality) -> nn.Module:
    return build_encoder(cfg.teacher.encoder, prepared, cfg.space.dim, "teacher.encoder")


def build_student(cfg: RunConfig, method: MethodConfig, prepared: PreparedModality,
                  teacher_concepts: torch.Tensor) -> Student:
    """The encoder first, then the concept source (the order fixes which random numbers each draws)."""
    enc = build_encoder(cfg.student.encoder, prepared, cfg.space.dim, "student.encoder")
    return Student(enc, CONCEPT_SOURCES.build(method.concepts, teacher_concepts=teacher_concepts))


class DistilledModel:
    def __init__(self, config: RunConfig, candidates: Sequence[str], seen: torch.Tensor, concepts: torch.Tensor,
                 students: dict[str, Student], roles: Roles, *, teacher: nn.Module | None = None,
                 teacher_gnn: nn.Module | None = None, text_baseline: TextBaseline | None = None,
                 input_scaling: dict[str, torch.Tensor] | None = None,
                 calibrations: dict[str, Calibration] | None = None,
                 validation_scores: ValidationScores | None = None):
        self.config = config
        self.candidates = list(candidates)
        self.seen = torch.as_tensor(seen).bool().cpu()
        self.concepts = concepts                 # [K, d] the teacher's frozen GNN embeddings
        self.students = students
        self.roles = roles
        self.teacher = teacher                   # None when loaded without the task's data
        self.teacher_gnn = teacher_gnn           # only while training: saved for reference, never read back
        self.text_baseline = text_baseline
        self.input_scaling = input_scaling or {}
        self.calibrations = dict(calibrations or {})
        self.validation_scores = validation_scores
        self._embedder: TextEmbedder | None = None

    @property
    def num_candidates(self) -> int:
        return len(self.candidates)

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def teacher_embeddings(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        if self.teacher is None:
            raise RunDirError("this model was loaded without its teacher (no data given)")
        return embed(self.teacher, x.to(device))

    @torch.no_grad()
    def student_embeddings(self, method: str, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        return embed(self.student(method).encoder, x.to(device))

    @torch.no_grad()
    def raw_scores(self, teacher_x: torch.Tensor | None, student_x: torch.Tensor,
                   device: torch.device) -> dict[str, torch.Tensor]:
        """Cosine scores [n, K] over all candidates: the teacher's (when ``teacher_x`` is given) and every
        student's, before calibration."""
        out: dict[str, torch.Tensor] = {}
        if teacher_x is not None:
            out[TEACHER] = cosine_logits(self.teacher_embeddings(teacher_x, device), self.concepts, 1.0).cpu()
        for name, st in self.students.items():
            z = embed(st.encoder, student_x.to(device))
            out[name] = cosine_logits(z, st.concepts().float(), 1.0).cpu()
        return out

    def task_scores(self, task: Any, idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """:meth:`raw_scores` of the task's samples ``idx`` (both modalities, as prepared for training)."""
        i = torch.as_tensor(idx)
        return self.raw_scores(task.teacher.x[i] if self.teacher is not None else None, task.student.x[i], device)

    def final_scores(self, raw: dict[str, torch.Tensor], baseline: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Each method's calibrated scores (a fused method adds beta x ``baseline``), and for a fused method also
        the row without the baseline (``<method>_no_fusion``)."""
        out: dict[str, torch.Tensor] = {}
        for m, s in raw.items():
            cal = self.calibrations.get(m, Calibration())
            out[m] = cal.apply(s, self.seen, baseline if cal.beta else None)
            if m + NO_FUSION in self.calibrations:
                out[m + NO_FUSION] = self.calibrations[m + NO_FUSION].apply(s, self.seen, None)
        return out

    def student(self, method: str) -> Student:
        if method not in self.students:
            raise RunDirError(f"method {method!r} not in this run ({', '.join(self.students)})")
        return self.students[method]

    # -------------------------------------------------------------- new inputs
    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            self._embedder = TextEmbedder.from_config(self.config.text)
        return self._embedder

    def text_inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]], torch.Tensor]:
        """Notes as the model reads them: rows of sentence indices (-1 padding) into a table of sentence vectors,
        each note's sentences (the first ``MAX_ITEMS``, as in training), and each table row's polarity
        (+1 affirmed, -1 negated, 0 hypothetical or family; ``kgdistill.text.negation``)."""
        if self.roles.student_kind != "text":
            raise DataError(f"this run's student reads {self.roles.student_kind} input, not text")
        texts = list(texts)
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise DataError("empty text; expected at least one non-empty input")
        x, sentences, per = sentence_index(texts)
        return x, torch.from_numpy(self.embedder.embed(sentences)), per, torch.from_numpy(sentence_polarity(sentences))

    @staticmethod
    def sentences_of(x: torch.Tensor, per: list[list[str]]) -> list[str]:
        """The unique sentences ``x`` indexes (what a fine-tuned or LoRA text student reads), from each note's."""
        out = [""] * (int(x.max()) + 1 if x.numel() else 0)
        for row, sents in zip(x.tolist(), per):
            for i, s in zip(row, sents):
                out[i] = s
        return out

    @torch.no_grad()
    def student_vectors(self, method: str, x: torch.Tensor, table: torch.Tensor | None = None,
                        polarity: torch.Tensor | None = None, sentences: list[str] | None = None) -> torch.Tensor:
        """L2-normalised student-space vectors of new inputs (text: ``x`` indexes ``table`` and ``sentences``,
        whose rows have ``polarity``; other kinds: raw values, standardised here with the training statistics)."""
        enc = self.student(method).eval().encoder.cpu()
        if table is not None:
            if getattr(enc, "mode", "frozen") != "frozen" and sentences is None:
                raise RunDirError(f"the {enc.mode} text student reads sentences, none were given")
            enc.use_sentences(table, sentences or [])
            enc.set_polarity(polarity)
        else:
            x = self.standardise(x)
        return nn.functional.normalize(enc(x).float(), dim=-1)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """New inputs scaled with the training statistics; their shape must be the training shape, except along
        the axes the scaling is shared over (time steps, pixels, waveform samples)."""
        mean, std = self.input_scaling.get("mean"), self.input_scaling.get("std")
        if mean is None:
            return x
        free = set(STANDARDISE_AXES.get(self.roles.student_kind, ()))
        want = tuple("any" if a in free else n for a, n in enumerate(mean.shape) if a > 0)
        if x.ndim != mean.ndim or any(w not in ("any", n) for w, n in zip(want, x.shape[1:])):
            raise DataError(f"input rows have shape {tuple(x.shape[1:])}, the model expects {want}")
        return (x.float() - mean) / std

    @property
    def sample_rate(self) -> int | None:
        """Audio students: the sample rate their spectrogram was trained at (new recordings must have it)."""
        rate = self.input_scaling.get("rate")
        return None if rate is None else int(rate)

    @torch.no_grad()
    def score_inputs(self, method: str, x: torch.Tensor, table: torch.Tensor | None = None,
                     polarity: torch.Tensor | None = None, sentences: list[str] | None = None) -> torch.Tensor:
        """Final scores [n, K] of new inputs for ``method``: cosine to its concepts, calibrated, and (a fused
        method on text) plus beta x the text baseline."""
        z = self.student_vectors(method, x, table, polarity, sentences)
        st = self.student(method)
        raw = z @ nn.functional.normalize(st.concepts.cpu()().float(), dim=-1).T
        baseline = None
        if table is not None and self.text_baseline is not None and self.calibrations.get(method, Calibration()).beta:
            if self.text_baseline.dim != table.shape[1]:
                raise RunDirError(f"the saved text baseline reads {self.text_baseline.dim}-d text vectors, the text "
                                  f"model gives {table.shape[1]}-d (text.model_path changed since the run?)")
            baseline = self.text_baseline.scores(x, table, polarity)
        return self.final_scores({method: raw}, baseline)[method]

    def score_texts(self, texts: Sequence[str], method: str) -> torch.Tensor:
        x, table, per, polarity = self.text_inputs(texts)
        return self.score_inputs(method, x, table, polarity, self.sentences_of(x, per))

    # --------------------------------------------------------------- saving
    def save(self, run_path: str | Path, *, weights: bool = True) -> None:
        """Write the model into a run directory: weights (unless ``weights`` is False: a re-evaluation keeps the
        source run's files), concepts, candidates, roles, calibration."""
        ck = Path(run_path) / CHECKPOINTS
        ck.mkdir(parents=True, exist_ok=True)
        if weights:
            self.save_weights(ck)
        extra = {"concepts": self.concepts, "seen": self.seen}
        if self.text_baseline is not None:
            extra |= {f"text_baseline.{k}": v for k, v in self.text_baseline.tensors().items()}
        extra |= {f"student_input.{k}": v for k, v in self.input_scaling.items()}
        save_tensors(extra, ck / CONCEPTS_FILE)
        (ck / CANDIDATES_FILE).write_text("\n".join(self.candidates) + "\n", encoding="utf-8")
        if self.validation_scores is not None:
            self.validation_scores.save(ck / VALIDATION_SCORES_FILE)
        write_json_atomic(ck / MODEL_FILE, {"format": 1, "teacher": self.roles.teacher,
                                            "teacher_kind": self.roles.teacher_kind, "student": self.roles.student,
                                            "student_kind": self.roles.student_kind})
        write_json_atomic(Path(run_path) / CALIBRATION_FILE, calibrations_to_json(self.calibrations))

    def save_weights(self, ck: Path) -> None:
        if self.teacher is not None:
            gnn = {} if self.teacher_gnn is None else {f"gnn.{k}": v for k, v in self.teacher_gnn.state_dict().items()}
            save_tensors({f"encoder.{k}": v for k, v in self.teacher.state_dict().items()} | gnn, ck / TEACHER_FILE)
        for name, st in self.students.items():
            save_tensors({f"encoder.{k}": v for k, v in st.encoder.state_dict().items()}
                         | {f"concepts.{k}": v for k, v in st.concepts.state_dict().items()}, ck / student_file(name))

    @staticmethod
    def weight_files(run_path: str | Path) -> list[Path]:
        """The trained weights of a run (what a re-evaluation copies rather than writes again)."""
        ck = Path(run_path) / CHECKPOINTS
        return sorted([ck / TEACHER_FILE, *ck.glob(student_file("*"))])

    # -------------------------------------------------------------- loading
    @classmethod
    def load(cls, run_path: str | Path, task: Any = None, *, config: RunConfig | None = None,
             methods: Sequence[str] | None = None) -> "DistilledModel":
        """The model of a complete run.  With ``task`` (the run's data, built again) the encoders are built from
        its prepared modalities and the teacher is loaded too; without, the students alone, for new inputs.
        ``config``: the run's (default: its saved config.yaml; another one must train the same models: its
        ``eval.*`` settings do not apply to what was saved); ``methods``: which students (default: all)."""
        from .run_dir import RunDir

        rd = RunDir.open(run_path, required=REQUIRED)
        cfg = config or rd.config()
        ck = rd.checkpoints
        extra = load_tensors(ck / CONCEPTS_FILE)
        candidates = (ck / CANDIDATES_FILE).read_text(encoding="utf-8").split()
        concepts, seen = extra["concepts"], extra["seen"].bool()
        roles = _saved_roles(rd, cfg)
        model = cls(cfg, candidates, seen, concepts, {}, roles,
                    text_baseline=_saved_text_baseline(cfg, extra, len(candidates), ck / CONCEPTS_FILE),
                    input_scaling={k.split(".", 1)[1]: v for k, v in extra.items() if k.startswith("student_input.")},
                    calibrations=_saved_calibrations(rd),
                    validation_scores=ValidationScores.load(ck / VALIDATION_SCORES_FILE))
        if task is not None:
            model.teacher = build_teacher_encoder(cfg, task.teacher)
            load_state(model.teacher, ck / TEACHER_FILE, prefix="encoder.")
            model.teacher.eval()
        names = list(methods if methods is not None else cfg.student.methods)
        prepared = (task.student if task is not None else _stand_in(model, roles.student_kind, ck / CONCEPTS_FILE)
                    ) if names else None
        for name in names:
            st = build_student(cfg, cfg.student.methods[name], prepared, concepts)
            load_state(st.encoder, ck / student_file(name), prefix="encoder.")
            load_state(st.concepts, ck / student_file(name), prefix="concepts.")
            model.students[name] = st.eval()
        return model


def _saved_calibrations(rd) -> dict[str, Calibration]:
    try:
        return calibrations_from_json(rd.read_json(CALIBRATION_FILE))
    except (TypeError, AttributeError):
        raise RunDirError(f"{CALIBRATION_FILE} does not hold per-method calibrations", source=str(rd.path)) from None


def _saved_text_baseline(cfg: RunConfig, extra: dict[str, torch.Tensor], k: int, path: Path) -> TextBaseline | None:
    """The run's text baseline (``text_baseline.*``); runs saved before it was named so read as they ran:
    ``prototype.*``, ``concept_links.*`` (set matching) or ``prototype_concepts`` (mean)."""
    def group(prefix: str) -> dict[str, torch.Tensor]:
        return {key.split(".", 1)[1]: v for key, v in extra.items() if key.startswith(prefix)}

    saved = group("text_baseline.") or group("prototype.")
    name = cfg.eval.text_baseline.name
    try:
        if saved:
            baseline = TEXT_BASELINES.get(name).from_tensors(saved)
        elif links := group("concept_links."):
            baseline = ConceptLinks.from_tensors(links)
        elif "prototype_concepts" in extra:
            baseline = MeanTextBaseline(extra["prototype_concepts"])
        else:
            return None
    except (KeyError, RuntimeError, ValueError, IndexError, ConfigError):
        raise RunDirError(f"the saved {name} text baseline has missing or invalid tensors (damaged checkpoint)",
                          source=str(path)) from None
    if baseline.num_concepts != k:
        raise RunDirError(f"the saved {name} text baseline scores {baseline.num_concepts} concepts, the run has "
                          f"{k} candidates (damaged checkpoint)", source=str(path))
    return baseline


def _saved_roles(rd, cfg: RunConfig) -> Roles:
    """From checkpoints/model.json; a run made before it: from the dataset description it trained on."""
    info = rd.checkpoints / MODEL_FILE
    if info.is_file():
        try:
            r = json.loads(info.read_text(encoding="utf-8"))
            return Roles(r["teacher"], r["teacher_kind"], r["student"], r["student_kind"])
        except (ValueError, KeyError, TypeError):
            raise RunDirError("damaged model description; expected teacher/student names and kinds",
                              source=str(info)) from None
    return _roles_from_dataset(rd, cfg)


def _roles_from_dataset(rd, cfg: RunConfig) -> Roles:
    import yaml

    local = rd.path / "data" / "dataset.yaml"
    if local.is_file():
        yml = local
    elif cfg.data.path:
        p = Path(cfg.data.path).expanduser()
        yml = p / "dataset.yaml" if p.is_dir() else p
    else:
        raise RunDirError("cannot find the dataset description of this run", source=str(rd.path))
    try:
        ds = yaml.safe_load(yml.read_text(encoding="utf-8"))
        mods = ds["modalities"]
        teacher = cfg.data.teacher_modality or ds.get("teacher") or list(mods)[0]
        student = cfg.data.student_modality or ds.get("student") or list(mods)[-1]
        return Roles(teacher, str(mods[teacher]["kind"]), student, str(mods[student]["kind"]))
    except (OSError, ValueError, yaml.YAMLError, LookupError, TypeError, AttributeError):
        raise RunDirError("cannot read the modalities' kinds from the dataset description", source=str(yml)) from None


def _stand_in(model: DistilledModel, kind: str, tables_file: Path) -> PreparedModality:
    """A one-sample prepared modality with the right shapes, to build a student encoder without the data."""
    tables: dict[str, torch.Tensor] = {}
    if kind == "text":
        tables["sentences"] = torch.zeros(1, model.embedder.embed(["probe"]).shape[1])
        x = torch.zeros(1, 1, dtype=torch.long)
    elif "shape" in model.input_scaling or "mean" in model.input_scaling:
        # one sample's shape; runs saved before it was kept: the scaling's (a time axis of 1)
        shape = model.input_scaling["shape"].tolist() if "shape" in model.input_scaling \
            else model.input_scaling["mean"].shape[1:]
        x = torch.zeros((1, *shape))
        if kind == "audio":
            if model.sample_rate is None:
                raise RunDirError("the audio student's sample rate is missing (damaged checkpoint)",
                                  source=str(tables_file))
            tables["rate"] = model.input_scaling["rate"]
    else:
        raise RunDirError(f"cannot rebuild a {kind} student without the run's data (no input scaling saved)",
                          source=str(tables_file))
    return PreparedModality("student", kind, x, tables, sentences=[""], text_model=model.embedder.model_path)
