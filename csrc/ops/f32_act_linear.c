/* Operator: activation-sparse linear layer and its delta (temporal) variant.
 * Compiled with no ISA flags.
 *
 * y[i, :] = sum over the selected channels k of row i of x[i, k] * W[:, k] (+ bias)
 *
 * 1. Selection, per row of x, in one pass over the row: the score of channel k is
 *    |x_k| (magnitude) or |x_k| * norms[k] (WINA); k is a candidate when
 *    !(score <= threshold) (so NaN is a candidate; threshold < 0 keeps every
 *    channel); with topk >= 0 only the topk largest scores among the candidates are
 *    kept (radix select on the score bits: NaN ranks above +inf, ties go to the lower
 *    index). When every weight is finite (w->finite), kept channels whose x is exactly
 *    0 are dropped too: their contribution is exactly zero. The result is a compact
 *    list (channel, value): branch-free compaction, ~1-2 cycles per input, well under
 *    1% of streaming the weights even at 97% sparsity, so it is not fused into the
 *    weight loop; the compact list is what lets the kernel prefetch the next rows.
 * 2. Accumulation: the ISA microkernel streams only the listed rows of W^T.
 *    Batch n > 1 with finite weights: rows are taken in blocks of SK_ACT_NB; a block
 *    uses the union of its rows' channels (each weight row read once for all rows of
 *    the block, a row's coefficient 0 where it does not use the channel), in column
 *    tiles so the block's outputs stay in L1, when the rows use at least half of the
 *    union's (row, channel) pairs; otherwise every row runs alone (it reads more
 *    weight bytes, the later rows mostly from L2/L3, but multiplies no zeros): with 8 rows
 *    of 90% zeros the union won when the rows shared their zeros, lost when they did not.
 *    With non-finite weights (0 * inf must not leak into a row that skipped the
 *    channel) every row runs alone.
 * Threads split the output columns.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "act_internal.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

#define SK_ACT_NB 16 /* rows per union block */
#ifndef SK_ACT_TILE_BYTES
#define SK_ACT_TILE_BYTES 16384 /* outputs of a block kept per column tile (L1) */
#endif
#define SK_ACT_MIN_PARALLEL (1 << 17) /* multiply-adds below which one thread runs */
/* Batch 1: whole weight rows up to this many outputs (longer streams for the
 * prefetchers; the outputs then live in L1/L2): 11008x4096 cold, about 5% faster than
 * tiles of 4096. */
#ifndef SK_ACT_TILE1
#define SK_ACT_TILE1 16384
#endif

static sk_f32_act_ukernel ukernel_for(int isa) {
    switch (isa) {
    case SK_ISA_SCALAR: return sk_f32_act_linear_scalar;
#if defined(SK_HAVE_AVX2)
    case SK_ISA_AVX2: return sk_f32_act_linear_avx2;
#endif
#if defined(SK_HAVE_AVX512)
    case SK_ISA_AVX512: return sk_f32_act_linear_avx512;
#endif
#if defined(SK_HAVE_NEON)
    case SK_ISA_NEON: return sk_f32_act_linear_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
    case SK_ISA_WASMSIMD: return sk_f32_act_linear_wasmsimd;
#endif
    default: return NULL;
    }
}

static const sk_tiling *tiling_for(int isa) {
    switch (isa) {
    case SK_ISA_SCALAR: return &sk_f32_act_linear_tiling_scalar;
#if defined(SK_HAVE_AVX2)
    case SK_ISA_AVX2: return &sk_f32_act_linear_tiling_avx2;
#endif
#if defined(SK_HAVE_AVX512)
    case SK_ISA_AVX512: return &sk_f32_act_linear_tiling_avx512;
#endif
#if defined(SK_HAVE_NEON)
    case SK_ISA_NEON: return &sk_f32_act_linear_tiling_neon;
#endif
#if defined(SK_HAVE_WASMSIMD)
    case SK_ISA_WASMSIMD: return &sk_f32_act_linear_tiling_wasmsimd;
#endif
    default: return NULL;
    }
}

/* The variant's tiling and the operator's blocks (sparsekern.h: sk_kernel_tiling). */
int sk_f32_act_linear_tiling(int isa, sk_tiling *out) {
    const sk_tiling *t = tiling_for(isa);
    if (!t) return SK_ERR_UNSUPPORTED;
    *out = *t;
    out->row_group = SK_ACT_NB;
    out->col_block = SK_ACT_TILE_BYTES / 4;
    out->col_block1 = SK_ACT_TILE1;
    return SK_OK;
}

/* ------------------------------------------------------------------ scratch memory */

/* Per-thread scratch, grown on demand and kept while the thread lives (no malloc or
 * fresh pages per call: at batch 1 the call is a few microseconds). Slot 0: selection
 * lists (calling thread); slot 1: the output tile (every thread). A thread-specific key's
 * destructor frees a thread's buffers when it exits, so threads that come and go leave
 * nothing behind; the thread-local pointer is the per-call fast path. wasm32 is
 * single-threaded: one set for the process. */
typedef struct {
    void *p[2];
    size_t size[2];
} scratch_set;

static _Thread_local scratch_set *g_scratch;

#if !defined(__wasm__) && !defined(_WIN32)
#include <pthread.h>
#define SK_SCRATCH_KEY 1
static pthread_key_t g_scratch_key;
static int g_scratch_key_ok;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) { /* runs in the exiting thread */
    scratch_set *set = (scratch_set *)v;
    if (g_scratch == set) g_scratch = NULL;
    free(set->p[0]);
    free(set->p[1]);
    free(set);
}

static void scratch_key_init(void) {
    g_scratch_key_ok = pthread_key_create(&g_scratch_key, scratch_free) == 0;
}
#endif

static scratch_set *scratch_new(void) {
    scratch_set *set = (scratch_set *)calloc(1, sizeof *set);
    if (!set) return NULL;
#if defined(SK_SCRATCH_KEY)
    pthread_once(&g_scratch_once, scratch_key_init);
    if (!g_scratch_key_ok || pthread_setspecific(g_scratch_key, set) != 0) {
        free(set);
        return NULL;
    }
#endif
    return set;
}

static void *scratch(int slot, size_t bytes) {
    scratch_set *set = g_scratch;
    if (!set && !(set = g_scratch = scratch_new())) return NULL;
    if (bytes > set->size[slot]) {
        void *p = NULL;
        if (bytes > SIZE_MAX - bytes / 4 - 4096) return NULL;
        size_t want = bytes + bytes / 4 + 4096;
        if (posix_memalign(&p, 64, want) != 0) return NULL;
        free(set->p[slot]);
        set->p[slot] = p;
        set->size[slot] = want;
    }
    return set->p[slot];
}

SK_INLINE uint64_t align64(uint64_t b) { return (b + 63) & ~(uint64_t)63; }

/* ------------------------------------------------------------------ selection */

SK_INLINE uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Scores' order as unsigned integers: scores are >= 0 or NaN; with the sign bit
 * cleared, larger floats have larger bits and every NaN is above +inf. */
SK_INLINE uint32_t score_key(float s) { return fbits(s) & 0x7fffffffu; }

/* Keep the topk largest keys of key[0..cnt) (cnt > topk): compacts idx/val in place
 * (order kept) and returns topk. Ties at the k-th key go to the earliest entries. */
static int64_t top_k(int32_t *idx, float *val, const uint32_t *key, int64_t cnt, int64_t topk) {
    uint32_t prefix = 0, mask = 0;
    int64_t need = topk; /* how many of the keys matching prefix/mask to take */
    for (int shift = 24; shift >= 0; shift -= 8) {
        int64_t hist[256];
        memset(hist, 0, sizeof hist);
        for (int64_t c = 0; c < cnt; ++c)
            if ((key[c] & mask) == prefix) hist[(key[c] >> shift) & 255u]++;
        int b = 255;
        for (; b > 0; --b) {
            if (hist[b] >= need) break;
            need -= hist[b];
        }
        prefix |= (uint32_t)b << shift;
        mask |= 255u << shift;
    }
    /* prefix is the k-th largest key; take every larger key and `need` equal ones */
    int64_t out = 0;
    for (int64_t c = 0; c < cnt; ++c) {
        const int take = key[c] > prefix || (key[c] == prefix && need > 0);
        need -= key[c] == prefix && take;
        idx[out] = idx[c];
        val[out] = val[c];
        out += take;
    }
    return out;
}

/* Appends the inputs k0 + u whose bit u of mask is set to the (channel, value) list. */
SK_INLINE int64_t append_kept(uint32_t mask, int64_t k0, const float *x, int32_t *idx, float *val,
                              int64_t cnt) {
    while (mask) {
        const int u = __builtin_ctz(mask);
        idx[cnt] = (int32_t)(k0 + u);
        val[cnt] = x[k0 + u];
        ++cnt;
        mask &= mask - 1;
    }
    return cnt;
}

/* Select the channels of one input row. Writes (channel, value) pairs to idx/val in
 * increasing channel order and returns their count. key: scratch of cols entries. */
static int64_t select_row(const sk_act_f32 *w, const float *x, float threshold, int64_t topk,
                          int select, int32_t *idx, float *val, uint32_t *key) {
    const int64_t K = w->cols;
    const float *norms = w->norms;
    const int wina = select == SK_ACT_WINA;
    const int all = threshold < 0.0f;
    int64_t cnt = 0;
    if (topk < 0) {
        const int skip0 = w->finite;
#define SK_KEEP(k) (((all || !(sc(x[k], k) <= threshold)) & (!skip0 || x[k] != 0.0f)))
#define sc(v, k) (wina ? ((v) < 0 ? -(v) : (v)) * norms[k] : ((v) < 0 ? -(v) : (v)))
        /* 16 inputs at a time into a bit mask (vectorizable), then only the kept ones:
         * at high sparsity most blocks have none */
        int64_t k0 = 0;
        if (!wina) {
            /* |x| as bits (NaN above inf) against the threshold's bits: keep when above;
             * -1 keeps every channel, 0 every nonzero one */
            const int32_t tb = all ? (skip0 ? 0 : -1) : (int32_t)fbits(threshold);
            for (; k0 + 16 <= K; k0 += 16) {
                uint32_t mask = 0;
                for (int u = 0; u < 16; ++u)
                    mask |= (uint32_t)((int32_t)(fbits(x[k0 + u]) & 0x7fffffffu) > tb) << u;
                cnt = append_kept(mask, k0, x, idx, val, cnt);
            }
        }
        for (; k0 + 16 <= K; k0 += 16) {
            uint32_t mask = 0;
            for (int u = 0; u < 16; ++u) mask |= (uint32_t)SK_KEEP(k0 + u) << u;
            cnt = append_kept(mask, k0, x, idx, val, cnt);
        }
        for (int64_t k = k0; k < K; ++k) {
            idx[cnt] = (int32_t)k;
            val[cnt] = x[k];
            cnt += SK_KEEP(k);
        }
#undef sc
#undef SK_KEEP
        return cnt;
    }
    if (topk == 0) return 0;
    for (int64_t k = 0; k < K; ++k) {
        const float v = x[k];
        const float s = wina ? (v < 0 ? -v : v) * norms[k] : (v < 0 ? -v : v);
        const int keep = all || !(s <= threshold);
        idx[cnt] = (int32_t)k;
        val[cnt] = v;
        key[cnt] = score_key(s);
        cnt += keep;
    }
    if (cnt > topk) cnt = top_k(idx, val, key, cnt, topk);
    if (w->finite) { /* selected exact zeros contribute exactly 0 */
        int64_t out = 0;
        for (int64_t c = 0; c < cnt; ++c) {
            idx[out] = idx[c];
            val[out] = val[c];
            out += val[c] != 0.0f;
        }
        cnt = out;
    }
    return cnt;
}

/* Delta selection: d = x - xref, kept when !(|d| <= theta); xref takes x there. */
static int64_t select_delta(int64_t K, const float *x, float *xref, float theta, int32_t *idx,
                            float *val) {
    int64_t cnt = 0;
    for (int64_t k = 0; k < K; ++k) {
        const float d = x[k] - xref[k];
        const float a = d < 0 ? -d : d;
        idx[cnt] = (int32_t)k;
        val[cnt] = d;
        cnt += !(a <= theta);
    }
    for (int64_t c = 0; c < cnt; ++c) xref[idx[c]] = x[idx[c]];
    return cnt;
}

/* ------------------------------------------------------------------ accumulation */

/* The outputs of a column tile are accumulated in a scratch buffer placed 2 KiB away
 * (mod 4 KiB) from the weight rows' columns and with rows 64 bytes apart: the output
 * array and the weights are usually both page-aligned(+16) numpy buffers, and a load
 * from W whose address matches a just-stored output in its low 12 bits waits for the
 * store (4K aliasing). Measured (batch 8, all rows active, 4096 outputs, warm): ~3x. */
static int tile_pass(sk_f32_act_ukernel uk, const sk_act_f32 *w, const int32_t *idx,
                     const float *coef, int64_t nact, int64_t n, float *y, int64_t ldy, int64_t a,
                     int64_t b, int64_t tile) {
    const int64_t ldt = tile + 16;
    char *base = (char *)scratch(1, (size_t)(n * ldt) * sizeof(float) + 4096 + 64);
    if (!base) return SK_ERR_NOMEM;
    for (int64_t j0 = a; j0 < b; j0 += tile) {
        const int64_t len = j0 + tile < b ? tile : b - j0;
        const float *wt = w->wt + j0;
        const uintptr_t want = ((uintptr_t)wt + 2048) & 4095;
        float *tb = (float *)(base + ((want - ((uintptr_t)base & 4095)) & 4095));
        for (int64_t i = 0; i < n; ++i)
            memcpy(tb + i * ldt, y + i * ldy + j0, (size_t)len * sizeof(float));
        uk(wt, w->rows, idx, coef, nact, n, len, tb, ldt);
        for (int64_t i = 0; i < n; ++i)
            memcpy(y + i * ldy + j0, tb + i * ldt, (size_t)len * sizeof(float));
    }
    return SK_OK;
}

/* y[0:n, :] += coef-weighted rows idx[0..nact) of W^T, split across threads by columns. */
static int accumulate(sk_f32_act_ukernel uk, const sk_act_f32 *w, const int32_t *idx,
                      const float *coef, int64_t nact, int64_t n, float *y, int64_t ldy) {
    const int64_t M = w->rows;
    if (nact == 0 || M == 0 || n == 0) return SK_OK;
    int64_t tile =
        n == 1 ? (M <= SK_ACT_TILE1 ? M : SK_ACT_TILE1 / 2) : (SK_ACT_TILE_BYTES / 4) / n;
    if (tile < 64) tile = 64;
    tile = (tile + 15) & ~(int64_t)15;
    int nt = sk_threads_current();
    if ((double)nact * (double)n * (double)M < SK_ACT_MIN_PARALLEL) nt = 1;
    if (nt > (M + 63) / 64) nt = (int)((M + 63) / 64);
#if defined(_OPENMP)
    if (nt > 1) {
        int st = SK_OK;
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num(), T = omp_get_num_threads();
            const int64_t a = (M * t / T) & ~(int64_t)15;
            const int64_t b = t == T - 1 ? M : (M * (t + 1) / T) & ~(int64_t)15;
            int64_t tl = (b - a + 15) & ~(int64_t)15;
            if (tl > tile) tl = tile;
            if (a < b && tile_pass(uk, w, idx, coef, nact, n, y, ldy, a, b, tl) != SK_OK) {
#pragma omp atomic write
                st = SK_ERR_NOMEM;
            }
        }
        return st;
    }
#endif
    return tile_pass(uk, w, idx, coef, nact, n, y, ldy, 0, M, tile);
}

/* Shared driver. Per row i of the block, `sel(i, idx, val)` lists its channels. */
typedef struct {
    const sk_act_f32 *w;
    const float *x;
    int64_t ldx;
    float *xref; /* delta mode: non-NULL */
    float threshold;
    int64_t topk;
    int select;
} sel_args;

static int64_t run_select(const sel_args *a, int64_t i, int32_t *idx, float *val, uint32_t *key) {
    if (a->xref)
        return select_delta(a->w->cols, a->x + i * a->ldx, a->xref + i * a->w->cols, a->threshold,
                            idx, val);
    return select_row(a->w, a->x + i * a->ldx, a->threshold, a->topk, a->select, idx, val, key);
}

static int drive(sk_f32_act_ukernel uk, const sel_args *a, int64_t n, float *y, int64_t ldy,
                 int64_t *nactive) {
    const sk_act_f32 *w = a->w;
    const int64_t K = w->cols;
    const int64_t nb = (n > 1 && w->finite) ? (n < SK_ACT_NB ? n : SK_ACT_NB) : 1;
    /* layout: idx[nb*K] val[nb*K] key[K] cnt[nb] | union: mark/pos[K] uidx[K] coef[K*nb] */
    const size_t kk = (size_t)(K > 0 ? K : 1);
    /* in 64 bits (K < 2^31, nb <= 16), then checked against size_t (32 bits on wasm32) */
    const uint64_t k4 = (uint64_t)kk * 4, nbk4 = (uint64_t)nb * k4;
    const uint64_t off_idx = 0, off_val = align64(off_idx + nbk4),
                   off_key = align64(off_val + nbk4);
    const uint64_t off_pos = align64(off_key + k4), off_uidx = align64(off_pos + k4);
    const uint64_t off_coef = align64(off_uidx + k4), total = align64(off_coef + nbk4);
    if (total > SIZE_MAX) return SK_ERR_NOMEM;
    char *s = (char *)scratch(0, (size_t)total);
    if (!s) return SK_ERR_NOMEM;
    int32_t *idx = (int32_t *)(s + off_idx), *pos = (int32_t *)(s + off_pos),
            *uidx = (int32_t *)(s + off_uidx);
    float *val = (float *)(s + off_val), *coef = (float *)(s + off_coef);
    uint32_t *key = (uint32_t *)(s + off_key);
    int64_t cnt[SK_ACT_NB];
    int64_t total_active = 0;
    for (int64_t i0 = 0; i0 < n; i0 += nb) {
        const int64_t rows = n - i0 < nb ? n - i0 : nb;
        if (rows == 1) {
            const int64_t c = run_select(a, i0, idx, val, key);
            total_active += c;
            const int st = accumulate(uk, w, idx, val, c, 1, y + i0 * ldy, ldy);
            if (st != SK_OK) return st;
            continue;
        }
        int64_t block_active = 0;
        for (int64_t r = 0; r < rows; ++r) {
            cnt[r] = run_select(a, i0 + r, idx + r * kk, val + r * kk, key);
            block_active += cnt[r];
        }
        total_active += block_active;
        /* union of the block's channels, in increasing order */
        memset(pos, 0, kk * 4);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cnt[r]; ++c) pos[idx[r * kk + c]] = 1;
        int64_t nu = 0;
        for (int64_t k = 0; k < K; ++k) {
            uidx[nu] = (int32_t)k;
            const int on = pos[k] != 0;
            pos[k] = (int32_t)nu;
            nu += on;
        }
        if (2 * block_active < rows * nu) {
            /* patterns overlap little: the union would multiply mostly zeros */
            for (int64_t r = 0; r < rows; ++r) {
                const int st = accumulate(uk, w, idx + r * kk, val + r * kk, cnt[r], 1,
                                          y + (i0 + r) * ldy, ldy);
                if (st != SK_OK) return st;
            }
            continue;
        }
        memset(coef, 0, (size_t)nu * rows * 4);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cnt[r]; ++c)
                coef[(int64_t)pos[idx[r * kk + c]] * rows + r] = val[r * kk + c];
        const int st = accumulate(uk, w, uidx, coef, nu, rows, y + i0 * ldy, ldy);
        if (st != SK_OK) return st;
    }
    if (nactive) *nactive = total_active;
    return SK_OK;
}

static int check_w(const sk_act_f32 *w) {
    if (!w || w->rows < 0 || w->cols < 0 || w->cols > INT32_MAX) return SK_ERR_INVALID_ARG;
    if (w->rows > 0 && w->cols > 0 && (!w->wt || !w->norms)) return SK_ERR_INVALID_ARG;
    return SK_OK;
}

int sk_f32_act_linear_isa(int isa, const sk_act_f32 *w, int64_t n, const float *x, int64_t ldx,
                          const float *bias, float *y, int64_t ldy, float threshold, int64_t topk,
                          int select, int64_t *nactive) {
    if (nactive) *nactive = 0;
    if (check_w(w) != SK_OK || n < 0) return SK_ERR_INVALID_ARG;
    if (threshold != threshold || (select != SK_ACT_MAGNITUDE && select != SK_ACT_WINA))
        return SK_ERR_INVALID_ARG;
    if (n == 0 || w->rows == 0) return SK_OK;
    if (!y || ldy < w->rows || (w->cols > 0 && (!x || ldx < w->cols))) return SK_ERR_INVALID_ARG;
    if (!sk_isa_supported(isa)) return SK_ERR_UNSUPPORTED;
    sk_f32_act_ukernel uk = ukernel_for(isa);
    if (!uk) return SK_ERR_UNSUPPORTED;
    for (int64_t i = 0; i < n; ++i) {
        float *yr = y + i * ldy;
        if (bias) memcpy(yr, bias, (size_t)w->rows * sizeof(float));
        else memset(yr, 0, (size_t)w->rows * sizeof(float));
    }
    if (w->cols == 0) return SK_OK;
    const sel_args a = {w, x, ldx, NULL, threshold, topk, select};
    return drive(uk, &a, n, y, ldy, nactive);
}

int sk_f32_act_linear(const sk_act_f32 *w, int64_t n, const float *x, int64_t ldx,
                      const float *bias, float *y, int64_t ldy, float threshold, int64_t topk,
                      int select, int64_t *nactive) {
    return sk_f32_act_linear_isa(sk_isa_current(), w, n, x, ldx, bias, y, ldy, threshold, topk,
                                 select, nactive);
}

int sk_f32_act_delta_isa(int isa, const sk_act_f32 *w, int64_t n, const float *x, int64_t ldx,
                         float *xref, float *y, float theta, int64_t *nactive) {
    if (nactive) *nactive = 0;
    if (check_w(w) != SK_OK || n < 0 || !(theta >= 0.0f)) return SK_ERR_INVALID_ARG;
    if (n == 0 || w->cols == 0) return SK_OK;
    if (!xref || (w->rows > 0 && !y) || !x || ldx < w->cols) return SK_ERR_INVALID_ARG;
    if (!sk_isa_supported(isa)) return SK_ERR_UNSUPPORTED;
    sk_f32_act_ukernel uk = ukernel_for(isa);
    if (!uk) return SK_ERR_UNSUPPORTED;
    const sel_args a = {w, x, ldx, xref, theta, -1, SK_ACT_MAGNITUDE};
    return drive(uk, &a, n, y, w->rows, nactive);
}

int sk_f32_act_delta(const sk_act_f32 *w, int64_t n, const float *x, int64_t ldx, float *xref,
                     float *y, float theta, int64_t *nactive) {
    return sk_f32_act_delta_isa(sk_isa_current(), w, n, x, ldx, xref, y, theta, nactive);
}
