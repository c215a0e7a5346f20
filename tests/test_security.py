"""Security: no code runs when kgdistill loads anything, secrets stay in the environment, paths stay put.

* The package's syntax tree holds no unsafe loader (pickle & co., ``torch.load`` without
  ``weights_only=True``, ``np.load`` without ``allow_pickle=False``, ``yaml.load``, ``eval``/``exec``,
  ``trust_remote_code=True``), and a pickle that would create a file when unpickled is fed to every loader.
* XML external entities are never fetched; entity bombs are refused (see also the bad-input corpus).
* A real training run with ``NEO4J_PASSWORD`` set writes the secret nowhere (run directory, text cache,
  stdout, stderr, log records); a store URI holding a password is refused without echoing it.
* ``dataset.yaml`` file paths cannot climb out of the dataset folder with ``..``; names that become file
  names cannot hold a path.

Each check records a line for docs/reliability.md (scripts/reliability_report.py).
"""
from __future__ import annotations

import ast
import builtins
import io
import logging
import pickle  # noqa: S403  (only to build hostile payloads; the package itself must never import it)
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from kgdistill.errors import ConfigError, DataError, KGDistillError, RunDirError, StoreError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_loader import load_script  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kgdistill"
SECRET = "kgd-Secr3t-7f1c9a2e-never-written"


def report(record_property, check: str, detail: str) -> None:
    record_property("reliability", {"kind": "security", "check": check, "detail": detail})


# ============================================================================= no code on load
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "jsonpickle"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _is_const(node, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_loads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every construct that could run code from a file; the rules of docs/reliability.md."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            short = name.rsplit(".", 1)[-1]
            if name in ("eval", "exec") or name in ("builtins.eval", "builtins.exec"):
                found.append((node.lineno, f"{name}()"))
            elif name.endswith("torch.load") and not _is_const(_kw(node, "weights_only"), True):
                found.append((node.lineno, "torch.load without weights_only=True"))
            elif name.endswith(("torch.jit.load", "torch.save", "read_pickle", "to_pickle")):
                found.append((node.lineno, f"{name}()"))
            elif name in ("np.load", "numpy.load") and not _is_const(_kw(node, "allow_pickle"), False):
                found.append((node.lineno, f"{name} without allow_pickle=False"))
            elif name in ("yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all",
                          "yaml.full_load_all"):
                found.append((node.lineno, f"{name}()"))
            elif name == "yaml.load" and _dotted(_kw(node, "Loader") or ast.Name("?")) not in (
                    "yaml.SafeLoader", "yaml.CSafeLoader", "SafeLoader", "CSafeLoader"):
                found.append((node.lineno, "yaml.load without a safe Loader"))
            elif short == "from_pretrained" and not _is_const(_kw(node, "trust_remote_code") or ast.Constant(False),
                                                               False):
                found.append((node.lineno, "from_pretrained with trust_remote_code"))
            elif short == "from_pretrained" and not _is_const(_kw(node, "local_files_only"), True):
                found.append((node.lineno, "from_pretrained without local_files_only=True"))
    return found


def test_the_scanner_catches_unsafe_loads():
    bad = ("import pickle\nfrom joblib import load\nimport torch, yaml, numpy as np\nx = torch.load(p)\n"
           "y = torch.load(p, weights_only=False)\nz = np.load(p)\nw = yaml.load(s)\neval('1')\n"
           "M.from_pretrained(p, trust_remote_code=True, local_files_only=True)\nM.from_pretrained(p)\n")
    lines = [line for line, _ in unsafe_loads(ast.parse(bad))]
    assert sorted(lines) == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    ok = ("import torch, yaml, numpy as np\nx = torch.load(p, weights_only=True)\nz = np.load(p, allow_pickle=False)\n"
          "w = yaml.safe_load(s)\nv = yaml.load(s, Loader=yaml.SafeLoader)\nM.from_pretrained(p, local_files_only=True)\n")
    assert unsafe_loads(ast.parse(ok)) == []


def test_no_unsafe_loader_in_the_package(record_property):
    files = sorted(PACKAGE.rglob("*.py"))
    found = [f"{f.relative_to(ROOT)}:{line}: {what}" for f in files
             for line, what in unsafe_loads(ast.parse(f.read_text(encoding="utf-8"), filename=str(f)))]
    assert not found, "unsafe loaders in the package:\n" + "\n".join(found)
    text = "\n".join(f.read_text(encoding="utf-8") for f in files)
    safe = {"safetensors load_file": text.count("load_file("), "yaml.safe_load": text.count("yaml.safe_load("),
            "np.load(allow_pickle=False)": text.count("allow_pickle=False")}
    report(record_property, "no unsafe loader in kgdistill/ (syntax-tree scan of every module)",
           f"{len(files)} modules, 0 findings (no pickle/dill/joblib/marshal import, no torch.load without "
           f"weights_only=True, no torch.save, no np.load without allow_pickle=False, no yaml.load/full_load, no "
           f"eval/exec, no from_pretrained without local_files_only or with trust_remote_code); safe loaders in "
           f"use: " + ", ".join(f"{k} x{v}" for k, v in safe.items()))


class _Payload:
    """Unpickling this creates ``marker``: proof that the loader ran code from the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (str(self.marker), "w")


def test_pickle_payloads_never_execute(tmp_path, record_property):
    from kgdistill.config import load_config, packaged_config
    from kgdistill.data.paired import load_paired
    from kgdistill.encoders.text_embedder import TextEmbedder
    from kgdistill.fileio import load_tensors

    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Payload(marker))
    outcomes = []

    # a checkpoint that is a pickle (what torch.save writes)
    ckpt = tmp_path / "teacher.safetensors"
    ckpt.write_bytes(payload)
    with pytest.raises(RunDirError, match="not a readable safetensors checkpoint"):
        load_tensors(ckpt)
    outcomes.append("checkpoint: RunDirError")

    # a .npy modality of pickled objects
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "samples.tsv").write_text("id\tlabel\tsplit\np1\tA\ttrain\np2\tB\ttest\n", encoding="utf-8")
    (ds / "dataset.yaml").write_text("modalities: {v: {kind: vector, path: v.npy}}\n", encoding="utf-8")
    np.save(ds / "v.npy", np.array([_Payload(marker), _Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="Object arrays cannot be loaded when allow_pickle=False"):
        load_paired(ds)
    outcomes.append(".npy modality: DataError")

    # a text-cache shard that is a pickle: skipped like a torn shard, then recomputed
    cache = tmp_path / "cache"
    emb = TextEmbedder(str(tmp_path / "no-model"), cache_dir=cache)
    emb.cache_dir.mkdir(parents=True)
    (emb.cache_dir / "shard-0000.safetensors").write_bytes(payload)
    assert emb._load_cache() == {}
    outcomes.append("text cache shard: ignored")

    # YAML python tags in a config, a dataset.yaml and a --set value
    tag = f"!!python/object/apply:builtins.open [{marker}, w]"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"base: default.yaml\nname: {tag}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg)
    (ds / "dataset.yaml").write_text(f"name: {tag}\nmodalities: {{}}\n", encoding="utf-8")
    with pytest.raises(DataError, match="not valid YAML"):
        load_paired(ds)
    with pytest.raises(ConfigError):  # the text is kept as a string, which is no valid run name
        load_config(packaged_config("quick"), [f"name={tag}"])
    outcomes.append("YAML python tags (config, dataset.yaml, --set): refused")

    assert not marker.exists(), "a loader executed code from a file"
    report(record_property, "pickle payloads never execute (a payload that creates a file when unpickled)",
           "; ".join(outcomes) + "; the marker file was never created")


XXE = '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file://{path}">]>\n'


def test_xml_external_entities_are_not_fetched(tmp_path, record_property):
    from kgdistill.graph import load_graph

    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET, encoding="utf-8")
    head = XXE.format(path=secret_file)
    rdf = tmp_path / "x.rdf"
    rdf.write_text(head + '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
                   'xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#"><rdf:Description rdf:about="http://e.org/a">'
                   '<rdfs:label>L&x;</rdfs:label><rdfs:subClassOf rdf:resource="http://e.org/b"/></rdf:Description>'
                   '</rdf:RDF>\n', encoding="utf-8")
    g = load_graph(rdf)
    assert SECRET not in "".join(g.names + g.texts + g.ids)
    gml = tmp_path / "x.graphml"
    gml.write_text(head + '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><key id="n" for="node" '
                   'attr.name="name" attr.type="string"/><graph edgedefault="directed"><node id="a"><data key="n">'
                   'L&x;</data></node></graph></graphml>\n', encoding="utf-8")
    with pytest.raises(KGDistillError) as exc:
        load_graph(gml)
    assert SECRET not in str(exc.value)
    report(record_property, "XML external entities (file://) are never read",
           f"RDF/XML: the entity is left unexpanded (label {g.names[g.ids.index('http://e.org/a')]!r}); "
           f"GraphML: {type(exc.value).__name__} ('undefined entity'); entity bombs: refused "
           "(corpus cases rdfxml-entity-bomb, graphml-entity-bomb)")


# ============================================================================= credentials
def _fault_dataset(root: Path) -> Path:
    """A small paired dataset over the machine-fault taxonomy (the repository's own example generator)."""
    mod = load_script("make_fault_example")
    out = root / "fault-data"
    import contextlib

    with contextlib.redirect_stdout(io.StringIO()):
        mod.main([str(out), "--train", "4", "--labelled", "2", "--test", "2"])
    return out


def test_secret_in_environment_is_written_nowhere(tmp_path, monkeypatch, capsys, caplog, record_property):
    """A complete training run with NEO4J_* credentials set: the secret is in no file, no output, no log.
    This job never connects, so it catches a dump of the environment (config, logs, errors); the job that
    really logs in with the password and is grepped the same way is
    tests/test_graph_from_neo4j.py::test_training_reads_its_graph_from_neo4j (needs the Neo4j test server)."""
    from kgdistill.config import load_config
    from kgdistill.pipeline import run_pipeline

    monkeypatch.setenv("NEO4J_PASSWORD", SECRET)
    monkeypatch.setenv("NEO4J_USER", "neo4j-" + SECRET[:8])
    monkeypatch.setenv("KGDISTILL_NEO4J_URI", "bolt://127.0.0.1:1")
    data = _fault_dataset(tmp_path)
    # The shared text cache (vectors keyed by a hash of each text) keeps this fast; plots and the calibration
    # pass are off: PNG pixels and a second training pass add time, not places a secret could go.
    cfg = load_config(ROOT / "configs" / "machine_faults.yaml", [
        f"data.path={data}", "name=secret-check", "teacher.epochs=2", "student.epochs=2",
        "teacher.batch_size=32", "student.batch_size=32", "space.dim=16", "gnn.hidden=16",
        "teacher.encoder.hidden=16", "student.encoder.hidden=16", "train.device=cpu", "eval.plots=false",
        "calibration.enabled=false"])
    with caplog.at_level(logging.DEBUG):
        rd = run_pipeline(cfg, tmp_path / "run", progress=False, log=print)
    assert rd.info["status"] == "complete"
    needles = [SECRET.encode("utf-8"), SECRET.encode("utf-16-le"), SECRET[:8].encode("utf-8")]
    files = [p for p in rd.path.rglob("*") if p.is_file()]
    leaks = [str(p) for p in files if any(n in p.read_bytes() for n in needles)]
    out = capsys.readouterr()
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert not leaks, f"the secret was written to {leaks}"
    for name, text in (("stdout", out.out), ("stderr", out.err), ("log records", logs)):
        assert SECRET not in text and SECRET[:8] not in text, f"the secret appears in {name}"
    kinds = sorted({p.suffix or p.name for p in files})
    report(record_property, "a training run with NEO4J_PASSWORD / NEO4J_USER set writes the secret nowhere",
           f"{len(files)} files of the run directory grepped ({', '.join(kinds)}) plus stdout, stderr "
           "and log records: 0 occurrences (UTF-8 and UTF-16)")


@pytest.mark.parametrize("uri", [
    f"bolt://neo4j:{SECRET}@127.0.0.1:7687", f"bolt://neo4j:{SECRET}@127.0.0.1:port", f"neo4j+s://neo4j:{SECRET}@h",
    f"mysql://root:{SECRET}@db", f"sqlite://u:{SECRET}@/tmp/x.db", f"bolt://neo4j:{SECRET}@h:1/db?x=1",
])
def test_store_uri_with_password_is_refused_without_echo(uri, record_property):
    from kgdistill.store.base import open_store

    with pytest.raises(StoreError) as exc:
        open_store(uri)
    assert SECRET not in str(exc.value), str(exc.value)
    report(record_property, f"store URI with a password ({uri.split('://')[0]}://user:***@...) is refused",
           f"StoreError without the password: {str(exc.value)[:110]}")


# ============================================================================= paths
def _dataset(root: Path, spec: dict, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "dataset.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return root


SAMPLES = "id\tlabel\tsplit\np1\tA\ttrain\np2\tB\ttest\n"


@pytest.mark.parametrize("key, value, allowed", [
    ("modality", "../note.txt", False),
    ("modality", "sub/../../note.txt", False),
    ("modality", "../../../../../../etc/hostname", False),
    ("samples", "../samples.tsv", False),
    ("candidates", "../candidates.txt", False),
    ("modality", "sub/../note.txt", True),
    ("modality", "./sub/note.txt", True),
    ("modality", "ABSOLUTE", True),
    ("modality", "link/note.txt", True),
    ("graph", "../shared/graph.csv", True),
])
def test_dataset_paths_stay_inside_the_dataset_folder(tmp_path, key, value, allowed, record_property):
    from kgdistill.data.paired import load_paired

    outside = tmp_path / "outside"
    outside.mkdir()
    for name, text in (("note.txt", "a.\nb.\n"), ("samples.tsv", SAMPLES), ("candidates.txt", "A\nB\n")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        (outside / name).write_text(text, encoding="utf-8")
    ds = tmp_path / "ds"
    files = {"samples.tsv": SAMPLES, "note.txt": "a.\nb.\n", "sub/note.txt": "a.\nb.\n", "candidates.txt": "A\nB\n"}
    _dataset(ds, {}, files)
    (ds / "link").symlink_to(outside, target_is_directory=True)  # a link the dataset's author made on purpose
    value = str(outside / "note.txt") if value == "ABSOLUTE" else value
    spec: dict = {"samples": "samples.tsv", "modalities": {"note": {"kind": "text", "path": "note.txt"}}}
    if key == "modality":
        spec["modalities"]["note"]["path"] = value
    else:
        spec[key] = value
    (ds / "dataset.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    if allowed:
        d = load_paired(ds)
        assert len(d) == 2
        outcome = "read"
    else:
        dotted = {"modality": "modalities.note.path"}.get(key, key)
        with pytest.raises(DataError, match=f"{dotted}: .* points outside the dataset folder"):
            load_paired(ds)
        outcome = f"DataError naming `{dotted}`"
    report(record_property, f"dataset.yaml {key} path `{value if value != str(outside / 'note.txt') else '/abs/path'}`",
           outcome)


@pytest.mark.parametrize("override", ["name=../../elsewhere", "name=a/b", "name=..",
                                      "student.methods={kg_guided: {losses: [{name: ce}]}, '../x': {losses: [{name: ce}]}}"])
def test_names_that_become_file_names_cannot_hold_paths(override, record_property):
    from kgdistill.config import load_config, packaged_config

    with pytest.raises(ConfigError, match="cannot be used in a file name"):
        load_config(packaged_config("quick"), [override])
    report(record_property, f"config `{override.split('=')[0]}` holding a path ({override.split('=', 1)[1][:30]})",
           "ConfigError: cannot be used in a file name")
