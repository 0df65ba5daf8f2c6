#!/usr/bin/env bash
# sparsekern on 64-bit ARM without ARM hardware: cross-built wheel, emulated tests.
#
#   tools/aarch64.sh [all]         deps + ctest + wheel + env + test (what CI runs)
#   tools/aarch64.sh deps          apt-get install the cross compiler and qemu-user if missing
#   tools/aarch64.sh ctest         tests/c/test_kernels (NEON vs scalar, no Python) under qemu
#   tools/aarch64.sh wheel         dist/sparsekern-*-py3-none-manylinux_*_aarch64.whl (tools/wheels.sh)
#   tools/aarch64.sh env           aarch64 Python 3.11 from Debian's arm64 packages + aarch64
#                                  wheels of the dependencies + the wheel from dist/
#   tools/aarch64.sh test [ARGS]   pytest under qemu-aarch64 on the installed wheel; ARGS go to
#                                  pytest (--quick: the kernel-family subset only)
#   tools/aarch64.sh python [ARGS] the emulated interpreter with the env on its path
#
# Nothing machine-wide changes beyond `apt-get install` of missing packages: the arm64
# packages come from the host's Debian mirror through a private apt state directory
# (no `dpkg --add-architecture`) and are unpacked with `dpkg -x` into a root filesystem
# under $SK_ARM_CACHE (default /tmp/sk-aarch64). Every step is idempotent and reuses
# what is already in the cache. Knobs (environment):
#   SK_ARM_CACHE      cache directory (default /tmp/sk-aarch64)
#   SK_ARM_CPU        qemu -cpu model (default cortex-a72: NEON, no SVE/dotprod)
#   SK_ARM_K          pytest -k expression (default: the c-neon variant and the tests that
#                     take no backend; numba, the x86 ISA variants and the two RSS checks
#                     over short-lived threads deselected)
#   SK_ARM_REQS       aarch64 wheels for the test env (default: numpy cffi threadpoolctl
#                     scipy pytest hypothesis; numba left out on purpose, see tools/README.md)
#   SK_DEBIAN_MIRROR, SK_DEBIAN_SECURITY_MIRROR   override the mirrors taken from the host
source "$(dirname "$0")/_common.sh"

PYV=3.11                                    # Debian 12's Python
CPU=${SK_ARM_CPU:-cortex-a72}
APT=$SK_CACHE/apt
ROOTFS=$SK_CACHE/rootfs
SITE=$SK_CACHE/site                         # the dependencies' aarch64 wheels
SITE_SK=$SK_CACHE/site-sparsekern           # the sparsekern wheel under test
PYWRAP=$SK_CACHE/bin/python$PYV-aarch64
RUN=$SK_CACHE/run
REQS=${SK_ARM_REQS:-numpy cffi threadpoolctl scipy pytest hypothesis}
# qemu-user keeps ~280 KiB of its own per exited thread (a plain C program that starts and
# joins 300 threads grows 82 MiB under qemu, 0.1 MiB natively): the RSS-over-short-lived-
# threads checks measure qemu there, and run natively on x86-64 instead.
K_DEFAULT='not (c-scalar or c-avx2 or c-avx512 or numba or rss_stable_over_short_lived_threads or scratch_not_kept_by_exited_threads)'
K=${SK_ARM_K:-$K_DEFAULT}
# The kernel-family test files (C ABI, act and conv2d ops and formats) plus the dispatch
# tests: what --quick runs.
QUICK_TESTS="tests/kernels/test_kernel_f32_spmm_unstructured.py tests/kernels/test_kernel_f32_spmm_nm.py
  tests/kernels/test_kernel_f32_act_linear.py tests/ops/test_op_act.py tests/formats/test_format_act.py
  tests/ops/test_op_conv2d.py tests/formats/test_format_conv.py tests/test_dispatch.py"
# Python packages Debian's python3.11 needs to start with its whole stdlib (ssl, sqlite3,
# ctypes, lzma, ...); apt resolves their library dependencies. libstdc++6: numpy and scipy
# wheels link it (manylinux allows that). libgomp is vendored into our wheel by auditwheel.
ROOT_PKGS="python$PYV-minimal libpython$PYV-stdlib libstdc++6"

# ---------------------------------------------------------------------------------------
cmd_deps() {
  [ "$(uname -m)" = x86_64 ] || die "this script cross-builds from an x86-64 host"
  apt_need gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user debian-archive-keyring
  host_build_deps
}

# tests/c/test_kernels (every NEON kernel against the scalar one, guard pages after the
# arrays) cross-built and run under qemu: the kernels alone, without Python.
cmd_ctest() {
  local b=$SK_ROOT/build/ctest-aarch64
  cmake -S "$SK_ROOT" -B "$b" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$SK_ROOT/cmake/toolchains/aarch64-linux-gnu.cmake" \
    -DSPARSEKERN_BUILD_TESTS=ON >/dev/null
  cmake --build "$b" >/dev/null
  log "test_kernels under qemu-aarch64 -cpu $CPU"
  env -u LD_LIBRARY_PATH qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$CPU" -E LD_LIBRARY_PATH="$b" \
    "$b/test_kernels" "${SK_TEST_ROUNDS:-200}"
}

cmd_wheel() {
  build_wheel aarch64
}

# The host's Debian mirrors (deb822 or one-line sources), unless overridden.
host_mirror() {  # $1: debian | debian-security
  local pat
  if [ "$1" = debian ]; then pat='https?://[^ ]*/debian/?$'; else pat='https?://[^ ]*/debian-security/?$'; fi
  { sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) print $i }' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
  } | grep -E "$pat" | head -1 || true
}

apt_private() {  # apt-get with the private arm64-only state
  apt-get -o APT::Architecture=arm64 -o APT::Architectures::=arm64 \
    -o Dir::State="$APT/state" -o Dir::State::status="$APT/state/status" \
    -o Dir::Cache="$APT/cache" -o Dir::Etc="$APT/etc" \
    -o Dir::Etc::sourcelist="$APT/etc/sources.list" -o Dir::Etc::sourceparts="$APT/etc/sources.list.d" \
    -o Dir::Etc::preferencesparts="$APT/etc/preferences.d" -o Dir::Etc::parts="$APT/etc/apt.conf.d" \
    -o Dir::Etc::trusted=/etc/apt/trusted.gpg -o Dir::Etc::trustedparts=/etc/apt/trusted.gpg.d \
    -o Acquire::Languages=none -o Debug::NoLocking=1 "$@"
}

rootfs() {
  local mirror sec codename keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  mirror=${SK_DEBIAN_MIRROR:-$(host_mirror debian)}
  mirror=${mirror:-http://deb.debian.org/debian}
  sec=${SK_DEBIAN_SECURITY_MIRROR:-$(host_mirror debian-security)}
  sec=${sec:-http://deb.debian.org/debian-security}
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  [ "$codename" = bookworm ] || log "warning: host is $codename; the env expects bookworm's python$PYV"
  mkdir -p "$APT"/state/lists/partial "$APT"/cache/archives/partial "$APT"/etc/sources.list.d \
    "$APT"/etc/preferences.d "$APT"/etc/apt.conf.d
  [ -f "$APT/state/status" ] || : > "$APT/state/status"   # nothing installed: apt resolves everything
  : > "$APT/etc/sources.list"
  local src
  src=$(printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nArchitectures: arm64\nSigned-By: %s\n\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nArchitectures: arm64\nSigned-By: %s\n' \
    "$mirror" "$codename" "$codename" "$keyring" "$sec" "$codename" "$keyring")
  local lists_fresh=1
  if [ "$src" != "$(cat "$APT/etc/sources.list.d/debian.sources" 2>/dev/null)" ]; then
    printf '%s\n' "$src" > "$APT/etc/sources.list.d/debian.sources"
    lists_fresh=0
  fi
  # Package lists: refreshed once a day (security updates replace the old .debs).
  if [ $lists_fresh = 0 ] || [ -z "$(find "$APT/state/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null)" ]; then
    log "apt-get update (arm64, $mirror)"
    apt_private update -qq >&2
  fi
  log "apt-get download $ROOT_PKGS + dependencies"
  apt_private install -y -qq --download-only --no-install-recommends $ROOT_PKGS >&2
  # The .debs the current lists resolve to (older versions may linger in the cache).
  local files="" name ver f
  while read -r name ver; do
    f=$(ls "$APT"/cache/archives/"${name}_${ver//:/%3a}"_*.deb 2>/dev/null | head -1)
    [ -n "$f" ] || die "no .deb downloaded for $name $ver"
    files="$files $f"
  done < <(apt_private -s install --no-install-recommends $ROOT_PKGS 2>/dev/null \
             | awk '$1 == "Inst" { v = $3; sub(/^\(/, "", v); print $2, v }')
  [ -n "$files" ] || die "apt resolved no packages for $ROOT_PKGS"
  local stamp
  stamp=$(for f in $files; do basename "$f"; done | sort | sha256sum | cut -c1-16)
  if [ "$(cat "$ROOTFS/.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "dpkg -x $(echo "$files" | wc -w) packages into $ROOTFS"
    rm -rf "$ROOTFS.tmp"
    mkdir -p "$ROOTFS.tmp"
    for f in $files; do dpkg -x "$f" "$ROOTFS.tmp"; done
    echo "$stamp" > "$ROOTFS.tmp/.stamp"
    rm -rf "$ROOTFS"
    mv "$ROOTFS.tmp" "$ROOTFS"
  fi
  [ -x "$ROOTFS/usr/bin/python$PYV" ] || die "no python$PYV in $ROOTFS"
}

# The interpreter wrapper. -0 makes sys.executable this script, so tests that start
# `sys.executable -c ...` subprocesses get an emulated interpreter too (binfmt_misc is
# not needed); PYTHONHOME pins the stdlib to the root filesystem, so nothing from the
# host's /usr/lib/python3* can leak in through qemu's -L fallback.
wrapper() {
  mkdir -p "$(dirname "$PYWRAP")"
  cat > "$PYWRAP.tmp" <<EOF
#!/bin/sh
# generated by tools/aarch64.sh: Debian's aarch64 python$PYV under qemu-user
# (a host LD_LIBRARY_PATH would reach the emulated loader, e.g. the cross libc: drop it)
unset LD_LIBRARY_PATH LD_PRELOAD
PYTHONHOME=$ROOTFS/usr exec qemu-aarch64 -L $ROOTFS -cpu \${SK_ARM_CPU:-$CPU} -0 "\$0" $ROOTFS/usr/bin/python$PYV "\$@"
EOF
  chmod +x "$PYWRAP.tmp"
  mv "$PYWRAP.tmp" "$PYWRAP"
}

# pip's --platform does not expand manylinux_2_X to the older glibc versions: list them,
# up to the root filesystem's glibc.
target_pip() {
  local glibc_minor plats=() i
  glibc_minor=$(ls "$APT"/cache/archives/libc6_2.*_arm64.deb | sed 's/.*libc6_2\.\([0-9]*\).*/\1/' | sort -n | tail -1)
  for i in $(seq 17 "$glibc_minor"); do plats+=(--platform "manylinux_2_${i}_aarch64"); done
  "$SK_VENV/bin/python" -m pip install -q --only-binary=:all: --implementation cp \
    --python-version $PYV --abi "cp${PYV/./}" --platform manylinux2014_aarch64 "${plats[@]}" "$@"
}

site_deps() {
  local stamp
  stamp=$(echo "$REQS $(ls "$APT"/cache/archives/libc6_2.*_arm64.deb | tail -1)" | sha256sum | cut -c1-16)
  if [ "$(cat "$SITE/.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "aarch64 wheels: $REQS"
    rm -rf "$SITE.tmp"
    target_pip --target "$SITE.tmp" $REQS
    echo "$stamp" > "$SITE.tmp/.stamp"
    rm -rf "$SITE"
    mv "$SITE.tmp" "$SITE"
  fi
}

site_sparsekern() {
  local whl
  whl=$(ls -t "$SK_DIST"/sparsekern-*-py3-none-manylinux_*_aarch64.whl 2>/dev/null | head -1)
  [ -n "$whl" ] || die "no aarch64 wheel in $SK_DIST: run $0 wheel"
  log "install $(basename "$whl")"
  rm -rf "$SITE_SK"
  target_pip --no-deps --target "$SITE_SK" "$whl"
}

emu_python() {
  # SPARSEKERN_* from the caller's shell must not redirect the tests to another library.
  env -u SPARSEKERN_LIB -u SPARSEKERN_BACKEND -u SPARSEKERN_ISA -u PYTHONSTARTUP \
    PYTHONPATH="$SITE_SK:$SITE" "$PYWRAP" "$@"
}

cmd_env() {
  command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 missing: run $0 deps"
  build_venv
  rootfs
  wrapper
  site_deps
  site_sparsekern
  log "smoke test: import the installed wheel (numba absent) under qemu -cpu $CPU"
  (cd "$SK_CACHE" && timeout 300 env -u SPARSEKERN_LIB -u SPARSEKERN_BACKEND -u SPARSEKERN_ISA \
      PYTHONPATH="$SITE_SK:$SITE" "$PYWRAP" - "$SITE_SK" <<'EOF'
import importlib.util, platform, sys
import sparsekern as sk
assert platform.machine() == "aarch64", platform.machine()
assert sk.__file__.startswith(sys.argv[1]), f"imported {sk.__file__}, not the installed wheel"
assert importlib.util.find_spec("numba") is None, "numba is installed in the emulated env"
info = sk.info()
print(info)
assert info["backend"] == "c" and info["isa"] == "neon", info
assert info["library"].startswith(sys.argv[1]), info["library"]
EOF
  )
}

cmd_test() {
  [ -x "$PYWRAP" ] && [ -d "$SITE_SK/sparsekern" ] || die "no emulated env: run $0 env"
  local files=(tests) args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --quick) read -ra files <<< "$(echo $QUICK_TESTS)" ;;
      *) args+=("$1") ;;
    esac
    shift
  done
  # A copy of the tests outside the source tree: its sparsekern/ (no library) must not
  # shadow the installed wheel, and pytest must not pick up the project's pyproject.toml.
  rm -rf "$RUN"
  mkdir -p "$RUN"
  cp -r "$SK_ROOT/tests" "$RUN/tests"
  find "$RUN/tests" -name __pycache__ -prune -exec rm -rf {} +
  printf '[pytest]\naddopts = -ra\n' > "$RUN/pytest.ini"
  log "pytest under qemu-aarch64 -cpu $CPU: ${files[*]} -k '$K' ${args[*]}"
  (cd "$RUN" && emu_python -m pytest -p no:cacheprovider -c pytest.ini --rootdir . \
      --durations=10 -k "$K" "${files[@]}" "${args[@]}")
}

cmd_python() {
  emu_python "$@"
}

# ---------------------------------------------------------------------------------------
what=${1:-all}
[ $# -gt 0 ] && shift
case "$what" in
  deps)   timed "deps" cmd_deps ;;
  ctest)  timed "ctest" cmd_ctest ;;
  wheel)  timed "wheel aarch64" cmd_wheel ;;
  env)    timed "env" cmd_env ;;
  test)   timed "test" cmd_test "$@" ;;
  python) cmd_python "$@" ;;
  all)
    : > "$SK_TIMINGS"
    t0=$(now)
    timed "deps" cmd_deps
    timed "ctest" cmd_ctest
    timed "wheel aarch64" cmd_wheel
    timed "env" cmd_env
    timed "test" cmd_test "$@"
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%-22s %6.1f s\n", "total", b - a }' | tee -a "$SK_TIMINGS" >&2
    ;;
  *) die "usage: $0 [all|deps|ctest|wheel|env|test [pytest args]|python [args]]" ;;
esac
