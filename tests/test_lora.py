"""Text students with LoRA adapters (``student.encoder.mode: lora``, peft): only the adapters and the encoder's
own layers train, the run saves them without the base model, and a loaded run scores as the run did."""
from __future__ import annotations

import pytest
import torch

from kgdistill.data.prepare import PreparedModality
from kgdistill.encoders import ENCODERS
from kgdistill.encoders.text_embedder import TextEmbedder, default_model_path
from kgdistill.errors import ConfigError
from kgdistill.fileio import load_state, save_tensors

SENTENCES = ["The patient presents with seizures.", "Hypotonia was noted.", "No fever."]
HIDDEN, LAYERS = 384, 6   # all-MiniLM-L6-v2


@pytest.fixture(scope="module")
def prepared():
    table = torch.from_numpy(TextEmbedder().embed(SENTENCES))
    return PreparedModality("note", "text", torch.tensor([[0, 1], [2, -1]]), {"sentences": table},
                            sentences=SENTENCES, text_model=default_model_path())


def lora_encoder(prepared, **lora):
    torch.manual_seed(0)
    return ENCODERS.get("text").from_modality(prepared, 8, hidden=16, mode="lora", lora=lora)


def test_only_the_adapters_and_the_head_train(prepared):
    enc = lora_encoder(prepared, rank=4, alpha=8, target_modules=["query", "value"])
    own = sum(p.numel() for n, p in enc.named_parameters() if not n.startswith("transformer."))
    adapters = sum(p.numel() for n, p in enc.named_parameters() if n.startswith("transformer.") and p.requires_grad)
    # A (4 x 384) and B (384 x 4) on query and value of each of the 6 layers
    assert adapters == LAYERS * 2 * (4 * HIDDEN + HIDDEN * 4) == 36864
    assert sum(p.numel() for p in enc.parameters() if p.requires_grad) == adapters + own
    base = [n for n, p in enc.named_parameters() if n.startswith("transformer.") and not p.requires_grad]
    assert base and all("lora_" not in n for n in base)
    keys = list(enc.state_dict())
    assert [k for k in keys if k.startswith("transformer.") and "lora_" not in k] == []
    assert sum("lora_A" in k for k in keys) == sum("lora_B" in k for k in keys) == LAYERS * 2


def test_before_training_the_adapters_change_nothing(prepared):
    """B starts at zero: the adapted model's sentence vectors are the frozen embedder's."""
    enc = lora_encoder(prepared)
    assert torch.allclose(enc._sentence_vectors(prepared.x), prepared.tables["sentences"][prepared.x.clamp_min(0)],
                          atol=1e-4)


def test_saved_adapter_is_small_and_loads_back_to_the_same_outputs(prepared, tmp_path):
    enc = lora_encoder(prepared, rank=4)
    opt = torch.optim.SGD([p for p in enc.parameters() if p.requires_grad], lr=0.5)
    enc.train()
    enc(prepared.x).pow(2).sum().backward()
    opt.step()
    b = enc.transformer.base_model.model.encoder.layer[0].attention.self.query.lora_B.default.weight
    assert b.abs().sum() > 0   # the step moved the adapters
    save_tensors(enc.state_dict(), tmp_path / "student.safetensors")
    assert (tmp_path / "student.safetensors").stat().st_size < 300_000   # the base model alone is ~90 MB
    fresh = lora_encoder(prepared, rank=4)
    load_state(fresh, tmp_path / "student.safetensors")
    enc.eval(), fresh.eval()
    assert torch.equal(enc(prepared.x), fresh(prepared.x))


def test_the_transformer_trains_at_its_own_rate(prepared):
    """Fine-tuning: every MiniLM weight at 2e-5 by default, the pooling and head at the stage's rate; LoRA: the
    adapters at the stage's rate unless ``transformer_lr`` says otherwise; an optimiser built by the trainer
    carries both rates through its one-cycle schedule."""
    from kgdistill.train.trainer import param_groups

    torch.manual_seed(0)
    fine = ENCODERS.get("text").from_modality(prepared, 8, hidden=16, mode="finetune")
    head, inner = fine.param_groups(0.002)
    assert (head["lr"], inner["lr"]) == (0.002, 2e-5)
    assert {id(p) for p in inner["params"]} == {id(p) for p in fine.transformer.parameters()}
    assert len(head["params"]) + len(inner["params"]) == len(list(fine.parameters()))
    lora = lora_encoder(prepared)
    assert [g["lr"] for g in lora.param_groups(0.002)] == [0.002, 0.002]
    lora.transformer_lr = 1e-4
    head, adapters = lora.param_groups(0.002)
    assert adapters["lr"] == 1e-4 and adapters["params"] and all(p.requires_grad for p in adapters["params"])
    extra = torch.nn.Parameter(torch.zeros(3))
    groups = param_groups(fine, 0.002, [extra])
    assert groups[0]["params"][-1] is extra and [g["lr"] for g in groups] == [0.002, 2e-5]
    opt = torch.optim.AdamW(groups)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=10)
    assert sched.get_last_lr()[1] / sched.get_last_lr()[0] == pytest.approx(2e-5 / 0.002)
    with pytest.raises(ValueError, match="^transformer_lr: the transformer trains only with mode: finetune or lora"):
        ENCODERS.get("text").check_params(mode="frozen", transformer_lr=1e-5)


@pytest.mark.parametrize("override, message", [
    ("student.encoder.transformer_lr=0", "student.encoder.transformer_lr: expected a number in (0, 1), got 0"),
    ("student.encoder.lora.rank=0", "student.encoder.lora.rank: expected a whole number > 0, got 0"),
    ("student.encoder.lora.alpha=-1", "student.encoder.lora.alpha: expected a number > 0"),
    ("student.encoder.lora.target_modules=[]", "student.encoder.lora.target_modules: expected a list"),
    ("student.encoder.lora.ranks=4", "student.encoder.lora.ranks: unknown key"),
    ("student.encoder.mode=adapters", "student.encoder.mode: 'adapters'; expected one of frozen, finetune, lora"),
])
def test_bad_lora_settings_fail_at_load_naming_the_key(tiny_config_with, override, message):
    with pytest.raises(ConfigError) as exc:
        tiny_config_with("student.encoder.mode=lora", override)
    assert message in str(exc.value) and str(exc.value).startswith(f"--set {override}")


def test_a_target_module_the_model_lacks_names_the_key_and_the_layers(prepared):
    from kgdistill.config import Part
    from kgdistill.encoders import build_encoder

    spec = Part(name="text", mode="lora", lora={"target_modules": ["q_proj"]})
    with pytest.raises(ConfigError, match=r"^student.encoder.lora.target_modules: \['q_proj'\] match no layer .*"
                                          r"named: .*query"):
        build_encoder(spec, prepared, 8, "student.encoder")


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_config_with):
    from kgdistill.pipeline import run_pipeline

    # one student, one epoch, no calibration pass: the text model runs on every batch, so keep it short
    cfg = tiny_config_with("student.encoder.mode=lora", "student.encoder.lora={rank: 4, alpha: 8}",
                           "student.epochs=1", "student.batch_size=32", "calibration.enabled=false",
                           "student.methods={kg_guided: {concepts: gnn, losses: [{name: ce}, {name: kd}]}}")
    out = tmp_path_factory.mktemp("runs") / "lora"
    return run_pipeline(cfg, out, progress=False, log=lambda *_: None).path


def test_a_lora_run_saves_adapters_alone_and_scores_the_same_when_loaded(lora_run):
    from kgdistill.model import DistilledModel
    from kgdistill.results import evaluate
    from kgdistill.run_dir import RunDir
    from kgdistill.task import build_task

    rd = RunDir.open(lora_run)
    cfg = rd.config()
    for name in cfg.student.methods:
        f = rd.checkpoints / f"student_{name}.safetensors"
        assert f.stat().st_size < 2_000_000, (name, f.stat().st_size)
    task = build_task(cfg, rd.path, torch.device("cpu"))
    model = DistilledModel.load(lora_run, task)
    assert model.students["kg_guided"].encoder.mode == "lora"
    methods, _ = evaluate(cfg, task, model, torch.device("cpu"))
    assert methods == rd.metrics()["methods"]
    # predict (no data): the student reads new notes' own sentences, as evaluation read the test notes
    alone = DistilledModel.load(lora_run, methods=["kg_guided"])
    test = task.idx("test")[:3]
    notes = [task.ds.modalities[task.student_modality].values[i] for i in test]
    x, table, per, polarity = alone.text_inputs(notes)
    scores = alone.score_inputs("kg_guided", x, table, polarity, alone.sentences_of(x, per))
    raw = model.task_scores(task, test, torch.device("cpu"))
    expected = model.final_scores(raw, task.baseline_scores(test))["kg_guided"]
    assert torch.allclose(scores, expected, atol=1e-4)
