#!/usr/bin/env bash
# Reproduce the weights shipped in src/distilfuse/weights/ with the training engine, on the CPU with one thread
# (bit for bit: the runs are seeded; rt-s runs single-threaded). Run from the project root; extra arguments
# (e.g. --overwrite) go to both runs.
#   rt-s, the default model: configs/rt_s.yaml up to its best validation epoch, the first (120 steps of the
#     recipe's 10-epoch cosine schedule); results in docs/results.md
#   mmdr-mini: configs/default_mmdr_mini.yaml (teacher-free)
set -euo pipefail
distilfuse train configs/rt_s.yaml train.max_steps=120 --threads 1 --out runs/rt_s_default "$@"
cp runs/rt_s_default/best.safetensors src/distilfuse/weights/rt-s.safetensors
echo "wrote src/distilfuse/weights/rt-s.safetensors"
distilfuse train configs/default_mmdr_mini.yaml --out runs/default_mmdr_mini "$@"
cp runs/default_mmdr_mini/best.safetensors src/distilfuse/weights/mmdr-mini.safetensors
echo "wrote src/distilfuse/weights/mmdr-mini.safetensors"
