"""Configuration: packaged configs validate, inheritance works, every bad key is named in one line."""
from __future__ import annotations

from pathlib import Path

import pytest

from kgdistill.config import apply_overrides, load_config, packaged_config
from kgdistill.errors import ConfigError


def write(tmp_path, text: str):
    p = tmp_path / "cfg.yaml"
    p.write_text(text, encoding="utf-8")
    return p


BASE = "base: default.yaml\n"


def test_packaged_configs_validate_and_inherit():
    default = load_config(packaged_config("default"))
    quick = load_config(packaged_config("quick"))
    assert default.data.hpo.num_diseases == 300
    assert quick.data.hpo.num_diseases == 50
    assert quick.gnn.name == default.gnn.name == "gcn"  # inherited from base
    assert set(quick.student.methods) >= {"student_alone", "kd", "kg_guided"}
    assert quick.student.methods["kg_guided"].losses[1].params == {"temperature": 4.0}


def test_overrides_parse_yaml_values():
    cfg = load_config(packaged_config("quick"), ["student.epochs=7", "calibration.gammas=[0.1, 0.2]",
                                                 "student.methods.kd.losses.1.temperature=2.5"])
    assert cfg.student.epochs == 7
    assert cfg.calibration.gammas == [0.1, 0.2]
    assert cfg.student.methods["kd"].losses[1].params["temperature"] == 2.5


@pytest.mark.parametrize("text,needle", [
    (BASE + "teacher:\n  foo: 1\n", "teacher.foo: unknown key"),
    (BASE + "student:\n  epochs: many\n", "student.epochs"),
    (BASE + "space:\n  temperature: -1\n", "space.temperature"),
    (BASE + "student:\n  methods:\n    kd:\n      losses: [{name: kd, temperature: -2}]\n", "temperature must be a number > 0"),
    (BASE + "student:\n  methods:\n    kd:\n      losses: [{name: kd, weight: heavy}]\n", "student.methods.kd.losses.0.weight"),
    (BASE + "student:\n  methods:\n    kd:\n      losses: [{name: kd, weight: .nan}]\n", "expected a finite number"),
    (BASE + "student:\n  methods:\n    kd:\n      losses: [{name: ce}, {name: ce}]\n", "listed twice"),
    (BASE + "data:\n  source: paired\n", "data.path is required"),
    (BASE + "gnn: [1, 2]\n", "gnn"),
    ("teacher: {epochs: 3\n", "not valid YAML"),
    ("base: missing.yaml\n", "base: file 'missing.yaml' not found"),
])
def test_bad_config_is_one_clear_line(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert needle in msg
    assert str(p) in msg
    assert "\n" not in msg


def test_yaml_error_names_the_line(tmp_path):
    p = write(tmp_path, BASE + "teacher:\n  epochs: [1,\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:\d+: not valid YAML"):
        load_config(p)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["student.epochs"])
    with pytest.raises(ConfigError, match="has no item"):
        apply_overrides({"a": [1]}, ["a.5=2"])


def test_config_hash_tracks_content():
    a = load_config(packaged_config("quick"))
    b = load_config(packaged_config("quick"), ["seed=1"])
    assert a.hash() == load_config(packaged_config("quick")).hash()
    assert a.hash() != b.hash()


def test_a_loss_parameter_with_a_bad_value_fails_at_load_naming_the_key():
    from kgdistill.config import load_config, packaged_config

    with pytest.raises(ConfigError, match=r"student\.methods\.kg_guided\.losses: loss 'graph_relational': alpha "
                                          r"must be in \[0\.0, 1\.0\], got 7"):
        load_config(packaged_config("quick"), ["student.methods.kg_guided.losses=[{name: graph_relational, alpha: 7}]"])
    with pytest.raises(ConfigError, match=r"teacher\.losses: loss 'ce': .*unexpected keyword argument 'bogus'"):
        load_config(packaged_config("quick"), ["teacher.losses=[{name: ce, bogus: 1}]"])


# ------------------------------------------------------------------ where a problem and a path come from
@pytest.mark.parametrize("overrides,culprit,needle", [
    (["seed=1", "gnn.hiden=64"], "gnn.hiden=64", "gnn.hiden: unknown key; gnn 'gcn' takes: dropout, eval_chunk, hidden, input_dim, layers, name, num_neighbors, self_feature_dropout"),
    (["student.methods.kd.losses.1.temperature=-1", "seed=2"], "student.methods.kd.losses.1.temperature=-1",
     "student.methods.kd.losses.1: temperature must be a number > 0, got -1"),
    (["space.temperature=-0.5"], "space.temperature=-0.5", "space.temperature: Input should be greater than 0 (got -0.5)"),
])
def test_a_bad_override_is_reported_against_its_set_argument(tmp_path, overrides, culprit, needle):
    p = write(tmp_path, BASE)
    with pytest.raises(ConfigError) as exc:
        load_config(p, overrides)
    assert str(exc.value) == f"--set {culprit}: {needle}"


def test_a_problem_in_the_file_is_still_the_files_with_overrides_given(tmp_path):
    p = write(tmp_path, BASE + "gnn:\n  hiden: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p, ["gnn.hidden=4", "seed=3"])
    assert str(exc.value) == f"{p}: gnn.hiden: unknown key; gnn 'gcn' takes: dropout, eval_chunk, hidden, input_dim, layers, name, num_neighbors, self_feature_dropout"


def test_relative_data_path_is_read_from_the_config_files_folder(tmp_path, monkeypatch):
    """Like base:, a relative data.path in a file is relative to that file; from --set, to the working folder."""
    (tmp_path / "cfgs" / "shared").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    (tmp_path / "cfgs" / "shared" / "paired.yaml").write_text(BASE + "data: {source: paired, path: ../data/ds}\n")
    own = tmp_path / "cfgs" / "own.yaml"
    own.write_text("base: shared/paired.yaml\nname: own\n")
    assert load_config(own).data.path == str(tmp_path / "cfgs" / "data" / "ds")  # from the base file's folder
    own.write_text("base: shared/paired.yaml\ndata: {path: mine}\n")
    assert load_config(own).data.path == str(tmp_path / "cfgs" / "mine")
    assert load_config(own, ["data.path=here"]).data.path == "here"  # --set: the working directory's
    for kept in ("/abs/ds", "~/ds", "s3://bucket/ds"):
        own.write_text(f"base: shared/paired.yaml\ndata: {{path: '{kept}'}}\n")
        assert load_config(own).data.path == kept
    rel = load_config(Path("..") / "cfgs" / "own.yaml", ["data.path=x"]).with_absolute_paths()
    assert rel.data.path == str(tmp_path / "work" / "x")


def test_packaged_example_data_paths_stay_relative_to_the_working_folder():
    assert load_config(packaged_config("bench_mfeat")).data.path == "runs/data/mfeat"
    fault = load_config(Path(__file__).resolve().parents[1] / "configs" / "machine_faults.yaml")
    assert fault.data.path == str(Path(__file__).resolve().parents[1] / "runs" / "fault-data")
