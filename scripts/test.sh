#!/usr/bin/env bash
# Set up everything the tests need (venv, packages, mkdssp), then lint and run the suite.
# Reference oracles are read from $TOPOQA_REFERENCE (default ../shared/reference);
# TOPOQA_REQUIRE_REFERENCE=1 turns a missing oracle into a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
venv="${TOPOQA_VENV:-.venv}"
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -q -rs "$@" tests
