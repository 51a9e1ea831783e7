#!/usr/bin/env bash
# Smoke-test the declared Python floor (requires-python in pyproject.toml): on the oldest Python
# gencli claims, install the torch-free part and run the command line's listings and config parser.
# Usage: scripts/python_floor_smoke.sh [PYTHON]   (default: a python3.10 found on PATH or in pyenv)
set -euo pipefail
cd "$(dirname "$0")/.."

floor=$(python3 -c "import re; t=open('pyproject.toml').read(); print(re.search(r'requires-python = \">=(\d+\.\d+)\"', t).group(1))")
python=${1:-}
if [ -z "$python" ]; then  # an interpreter of exactly that version that really runs (a pyenv shim may not)
    for candidate in "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/"$floor".*/bin/python"$floor" "$(command -v "python$floor" || true)"; do
        if [ -x "$candidate" ] && "$candidate" --version > /dev/null 2>&1; then python=$candidate; break; fi
    done
fi
if [ -z "$python" ]; then
    echo "python floor smoke test: no Python $floor found; skipped (install python$floor to run it)"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
# everything the command line imports before a model is built; torch is left out on purpose
"$work/venv/bin/python" -m pip install --quiet "typer>=0.12" "rich>=13" "pluggy>=1.3" "tomli>=1.1" "setuptools>=68"
"$work/venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
cd "$work"
"$work/venv/bin/gencli" --version
"$work/venv/bin/gencli" --help > /dev/null
"$work/venv/bin/gencli" models --json > /dev/null
"$work/venv/bin/gencli" plugins --json > /dev/null
printf 'steps = 5\n[hyperparameters]\nlr = 0.001\n' > config.toml
"$work/venv/bin/python" -c "from gencli.models.hparams import read_config; assert read_config('config.toml')['steps'] == 5"
echo "python floor smoke test: gencli's command line runs on $("$python" --version)"
