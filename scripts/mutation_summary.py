#!/usr/bin/env python3
"""The figures of a mutmut run (scripts/mutation.sh): mutants per file and status, the score, the survivors.

    .venv/bin/python scripts/mutation_summary.py [--seconds N] [--diff]

Score = killed / (killed + survived + no tests + timeout-less suspicious): a mutant that no selected test
runs ("no tests") counts as a survivor, and one that was never run ("not checked") is reported apart, not
counted either way.  The raw score below the table divides by every mutant (a "not checked" one counts as
not killed): the figure issue 22 asks for.  A timeout counts as killed (the mutant made a test hang, which the suite would see).
``--diff`` prints each survivor's change (mutmut show), for docs/reliability.md's list of equivalent ones.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILLED = {"killed", "timeout", "caught by type check"}
SURVIVED = {"survived", "no tests", "suspicious"}


def results() -> dict[str, str]:
    """mutant name -> status, as ``mutmut results --all true`` prints them."""
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "mutmut"), "results", "--all", "true"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s*(\S+): (.+)$", out, re.M)}


def module_of(name: str) -> str:
    """kgdistill.eval.metrics.x_ranks_of_truth__mutmut_3 -> kgdistill/eval/metrics.py"""
    return name.split(".x")[0].replace(".", "/") + ".py"


def summary(res: dict[str, str], seconds: int | None) -> tuple[str, list[str]]:
    per_file: dict[str, Counter] = defaultdict(Counter)
    for name, status in res.items():
        per_file[module_of(name)][status] += 1
    lines = ["| file | mutants | killed | survived | no tests | not checked | score |", "|---|---|---|---|---|---|---|"]
    total: Counter = Counter()
    for f in sorted(per_file):
        c = per_file[f]
        total.update(c)
        lines.append(_row(f"`{f}`", c))
    lines.append(_row("**all**", total))
    killed = sum(total[s] for s in KILLED)
    lines.append(f"\nraw score (killed / every mutant, not checked ones counted as not killed): {killed} / "
                 f"{sum(total.values())} = {100 * killed / max(1, sum(total.values())):.1f}%; timeouts among the "
                 f"killed: {total['timeout']}")
    if seconds is not None:
        lines.append(f"\nwall time: {seconds} s")
    survivors = sorted(n for n, s in res.items() if s in SURVIVED)
    return "\n".join(lines), survivors


def _row(label: str, c: Counter) -> str:
    killed = sum(c[s] for s in KILLED)
    survived = sum(c[s] for s in SURVIVED)
    checked = killed + survived
    score = f"{100 * killed / checked:.1f}%" if checked else "-"
    return (f"| {label} | {sum(c.values())} | {killed} | {c['survived'] + c['suspicious']} | {c['no tests']} | "
            f"{c['not checked'] + c['skipped']} | {score} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--diff", action="store_true")
    args = ap.parse_args(argv)
    res = results()
    if not res:
        sys.exit("no mutmut results: run scripts/mutation.sh first")
    table, survivors = summary(res, args.seconds)
    print(table)
    print(f"\nsurvivors ({len(survivors)}):")
    for n in survivors:
        print(f"  {n}  [{res[n]}]")
        if args.diff:
            show = subprocess.run([str(ROOT / ".venv" / "bin" / "mutmut"), "show", n], cwd=ROOT,
                                  capture_output=True, text=True).stdout
            for line in show.splitlines():
                if re.match(r"^[-+](?![-+])", line):
                    print("      " + line)


if __name__ == "__main__":
    main()
