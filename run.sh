#!/usr/bin/env bash
# Set up (first time) and start the TransferLab web app; open the printed URL. Demos work with no upload.
# It listens on this machine only (127.0.0.1): without login configured every run is visible to whoever can reach
# it. To serve a team, configure login (README "Team server") and pass --server.address 0.0.0.0.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
address=(--server.address 127.0.0.1)
for arg in "$@"; do
  case "$arg" in --server.address*) address=() ;; esac
done
exec .venv/bin/python -m streamlit run app.py --browser.gatherUsageStats false "${address[@]}" "$@"
