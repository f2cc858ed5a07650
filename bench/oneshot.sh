#!/usr/bin/env bash
# The one-shot benchmark: the kernels, train and generate suites of the one-file bundle, then the
# PyTorch + PEFT peer on the same cases, then one side-by-side table and one JSON document.
# Each step runs under its own time limit, so a slow or hung step costs only its own rows.
#
# usage: oneshot.sh [gpu|quick] [RESULTS_DIR]
#   gpu    (default) sizes for one datacenter GPU: at most 7.5 minutes in all (the limits below)
#   quick  tiny sizes: a CPU Vulkan driver (lavapipe, SwiftShader) or a smoke test
# Beside this script: whittle-bench.mjs, peers/, and optionally node and dawn.node (see
# bench/README.md). Environment: NODE (default ./node beside this script, else node on PATH),
# PYTHON (default python3), NO_PEER=1 (no PyTorch peers), WHITTLE_DAWN_NODE, WHITTLE_DAWN_FLAGS,
# and the Vulkan loader's own (VK_ICD_FILENAMES / VK_DRIVER_FILES pick the driver).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
preset=${1:-gpu}
out=$(mkdir -p "${2:-$PWD/oneshot-results}" && cd "${2:-$PWD/oneshot-results}" && pwd)
node=${NODE:-$([ -x "$here/node" ] && echo "$here/node" || echo node)}
python=${PYTHON:-python3}
bundle="$here/whittle-bench.mjs"

case "$preset" in
  gpu)
    kernels=(--kernel-shapes full --lm-head)
    models=(--train-models smollm2-135m,qwen2.5-0.5b --generate-models smollm2-135m,qwen2.5-0.5b)
    train=(--models smollm2-135m,qwen2.5-0.5b --shapes 4x512 --steps 5)
    generate=(--models smollm2-135m,qwen2.5-0.5b --prompt 128 --new-tokens 64 --reps 3)
    shared=(--shapes 4x512 --steps 5 --prompt 128 --new-tokens 64 --reps 3)
    limit_kernels=75 limit_train=150 limit_generate=90 limit_peer=120
    ;;
  quick)
    kernels=(--kernel-shapes tiny)
    models=(--train-models tiny --generate-models tiny)
    train=(--models tiny --shapes 1x32 --steps 1)
    generate=(--models tiny --prompt 8 --new-tokens 4 --reps 1)
    shared=(--shapes 1x32 --steps 1 --prompt 8 --new-tokens 4 --reps 1)
    limit_kernels=60 limit_train=60 limit_generate=60 limit_peer=60
    ;;
  *)
    echo "usage: $0 [gpu|quick] [RESULTS_DIR]" >&2
    exit 2
    ;;
esac

# Runs "$@" under a limit of $1 seconds, logging how it ended; never stops the whole run.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  echo "==== $name (limit ${limit} s)" >&2
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "==== $name: stopped at its ${limit} s limit" >&2
  elif [ $rc -ne 0 ]; then
    echo "==== $name: failed (exit $rc)" >&2
  else
    echo "==== $name: done in $((SECONDS - t0)) s" >&2
  fi
}

"$node" --version >/dev/null || { echo "oneshot: cannot run node ($node)" >&2; exit 1; }
peer_flag=()
if [ "${NO_PEER:-0}" = 1 ]; then
  peer_flag=(--no-peer)
else
  export WHITTLE_PYTHON="$python"
  device=$("$python" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null || echo none)
  echo "oneshot: PyTorch peer device: $device ($python)" >&2
  [ "$device" = cuda ] && export WHITTLE_PEER_DEVICE=cuda
fi

step kernels "$limit_kernels" "$node" "$bundle" kernels "${kernels[@]}" "${peer_flag[@]}" --out "$out" >"$out/kernels.md"
# The train suite's own peer is left out: the PEFT peer below times the same cases, f32 and bf16.
step train "$limit_train" "$node" "$bundle" train "${train[@]}" --no-peer --out "$out" >"$out/train.md"
step generate "$limit_generate" "$node" "$bundle" generate "${generate[@]}" --out "$out" >"$out/generate.md"
if [ "${NO_PEER:-0}" != 1 ]; then
  "$node" "$bundle" peer-cases "${models[@]}" "${shared[@]}" >"$out/peer-cases.json"
  step "PyTorch + PEFT peer" "$limit_peer" "$python" "$here/peers/peft_peer.py" --cases "$out/peer-cases.json" --out "$out/peft-peer.json" >/dev/null
fi
"$node" "$bundle" report "$out" "$out/peft-peer.json"
