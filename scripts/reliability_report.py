#!/usr/bin/env python3
"""Run the bad-input corpus, the fuzzers and the security checks, and write docs/reliability.md from them.

    .venv/bin/python scripts/reliability_report.py [--out docs/reliability.md] [--print]

Every figure in the document comes from this run: each test records what it did with pytest's
``record_property("reliability", {...})`` and a small plugin here collects those records. Nothing is
written when a test fails (the failures are listed instead and the exit status is 1).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_FILES = ["tests/test_bad_inputs.py", "tests/test_fuzz.py", "tests/test_security.py", "tests/test_resume.py",
              "tests/test_distributed.py::test_sigterm_under_torchrun_then_resume_equals_an_uninterrupted_run",
              "tests/test_store_neo4j.py::test_server_killed_or_restarted_mid_push"]
CLASS_ORDER = ["OBO", "Turtle", "RDF/XML", "N-Triples", "GraphML", "CSV graph", "dataset.yaml", "samples.tsv",
               "candidates.txt", "modality files", "config", "checkpoint", "run directory"]


MUTATION_START, MUTATION_END = "<!-- mutation:start -->", "<!-- mutation:end -->"
CAN_AND_CANNOT = [
    "## What the suite can and cannot catch",
    "",
    "- **A wrong figure in the metrics, the calibration rule or a loss.** Every metric (top-k and MRR with the "
    "pessimistic tie rule, the seen/unseen split, the harmonic mean, chance levels, the concept-similarity "
    "Jaccard, mistake severity and its pooled form) is checked against rankings worked out by hand "
    "(`tests/test_metrics.py`, `tests/test_bench_quality.py`), every loss against hand values "
    "(`tests/test_losses.py`), the calibration rule against hand-made validation scores "
    "(`tests/test_calibration.py`). Mutation testing measures it: see *Mutation testing* below for the share of "
    "one-line changes to `kgdistill/eval/` and `kgdistill/losses/` that some test fails on.",
    "- **A model that does not learn.** Each \"it learns\" bound states the probability that a random model "
    "passes it, computed in `tests/chance.py` (exact binomial tails for top-k, Hoeffding for MRR), and keeps it "
    "below 1 in 1,000; on a seeded task without a training-free part that is already right "
    "(`tests/test_it_learns.py`) the distilled student must beat the student trained alone (exact sign test) and "
    "the graph-guided student's own space must rank unseen concepts far above chance.",
    "- **Crashes, unclear errors, lost work.** Bad input ends in one line (the corpus and fuzzing below); a kill, "
    "SIGTERM, a real full disk (a size-limited tmpfs in a user namespace) and a really unwritable folder "
    "(permissions, the run without capabilities) leave a run that resumes to the same figures bit for bit.",
    "- **It cannot catch** a model that is a few points worse but still far above chance (the benchmark pages, "
    "not the tests, track the figures themselves); wording and layout of `report.md` and the plots "
    "(`eval/report.py` is left out of mutation testing); behaviour that needs a GPU or several machines (the "
    "distributed tests run torchrun on CPU); a safetensors write that fails for a reason other than an OS error.",
]


class Collector:
    """Keeps each test's reliability records, outcome and duration."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.failed: list[str] = []
        self.passed = 0

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid} ({report.when})")
        if report.when != "call":
            return
        self.passed += report.passed
        for key, value in report.user_properties:
            if key == "reliability":
                self.records.append(dict(value, test=report.nodeid, seconds=report.duration))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(records: list[dict], seconds: float) -> str:
    cases = [r for r in records if r["kind"] == "case"]
    fuzz = [r for r in records if r["kind"] == "fuzz"]
    security = [r for r in records if r["kind"] == "security"]
    faults = [r for r in records if r["kind"] == "fault"]
    errors = sum(1 for c in cases if c["outcome"] == "error")
    repairs = len(cases) - errors
    via_cli = sum(1 for c in cases if c["via"] == "cli")
    examples = sum(f["examples"] for f in fuzz)
    by_class: dict[str, list[dict]] = defaultdict(list)
    for c in cases:
        by_class[c["class"]].append(c)
    classes = [c for c in CLASS_ORDER if c in by_class] + sorted(set(by_class) - set(CLASS_ORDER))
    error_types = Counter(c["error"] for c in cases if c["error"])

    out = [
        "# Reliability: bad input, fuzzing, faults, security",
        "",
        "<!-- Written by scripts/reliability_report.py from a run of " + ", ".join(TEST_FILES)
        + ". Do not edit by hand: re-run the script. -->",
        "",
        "kgdistill is fed ontologies and data exported by other tools. This page states what it does with "
        "broken input, and every figure on it comes from the test suite (`.venv/bin/python "
        "scripts/reliability_report.py` re-runs the tests and rewrites it).",
        "",
        *CAN_AND_CANNOT,
        "",
        "## Figures",
        "",
        "| what | count |",
        "|---|---|",
        f"| bad-input cases (`tests/test_bad_inputs.py`) | **{len(cases)}** in {len(by_class)} input classes |",
        f"| ... ending in a one-line error (exit code 2 on the command line) | {errors} "
        f"({', '.join(f'{t} {n}' for t, n in error_types.most_common())}) |",
        f"| ... ending in a documented repair or acceptance | {repairs} |",
        f"| ... run end to end through the `kgdistill` command | {via_cli} |",
        f"| fuzzed examples (`tests/test_fuzz.py`, hypothesis) | **{examples}** over {len(fuzz)} targets |",
        f"| ... of which loaded into a valid object / refused with a KGDistillError | "
        f"{sum(f['accepted'] for f in fuzz)} / {sum(sum(f['rejected'].values()) for f in fuzz)} |",
        f"| ... any other exception, or a hang (> 10 s per example) | 0 (the tests fail otherwise) |",
        f"| slowest single fuzzed example | {max((f['slowest_s'] for f in fuzz), default=0):.2f} s |",
        f"| security checks (`tests/test_security.py`) | {len(security)} |",
        f"| faults injected into real runs (`tests/test_resume.py`, torchrun, Neo4j) | **{len(faults)}**, "
        "nothing lost in any (see Faults) |",
        f"| wall time of this run | {seconds:.0f} s |",
        "",
        "## The rules",
        "",
        "- **Every user mistake is one line.** Any problem with an input raises a `KGDistillError` "
        "(`ConfigError`, `GraphFormatError`, `DataError`, `RunDirError`, `StoreError`, ...) whose message starts "
        "with the file and, where the file has lines, the line (`file:line: message`), or names the dotted "
        "config key or the id. The command line prints it as `kgdistill: error: <file>:<line>: <message>`, with "
        "no traceback, and exits with code 2. Anything else escaping is a bug.",
        "- **Repairs are few, deliberate and visible**: obsolete OBO terms are skipped with a warning; edges to "
        "undeclared nodes are dropped (OBO) or kept as bare nodes (CSV, GraphML) and always listed as dangling "
        "(`graph inspect`); a UTF-8 byte-order mark is dropped; a duplicate id with the *same* name is merged "
        "(OBO, CSV; GraphML forbids duplicate ids); a candidate listed twice is kept once. Everything else is refused.",
        "- **Accepted but reported**: an `is_a` cycle and a graph without edges load; `graph inspect` prints the "
        "cycles and the isolated nodes.",
        "- **Text is UTF-8.** Other encodings (Latin-1, Windows-1252, UTF-16) are refused with the line and byte.",
        "- **Numbers are finite.** NaN or infinite values in modality files, edge weights and the configuration "
        "(including a part's own parameters such as a loss `alpha`) are refused.",
        "- **No code runs on load.** Checkpoints and the text cache are safetensors (no pickle); `.npy` files are "
        "read with `allow_pickle=False`; YAML with `safe_load`; HuggingFace models with `local_files_only` and "
        "without `trust_remote_code`. `tests/test_security.py` scans the package's syntax tree for any unsafe "
        "loader (pickle, `torch.load` without `weights_only=True`, `yaml.load`, `eval`, ...) and feeds a pickle "
        "that would run code to every loader. XML entity bombs are refused (RDF/XML before parsing, GraphML by "
        "the XML parser's amplification limit); external entities are never fetched.",
        "- **Credentials only from the environment** (`NEO4J_USER` / `NEO4J_PASSWORD`): a store URI holding a "
        "password is refused without echoing it, and a whole training run with `NEO4J_PASSWORD` set is grepped "
        "for the secret (every file of the run directory, stdout and stderr).",
        "- **Paths stay where the user put them.** In `dataset.yaml`, `samples`, `candidates` and every "
        "modality `path` are relative to the dataset folder and may not climb out of it with `..` "
        "(`DataError` naming the key); an absolute path is taken as given (the author asked for that file), and "
        "so is a symbolic link inside the folder (its author made it). "
        "`graph` may point outside (`graph: ../ontologies/hp.obo`), because one ontology is commonly shared by "
        "several datasets. Names that become file names (the run `name`, student method names) cannot hold "
        "`/`, `\\`, `.` or `..`. Paths in a run configuration (`data.path`, `graph.path`, `base:`, "
        "`text.*`) are the user's own choice and are taken as written (a relative `data.path` or `base:` in a "
        "config file is read from that file's folder).",
        "- **No hang on any input**: every fuzzed example runs under a hard 10 s alarm; XML entity expansion is "
        "bounded; YAML alias bombs and self-referencing aliases in a configuration are refused. For a longer soak, "
        "`KGDISTILL_FUZZ_SCALE=20 .venv/bin/python -m pytest tests/test_fuzz.py` multiplies every example budget.",
        "",
        "## Bad-input corpus, by input class",
        "",
        "`cli`: through the `kgdistill` command (exit code and the one stderr line checked); `api`: through "
        "the Python function the command calls. Messages are shown with the case folder removed.",
        "",
    ]
    for cls in classes:
        out += [f"### {cls}", "", "| case | bad input | via | what happens |", "|---|---|---|---|"]
        for c in by_class[cls]:
            out.append(f"| `{c['id']}` | {_cell(c['bad'])} | {c['via']} | {_cell(c['detail'])} |")
        out.append("")
    out += [
        "Also covered elsewhere (not counted above): `tests/test_graph_loaders.py` (empty files and Latin-1 "
        "bytes for every graph format, OBO/CSV/GraphML line errors, `dangling` modes, byte-level fuzzing of "
        "real files), `tests/test_data.py` (row counts, empty text, splits, duplicate sample ids, NaN in "
        "`.npy`), `tests/test_config.py` (unknown keys, types, loss weights, KD temperature), `tests/test_cli.py` "
        "(NaN in a CSV modality through `kgdistill train`) and `tests/test_pipeline.py` (a run left `running`).",
        "",
        "## Fuzzing",
        "",
        "Each target: any generated input either loads into a valid object (the invariants every consumer "
        "relies on are asserted) or raises a `KGDistillError` with a one-line message naming the file. "
        "Examples are grammar-aware (the format's own vocabulary, ids from a small pool so duplicates, cycles "
        "and dangling references are frequent), then truncated, corrupted or re-encoded.",
        "",
        "| target | inputs | examples | loaded | refused (by error type) | slowest |",
        "|---|---|---|---|---|---|",
    ]
    for f in fuzz:
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(f["rejected"].items())) or "-"
        out.append(f"| {f['target']} | {_cell(f['what'])} | {f['examples']} | {f['accepted']} | {rejected} | "
                   f"{f['slowest_s']:.2f} s |")
    out += ["", "## Faults", "",
            "Each fault is injected into a real run (a real process, a real Neo4j server); the test then checks "
            "what is on disk and continues the run. Resume state: `RUN_DIR/state/` (per-stage safetensors, "
            "written to a temporary name and renamed, so a kill at any moment leaves the previous one whole).",
            "", "| fault | how it is injected | what happens; what is lost |", "|---|---|---|"]
    for f in faults:
        out.append(f"| {_cell(f['fault'])} | {_cell(f['injected'])} | {_cell(f['outcome'])} |")
    out += ["", "## Security checks", "", "| check | result |", "|---|---|"]
    for s in security:
        out.append(f"| {_cell(s['check'])} | {_cell(s['detail'])} |")
    out += ["", *mutation_section(), ""]
    return "\n".join(out)


def mutation_section(page: Path = ROOT / "docs" / "reliability.md") -> list[str]:
    """The mutation-testing section as scripts/mutation_summary.py --update-docs last wrote it (that run takes
    tens of minutes and is not part of this one): kept from the current page between its markers."""
    text = page.read_text(encoding="utf-8") if page.is_file() else ""
    start, end = text.find(MUTATION_START), text.find(MUTATION_END)
    if start < 0 or end < start:
        return [MUTATION_START, "## Mutation testing", "", "Not measured yet: run `scripts/mutation.sh`.",
                MUTATION_END]
    return text[start:end + len(MUTATION_END)].splitlines()


@contextlib.contextmanager
def neo4j_server():
    """The Neo4j test server for the store fault test, started and stopped as scripts/test.sh does."""
    script = ROOT / "scripts" / "neo4j.sh"
    subprocess.run([str(script), "start"], check=True)
    env = subprocess.run([str(script), "env"], check=True, capture_output=True, text=True).stdout
    for line in env.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            os.environ[key] = shlex.split(value)[0] if value else ""
    try:
        yield
    finally:
        subprocess.run([str(script), "stop"], check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    ap.add_argument("--print", action="store_true", help="print the document instead of writing it")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = ap.parse_args(argv)
    collector = Collector()
    t0 = time.perf_counter()
    with neo4j_server():
        code = pytest.main(["-q", "-p", "no:randomly", "--rootdir", str(ROOT),
                            *[str(ROOT / f) for f in TEST_FILES], *args.pytest_args], plugins=[collector])
    seconds = time.perf_counter() - t0
    if code != 0 or collector.failed:
        print("reliability report NOT written; failing tests:", *collector.failed, sep="\n  ", file=sys.stderr)
        return 1
    doc = render(collector.records, seconds)
    if args.print:
        print(doc)
    else:
        args.out.write_text(doc, encoding="utf-8")
        print(f"wrote {args.out} ({len(collector.records)} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
