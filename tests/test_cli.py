"""The command line: user mistakes give one line on stderr, exit code 2, no traceback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def one_line_error(res, *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    err = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(err) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert err[0].startswith("kgdistill: error: ")
    for n in needles:
        assert n in err[0], err[0]


def test_graph_inspect(cli):
    res = cli("graph", "inspect", "graphs/machine_faults.ttl", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["nodes"] == 80 and info["edges"] == 155 and info["num_cycles"] == 0


@pytest.mark.parametrize("content,needles", [
    ("@prefix ex: <http://e/> .\nex:a ex:b \n", ("bad.ttl",)),
    ("", ("bad.ttl", "empty")),
])
def test_graph_inspect_bad_file(cli, tmp_path, content, needles):
    p = tmp_path / "bad.ttl"
    p.write_text(content)
    one_line_error(cli("graph", "inspect", str(p)), *needles)


def test_train_bad_config_key(cli, tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("base: default.yaml\nstudent:\n  epochz: 3\n")
    one_line_error(cli("train", str(p), "--out", str(tmp_path / "run")), "c.yaml", "student.epochz: unknown key")
    assert not (tmp_path / "run").exists()


def test_train_bad_override(cli, tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("base: default.yaml\n")
    one_line_error(cli("train", str(p), "--set", "student.methods.kd.losses.1.temperature=-1"), "temperature")


def test_predict_needs_complete_run(cli, tmp_path):
    one_line_error(cli("predict", str(tmp_path), "--text", "Seizures."), "not a run directory")
    one_line_error(cli("predict", str(tmp_path)), "exactly one of --text or --input")


def test_predict_and_eval_on_a_real_run(cli, tiny_run):
    res = cli("predict", str(tiny_run), "--text", "The patient presents with seizures. Hypotonia was noted.",
              "--top-k", "3")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.strip() and not ln.strip().startswith("evidence")]
    assert len(lines) == 3 and lines[0].strip().startswith("1.")
    res = cli("eval", str(tiny_run), "--json")
    assert res.returncode == 0, res.stderr
    assert set(json.loads(res.stdout)["methods"]) >= {"teacher", "text_baseline", "kg_guided"}


def test_bad_data_in_train_is_one_line(cli, tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "dataset.yaml").write_text("graph: g.csv\nsamples: s.tsv\nmodalities: {a: {kind: vector, path: a.csv}}\n")
    (ds / "s.tsv").write_text("id\tlabel\tsplit\nx\tA\ttrain\ny\tB\ttest\n")
    (ds / "a.csv").write_text("1,2\n3,nan\n")
    (ds / "g.csv").write_text("source,target\nA,B\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"base: default.yaml\ndata: {{source: paired, path: {ds}}}\n")
    res = cli("train", str(cfg), "--out", str(tmp_path / "run"))
    one_line_error(res, "a.csv:2", "NaN")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "failed"


def _commands(group, path=()):
    """Every leaf command of the CLI with its option names (--help aside)."""
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group (typer carries its own copy of click: no isinstance)
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), sorted(o for p in cmd.params if p.param_type_name == "option" for o in p.opts
                                        if o != "--help")


def test_the_readme_command_table_lists_every_command_and_flag():
    """A flag the CLI accepts (--quiet, --device, --method, ...) is in the README row of its command."""
    import typer

    from kgdistill.cli import app

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = [ln.replace("\\|", "/").split("|")[1] for ln in readme.splitlines() if ln.startswith("| `kgdistill ")]
    missing, seen = [], 0
    for path, options in _commands(typer.main.get_command(app)):
        seen += len(options)
        mine = [r for r in rows if f"`kgdistill {' '.join(path)}" in r]
        if not mine:
            missing.append(" ".join(path))
        missing += [f"{' '.join(path)} {o}" for o in options if not any(o in r for r in mine)]
    assert seen > 30 and not missing, f"not in README's command table: {missing}"
