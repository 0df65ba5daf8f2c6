/* CPU feature detection, the ISA in use, threads, version. Compiled with no ISA flags. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define SK_X86 1
#include <cpuid.h>
#endif

#ifndef SK_VERSION_STRING
#define SK_VERSION_STRING "0.0.0"
#endif

static const char *const isa_names[SK_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon", "wasmsimd"};

#if defined(SK_X86)
static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}
#endif

/* ISAs this CPU (and OS) can run and this build compiled in. */
static uint64_t detect_isa_mask(void) {
    uint64_t mask = 1u << SK_ISA_SCALAR;
#if defined(SK_X86)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return mask;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
              f16c = (c >> 29) & 1;
    if (!(osxsave && avx)) return mask;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return mask; /* XMM and YMM state enabled by the OS */
    if (__get_cpuid_max(0, NULL) < 7) return mask;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512cd = (b >> 28) & 1,
              avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
#if defined(SK_HAVE_AVX2)
    if (avx2 && fma && f16c) mask |= 1u << SK_ISA_AVX2;
#endif
#if defined(SK_HAVE_AVX512)
    /* opmask, ZMM0-15 upper halves and ZMM16-31 state must be enabled too */
    if ((mask & (1u << SK_ISA_AVX2)) && avx512f && avx512dq && avx512cd && avx512bw && avx512vl &&
        (xcr0 & 0xe6) == 0xe6)
        mask |= 1u << SK_ISA_AVX512;
#endif
    (void)avx2;
    (void)fma;
    (void)f16c;
    (void)avx512f;
    (void)avx512dq;
    (void)avx512cd;
    (void)avx512bw;
    (void)avx512vl;
#elif defined(__aarch64__) && defined(SK_HAVE_NEON)
    mask |= 1u << SK_ISA_NEON; /* baseline on AArch64 */
#elif defined(__wasm__) && defined(SK_HAVE_WASMSIMD)
    mask |= 1u << SK_ISA_WASMSIMD; /* a build-time choice: the module needs SIMD128 to load */
#endif
    return mask;
}

static int best_isa(uint64_t mask) {
    for (int i = SK_ISA_COUNT - 1; i >= 0; --i)
        if (mask & (1u << i)) return i;
    return SK_ISA_SCALAR;
}

static uint64_t g_mask;
static int g_isa;
static int g_env_error;
static int g_threads;

static void init_once_body(void) {
    g_mask = detect_isa_mask();
    g_isa = best_isa(g_mask);
    const char *env = getenv("SPARSEKERN_ISA");
    if (env && *env) {
        int found = -1;
        for (int i = 0; i < SK_ISA_COUNT; ++i)
            if (strcasecmp(env, isa_names[i]) == 0) found = i;
        if (found < 0 || !(g_mask & (1u << found)))
            g_env_error = 1; /* the binding turns this into an error */
        else g_isa = found;
    }
#if defined(_OPENMP)
    g_threads = omp_get_max_threads(); /* OMP_NUM_THREADS, else the cores */
#else
    g_threads = 1;
#endif
    if (g_threads < 1) g_threads = 1;
    if (g_threads > sk_max_threads()) g_threads = sk_max_threads();
}

#if defined(_WIN32) || defined(__wasm__) /* wasm32-wasi: single-threaded, no pthread_once */
static void sk_init(void) {
    static volatile long done = 0;
    if (!done) {
        init_once_body();
        done = 1;
    }
}
#else
#include <pthread.h>
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void sk_init(void) { pthread_once(&g_once, init_once_body); }
#endif

const char *sk_version(void) { return SK_VERSION_STRING; }

uint64_t sk_cpu_isa_mask(void) {
    sk_init();
    return g_mask;
}

int sk_isa_supported(int isa) {
    sk_init();
    return isa >= 0 && isa < SK_ISA_COUNT && (g_mask & (1u << isa)) != 0;
}

int sk_isa_current(void) {
    sk_init();
    return g_isa;
}

int sk_get_isa(void) { return sk_isa_current(); }

int sk_set_isa(int isa) {
    if (!sk_isa_supported(isa)) return SK_ERR_UNSUPPORTED;
    g_isa = isa;
    return SK_OK;
}

const char *sk_isa_name(int isa) { return isa >= 0 && isa < SK_ISA_COUNT ? isa_names[isa] : NULL; }

int sk_kernel_tiling(int family, int isa, sk_tiling *out) {
    if (!out || isa < 0 || isa >= SK_ISA_COUNT) return SK_ERR_INVALID_ARG;
    switch (family) {
    case SK_FAMILY_SPMM_UNSTRUCTURED: return sk_f32_spmm_unstructured_tiling(isa, out);
    case SK_FAMILY_SPMM_NM: return sk_f32_spmm_nm_tiling(isa, out);
    case SK_FAMILY_ACT_LINEAR: return sk_f32_act_linear_tiling(isa, out);
    case SK_FAMILY_CONV2D_SPARSE: return sk_f32_conv2d_sparse_tiling(isa, out);
    default: return SK_ERR_INVALID_ARG;
    }
}

int sk_isa_env_error(void) {
    sk_init();
    return g_env_error;
}

int sk_max_threads(void) {
#if defined(_OPENMP)
    return 1024; /* like torch.set_num_threads, oversubscription is the caller's choice */
#else
    return 1;
#endif
}

int sk_get_num_threads(void) {
    sk_init();
    return g_threads;
}

int sk_threads_current(void) {
    sk_init();
    return g_threads;
}

int sk_set_num_threads(int n) {
    sk_init();
    if (n < 1) return SK_ERR_INVALID_ARG;
    g_threads = n > sk_max_threads() ? sk_max_threads() : n;
    return SK_OK;
}
