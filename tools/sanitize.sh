#!/usr/bin/env bash
# ASan + UBSan: libsparsekern and tests/c/test_kernels built with -DSPARSEKERN_SANITIZE=ON
# (see CMakeLists.txt), the C kernel tests under the sanitizers, then a slice of the Python
# suite (every op, format and ISA variant of the C backend; numba deselected) run from the
# source tree against the sanitized library with libasan preloaded into Python.
#   tools/sanitize.sh [BUILD_DIR]     (default build/sanitize)
# Exits non-zero on a failing test and on any sanitizer report: reports are written to
# files (BUILD_DIR/reports, subprocesses' included, so a report in a subprocess whose
# failure a test expects still counts) and printed at the end. Knobs (environment):
#   SK_SAN_ROUNDS   test_kernels rounds (default 1000, about 45 s)
#   SK_SAN_TESTS    pytest paths (default tests/test_*.py and tests/{kernels,formats,ops}/test_*.py
#                   but test_reference.py, a lint)
#   SK_SAN_K        pytest -k (default: no numba, and none of the tests that bound RSS
#                   growth: ASan's quarantine and shadow memory make RSS meaningless)
# Installs gcc, cmake and ninja with apt-get when missing; when this Python lacks the test
# dependencies they go into a venv under $SK_ARM_CACHE (the host's is never touched).
source "$(dirname "$0")/_common.sh"
cd "$SK_ROOT"
BUILD=${1:-build/sanitize}
ROUNDS=${SK_SAN_ROUNDS:-1000}
K=${SK_SAN_K:-not numba and not rss_stable and not scratch_not_kept and not peak_memory}

host_build_deps
command -v gcc >/dev/null || apt_need gcc libc6-dev
LIBASAN=$(gcc -print-file-name=libasan.so)
[ -f "$LIBASAN" ] || die "gcc has no libasan.so ($LIBASAN); apt-get install libgcc-12-dev"

PY=$SK_PY
DEPS="numpy scipy cffi threadpoolctl pytest hypothesis"
if ! "$PY" -c "import ${DEPS// /, }" 2>/dev/null; then
  VENV=$SK_CACHE/venv-sanitize
  if ! "$VENV/bin/python" -c "import ${DEPS// /, }" 2>/dev/null; then
    log "test dependencies in $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" >/dev/null 2>&1 || { apt_need python3-venv; rm -rf "$VENV"; "$PY" -m venv "$VENV"; }
    "$VENV/bin/python" -m pip install -q $DEPS
  fi
  PY=$VENV/bin/python
fi

echo "== ASan + UBSan build in $BUILD (gcc)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=gcc -DSPARSEKERN_BUILD_TESTS=ON \
      -DSPARSEKERN_SANITIZE=ON >/dev/null
cmake --build "$BUILD" -j 2 >/dev/null

REPORTS=$SK_ROOT/$BUILD/reports
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:log_path=$REPORTS/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$REPORTS/ubsan
SK_SAN_REPORTED=0
reports() {
  if [ "$SK_SAN_REPORTED" = 0 ] && [ -n "$(ls -A "$REPORTS")" ]; then
    SK_SAN_REPORTED=1
    cat "$REPORTS"/* >&2
    die "sanitizer reports (above; files in $REPORTS)"
  fi
}
# also when a step fails: its reports say why
trap 'rc=$?; reports; exit $rc' EXIT

echo "== test_kernels $ROUNDS under ASan + UBSan"
"$BUILD/test_kernels" "$ROUNDS"
reports

if [ -n "${SK_SAN_TESTS:-}" ]; then
  read -r -a TESTS <<<"$SK_SAN_TESTS"
else
  TESTS=()
  for f in tests/test_*.py tests/{kernels,formats,ops}/test_*.py; do
    [ "$f" = tests/test_reference.py ] || TESTS+=("$f")
  done
fi
echo "== pytest against the sanitized library (-k \"$K\")"
env -u SPARSEKERN_ISA -u SPARSEKERN_BACKEND LD_PRELOAD="$LIBASAN" PYTHONPATH="$SK_ROOT" \
    SPARSEKERN_LIB="$SK_ROOT/$BUILD/libsparsekern.so" \
    "$PY" -m pytest -q -rfE -p no:cacheprovider -k "$K" "${TESTS[@]}"
reports
echo "sanitize: test_kernels and pytest clean under ASan + UBSan"
