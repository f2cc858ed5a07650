#!/usr/bin/env bash
# Peak resident memory (GNU time's "Maximum resident set size") of `whittle validate` and of
# `whittle train` up to its second step, on generated chat files of 15k, 50k and 150k examples.
# The files are written to a temporary folder by scripts/make_large_jsonl.ts and not kept.
#
#   bash bench/largeFileRss.sh [COUNTS...]      # default: 15000 50000 150000
set -euo pipefail
cd "$(dirname "$0")/.."
export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/share/vulkan/icd.d/lvp_icd.json}
MODEL=test/fixtures/models/tiny-llama
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CLI=(node --import tsx --import ./scripts/register-wgsl.mjs src/cli/main.ts)
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(15000 50000 150000)
peak() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }
echo "| examples | file MB | validate peak RSS MB | train (to step 2) peak RSS MB |"
echo "| ---: | ---: | ---: | ---: |"
for n in "${counts[@]}"; do
  file="$WORK/large-$n.jsonl"
  npx tsx scripts/make_large_jsonl.ts "$n" "$file"
  /usr/bin/time -v -o "$WORK/validate.time" "${CLI[@]}" validate "$file" --model "$MODEL" > "$WORK/validate.log" 2>&1 || { cat "$WORK/validate.log"; exit 1; }
  # Training is stopped once step 2 is logged: its peak is that of loading the data and stepping.
  /usr/bin/time -v -o "$WORK/train.time" "${CLI[@]}" train "$MODEL" "$file" --out "$WORK/out-$n" --epochs 1 --batch-size 4 --lora-r 2 --seed 1 > "$WORK/train.log" 2>&1 &
  timer=$!
  until grep -q '^step *2/' "$WORK/train.log" 2>/dev/null; do
    if ! kill -0 "$timer" 2>/dev/null; then cat "$WORK/train.log"; exit 1; fi
    sleep 0.5
  done
  kill -INT "$(pgrep -P "$timer")"
  wait "$timer" || true
  printf '| %s | %.1f | %s | %s |\n' "$n" "$(echo "$(stat -c %s "$file") / 1048576" | bc -l)" "$(peak "$WORK/validate.time")" "$(peak "$WORK/train.time")"
done
