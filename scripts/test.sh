#!/usr/bin/env bash
# The whole test suite: sets up if needed, starts the real Neo4j test server, runs pytest, stops the server
# (also when tests fail). Extra arguments go to pytest, e.g. scripts/test.sh -k losses
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/setup.sh
export CI=${CI:-}
# the import layers of pyproject.toml ([tool.importlinter]): a lower layer importing a higher one fails here
layers=$(.venv/bin/lint-imports --no-cache 2>&1) || { echo "$layers"; exit 1; }
echo "import layers: kept (lint-imports)"
if [ -x scripts/neo4j.sh ]; then
  trap 'scripts/neo4j.sh stop >/dev/null 2>&1 || true' EXIT
  scripts/neo4j.sh start
  eval "$(scripts/neo4j.sh env)"
fi
.venv/bin/python -m pytest -q -p no:randomly "$@"
