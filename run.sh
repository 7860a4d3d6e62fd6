#!/usr/bin/env bash
# Set up (first time) and start the TransferLab web app; open the printed URL. Demos work with no upload.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/python -m streamlit run app.py --browser.gatherUsageStats false "$@"
