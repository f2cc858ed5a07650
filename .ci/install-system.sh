#!/usr/bin/env bash
# Installs the system packages the tests need on a fresh Debian bookworm machine:
# Mesa lavapipe from bookworm-backports (Dawn rejects bookworm's own Mesa 22), Debian chromium
# for browser tests (with a CJK font, so Chinese text renders in their screenshots), and, with
# WHITTLE_TORCH=1 only, Debian's PyTorch for regenerating golden files and the benchmark peers.
# Debian's python3-torch is built with BLAS_INFO=generic: it calls whatever libblas.so.3 the
# alternatives system points at, which without OpenBLAS is the netlib reference BLAS (~30x
# slower at a matmul), so OpenBLAS comes with it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ ! -f /etc/apt/sources.list.d/backports.sources ]; then
  cat > /etc/apt/sources.list.d/backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -qq
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
apt-get install -y -qq chromium libvulkan1 fonts-wqy-microhei >/dev/null
if [ "${WHITTLE_TORCH:-0}" = "1" ]; then
  apt-get install -y -qq python3-torch python3-numpy libopenblas0-pthread >/dev/null
fi
