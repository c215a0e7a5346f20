"""`kgdistill demo`: real published patients by default, the simulated task by name."""
from __future__ import annotations

import pytest

from kgdistill.config import DEFAULT_DEMO_TASK, demo_config, load_config
from kgdistill.errors import ConfigError


def test_the_demo_defaults_to_real_patients():
    assert DEFAULT_DEMO_TASK == "patients"
    full, quick = load_config(demo_config(None, False)), load_config(demo_config(None, True))
    assert full.data.source == quick.data.source == "phenopackets"
    assert full.data.patients.candidates == "omim" and quick.data.patients.candidates == "store"
    assert full.data.patients.graph == quick.data.patients.graph == "independent"
    assert full.data.patients.labelled_per_disease == 2
    assert full.student.encoder.name == "text"


def test_the_simulated_task_stays_available_by_name():
    cfg = load_config(demo_config("simulated", True))
    assert cfg.data.source == "hpo_benchmark" and cfg.data.hpo.num_diseases == 50


def test_an_unknown_task_or_patients_key_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="--task 'nope': unknown demo task; expected one of: bearings, patients, simulated, spoken-digits"):
        demo_config("nope", False)
    with pytest.raises(ConfigError, match="data.patients.graph"):
        load_config(demo_config(None, True), ["data.patients.graph=both"])
    with pytest.raises(ConfigError, match="data.patients.fractions"):
        load_config(demo_config(None, True), ["data.patients.fractions=[0.5,0.5]"])
