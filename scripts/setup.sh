#!/usr/bin/env bash
# Create or reuse .venv and install the pinned requirements (re-installs only when they changed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv/.requirements-stamp 2>/dev/null)" != "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  # These two declare dependencies they do not need (sentence-transformers; old pins), hence --no-deps.
  .venv/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
  echo "$stamp" > .venv/.requirements-stamp
fi
