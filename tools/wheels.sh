#!/usr/bin/env bash
# Build sparsekern's wheel for one Linux architecture and put the auditwheel-repaired
# py3-none-manylinux_*_<arch> wheel in dist/.
#
#   tools/wheels.sh x86_64      # native build (on an x86-64 host)
#   tools/wheels.sh aarch64     # cross build with cmake/toolchains/aarch64-linux-gnu.cmake
#
# Debian packages it needs (cmake, ninja-build, gcc-aarch64-linux-gnu, ...) are
# apt-get installed when missing; the Python build tools go to a venv under
# $SK_ARM_CACHE (default /tmp/sk-aarch64); CMake builds in build/wheel-<tag>.
# SK_VERBOSE=1 shows the build output. See tools/README.md.
source "$(dirname "$0")/_common.sh"

[ $# -ge 1 ] || die "usage: $0 x86_64|aarch64 ..."
for arch in "$@"; do
  case "$arch" in
    x86_64|aarch64) timed "wheel $arch" build_wheel "$arch" ;;
    *) die "unknown architecture $arch (x86_64 or aarch64)" ;;
  esac
done
