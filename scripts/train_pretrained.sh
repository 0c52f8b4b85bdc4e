#!/usr/bin/env bash
# Reproduces every bundled model from ../shared/data with the settings used for the shipped
# files: prepare (CREPE-full features, two clips held out), train each preset, evaluate on the
# held-out clips, copy into src/fastddsp/pretrained/.
#   bash scripts/train_pretrained.sh [INSTRUMENT ...]      (default: violin trumpet)
# Environment: DATA (default ../shared/data), PRESETS (default "tiny cnn full"),
# THREADS (default 1: the shipped models were trained two at a time, one thread each).
set -euo pipefail
cd "$(dirname "$0")/.."
FD=.venv/bin/fastddsp
DATA=${DATA:-../shared/data}
PRESETS=${PRESETS:-"tiny cnn full"}
export OMP_NUM_THREADS=${THREADS:-1}
declare -A VAL=([violin]="--val violin_14.wav --val violin_15.wav"
                [trumpet]="--val trumpet_8.wav --val trumpet_9.wav")
# training arguments of the shipped models (trained two at a time, one thread each). Longer
# runs overfit these 32 s of audio: continuing the full models to 1500 steps raised their
# validation loss (violin 7.05 -> 7.35, trumpet 7.08 -> 7.60).
COMMON="--lr 1e-3 --decay-steps 100 --val-every 250"
declare -A ARGS=(
  [tiny]="--steps 3000 --crop-seconds 2"
  [cnn]="--steps 3000 --crop-seconds 2"
  [full]="--steps 800 --crop-seconds 1")
insts=("$@")
[ ${#insts[@]} -gt 0 ] || insts=(violin trumpet)
for inst in "${insts[@]}"; do
  $FD prepare "$DATA/$inst" -o "runs/data/$inst" ${VAL[$inst]}
  for preset in $PRESETS; do
    out="runs/models/$inst-$preset.fddsp"
    resume=""; [ -f "${out%.fddsp}.run/checkpoints/last.ckpt" ] && resume="--resume"
    $FD train "runs/data/$inst" --preset "$preset" $COMMON ${ARGS[$preset]} -o "$out" \
      --quiet $resume
    $FD eval "$out" "runs/data/$inst" -o "runs/eval/$inst-$preset"
    cp "$out" "src/fastddsp/pretrained/$inst-$preset.fddsp"
    if [ "$preset" != full ]; then
      $FD quantize "$out" "runs/data/$inst" -o "src/fastddsp/pretrained/$inst-$preset-q.fddsp"
    fi
  done
done
