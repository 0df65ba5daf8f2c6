#!/usr/bin/env bash
# Builds libsparsekern for WebAssembly (wasm32-wasi + SIMD128) and tests it under Node.js:
#   tools/wasm.sh [BUILD_DIR]         (default build/wasm)
# Produces BUILD_DIR/wasm/sparsekern.wasm (the module with the exported C ABI, see
# wasm/example.mjs) and BUILD_DIR/test_kernels.wasm, then runs the kernel tests (every
# SIMD128 kernel against the scalar one) and the JavaScript example. Installs Debian's
# clang, lld, wasi-libc and the wasm32 compiler runtime when they are missing.
source "$(dirname "$0")/_common.sh"
cd "$SK_ROOT"
BUILD=${1:-build/wasm}
ROUNDS=${SK_TEST_ROUNDS:-200}

host_build_deps
apt_need clang lld wasi-libc libclang-rt-14-dev-wasm32
command -v node >/dev/null || apt_need nodejs

echo "== building for wasm32-wasi (SIMD128) in $BUILD"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/wasm32-wasi.cmake \
      -DSPARSEKERN_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD" -j 2 >/dev/null

echo "== kernel tests under node $(node --version)"
node --no-warnings tools/run_wasi.mjs "$BUILD/test_kernels.wasm" "$ROUNDS"
echo "== the module from JavaScript"
node --no-warnings wasm/example.mjs "$BUILD/wasm/sparsekern.wasm"
ls -l "$BUILD/wasm/sparsekern.wasm"
