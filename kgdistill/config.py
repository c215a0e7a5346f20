"""Run configuration: YAML validated into typed objects.

Every key is checked; an unknown key, a wrong type or a bad value is reported as
one line naming the file and the dotted key.  ``--set a.b=value`` overrides are
applied to the YAML tree before validation, so they are checked the same way.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .yamlfile import load_yaml_file


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _file_name_safe(v: str) -> str:
    """Names that become parts of file names (run name, student method) cannot hold a path."""
    if not v.strip() or v.strip() in (".", "..") or any(c in v for c in "/\\\0"):
        raise ValueError(f"{v!r} cannot be used in a file name (no '/', '\\', NUL, '.' or '..')")
    return v


class Part(BaseModel):
    """A registry entry named by ``name``; other keys are the part's own parameters.  A bare string is the name
    alone (``text_baseline: likelihood``)."""

    model_config = ConfigDict(extra="allow")
    name: str

    @model_validator(mode="before")
    @classmethod
    def _name_only(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _finite_params(self) -> "Part":
        stack = list((self.model_extra or {}).items())
        while stack:
            key, value = stack.pop()
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number, got {value}")
            if isinstance(value, dict):
                stack.extend((f"{key}.{k}", v) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend((f"{key}.{i}", v) for i, v in enumerate(value))
        return self


class LossSpec(Part):
    weight: float = 1.0

    @field_validator("weight")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"expected a finite number >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _positive_temperature(self) -> "LossSpec":
        t = self.params.get("temperature")
        if t is not None and (not isinstance(t, (int, float)) or isinstance(t, bool) or not t > 0):
            raise ValueError(f"temperature must be a number > 0, got {t!r}")
        return self


class HPOBenchmarkConfig(Strict):
    num_diseases: int = Field(300, ge=2)
    min_annotations: int = Field(8, ge=1)
    unseen_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    train_per_disease: int = Field(20, ge=1)
    labelled_per_disease: int = Field(2, ge=1)
    val_per_disease: int = Field(5, ge=1)
    test_per_disease: int = Field(10, ge=1)
    min_phenotypes: int = Field(3, ge=1)
    max_phenotypes: int = Field(10, ge=1)
    imprecision: float = Field(0.3, ge=0.0, le=1.0)
    noise_rate: float = Field(1.0, ge=0.0)
    negation_rate: float = Field(0.3, ge=0.0, le=1.0)
    default_frequency: float = Field(0.5, gt=0.0, le=1.0)
    source: Literal["any", "OMIM", "ORPHA"] = "any"
    # each disease's phenotype links are left out of the graph with this probability (independently) while its
    # patients still show those phenotypes (real annotations are incomplete); every disease keeps one link at least
    withheld_links: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> "HPOBenchmarkConfig":
        if self.labelled_per_disease > self.train_per_disease:
            raise ValueError("labelled_per_disease must not exceed train_per_disease")
        if self.max_phenotypes < self.min_phenotypes:
            raise ValueError("max_phenotypes must not be below min_phenotypes")
        return self


class PatientsConfig(Strict):
    """The real-patient task (``data.source: phenopackets``): phenopacket-store 0.1.24 split by publication."""

    graph: Literal["published", "independent"] = "independent"   # independent: without val/test publications
    candidates: Literal["omim", "store"] = "omim"    # every OMIM disease of the annotations, or the store's own
    fractions: list[float] = [0.6, 0.2, 0.2]         # train, val, test shares of patients (by publication)
    heldout_diseases: float = Field(0.2, ge=0.0, lt=1.0)   # diseases held out whole (unseen, no training patient)
    labelled_per_disease: int = Field(2, ge=1)       # labelled student notes per seen disease (the rest unlabelled)
    omit_fraction: float = Field(0.2, ge=0.0, le=1.0)   # share of observed findings a note leaves out
    note_seed: int | None = None     # the notes' wording (None: the run's seed); fixed, split seeds share a text cache

    @field_validator("fractions")
    @classmethod
    def _three_shares(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or min(v) < 0 or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"expected three shares train, val, test summing to 1, got {v}")
        return v


class BearingsConfig(Strict):
    """``data.source: bearings``: the shipped CWRU recordings cut into one of issue 17's tasks
    (kgdistill/data/bearings.py): drive-end teacher, fan-end student, windows from disjoint segments."""

    task: Literal["one_load", "cross_load", "unseen"] = "one_load"
    load: int = Field(0, ge=0, le=3)                 # one_load, unseen: the motor load (hp)
    source_load: int = Field(0, ge=0, le=3)          # cross_load: labels here ...
    target_load: int = Field(1, ge=0, le=3)          # ... unlabelled paired windows and the tests here
    labelled_per_class: int | None = Field(5, ge=1)  # labelled fan-end training windows per class (null: all)
    held_out: list[str] = ["cwru:DE_IR_014", "cwru:DE_B_021", "cwru:DE_OR6_007"]  # unseen: no training window
    window: int = Field(2048, ge=16)
    stride: int = Field(1024, ge=1)
    fan_end_faults: bool = False                     # also the faults seeded in the fan-end bearing
    file: str | None = None                          # the derived CWRU .npz (null: data/cwru/cwru_12k.npz)
    graph: str | None = None                         # the fault graph (null: graphs/bearing_faults.ttl)

    @model_validator(mode="after")
    def _two_loads(self) -> "BearingsConfig":
        if self.task == "cross_load" and self.source_load == self.target_load:
            raise ValueError(f"source_load and target_load are both {self.source_load}; expected two loads")
        return self


def distinct(v: list, what: str) -> list:
    """``v`` if no item repeats; else the validation error ``what, got v``."""
    if len(set(v)) != len(v):
        raise ValueError(f"{what}, got {v}")
    return v


class SpokenDigitsConfig(Strict):
    """``data.source: spoken_digits``: spoken digits (student) paired with digit images (teacher), split by
    speaker (``kgdistill/data/spoken_digits.py``)."""

    labelled_per_digit: int = Field(5, ge=1, le=50)
    heldout: list[Annotated[int, Field(ge=0, le=9)]] = Field([3, 7], max_length=8)   # digits never heard labelled
    teacher_sees_heldout: bool = False
    seconds: float = Field(1.0, gt=0.0, le=10.0)

    @field_validator("heldout")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        return distinct(v, "expected distinct digits")


class DataConfig(Strict):
    # paired: the user's folder at data.path; any other: a writer in data/sources.py (DATASET_WRITERS)
    source: Literal["hpo_benchmark", "phenopackets", "bearings", "spoken_digits", "paired"] = "hpo_benchmark"
    path: str | None = None
    hpo: HPOBenchmarkConfig = HPOBenchmarkConfig()
    patients: PatientsConfig = PatientsConfig()
    bearings: BearingsConfig = BearingsConfig()
    spoken_digits: SpokenDigitsConfig = SpokenDigitsConfig()
    teacher_modality: str | None = None
    student_modality: str | None = None

    @model_validator(mode="after")
    def _path_for_paired(self) -> "DataConfig":
        if self.source == "paired" and not self.path:
            raise ValueError("data.path is required when data.source is 'paired'")
        return self


class Neo4jGraphConfig(Strict):
    """How a graph stored in Neo4j maps onto concepts and relations (graph.path: bolt://host:port)."""

    node_label: str | list[str] = "Concept"
    rel_types: list[str] | None = None
    id_property: str = "id"
    name_property: str | None = "name"
    text_property: str | None = None
    type_property: str | None = None
    weight_property: str | None = None
    reverse_types: list[str] = []


class GraphConfig(Strict):
    path: str | None = None
    format: str = "auto"
    neo4j: Neo4jGraphConfig = Neo4jGraphConfig()
    restrict_to_candidates: bool = True
    text_max_chars: int = Field(300, ge=16)
    # RDF/OWL properties read as relations although not declared object properties (IRI or CURIE, as
    # `kgdistill graph inspect` lists them under 'not relations'), e.g. [IAO:0100001]
    extra_relations: list[str] = []


class TextConfig(Strict):
    model_path: str | None = None
    max_length: int = Field(128, ge=8)
    batch_size: int = Field(64, ge=1)
    cache_dir: str | None = None


class SpaceConfig(Strict):
    dim: int = Field(128, ge=2)
    temperature: float = Field(0.1, gt=0.0)


class GNNConfig(Part):
    """The GNN that embeds every concept (``name`` in the ``GNNS`` registry) and how it runs over the graph.
    ``hidden``, ``layers`` and ``dropout`` are every GNN's; any other key is the named GNN's own (``heads`` for
    ``gat``) and is checked against it."""

    name: str = "gcn"
    hidden: int = Field(256, ge=2)
    layers: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    self_feature_dropout: float = Field(0.0, ge=0.0, le=1.0)
    # Large graphs: the node features' first k principal components instead of all of them (null: all).
    input_dim: int | None = Field(None, ge=1)
    # Large graphs: incoming neighbours sampled per layer in a training step (e.g. [15, 10]); empty: full graph.
    num_neighbors: list[Annotated[int, Field(ge=1)]] = []
    eval_chunk: int = Field(1024, ge=1)  # candidates per evaluation pass over their whole neighbourhoods

    @model_validator(mode="after")
    def _fanout_per_layer(self):
        if self.num_neighbors and len(self.num_neighbors) != self.layers:
            raise ValueError(f"num_neighbors needs one fan-out per layer ({self.layers}), got {self.num_neighbors}")
        return self

    @model_validator(mode="after")
    def _own_params(self):
        """A key no GNN reads, or one the named GNN does not take, fails at load naming it."""
        from .gnn import GNNS

        try:
            GNNS.check_params(self.name, self.params, supplied=GNN_SUPPLIED, also=tuple(type(self).model_fields))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def build_params(self) -> dict[str, Any]:
        """The GNN constructor's keyword arguments from this config (input sizes are the caller's)."""
        return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout, **self.params}


# what the pipeline passes a GNN itself: sizes from the data, and whether it runs on the whole graph
GNN_SUPPLIED = ("in_dim", "out_dim", "num_relations", "fixed_graph")


def _buildable_losses(v: list[LossSpec]) -> list[LossSpec]:
    """Build the weighted sum now (it refuses a term listed twice): a bad parameter fails at load, not after
    minutes of set-up."""
    from .losses import WeightedLoss

    try:
        WeightedLoss.from_specs(v)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return v


class OptimConfig(Strict):
    """How one stage is optimised, and the encoder it trains."""

    epochs: int = Field(60, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(2e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    patience: int = Field(10, ge=1)
    encoder: Part

    @field_validator("encoder")
    @classmethod
    def _encoder_settings(cls, v: Part) -> Part:
        """Settings an encoder can check without data (``mode: lora``'s rank, alpha, ...) fail at load."""
        from .encoders import ENCODERS

        if v.name in ENCODERS:
            ENCODERS.get(v.name).check_params(**v.params)
        return v


class TeacherConfig(OptimConfig):
    losses: list[LossSpec] = Field(min_length=1)
    # the teacher's outputs that the students learn from, on the training samples without any label (a target
    # domain's paired windows), come from the teacher with its batch norms re-estimated on those samples (AdaBN)
    adabn_unlabelled: bool = False
    # where the candidates' embeddings come from (TEACHER_CONCEPTS): ``gnn`` (section ``gnn``) or ``annotations``
    # (the teacher's own encoder reading each candidate's links, e.g. {name: annotations, max_items: 64})
    concepts: Part = Part(name="gnn")
    _buildable = field_validator("losses")(_buildable_losses)

    @field_validator("concepts")
    @classmethod
    def _concept_source(cls, v: Part) -> Part:
        """An unknown source or a setting it does not take fails at load, naming it."""
        from .gnn.teacher_concepts import SUPPLIED, TEACHER_CONCEPTS

        try:
            TEACHER_CONCEPTS.check_params(v.name, v.params, supplied=SUPPLIED)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return v


class MethodConfig(Strict):
    """One student variant: which concept embeddings it scores against (``CONCEPT_SOURCES``: ``gnn``, the
    teacher's frozen GNN embeddings; ``gnn_residual``, those plus a learned correction; ``learned``, a free
    table blind to the graph) and which losses train it."""

    concepts: str = "gnn"
    losses: list[LossSpec] = Field(min_length=1)
    calibrate: bool = True
    fusion: bool = False  # add beta x the training-free text baseline's score (chosen on validation)
    _buildable = field_validator("losses")(_buildable_losses)

    @field_validator("concepts")
    @classmethod
    def _known_source(cls, v: str) -> str:
        from .gnn.concepts import CONCEPT_SOURCES

        try:
            CONCEPT_SOURCES.get(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return v.lower()


class StudentConfig(OptimConfig):
    methods: dict[str, MethodConfig]

    @field_validator("methods")
    @classmethod
    def _has_kg(cls, v: dict[str, MethodConfig]) -> dict[str, MethodConfig]:
        if "kg_guided" not in v:
            raise ValueError("student.methods needs an entry 'kg_guided'")
        for name in v:
            _file_name_safe(name)
        return v


class CalibrationConfig(Strict):
    enabled: bool = True
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    gammas: list[float] = Field([0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6], min_length=1)
    fusion_weights: list[float] = Field([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0], min_length=1)
    # what the choice reads on the stand-ins: top-1, or the mean reciprocal rank where a few dozen stand-ins among
    # thousands of candidates almost never reach rank 1 and top-1 cannot tell the settings apart
    metric: Literal["top1", "mrr"] = "top1"


class TrainConfig(Strict):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    num_threads: int | None = Field(None, ge=1)
    compile: bool = False          # torch.compile the encoder + concept module of every stage
    checkpoint_every: int = Field(1, ge=0)  # epochs between resume checkpoints; 0: only on interruption
    # experiment tracking (train/tracking.py): either, both or none; MLflow's store: RUN/mlruns unless tracking_uri
    tracking: list[Literal["tensorboard", "mlflow"]] = []
    tracking_uri: str | None = None

    @field_validator("tracking")
    @classmethod
    def _once_each(cls, v: list[str]) -> list[str]:
        return distinct(v, "each tool once")


class EvalConfig(Strict):
    top_k: list[Annotated[int, Field(ge=1)]] = Field([1, 10], min_length=1)
    # how a text note is compared with a concept's linked findings with no training: a baseline row of its own and
    # the fused methods' extra signal (``TEXT_BASELINES`` in eval/text_baseline.py; other keys: its settings)
    text_baseline: Part = Part(name="mean")
    plots: bool = True
    export_top_k: int = Field(5, ge=1)
    # students also scored as adapted by AdaBN (encoders/adabn.py): their batch-norm statistics re-estimated on the
    # training samples that carry no label at all (a target domain's paired windows), as a row '<method>_adabn'
    adabn: list[str] = []

    @field_validator("text_baseline")
    @classmethod
    def _known_baseline(cls, v: Part) -> Part:
        """A misspelt baseline, a setting it does not take or a value out of its range fails at load."""
        from .eval.text_baseline import TEXT_BASELINES

        for key, value in v.params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key}: {value!r}; expected a number")
        try:
            TEXT_BASELINES.get(v.name).check_params(**v.params)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return Part(name=v.name.lower(), **v.params)


class RunConfig(Strict):
    name: str = "run"
    seed: int = Field(0, ge=0, lt=2**32)
    data: DataConfig = DataConfig()
    graph: GraphConfig = GraphConfig()
    text: TextConfig = TextConfig()
    space: SpaceConfig = SpaceConfig()
    gnn: GNNConfig = GNNConfig()
    teacher: TeacherConfig
    student: StudentConfig
    calibration: CalibrationConfig = CalibrationConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    _safe_name = field_validator("name")(_file_name_safe)

    @model_validator(mode="after")
    def _adabn_methods(self) -> "RunConfig":
        for m in self.eval.adabn:
            if m not in self.student.methods:
                raise ValueError(f"eval.adabn: {m!r} is not a student method; expected one of "
                                 f"{', '.join(self.student.methods)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def with_absolute_paths(self, base: Path | None = None) -> "RunConfig":
        """Relative file paths made absolute (against the working directory): what a run directory saves, so
        ``eval``, ``predict`` and ``--resume`` find the same files from anywhere."""
        base = base or Path.cwd()

        def fix(p: str | None) -> str | None:
            return p if not p or "://" in p or Path(p).is_absolute() else str((base / p).resolve())

        return self.model_copy(update={
            "data": self.data.model_copy(update={"path": fix(self.data.path), "bearings": self.data.bearings.model_copy(
                update={"file": fix(self.data.bearings.file), "graph": fix(self.data.bearings.graph)})}),
            "graph": self.graph.model_copy(update={"path": fix(self.graph.path)}),
            "text": self.text.model_copy(update={"model_path": fix(self.text.model_path),
                                                 "cache_dir": fix(self.text.cache_dir)})})


# --------------------------------------------------------------------- loading
_SUBKEY = re.compile(r"^([A-Za-z_][\w.]*): (.*)$", re.S)


def _format_error(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    if kind == "missing":
        return f"{loc}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    sub = _SUBKEY.match(msg)
    inp = err.get("input")
    if kind == "value_error" and sub and isinstance(inp, dict) and sub.group(1).split(".")[0] in inp:
        return f"{loc}.{sub.group(1)}: {sub.group(2)}"  # a part's validator naming one of its own keys
    got = err.get("input")
    if kind not in ("value_error",) and not isinstance(got, (dict, list)):
        msg += f" (got {got!r})"
    return f"{loc}: {msg}"


MAX_TREE_VALUES = 100_000


def check_tree(tree: Any, source: str) -> None:
    """YAML aliases may share values; refuse a value that contains itself, or an alias bomb that expands hugely."""
    count, on_path = 0, set()
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        count += 1
        if count > MAX_TREE_VALUES:
            raise ConfigError(f"the YAML expands to more than {MAX_TREE_VALUES} values (an alias bomb?)", source=source)
        if isinstance(node, (dict, list)):
            if id(node) in on_path:
                raise ConfigError("a YAML alias refers to a value that contains it (a cycle)", source=source)
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in (node.values() if isinstance(node, dict) else node))


def migrate_legacy_keys(tree: dict[str, Any]) -> list[str]:
    """Rename, in place, the keys of configs (and saved runs) written before the names said one thing each;
    returns what was renamed.  An old key wins over a new one beside it: it is the more specific (a user's file
    over its ``base:``, a ``--set`` over the file)."""
    notes: list[str] = []
    methods = (tree.get("student") or {}).get("methods") if isinstance(tree.get("student"), dict) else None
    for name, m in (methods.items() if isinstance(methods, dict) else ()):
        if isinstance(m, dict) and "prototypes" in m:
            m["concepts"] = m.pop("prototypes")
            notes.append(f"student.methods.{name}.prototypes -> concepts")
    ev = tree.get("eval")
    if isinstance(ev, dict) and ("prototype" in ev or "prototype_params" in ev):
        base = ev.get("text_baseline")
        base = {"name": base} if isinstance(base, str) else dict(base) if isinstance(base, dict) else {"name": "mean"}
        if "prototype" in ev:
            base = {"name": ev.pop("prototype")}
            notes.append("eval.prototype -> eval.text_baseline")
        params = ev.pop("prototype_params", None)
        if isinstance(params, dict):
            base.update(params)
            notes.append("eval.prototype_params -> keys of eval.text_baseline")
        elif params is not None:
            base["prototype_params"] = params  # not a mapping: let validation name it
        ev["text_baseline"] = base
    gnn = tree.get("gnn")
    if isinstance(gnn, dict) and "heads" in gnn and str(gnn.get("name", "gcn")).lower() != "gat":
        gnn.pop("heads")  # every GNN used to carry it; only gat ever read it
        notes.append("gnn.heads dropped (only gat reads it)")
    return notes


def validate_config(tree: dict[str, Any], source: str = "config", *, warn_legacy: bool = True) -> RunConfig:
    """The typed config; keys of older versions are renamed first, with a FutureWarning when ``warn_legacy``
    (a saved run's config loads silently: it was valid when written)."""
    if not isinstance(tree, dict):
        raise ConfigError("expected a mapping of keys at the top level", source=source)
    check_tree(tree, source)
    notes = migrate_legacy_keys(tree)
    if notes and warn_legacy:
        warnings.warn(f"{source}: old config keys renamed ({'; '.join(notes)}); they still work, the new names "
                      "are in the README", FutureWarning, stacklevel=2)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        errs = exc.errors()
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        err = ConfigError(_format_error(errs[0]) + more, source=source)
        err.problem = _format_error(errs[0])  # what load_config traces back to a --set argument
        raise err from None


def _problems(tree: dict[str, Any]) -> set[str]:
    tree = copy.deepcopy(tree)
    migrate_legacy_keys(tree)
    try:
        RunConfig.model_validate(tree)
    except ValidationError as exc:
        return {_format_error(e) for e in exc.errors()}
    return set()


def _blame_override(file_tree: dict[str, Any], overrides: list[str], problem: str) -> str | None:
    """The ``--set`` argument after which ``problem`` first appears (None: the file has it by itself)."""
    tree = copy.deepcopy(file_tree)
    if problem in _problems(tree):
        return None
    for item in overrides:
        tree = apply_overrides(tree, [item])
        if problem in _problems(tree):
            return item
    return None


def read_yaml(path: str | Path) -> dict[str, Any]:
    tree = load_yaml_file(Path(path), ConfigError)
    return tree if tree is not None else {}


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``a.b.0.c=value``: the value is parsed as YAML (numbers, booleans, lists)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except (yaml.YAMLError, ValueError, RecursionError):  # not YAML (or a date that is no date): the text itself
            value = raw
        node: Any = tree
        parts = key.strip().split(".")
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not p.isdigit() or int(p) >= len(node):
                    raise ConfigError(f"--set {key}: {'.'.join(parts[:i])} has no item {p!r}")
                if last:
                    node[int(p)] = value
                else:
                    node = node[int(p)]
            elif isinstance(node, dict):
                if last:
                    node[p] = value
                else:
                    if isinstance(node.get(p), str):  # a part named alone (``text_baseline: mean``) gets a key
                        node[p] = {"name": node[p]}
                    node = node.setdefault(p, {})
            else:
                raise ConfigError(f"--set {key}: {'.'.join(parts[:i])} is not a mapping")
    return tree


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge mappings key by key; a part whose ``name`` changes is replaced whole, not mixed."""
    out = dict(base)
    for k, v in over.items():
        old = out.get(k)
        if isinstance(old, str) and isinstance(v, dict):  # a part named alone, then given keys
            old = {"name": old}
        mergeable = isinstance(v, dict) and isinstance(old, dict) and old.get("name", v.get("name")) == v.get("name", old.get("name"))
        out[k] = deep_merge(old, v) if mergeable else v
    return out


def _data_path_from_file(tree: dict[str, Any], path: Path) -> None:
    """A relative ``data.path`` written in a config file is read from that file's folder, as ``base:`` is (one
    given with ``--set`` stays relative to the working directory).  The packaged configs' example paths
    (``runs/data/mfeat``) stay relative to the working directory: the package folder holds no data."""
    data = tree.get("data")
    value = data.get("path") if isinstance(data, dict) else None
    if (not isinstance(value, str) or not value.strip() or "://" in value or value.startswith("~")
            or Path(value).is_absolute() or path.resolve().parent == packaged_config("default").parent.resolve()):
        return
    tree["data"] = {**data, "path": os.path.normpath(path.parent / value)}


def read_config_tree(path: str | Path, _depth: int = 0) -> dict[str, Any]:
    """A YAML file, merged over the file its ``base:`` key names (relative to it)."""
    path = Path(path)
    tree = read_yaml(path)
    if not isinstance(tree, dict):
        raise ConfigError("expected a mapping of keys at the top level", source=str(path))
    _data_path_from_file(tree, path)
    base = tree.pop("base", None)
    if base is None:
        return tree
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"base: expected the name of a YAML file, got {base!r}", source=str(path))
    if _depth > 8:
        raise ConfigError("base: chain of base files is too deep (a cycle?)", source=str(path))
    bpath = Path(base) if Path(base).is_absolute() else path.parent / base
    if not bpath.is_file() and (Path(__file__).parent / "configs" / str(base)).is_file():
        bpath = Path(__file__).parent / "configs" / str(base)
    if not bpath.is_file():
        raise ConfigError(f"base: file {base!r} not found", source=str(path))
    return deep_merge(read_config_tree(bpath, _depth + 1), tree)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """The file (merged over its ``base:``), then ``--set`` overrides, validated; a problem that an override
    brought in is reported against that ``--set`` argument, not the file."""
    path = Path(path) if path else default_config_path()
    overrides = list(overrides or [])
    file_tree = read_config_tree(path)
    tree = apply_overrides(copy.deepcopy(file_tree) if overrides else file_tree, overrides)
    try:
        return validate_config(tree, source=str(path))
    except ConfigError as exc:
        problem = getattr(exc, "problem", None)
        culprit = _blame_override(file_tree, overrides, problem) if problem and overrides else None
        if culprit is None:
            raise
        shown = culprit if culprit.isprintable() else repr(culprit)  # one line, even for 'name=\n'
        raise ConfigError(str(exc).removeprefix(f"{path}: "), source=f"--set {shown}") from None


# kgdistill demo --task NAME: the packaged configs (full, --quick) of each demo task
# task name -> (full config, quick config): "patients" ranks real published patients (phenopacket-store), the
# default; "simulated" draws patients from the very annotations the graph holds (a graph-only scorer inverts it)
DEMO_TASKS: dict[str, tuple[str, str]] = {"patients": ("patients", "patients_quick"), "simulated": ("default", "quick"),
                                         "bearings": ("bearings", "bearings_quick"),
                                         "spoken-digits": ("spoken_digits", "spoken_digits_quick")}
DEFAULT_DEMO_TASK = "patients"


def demo_config(task: str | None, quick: bool) -> Path:
    """The packaged config of a demo task; an unknown task names the known ones."""
    task = task or DEFAULT_DEMO_TASK
    if task not in DEMO_TASKS:
        raise ConfigError(f"--task {task!r}: unknown demo task; expected one of: {', '.join(sorted(DEMO_TASKS))}")
    return packaged_config(DEMO_TASKS[task][1 if quick else 0])


def packaged_config(name: str) -> Path:
    return Path(__file__).parent / "configs" / f"{name}.yaml"


def default_config_path() -> Path:
    return Path(__file__).parent / "configs" / "default.yaml"


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
