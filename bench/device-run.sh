#!/usr/bin/env bash
# The one-shot benchmark on a machine that has a GPU driver and nothing else (no Node, no Vulkan
# loader, no network), in two halves:
#
#   bench/device-run.sh prepare [DIR]   here, in the repository: fills DIR (default .oneshot, an
#                                       ignored folder, about 30 MiB) with the bundle, its peers,
#                                       the runners, node.xz, dawn.node.xz, the Vulkan loader's
#                                       and GL dispatch's .deb files (debs/) and libvulkan.so.1
#   bash DIR/device-run.sh run [OUT]    there, from the repository root: unpacks node and
#                                       dawn.node to /tmp, installs the loader (dpkg -x to /) if
#                                       the system has none, points it at the NVIDIA driver if no
#                                       driver is registered, runs `oneshot.sh gpu`
#                                       (at most 7.5 minutes) and copies the report to OUT
#                                       (default $OUT, else ./oneshot-out);
#                                       WHITTLE_ONESHOT_PRESET=quick tries it on a CPU driver
#
# What `run` prints ends with the merged table (see bench/README.md, "One-shot benchmark").
set -euo pipefail

prepare() {
  local dir=${1:-.oneshot}
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cd "$root"
  npm run --silent bench:bundle -- "$dir" >/dev/null
  cp bench/device-run.sh "$dir/"
  # Compressed once (minutes on a small machine): kept while newer than what they were made from.
  local src name
  for src in "$(command -v node)" "$(dirname "$(node -p 'require.resolve("webgpu")')")/dist/linux-x64/dawn.node"; do
    name="$dir/$(basename "$src").xz"
    if [ ! -s "$name" ] || [ "$src" -nt "$name" ]; then
      xz -T2 -6 -c "$src" >"$name.tmp" && mv "$name.tmp" "$name"
    fi
  done
  # The Vulkan loader and the GL dispatch libraries NVIDIA's Vulkan driver loads beside it, as
  # Debian packages for x86-64 (what the device machines' notes name), and the loader alone as
  # a fallback.
  mkdir -p "$dir/debs" /tmp/whittle-apt-lists/partial
  local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/whittle-apt-lists)
  if ! (apt-get "${o[@]}" update -qq && cd "$dir/debs" && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2) >&2; then
    echo "prepare: could not download the loader packages; carrying libvulkan.so.1 only" >&2
  fi
  local loader
  loader=$(ldconfig -p | awk '/libvulkan\.so\.1 .*x86-64/ && !found {print $NF; found = 1}')
  [ -n "$loader" ] || { echo "prepare: no libvulkan.so.1 here (apt-get install libvulkan1)" >&2; exit 1; }
  cp -L "$loader" "$dir/libvulkan.so.1"
  du -sh "$dir"
  ls -l "$dir"
}

run() {
  local here out work
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  out=${1:-${OUT:-$PWD/oneshot-out}}
  work=/tmp/whittle-oneshot
  mkdir -p "$work/lib" "$out"
  cp -r "$here/whittle-bench.mjs" "$here/oneshot.sh" "$here/peers" "$work/"
  # xz may be missing there; Python's lzma is not.
  for f in node dawn.node; do
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$here/$f.xz" "$work/$f"
  done
  chmod +x "$work/node"
  if ! ldconfig -p | grep -q 'libvulkan\.so\.1 '; then
    if ls "$here"/debs/*.deb >/dev/null 2>&1; then
      for f in "$here"/debs/*.deb; do dpkg -x "$f" /; done
      ldconfig
    else
      cp "$here/libvulkan.so.1" "$work/lib/"
      export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
  fi
  local nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$nv" ] && ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$nv
  fi
  echo "node $("$work/node" --version); LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}; VK_DRIVER_FILES=${VK_DRIVER_FILES:-}" >&2
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
  local rc=0
  PYTHON=${PYTHON:-python3} "$work/oneshot.sh" "${WHITTLE_ONESHOT_PRESET:-gpu}" "$work/results" 2>&1 | tee "$out/oneshot.log" || rc=$?
  for f in oneshot.json peft-peer.json; do
    [ -f "$work/results/$f" ] && cp "$work/results/$f" "$out/"
  done
  return $rc
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 prepare [DIR] | run [OUT]" >&2; exit 2 ;;
esac
