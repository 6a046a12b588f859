#!/usr/bin/env bash
# Reproduce the mmdr-mini weights shipped in src/distilfuse/weights/ with the training engine
# (recipe and measured results: configs/default_mmdr_mini.yaml). Run from the project root.
set -euo pipefail
distilfuse train configs/default_mmdr_mini.yaml --out runs/default_mmdr_mini "$@"
cp runs/default_mmdr_mini/best.safetensors src/distilfuse/weights/mmdr-mini.safetensors
echo "wrote src/distilfuse/weights/mmdr-mini.safetensors"
