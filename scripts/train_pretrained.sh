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
# training arguments of the shipped models. They were trained two at a time (one thread each),
# first to 3000 (tiny, cnn) or 800 (full) steps, then continued with --resume to the --steps
# below where validation was still improving; one straight run with the final --steps is the
# same schedule (only the order of the random crops differs).
COMMON="--lr 1e-3 --decay-steps 100 --val-every 250"
declare -A ARGS=(
  [violin-tiny]="--steps 3000 --crop-seconds 2"  [trumpet-tiny]="--steps 5000 --crop-seconds 2"
  [violin-cnn]="--steps 3000 --crop-seconds 2"   [trumpet-cnn]="--steps 5000 --crop-seconds 2"
  [violin-full]="--steps 2000 --crop-seconds 1"  [trumpet-full]="--steps 2000 --crop-seconds 1")
insts=("$@")
[ ${#insts[@]} -gt 0 ] || insts=(violin trumpet)
for inst in "${insts[@]}"; do
  $FD prepare "$DATA/$inst" -o "runs/data/$inst" ${VAL[$inst]}
  for preset in $PRESETS; do
    out="runs/models/$inst-$preset.fddsp"
    resume=""; [ -f "${out%.fddsp}.run/checkpoints/last.ckpt" ] && resume="--resume"
    $FD train "runs/data/$inst" --preset "$preset" $COMMON ${ARGS[$inst-$preset]} -o "$out" \
      --quiet $resume
    $FD eval "$out" "runs/data/$inst" -o "runs/eval/$inst-$preset"
    cp "$out" "src/fastddsp/pretrained/$inst-$preset.fddsp"
  done
done
