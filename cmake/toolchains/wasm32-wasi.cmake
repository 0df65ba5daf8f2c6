# libsparsekern for WebAssembly (wasm32-wasi, SIMD128) with Debian's clang, lld and
# wasi-libc (tools/wasm.sh installs them). CMake 3.25 knows no WASI platform, hence
# Generic; the library is static and wasm/CMakeLists.txt links the module.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(CMAKE_C_COMPILER clang)
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)
set(CMAKE_SYSROOT /usr)
set(CMAKE_C_FLAGS_INIT "--sysroot=/usr -isystem /usr/include/wasm32-wasi")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-L/usr/lib/wasm32-wasi")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(SPARSEKERN_OPENMP OFF CACHE BOOL "" FORCE)
