#!/usr/bin/env bash
# Builds libsparsekern for WebAssembly (wasm32-wasi + SIMD128) and tests it under Node.js:
#   tools/wasm.sh [BUILD_DIR]         (default build/wasm)
# Produces BUILD_DIR/wasm/sparsekern.wasm (the module with the exported C ABI, see
# wasm/example.mjs) and BUILD_DIR/test_kernels.wasm, then runs the kernel tests (every
# SIMD128 kernel against the scalar one) and the JavaScript example. Installs Debian's
# clang, lld, wasi-libc and the wasm32 compiler runtime when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/wasm}
ROUNDS=${SK_TEST_ROUNDS:-200}

need=()
command -v clang >/dev/null || need+=(clang)
command -v wasm-ld >/dev/null || need+=(lld)
[ -e /usr/lib/wasm32-wasi/libc.a ] || need+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 ||
    need+=(libclang-rt-14-dev-wasm32)
command -v node >/dev/null || need+=(nodejs)
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== building for wasm32-wasi (SIMD128) in $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/wasm32-wasi.cmake \
      -DSPARSEKERN_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD" -j 2 >/dev/null

echo "== kernel tests under node $(node --version)"
node --no-warnings tools/run_wasi.mjs "$BUILD/test_kernels.wasm" "$ROUNDS"
echo "== the module from JavaScript"
node --no-warnings wasm/example.mjs "$BUILD/wasm/sparsekern.wasm"
ls -l "$BUILD/wasm/sparsekern.wasm"
