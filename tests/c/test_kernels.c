/* test_kernels: every ISA variant of every kernel family against the scalar one.
 *
 * Runs wherever the library builds (x86-64, aarch64 under qemu, wasm32 under node) and
 * needs nothing but libsparsekern and libc, so the SIMD128 kernels, which have no
 * Python path, are tested the same way as the others. For each ISA the CPU (and build)
 * supports, random problems on awkward shapes go through the public sk_*_isa entry
 * points, once with the ISA and once with SK_ISA_SCALAR, and the outputs must agree:
 * identical non-finite pattern, finite values within a bound that grows with the
 * magnitude of the products summed. Inputs end at an unreadable page (POSIX), so a
 * kernel that reads past an array crashes here.
 *
 *   test_kernels [rounds]      (default 40; exit status 0 when every check passed)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparsekern.h"

#if !defined(__wasm__)
#include <sys/mman.h>
#include <unistd.h>
#define SK_TEST_GUARD 1
#endif

/* ------------------------------------------------------------------ utilities */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}
static int64_t rint_in(int64_t lo, int64_t hi) {
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}
static double runif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static float rnormalish(void) { return (float)(runif() + runif() + runif() - 1.5) * 2.0f; }
static int64_t pick(const int64_t *v, int count) { return v[rnd() % (uint64_t)count]; }

/* Arrays that end exactly where an unreadable page starts (POSIX). */
typedef struct {
    void *base;
    size_t len;
} guard_block;
#define MAX_BLOCKS 64
static guard_block blocks[MAX_BLOCKS];
static int nblocks;

static void *alloc_end_guarded(size_t bytes) {
    if (nblocks == MAX_BLOCKS) {
        fprintf(stderr, "test_kernels: too many arrays\n");
        exit(2);
    }
#if defined(SK_TEST_GUARD)
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t body = (bytes + page - 1) / page * page;
    char *base =
        mmap(NULL, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    if (mprotect(base + body, page, PROT_NONE) != 0) {
        perror("mprotect");
        exit(2);
    }
    blocks[nblocks].base = base;
    blocks[nblocks].len = body + page;
    nblocks++;
    return base + body - bytes;
#else
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_kernels: out of memory\n");
        exit(2);
    }
    blocks[nblocks].base = p;
    blocks[nblocks].len = 0;
    nblocks++;
    return p;
#endif
}

static void free_all(void) {
    for (int i = 0; i < nblocks; ++i) {
#if defined(SK_TEST_GUARD)
        munmap(blocks[i].base, blocks[i].len);
#else
        free(blocks[i].base);
#endif
    }
    nblocks = 0;
}

static float *falloc(int64_t count) {
    return (float *)alloc_end_guarded((size_t)count * sizeof(float));
}

/* Random X with a few non-finite entries in some cases. */
static void fill_x(float *x, int64_t count, int nonfinite) {
    for (int64_t i = 0; i < count; ++i) x[i] = rnormalish();
    if (nonfinite && count > 0) {
        const float specials[3] = {INFINITY, -INFINITY, NAN};
        for (int t = 0; t < 3; ++t) x[rnd() % (uint64_t)count] = specials[rnd() % 3];
    }
}

static int failures, checks;
static const char *cur_isa = "?", *cur_family = "?";
static char cur_case[256];

/* got vs want, where bound[i] is the sum of |products| behind element i. */
static void compare(const float *got, const float *want, const double *bound, int64_t count,
                    int64_t stride, int64_t width) {
    ++checks;
    for (int64_t i = 0; i < count; ++i) {
        const int64_t at = (i / width) * stride + i % width;
        const float a = got[at], b = want[at];
        int ok;
        if (isnan(b)) ok = isnan(a);
        else if (isinf(b)) ok = a == b;
        else ok = isfinite(a) && fabs((double)a - b) <= 2e-6 * (bound ? bound[i] : fabs(b)) + 1e-30;
        if (!ok) {
            if (failures < 20)
                fprintf(stderr, "FAIL %s %s [%s] element %lld: got %.9g want %.9g (bound %.3g)\n",
                        cur_family, cur_isa, cur_case, (long long)i, a, b, bound ? bound[i] : 0.0);
            ++failures;
            return;
        }
    }
}

static void expect_ok(int status, const char *what) {
    if (status != SK_OK) {
        fprintf(stderr, "FAIL %s %s [%s]: %s returned %d\n", cur_family, cur_isa, cur_case, what,
                status);
        ++failures;
    }
}

/* ------------------------------------------------------------------ unstructured */

typedef struct {
    sk_csr_f32 w;
    int64_t *row_ptr;
    void *col;
    float *val;
} csr_owned;

/* Random CSR with density d (some rows forced empty), 16- or 32-bit indices. */
static csr_owned make_csr(int64_t rows, int64_t cols, double d, int idx_bits) {
    csr_owned c;
    memset(&c, 0, sizeof c);
    c.row_ptr = (int64_t *)alloc_end_guarded((size_t)(rows + 1) * sizeof(int64_t));
    int64_t cap = rows * cols;
    int32_t *tmp_col = (int32_t *)malloc((size_t)(cap > 0 ? cap : 1) * sizeof(int32_t));
    int64_t nnz = 0;
    c.row_ptr[0] = 0;
    for (int64_t r = 0; r < rows; ++r) {
        const int empty = rnd() % 7 == 0;
        for (int64_t k = 0; k < cols && !empty; ++k)
            if (runif() < d) tmp_col[nnz++] = (int32_t)k;
        c.row_ptr[r + 1] = nnz;
    }
    c.val = falloc(nnz);
    for (int64_t p = 0; p < nnz; ++p) c.val[p] = rnormalish();
    if (idx_bits == 16) {
        uint16_t *ci = (uint16_t *)alloc_end_guarded((size_t)nnz * sizeof(uint16_t));
        for (int64_t p = 0; p < nnz; ++p) ci[p] = (uint16_t)tmp_col[p];
        c.col = ci;
    } else {
        int32_t *ci = (int32_t *)alloc_end_guarded((size_t)nnz * sizeof(int32_t));
        memcpy(ci, tmp_col, (size_t)nnz * sizeof(int32_t));
        c.col = ci;
    }
    free(tmp_col);
    c.w.rows = rows;
    c.w.cols = cols;
    c.w.nnz = nnz;
    c.w.idx_bits = idx_bits;
    c.w.row_ptr = c.row_ptr;
    c.w.col_idx = c.col;
    c.w.values = c.val;
    return c;
}

static int64_t csr_col(const sk_csr_f32 *w, int64_t p) {
    return w->idx_bits == 16 ? ((const uint16_t *)w->col_idx)[p] : ((const int32_t *)w->col_idx)[p];
}

static double *csr_bound(const sk_csr_f32 *w, const float *x, int64_t n, int64_t ldx,
                         const float *bias) {
    double *b = (double *)calloc((size_t)(w->rows * n > 0 ? w->rows * n : 1), sizeof(double));
    for (int64_t r = 0; r < w->rows; ++r)
        for (int64_t j = 0; j < n; ++j) {
            double s = bias ? fabs(bias[r]) : 0.0;
            for (int64_t p = w->row_ptr[r]; p < w->row_ptr[r + 1]; ++p) {
                const double term = fabs((double)w->values[p] * x[csr_col(w, p) * ldx + j]);
                if (isfinite(term)) s += term;
            }
            b[r * n + j] = s;
        }
    return b;
}

static const int64_t N_CHOICES[] = {1,  1,  2,  3,  4,  5,  7,  8,  9,  15, 16,
                                    17, 24, 31, 32, 33, 48, 63, 64, 65, 100};
#define N_COUNT ((int)(sizeof N_CHOICES / sizeof N_CHOICES[0]))
static const double D_CHOICES[] = {0.0, 0.03, 0.1, 0.3, 0.7, 1.0};

static void test_unstructured(int isa, int rounds) {
    cur_family = "f32_spmm_unstructured";
    for (int t = 0; t < rounds; ++t) {
        const int big = t % 10 == 9;
        const int64_t rows = big ? rint_in(100, 300) : rint_in(1, 40);
        const int64_t cols = big ? rint_in(200, 1200) : rint_in(1, 150);
        const double d = big ? 0.1 : D_CHOICES[rnd() % 6];
        const int idx_bits = rnd() % 2 ? 16 : 32;
        /* half the rounds with the panel layout (the AVX-512 kernel for batch >= 64), its
         * arrays ending at a guard page */
        const int panels = rows >= 4 && rnd() % 2;
        const int64_t n = panels && rnd() % 2 ? (rnd() % 2 ? 64 : 100) : pick(N_CHOICES, N_COUNT);
        const int64_t ldx = n + (rnd() % 3 == 0 ? rint_in(1, 5) : 0);
        const int64_t ldy = n + (rnd() % 3 == 0 ? rint_in(1, 5) : 0);
        const int nonfinite = rnd() % 5 == 0;
        snprintf(cur_case, sizeof cur_case,
                 "rows=%lld cols=%lld d=%.2f idx=%d n=%lld ldx=%lld nonfinite=%d panels=%d",
                 (long long)rows, (long long)cols, d, idx_bits, (long long)n, (long long)ldx,
                 nonfinite, panels);
        csr_owned c = make_csr(rows, cols, d, idx_bits);
        if (panels) {
            const int64_t size = sk_f32_unstructured_panels_size(&c.w);
            const int64_t noff = rows / 4 * ((cols + 127) / 128) + 1;
            int64_t *off = (int64_t *)alloc_end_guarded((size_t)noff * sizeof(int64_t));
            float *pv = (float *)alloc_end_guarded((size_t)(size > 0 ? size : 1) * sizeof(float));
            uint8_t *pc = (uint8_t *)alloc_end_guarded((size_t)(size > 0 ? size : 1));
            expect_ok(size < 0 ? (int)size : sk_f32_unstructured_panels_build(&c.w, off, pv, pc),
                      "panels");
            c.w.panel_off = off;
            c.w.panel_val = pv;
            c.w.panel_col = pc;
        }
        float *x = falloc(cols * ldx);
        fill_x(x, cols * ldx, nonfinite);
        float *bias = NULL;
        if (rnd() % 2) {
            bias = falloc(rows);
            fill_x(bias, rows, 0);
        }
        float *y0 = falloc(rows * ldy), *y1 = falloc(rows * ldy);
        for (int64_t i = 0; i < rows * ldy; ++i) y0[i] = y1[i] = -7.0f;
        expect_ok(sk_f32_spmm_unstructured_isa(SK_ISA_SCALAR, &c.w, x, n, ldx, bias, y0, ldy),
                  "scalar");
        expect_ok(sk_f32_spmm_unstructured_isa(isa, &c.w, x, n, ldx, bias, y1, ldy), "isa");
        double *bd = csr_bound(&c.w, x, n, ldx, bias);
        compare(y1, y0, bd, rows * n, ldy, n);
        for (int64_t r = 0; r < rows; ++r) /* the padding between rows is untouched */
            for (int64_t j = n; j < ldy; ++j)
                if (y1[r * ldy + j] != -7.0f) {
                    ++failures;
                    fprintf(stderr, "FAIL %s wrote past n\n", cur_case);
                    r = rows;
                    break;
                }
        free(bd);
        free_all();
    }
}

/* ------------------------------------------------------------------ N:M */

static void test_nm(int isa, int rounds) {
    cur_family = "f32_spmm_nm";
    static const int MS[3] = {4, 8, 16};
    for (int t = 0; t < rounds; ++t) {
        /* every other round a pattern with its own AVX-512 kernels (2:4, 1:4, 1:8) */
        static const int COMPILED[3][2] = {{2, 4}, {1, 4}, {1, 8}};
        const int pick3 = (int)(rnd() % 3);
        const int m = t % 2 ? COMPILED[pick3][1] : MS[rnd() % 3];
        const int nn = t % 2 ? COMPILED[pick3][0] : (int)rint_in(1, m - 1);
        const int pos_bits = m == 4 ? 2 : m == 8 ? 3 : 4;
        const int big = t % 10 == 9;
        const int64_t rows = big ? rint_in(60, 200) : rint_in(1, 37);
        int64_t cols;
        switch (rnd() % 6) {
        case 0: cols = rint_in(1, m - 1); break;
        case 1: cols = m; break;
        case 2: cols = m + 1; break;
        case 3: cols = 2 * m + 3; break;
        default: cols = big ? rint_in(300, 1100) : rint_in(1, 260);
        }
        const int64_t n = pick(N_CHOICES, N_COUNT);
        const int64_t ldx = n + (rnd() % 3 == 0 ? rint_in(1, 5) : 0);
        const int nonfinite = rnd() % 5 == 0;
        snprintf(cur_case, sizeof cur_case,
                 "%d:%d rows=%lld cols=%lld n=%lld ldx=%lld nonfinite=%d", nn, m, (long long)rows,
                 (long long)cols, (long long)n, (long long)ldx, nonfinite);
        const int64_t groups = (cols + m - 1) / m, slots = groups * nn;
        const int64_t meta_stride = (slots * pos_bits + 63) / 64 * 8 + (rnd() % 2) * 8;
        float *val = falloc(rows * slots);
        uint8_t *meta =
            (uint8_t *)alloc_end_guarded((size_t)(rows * meta_stride > 0 ? rows * meta_stride : 1));
        memset(meta, 0, (size_t)(rows * meta_stride));
        double *bd = (double *)calloc((size_t)(rows * n > 0 ? rows * n : 1), sizeof(double));
        float *x = falloc(cols * ldx);
        fill_x(x, cols * ldx, nonfinite);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t g = 0; g < groups; ++g) {
                int chosen[16] = {0}, k = 0;
                while (k < nn) { /* nn distinct positions, sorted below */
                    const int p = (int)(rnd() % (uint64_t)m);
                    if (!chosen[p]) {
                        chosen[p] = 1;
                        ++k;
                    }
                }
                int s = 0;
                for (int p = 0; p < m; ++p) {
                    if (!chosen[p]) continue;
                    const int64_t slot = g * nn + s++, col = g * m + p;
                    const float v = col < cols ? rnormalish() : 0.0f;
                    val[r * slots + slot] = v;
                    const int64_t bit = slot * pos_bits;
                    for (int b = 0; b < pos_bits; ++b)
                        if ((p >> b) & 1)
                            meta[r * meta_stride + (bit + b) / 8] |=
                                (uint8_t)(1u << ((bit + b) % 8));
                    if (col < cols)
                        for (int64_t j = 0; j < n; ++j) {
                            const double term = fabs((double)v * x[col * ldx + j]);
                            if (isfinite(term)) bd[r * n + j] += term;
                        }
                }
            }
        sk_nm_f32 w = {rows, cols, nn, m, pos_bits, meta_stride, val, meta};
        float *y0 = falloc(rows * n), *y1 = falloc(rows * n);
        expect_ok(sk_f32_spmm_nm_isa(SK_ISA_SCALAR, &w, x, n, ldx, NULL, y0, n), "scalar");
        expect_ok(sk_f32_spmm_nm_isa(isa, &w, x, n, ldx, NULL, y1, n), "isa");
        compare(y1, y0, bd, rows * n, n, n);
        free(bd);
        free_all();
    }
}

/* ------------------------------------------------------------------ activation-sparse */

/* |bias| + |y0| + sum over every channel (a superset of the selected ones) of
 * (|x| + |xref|) * |w|, skipping non-finite products (those show in the NaN pattern). */
static double *act_bound(const sk_act_f32 *w, int64_t n, const float *x, int64_t ldx,
                         const float *xref, const float *bias, const float *y0) {
    double *bd = (double *)calloc((size_t)(n * w->rows > 0 ? n * w->rows : 1), sizeof(double));
    for (int64_t i = 0; i < n; ++i)
        for (int64_t r = 0; r < w->rows; ++r) {
            double s = (bias ? fabs(bias[r]) : 0.0) + (y0 ? fabs(y0[i * w->rows + r]) : 0.0);
            for (int64_t k = 0; k < w->cols; ++k) {
                const double c = fabs((double)x[i * ldx + k]) +
                                 (xref ? fabs((double)xref[i * w->cols + k]) : 0.0);
                const double term = c * fabs((double)w->wt[k * w->rows + r]);
                if (isfinite(term)) s += term;
            }
            bd[i * w->rows + r] = s;
        }
    return bd;
}

static void test_act(int isa, int rounds) {
    cur_family = "f32_act_linear";
    for (int t = 0; t < rounds; ++t) {
        const int big = t % 10 == 9;
        const int64_t rows = big ? rint_in(200, 700) : rint_in(1, 80);
        const int64_t cols = big ? rint_in(100, 600) : rint_in(1, 120);
        const int64_t n = rnd() % 2 ? 1 : rint_in(2, 20);
        const int64_t ldx = cols + (rnd() % 3 == 0 ? 3 : 0);
        const double zeros = D_CHOICES[rnd() % 6];
        const int finite = rnd() % 4 != 0, select = (int)(rnd() % 2);
        const float threshold = rnd() % 3 == 0 ? -1.0f : (float)(runif() * 0.8);
        const int64_t topk = rnd() % 3 == 0 ? rint_in(0, cols) : -1;
        const int nonfinite = rnd() % 5 == 0;
        snprintf(cur_case, sizeof cur_case,
                 "rows=%lld cols=%lld n=%lld zeros=%.2f finite=%d select=%d thr=%.2f topk=%lld "
                 "nonfinite=%d",
                 (long long)rows, (long long)cols, (long long)n, zeros, finite, select, threshold,
                 (long long)topk, nonfinite);
        float *wt = falloc(cols * rows), *norms = falloc(cols);
        fill_x(wt, cols * rows, !finite);
        for (int64_t k = 0; k < cols; ++k) {
            double s = 0;
            for (int64_t r = 0; r < rows; ++r) s += (double)wt[k * rows + r] * wt[k * rows + r];
            norms[k] = (float)sqrt(s);
        }
        sk_act_f32 w = {rows, cols, finite, wt, norms};
        float *x = falloc(n * ldx);
        fill_x(x, n * ldx, nonfinite);
        for (int64_t i = 0; i < n * ldx; ++i)
            if (runif() < zeros) x[i] = 0.0f;
        float *bias = NULL;
        if (rnd() % 2) {
            bias = falloc(rows);
            fill_x(bias, rows, 0);
        }
        float *y0 = falloc(n * rows), *y1 = falloc(n * rows);
        int64_t a0 = -1, a1 = -2;
        expect_ok(sk_f32_act_linear_isa(SK_ISA_SCALAR, &w, n, x, ldx, bias, y0, rows, threshold,
                                        topk, select, &a0),
                  "scalar");
        expect_ok(
            sk_f32_act_linear_isa(isa, &w, n, x, ldx, bias, y1, rows, threshold, topk, select, &a1),
            "isa");
        if (a0 != a1) {
            ++failures;
            fprintf(stderr, "FAIL act [%s]: nactive %lld vs %lld\n", cur_case, (long long)a1,
                    (long long)a0);
        }
        double *bd = act_bound(&w, n, x, ldx, NULL, bias, NULL);
        compare(y1, y0, bd, n * rows, rows, rows);

        /* delta step: y += sum over changed channels; xref updated where kept */
        if (finite) {
            float *xr0 = falloc(n * cols), *xr1 = falloc(n * cols);
            for (int64_t i = 0; i < n * cols; ++i)
                xr0[i] = xr1[i] = rnd() % 2 ? x[(i / cols) * ldx + i % cols] : rnormalish();
            float *d0 = falloc(n * rows), *d1 = falloc(n * rows);
            for (int64_t i = 0; i < n * rows; ++i) d0[i] = d1[i] = rnormalish();
            free(bd);
            bd = act_bound(&w, n, x, ldx, xr0, NULL, d0);
            const float theta = (float)(runif() * 0.5);
            expect_ok(sk_f32_act_delta_isa(SK_ISA_SCALAR, &w, n, x, ldx, xr0, d0, theta, &a0),
                      "delta scalar");
            expect_ok(sk_f32_act_delta_isa(isa, &w, n, x, ldx, xr1, d1, theta, &a1), "delta isa");
            if (a0 != a1 || memcmp(xr0, xr1, (size_t)(n * cols) * sizeof(float)) != 0) {
                ++failures;
                fprintf(stderr, "FAIL act delta [%s]: kept channels differ\n", cur_case);
            }
            compare(d1, d0, bd, n * rows, rows, rows);
        }
        free(bd);
        free_all();
    }
}

/* ------------------------------------------------------------------ conv2d */

static void test_conv(int isa, int rounds) {
    cur_family = "f32_conv2d_sparse";
    for (int t = 0; t < rounds; ++t) {
        sk_conv2d_geom g;
        memset(&g, 0, sizeof g);
        const int kind = (int)(rnd() % 4); /* 0: 1x1, 1: KxK, 2: depthwise, 3: grouped */
        g.batch = rint_in(1, 2);
        g.groups = kind == 2 ? rint_in(1, 8) : kind == 3 ? 2 : 1;
        g.c_in = g.groups * (kind == 2 ? 1 : rint_in(1, 6));
        g.c_out = g.groups * (kind == 2 ? 1 : rint_in(1, 6));
        g.kh = kind == 0 ? 1 : pick((const int64_t[]){1, 3, 5}, 3);
        g.kw = kind == 0 ? 1 : pick((const int64_t[]){1, 3, 5}, 3);
        g.h = rint_in(1, 12);
        g.w = rint_in(1, 45);
        g.stride_h = rint_in(1, 2);
        g.stride_w = kind == 0 && rnd() % 2 ? 1 : rint_in(1, 2);
        g.dil_h = rnd() % 4 == 0 ? 2 : 1;
        g.dil_w = rnd() % 4 == 0 ? 2 : 1;
        g.pad_h = kind == 0 ? 0 : rint_in(0, g.kh / 2 * g.dil_h);
        g.pad_w = kind == 0 ? 0 : rint_in(0, g.kw / 2 * g.dil_w);
        const int64_t eff_h = (g.kh - 1) * g.dil_h + 1, eff_w = (g.kw - 1) * g.dil_w + 1;
        const int64_t hp = g.h + 2 * g.pad_h, wpad = g.w + 2 * g.pad_w;
        if (hp < eff_h || wpad < eff_w) {
            --t;
            continue;
        }
        g.h_out = (hp - eff_h) / g.stride_h + 1;
        g.w_out = (wpad - eff_w) / g.stride_w + 1;
        const double d = D_CHOICES[rnd() % 6];
        const int nonfinite = rnd() % 5 == 0;
        snprintf(cur_case, sizeof cur_case,
                 "b=%lld %lldx%lldx%lld -> %lld k=%lldx%lld groups=%lld stride=%lld,%lld "
                 "pad=%lld,%lld dil=%lld,%lld d=%.2f nonfinite=%d",
                 (long long)g.batch, (long long)g.c_in, (long long)g.h, (long long)g.w,
                 (long long)g.c_out, (long long)g.kh, (long long)g.kw, (long long)g.groups,
                 (long long)g.stride_h, (long long)g.stride_w, (long long)g.pad_h,
                 (long long)g.pad_w, (long long)g.dil_h, (long long)g.dil_w, d, nonfinite);
        const int64_t cg = g.c_in / g.groups, og = g.c_out / g.groups, K = cg * g.kh * g.kw;
        csr_owned c = make_csr(g.c_out, K, d, rnd() % 2 ? 16 : 32);
        const int64_t xin = g.batch * g.c_in * g.h * g.w,
                      yout = g.batch * g.c_out * g.h_out * g.w_out;
        float *x = falloc(xin);
        fill_x(x, xin, nonfinite);
        float *bias = NULL;
        if (rnd() % 2) {
            bias = falloc(g.c_out);
            fill_x(bias, g.c_out, 0);
        }
        float *y0 = falloc(yout), *y1 = falloc(yout);
        expect_ok(sk_f32_conv2d_sparse_isa(SK_ISA_SCALAR, &c.w, &g, x, bias, y0), "scalar");
        expect_ok(sk_f32_conv2d_sparse_isa(isa, &c.w, &g, x, bias, y1), "isa");
        /* bound: |w| * |x| over each receptive field */
        double *bd = (double *)calloc((size_t)yout, sizeof(double));
        for (int64_t b = 0; b < g.batch; ++b)
            for (int64_t co = 0; co < g.c_out; ++co)
                for (int64_t oy = 0; oy < g.h_out; ++oy)
                    for (int64_t ox = 0; ox < g.w_out; ++ox) {
                        double s = bias ? fabs(bias[co]) : 0.0;
                        for (int64_t p = c.w.row_ptr[co]; p < c.w.row_ptr[co + 1]; ++p) {
                            const int64_t col = csr_col(&c.w, p),
                                          ci = (co / og) * cg + col / (g.kh * g.kw);
                            const int64_t ky = col / g.kw % g.kh, kx = col % g.kw;
                            const int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dil_h;
                            const int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dil_w;
                            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) {
                                const double term =
                                    fabs((double)c.w.values[p] *
                                         x[((b * g.c_in + ci) * g.h + iy) * g.w + ix]);
                                if (isfinite(term)) s += term;
                            }
                        }
                        bd[((b * g.c_out + co) * g.h_out + oy) * g.w_out + ox] = s;
                    }
        compare(y1, y0, bd, yout, 1, 1);
        free(bd);
        free_all();
    }
}

/* Direct conv2d in double from the geometry (finite inputs): the expected output and the
 * bound of compare(). Every coordinate it forms fits int64 for a geometry the operator
 * accepts. */
static void conv_reference(const sk_conv2d_geom *g, const sk_csr_f32 *w, const float *x,
                           const float *bias, float *want, double *bound) {
    const int64_t cg = g->c_in / g->groups, og = g->c_out / g->groups, khw = g->kh * g->kw;
    for (int64_t b = 0; b < g->batch; ++b)
        for (int64_t co = 0; co < g->c_out; ++co)
            for (int64_t oy = 0; oy < g->h_out; ++oy)
                for (int64_t ox = 0; ox < g->w_out; ++ox) {
                    double e = bias ? bias[co] : 0.0, s = bias ? fabs(bias[co]) : 0.0;
                    for (int64_t p = w->row_ptr[co]; p < w->row_ptr[co + 1]; ++p) {
                        const int64_t col = csr_col(w, p), ci = (co / og) * cg + col / khw;
                        const int64_t ky = col / g->kw % g->kh, kx = col % g->kw;
                        const int64_t iy = oy * g->stride_h - g->pad_h + ky * g->dil_h;
                        const int64_t ix = ox * g->stride_w - g->pad_w + kx * g->dil_w;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                        const double t =
                            (double)w->values[p] * x[((b * g->c_in + ci) * g->h + iy) * g->w + ix];
                        e += t;
                        s += fabs(t);
                    }
                    const int64_t at = ((b * g->c_out + co) * g->h_out + oy) * g->w_out + ox;
                    want[at] = (float)e;
                    bound[at] = s;
                }
}

static sk_conv2d_geom conv_geom(int64_t batch, int64_t c_in, int64_t h, int64_t w, int64_t c_out,
                                int64_t kh, int64_t kw, int64_t groups, int64_t sh, int64_t sw,
                                int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t h_out,
                                int64_t w_out) {
    const sk_conv2d_geom g = {batch, c_in, h,  w,  c_out, kh, kw,    groups,
                              sh,    sw,   ph, pw, dh,    dw, h_out, w_out};
    return g;
}

/* A valid geometry with extreme strides, paddings or shapes: the ISA and the scalar
 * variant against conv_reference. */
static void conv_edge_case(int isa, const char *name, sk_conv2d_geom g, double d) {
    snprintf(cur_case, sizeof cur_case, "edge geometry: %s", name);
    const int64_t K = g.c_in / g.groups * g.kh * g.kw;
    csr_owned c = make_csr(g.c_out, K, d, K > 65536 || rnd() % 2 ? 32 : 16);
    while (c.w.nnz == 0) { /* make_csr empties some rows; these cases need weights */
        free_all();
        c = make_csr(g.c_out, K, d, K > 65536 || rnd() % 2 ? 32 : 16);
    }
    const int64_t xin = g.batch * g.c_in * g.h * g.w, yout = g.batch * g.c_out * g.h_out * g.w_out;
    float *x = falloc(xin), *bias = falloc(g.c_out), *y = falloc(yout), *want = falloc(yout);
    fill_x(x, xin, 0);
    fill_x(bias, g.c_out, 0);
    double *bd = (double *)calloc((size_t)yout, sizeof(double));
    conv_reference(&g, &c.w, x, bias, want, bd);
    expect_ok(sk_f32_conv2d_sparse_isa(isa, &c.w, &g, x, bias, y), "isa");
    compare(y, want, bd, yout, 1, 1);
    free(bd);
    free_all();
}

/* A geometry whose sizes or coordinates overflow int64: SK_ERR_INVALID_ARG, nothing read
 * or written (x and y are 64 floats ending at an unreadable page). */
static void conv_overflow_case(int isa, const char *name, sk_conv2d_geom g) {
    snprintf(cur_case, sizeof cur_case, "overflowing geometry: %s", name);
    ++checks;
    int64_t row_ptr[2] = {0, 1};
    const int32_t col[1] = {0};
    const float val[1] = {1.0f};
    sk_csr_f32 w;
    memset(&w, 0, sizeof w);
    w.rows = g.c_out;
    w.cols = (int64_t)((uint64_t)(g.c_in / g.groups) * (uint64_t)g.kh * (uint64_t)g.kw);
    w.nnz = g.c_out == 1 ? 1 : 0;
    if (w.nnz == 0) row_ptr[1] = 0;
    w.idx_bits = 32;
    w.row_ptr = row_ptr;
    w.col_idx = col;
    w.values = val;
    float *x = falloc(64), *y = falloc(64);
    fill_x(x, 64, 0);
    const int st = sk_f32_conv2d_sparse_isa(isa, &w, &g, x, NULL, y);
    if (st != SK_ERR_INVALID_ARG) {
        fprintf(stderr, "FAIL %s %s [%s]: returned %d, want SK_ERR_INVALID_ARG\n", cur_family,
                cur_isa, cur_case, st);
        ++failures;
    }
    free_all();
}

static void test_conv_geometry(int isa) {
    cur_family = "f32_conv2d_sparse";
    const int64_t P61 = (int64_t)1 << 61, P62 = (int64_t)1 << 62;
    /* the stride of an axis with one output is unused, however large */
    conv_edge_case(isa, "stride (1, 2^62), 8x8 -> 6x1",
                   conv_geom(1, 3, 8, 8, 4, 3, 3, 1, 1, P62, 0, 0, 1, 1, 6, 1), 1.0);
    conv_edge_case(isa, "stride (2^62, 2^62) -> 1x1",
                   conv_geom(2, 3, 8, 8, 4, 3, 3, 1, P62, P62, 1, 1, 1, 1, 1, 1), 0.7);
    /* strides far beyond the input that still step onto it (padding as large) */
    conv_edge_case(isa, "stride/pad 10^9 along w -> 4x3",
                   conv_geom(1, 2, 8, 8, 3, 3, 3, 1, 2, 1000000000, 1, 1000000000, 1, 1, 4, 3),
                   0.7);
    conv_edge_case(isa, "stride/pad 2^61 both axes -> 3x3",
                   conv_geom(1, 2, 5, 8, 3, 2, 3, 1, P61, P61, P61, P61, 1, 1, 3, 3), 1.0);
    conv_edge_case(isa, "dilation/stride/pad 2^40 along w -> 2x2",
                   conv_geom(1, 2, 6, 8, 2, 3, 2, 1, 3, (int64_t)1 << 40, 1, (int64_t)1 << 40, 1,
                             (int64_t)1 << 40, 2, 2),
                   1.0);
    /* paddings past int32 (shifts that leave no valid column), output size set directly */
    conv_edge_case(
        isa, "pad (2^40, 2^32) -> 2x4 (bias only)",
        conv_geom(1, 2, 4, 4, 3, 3, 3, 1, 1, 1, (int64_t)1 << 40, (int64_t)1 << 32, 1, 1, 2, 4),
        1.0);
    /* a kernel row as wide as 4096 columns on a 1-pixel input (the AVX-512 mask table would
     * outgrow the output); a weight matrix with far more columns than weights (taps
     * decoded one by one), grouped */
    conv_edge_case(isa, "1x4096 kernel, pad 4096",
                   conv_geom(1, 1, 1, 1, 1, 1, 4096, 1, 1, 1, 0, 4096, 1, 1, 1, 4098), 1.0);
    conv_edge_case(isa, "3x2048 kernel, 2 groups, sparse",
                   conv_geom(1, 4, 5, 10, 2, 3, 2048, 2, 1, 1, 1, 2048, 1, 1, 5, 2059), 0.002);

    conv_overflow_case(
        isa, "kh*kw",
        conv_geom(1, 1, 1, 1, 1, (int64_t)1 << 32, (int64_t)1 << 32, 1, 1, 1, 0, 0, 1, 1, 1, 1));
    conv_overflow_case(
        isa, "c_in*h*w",
        conv_geom(1, (int64_t)1 << 31, (int64_t)1 << 31, 4, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1));
    conv_overflow_case(
        isa, "batch*c_in*h*w bytes",
        conv_geom((int64_t)1 << 32, 1, 1 << 15, 1 << 15, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1));
    conv_overflow_case(
        isa, "h_out*w_out",
        conv_geom(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, (int64_t)1 << 33, INT32_MAX));
    conv_overflow_case(
        isa, "batch*c_out*h_out*w_out",
        conv_geom((int64_t)1 << 40, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1 << 12, 1 << 12));
    conv_overflow_case(isa, "(w_out-1)*stride_w",
                       conv_geom(1, 1, 8, 8, 1, 3, 3, 1, 1, P62, 0, 0, 1, 1, 6, 3));
    conv_overflow_case(isa, "(h_out-1)*stride_h",
                       conv_geom(1, 1, 8, 8, 1, 3, 3, 1, P62, 1, 0, 0, 1, 1, 4, 6));
    conv_overflow_case(isa, "(kw-1)*dil_w",
                       conv_geom(1, 1, 8, 8, 1, 3, 3, 1, 1, 1, 0, 0, 1, P62, 6, 1));
    conv_overflow_case(isa, "reach along h",
                       conv_geom(1, 1, 8, 8, 1, 3, 3, 1, P62, 1, P62, 0, 1, 1, 2, 6));
    conv_overflow_case(isa, "pad_w = INT64_MAX",
                       conv_geom(1, 1, 8, 8, 1, 3, 3, 1, 1, 1, 0, INT64_MAX, 1, 1, 6, 1));
    conv_overflow_case(isa, "w > INT32_MAX",
                       conv_geom(1, 1, 1, (int64_t)1 << 31, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1));
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 40;
    const uint64_t mask = sk_cpu_isa_mask();
    printf("libsparsekern %s; ISAs here:", sk_version());
    for (int isa = 0; isa < SK_ISA_COUNT; ++isa)
        if (mask & (1ull << isa)) printf(" %s", sk_isa_name(isa));
    printf("\n");
    int tested = 0;
    for (int isa = 0; isa < SK_ISA_COUNT; ++isa) {
        if (!(mask & (1ull << isa))) continue;
        cur_isa = sk_isa_name(isa);
        const int threads[2] = {1, 2};
        for (int ti = 0; ti < (sk_max_threads() > 1 ? 2 : 1); ++ti) {
            sk_set_num_threads(threads[ti]);
            const int before = failures, checks_before = checks;
            rng_state = 0x9e3779b97f4a7c15ull + (uint64_t)isa * 7919u + (uint64_t)ti;
            test_unstructured(isa, rounds);
            test_nm(isa, rounds);
            test_act(isa, rounds);
            test_conv(isa, rounds);
            test_conv_geometry(isa);
            printf("%-8s threads=%d: %d checks, %d failures\n", cur_isa, threads[ti],
                   checks - checks_before, failures - before);
        }
        ++tested;
    }
    printf(failures ? "test_kernels: FAILED\n"
                    : "test_kernels: all %d ISA variants agree with scalar\n",
           tested);
    return failures ? 1 : 0;
}
