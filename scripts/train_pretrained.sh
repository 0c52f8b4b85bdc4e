#!/usr/bin/env bash
# Reproduces every bundled model from ../shared/data: prepare (CREPE-full features), train each
# preset, evaluate on the held-out clips, copy into src/fastddsp/pretrained/.
#   bash scripts/train_pretrained.sh [INSTRUMENT ...]      (default: violin trumpet)
# Steps per preset can be overridden: TINY_STEPS=4000 CNN_STEPS=4000 FULL_STEPS=1500.
set -euo pipefail
cd "$(dirname "$0")/.."
FD=.venv/bin/fastddsp
DATA=${DATA:-../shared/data}
TINY_STEPS=${TINY_STEPS:-4000}
CNN_STEPS=${CNN_STEPS:-4000}
FULL_STEPS=${FULL_STEPS:-1500}
PRESETS=${PRESETS:-"tiny cnn full"}
declare -A VAL=([violin]="--val violin_14.wav --val violin_15.wav"
                [trumpet]="--val trumpet_8.wav --val trumpet_9.wav")
insts=("$@")
[ ${#insts[@]} -gt 0 ] || insts=(violin trumpet)
for inst in "${insts[@]}"; do
  $FD prepare "$DATA/$inst" -o "runs/data/$inst" ${VAL[$inst]}
  for preset in $PRESETS; do
    case $preset in tiny) steps=$TINY_STEPS;; cnn) steps=$CNN_STEPS;; full) steps=$FULL_STEPS;; esac
    out="runs/models/$inst-$preset.fddsp"
    resume=""; [ -f "runs/models/$inst-$preset.run/checkpoints/last.ckpt" ] && resume="--resume"
    $FD train "runs/data/$inst" --preset "$preset" --steps "$steps" -o "$out" --quiet $resume
    $FD eval "$out" "runs/data/$inst" -o "runs/eval/$inst-$preset"
    cp "$out" "src/fastddsp/pretrained/$inst-$preset.fddsp"
  done
done
