#!/usr/bin/env bash
# Mutation testing of the figures' code: kgdistill/eval/ (metrics, calibration rule, baselines) and
# kgdistill/losses/, with mutmut (pip install -e '.[mutation]'). Each mutant (one small change to one line) is run
# against the fast unit tests that cover its function ([tool.mutmut] in pyproject.toml); a mutant no test fails
# "survives". Not part of scripts/test.sh: it takes tens of minutes on two cores (docs/reliability.md).
#   scripts/mutation.sh                     every mutant, then the summary and the survivors
#   scripts/mutation.sh 'kgdistill.eval.metrics*'   only those mutants (mutmut's name patterns)
# Writes mutants/ (mutmut's working copy and results, git-ignored) and mutants/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
.venv/bin/python -c "import mutmut" 2>/dev/null || { echo "mutmut missing: .venv/bin/pip install -e '.[mutation]'"; exit 2; }
start=$(date +%s)
.venv/bin/mutmut run --max-children "${MUTATION_JOBS:-2}" "$@" > mutants.log 2>&1 || true
.venv/bin/python scripts/mutation_summary.py --seconds $(( $(date +%s) - start )) | tee mutants/summary.txt
