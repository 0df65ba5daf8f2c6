/* kernel_insns.c - driver for instruction counting of sparsekern kernels (aarch64 under
 * qemu-aarch64 with tools/qemu_insn_plugin.so; see tools/count_insns.sh).
 *
 * Usage: kernel_insns FAMILY ISA R [key=value ...]
 *   FAMILY  unstructured | nm | act | conv
 *   ISA     scalar | neon   (or any name sk_isa_name knows)
 *   R       measured calls of the sk_*_isa entry point
 * Keys (defaults in brackets):
 *   all:          seed [1], warmup [1] (calls made before the R measured ones, so that
 *                 R=k minus R=0 excludes first-call costs: PLT binding, page faults)
 *   unstructured: rows [4096] cols [4096] density [0.1] n [1] panels [0] (1: build the
 *                 panel layout, as the Python layer does for AVX-512 at batch >= 64)
 *   nm:           rows [1024] cols [1024] nm [2:4] n [1]
 *   act:          rows [4096] cols [4096] zero [0.9] (fraction of x exactly 0) n [1]
 *   conv:         batch [1] cin [64] cout [64] h [56] w [56] k [3] stride [1] pad [k/2]
 *                 density [0.1]
 *
 * The problem is built deterministically from the seed (xorshift64*), independent of ISA.
 * sk_set_num_threads(1). Prints one line on stdout:
 *   family=.. isa=.. R=.. macs=M ... checksum=C status=S
 * macs: useful multiply-adds of one call:
 *   unstructured  nnz * n
 *   nm            stored slots whose column is < cols (padding excluded) * n
 *   act           *nactive (selected (row, channel) pairs) * rows
 *   conv          exact: sum over stored taps of the output pixels whose input position
 *                 is inside the image (padding excluded) * batch; the upper-bound proxy
 *                 nnz * h_out * w_out * batch is printed as macs_proxy.
 * checksum: weighted sum of y after the last call (compare scalar vs neon for a sanity check).
 * Exit status 0 on success, 2 on bad usage, 3 when a call returns nonzero.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparsekern.h"

/* ---- deterministic random numbers */
static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull; if (!rng_state) rng_state = 1; }
static inline uint64_t rng_u64(void) {
    uint64_t x = rng_state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}
/* uniform in [-1, 1), never exactly 0 */
static inline float rng_val(void) {
    float v = (float)((int32_t)(rng_u64() >> 32)) * (1.0f / 2147483648.0f);
    return v == 0.0f ? 0.5f : v;
}
/* true with probability p: compare 32 random bits with a threshold */
static inline int rng_bern(uint64_t thr32) { return (rng_u64() >> 32) < thr32; }
static uint64_t prob_thr(double p) {
    if (p <= 0) return 0;
    if (p >= 1) return (uint64_t)1 << 32;
    return (uint64_t)(p * 4294967296.0);
}

/* ---- arguments */
static int nkv;
static char **kv;
static const char *opt_str(const char *key, const char *def) {
    size_t l = strlen(key);
    for (int i = 0; i < nkv; i++)
        if (strncmp(kv[i], key, l) == 0 && kv[i][l] == '=') return kv[i] + l + 1;
    return def;
}
static int64_t opt_i(const char *key, int64_t def) {
    const char *s = opt_str(key, NULL);
    return s ? strtoll(s, NULL, 10) : def;
}
static double opt_f(const char *key, double def) {
    const char *s = opt_str(key, NULL);
    return s ? strtod(s, NULL) : def;
}

static void *xalloc(size_t bytes) {
    size_t b = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, b ? b : 64);
    if (!p) { fprintf(stderr, "kernel_insns: out of memory (%zu bytes)\n", bytes); exit(3); }
    memset(p, 0, b ? b : 64);
    return p;
}

static double checksum(const float *y, int64_t count) {
    double s = 0;
    for (int64_t i = 0; i < count; i++) s += y[i] * (1.0 + (double)(i % 13) / 13.0);
    return s;
}

/* CSR with Bernoulli(density) entries; idx 16 bits when cols <= 65536. */
static void make_csr(sk_csr_f32 *w, int64_t rows, int64_t cols, double density) {
    const uint64_t thr = prob_thr(density);
    int64_t cap = (int64_t)(density * (double)rows * (double)cols * 1.1) + 1024;
    int64_t *rp = (int64_t *)xalloc((size_t)(rows + 1) * sizeof(int64_t));
    int32_t *ci = (int32_t *)malloc((size_t)cap * sizeof(int32_t));
    float *va = (float *)malloc((size_t)cap * sizeof(float));
    int64_t nnz = 0;
    for (int64_t r = 0; r < rows; r++) {
        rp[r] = nnz;
        for (int64_t c = 0; c < cols; c++) {
            if (!rng_bern(thr)) continue;
            if (nnz == cap) {
                cap *= 2;
                ci = (int32_t *)realloc(ci, (size_t)cap * sizeof(int32_t));
                va = (float *)realloc(va, (size_t)cap * sizeof(float));
                if (!ci || !va) { fprintf(stderr, "kernel_insns: out of memory\n"); exit(3); }
            }
            ci[nnz] = (int32_t)c;
            va[nnz] = rng_val();
            nnz++;
        }
    }
    rp[rows] = nnz;
    float *values = (float *)xalloc((size_t)nnz * sizeof(float));
    memcpy(values, va, (size_t)nnz * sizeof(float));
    void *col_idx;
    int bits = cols <= 65536 ? 16 : 32;
    if (bits == 16) {
        uint16_t *c16 = (uint16_t *)xalloc((size_t)nnz * sizeof(uint16_t));
        for (int64_t i = 0; i < nnz; i++) c16[i] = (uint16_t)ci[i];
        col_idx = c16;
    } else {
        int32_t *c32 = (int32_t *)xalloc((size_t)nnz * sizeof(int32_t));
        memcpy(c32, ci, (size_t)nnz * sizeof(int32_t));
        col_idx = c32;
    }
    free(ci);
    free(va);
    memset(w, 0, sizeof *w);
    w->rows = rows;
    w->cols = cols;
    w->nnz = nnz;
    w->idx_bits = bits;
    w->row_ptr = rp;
    w->col_idx = col_idx;
    w->values = values;
}

static float *make_dense(int64_t count) {
    float *a = (float *)xalloc((size_t)count * sizeof(float));
    for (int64_t i = 0; i < count; i++) a[i] = rng_val();
    return a;
}

static void usage(void) {
    fprintf(stderr,
            "usage: kernel_insns unstructured|nm|act|conv scalar|neon R [key=value ...]\n"
            "  (see the comment at the top of bench/c/kernel_insns.c for the keys)\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 4) usage();
    const char *family = argv[1], *isaname = argv[2];
    const long R = strtol(argv[3], NULL, 10);
    nkv = argc - 4;
    kv = argv + 4;
    if (R < 0) usage();
    int isa = -1;
    for (int i = 0; i < SK_ISA_COUNT; i++)
        if (sk_isa_name(i) && strcmp(sk_isa_name(i), isaname) == 0) isa = i;
    if (isa < 0) { fprintf(stderr, "kernel_insns: unknown ISA '%s'\n", isaname); usage(); }
    if (!((sk_cpu_isa_mask() >> isa) & 1)) {
        fprintf(stderr, "kernel_insns: ISA %s not supported here (mask 0x%llx)\n", isaname,
                (unsigned long long)sk_cpu_isa_mask());
        return 3;
    }
    sk_set_num_threads(1);
    rng_seed((uint64_t)opt_i("seed", 1));
    const long warmup = (long)opt_i("warmup", 1);
    const long calls = warmup + R;
    int st = 0;
    double macs = 0, macs_proxy = -1, cks = 0;
    char desc[256] = "";

    if (strcmp(family, "unstructured") == 0) {
        const int64_t rows = opt_i("rows", 4096), cols = opt_i("cols", 4096), n = opt_i("n", 1);
        const double density = opt_f("density", 0.1);
        sk_csr_f32 w;
        make_csr(&w, rows, cols, density);
        if (opt_i("panels", 0)) {
            int64_t size = sk_f32_unstructured_panels_size(&w);
            if (size < 0) { fprintf(stderr, "kernel_insns: panels_size %lld\n", (long long)size); return 3; }
            int64_t P = (cols + 127) / 128;
            int64_t *off = (int64_t *)xalloc((size_t)((rows / 4) * P + 1) * sizeof(int64_t));
            float *pv = (float *)xalloc((size_t)size * sizeof(float));
            uint8_t *pc = (uint8_t *)xalloc((size_t)size);
            if ((st = sk_f32_unstructured_panels_build(&w, off, pv, pc)) != 0) {
                fprintf(stderr, "kernel_insns: panels_build %d\n", st);
                return 3;
            }
            w.panel_off = off;
            w.panel_val = pv;
            w.panel_col = pc;
        }
        float *x = make_dense(cols * n);
        float *bias = make_dense(rows);
        float *y = (float *)xalloc((size_t)(rows * n) * sizeof(float));
        for (long i = 0; i < calls && st == 0; i++)
            st = sk_f32_spmm_unstructured_isa(isa, &w, x, n, n, bias, y, n);
        macs = (double)w.nnz * (double)n;
        cks = checksum(y, rows * n);
        snprintf(desc, sizeof desc, "rows=%lld cols=%lld density=%g n=%lld nnz=%lld panels=%d",
                 (long long)rows, (long long)cols, density, (long long)n, (long long)w.nnz,
                 w.panel_off != NULL);
    } else if (strcmp(family, "nm") == 0) {
        const int64_t rows = opt_i("rows", 1024), cols = opt_i("cols", 1024), n = opt_i("n", 1);
        int nn = 2, mm = 4;
        if (sscanf(opt_str("nm", "2:4"), "%d:%d", &nn, &mm) != 2 || nn < 1 || nn >= mm ||
            (mm != 4 && mm != 8 && mm != 16)) {
            fprintf(stderr, "kernel_insns: nm=N:M with 1 <= N < M, M in {4,8,16}\n");
            return 2;
        }
        const int pos_bits = mm == 4 ? 2 : mm == 8 ? 3 : 4;
        const int64_t groups = (cols + mm - 1) / mm, slots = groups * nn;
        const int64_t meta_stride = (slots * pos_bits + 63) / 64 * 8;
        float *values = (float *)xalloc((size_t)(rows * slots) * sizeof(float));
        uint8_t *meta = (uint8_t *)xalloc((size_t)(rows * meta_stride));
        int64_t real = 0;   /* slots whose column is < cols */
        for (int64_t r = 0; r < rows; r++) {
            uint8_t *mrow = meta + r * meta_stride;
            int64_t j = 0;
            for (int64_t g = 0; g < groups; g++) {
                /* nn distinct positions of mm, increasing: a random nn-subset of the bits */
                unsigned mask = 0;
                int have = 0;
                while (have < nn) {
                    unsigned p = (unsigned)(rng_u64() >> 40) % (unsigned)mm;
                    if (!(mask >> p & 1)) { mask |= 1u << p; have++; }
                }
                for (int p = 0; p < mm; p++) {
                    if (!(mask >> p & 1)) continue;
                    const int64_t col = g * mm + p;
                    values[r * slots + j] = col < cols ? rng_val() : 0.0f;
                    real += col < cols;
                    for (int b = 0; b < pos_bits; b++)
                        if ((p >> b) & 1) {
                            const int64_t bit = j * pos_bits + b;
                            mrow[bit / 8] |= (uint8_t)(1u << (bit % 8));
                        }
                    j++;
                }
            }
        }
        sk_nm_f32 w = {rows, cols, nn, mm, pos_bits, meta_stride, values, meta};
        float *x = make_dense(cols * n);
        float *bias = make_dense(rows);
        float *y = (float *)xalloc((size_t)(rows * n) * sizeof(float));
        for (long i = 0; i < calls && st == 0; i++)
            st = sk_f32_spmm_nm_isa(isa, &w, x, n, n, bias, y, n);
        macs = (double)real * (double)n;
        macs_proxy = (double)rows * (double)slots * (double)n;
        cks = checksum(y, rows * n);
        snprintf(desc, sizeof desc, "rows=%lld cols=%lld nm=%d:%d n=%lld slots=%lld",
                 (long long)rows, (long long)cols, nn, mm, (long long)n, (long long)real);
    } else if (strcmp(family, "act") == 0) {
        const int64_t rows = opt_i("rows", 4096), cols = opt_i("cols", 4096), n = opt_i("n", 1);
        const double zero = opt_f("zero", 0.9);
        float *wt = make_dense(cols * rows);
        float *norms = (float *)xalloc((size_t)cols * sizeof(float));
        for (int64_t k = 0; k < cols; k++) {
            double s = 0;
            for (int64_t i = 0; i < rows; i++) s += (double)wt[k * rows + i] * wt[k * rows + i];
            norms[k] = (float)sqrt(s);
        }
        sk_act_f32 w = {rows, cols, 1, wt, norms};
        const uint64_t thr = prob_thr(zero);
        float *x = (float *)xalloc((size_t)(n * cols) * sizeof(float));
        for (int64_t i = 0; i < n * cols; i++) x[i] = rng_bern(thr) ? 0.0f : rng_val();
        float *bias = make_dense(rows);
        float *y = (float *)xalloc((size_t)(n * rows) * sizeof(float));
        int64_t nactive = 0;
        for (long i = 0; i < calls && st == 0; i++)
            st = sk_f32_act_linear_isa(isa, &w, n, x, cols, bias, y, rows, 0.0f, -1,
                                       SK_ACT_MAGNITUDE, &nactive);
        macs = (double)nactive * (double)rows;
        cks = checksum(y, n * rows);
        snprintf(desc, sizeof desc, "rows=%lld cols=%lld zero=%g n=%lld nactive=%lld",
                 (long long)rows, (long long)cols, zero, (long long)n, (long long)nactive);
    } else if (strcmp(family, "conv") == 0) {
        sk_conv2d_geom g;
        memset(&g, 0, sizeof g);
        g.batch = opt_i("batch", 1);
        g.c_in = opt_i("cin", 64);
        g.c_out = opt_i("cout", 64);
        g.h = opt_i("h", 56);
        g.w = opt_i("w", 56);
        g.kh = g.kw = opt_i("k", 3);
        g.groups = 1;
        g.stride_h = g.stride_w = opt_i("stride", 1);
        g.pad_h = g.pad_w = opt_i("pad", g.kh / 2);
        g.dil_h = g.dil_w = 1;
        g.h_out = (g.h + 2 * g.pad_h - g.dil_h * (g.kh - 1) - 1) / g.stride_h + 1;
        g.w_out = (g.w + 2 * g.pad_w - g.dil_w * (g.kw - 1) - 1) / g.stride_w + 1;
        const double density = opt_f("density", 0.1);
        sk_csr_f32 w;
        make_csr(&w, g.c_out, g.c_in / g.groups * g.kh * g.kw, density);
        /* valid output positions per tap offset, rows and columns */
        int64_t *vy = (int64_t *)xalloc((size_t)g.kh * sizeof(int64_t));
        int64_t *vx = (int64_t *)xalloc((size_t)g.kw * sizeof(int64_t));
        for (int64_t ky = 0; ky < g.kh; ky++)
            for (int64_t o = 0; o < g.h_out; o++) {
                const int64_t iy = o * g.stride_h - g.pad_h + ky * g.dil_h;
                vy[ky] += iy >= 0 && iy < g.h;
            }
        for (int64_t kx = 0; kx < g.kw; kx++)
            for (int64_t o = 0; o < g.w_out; o++) {
                const int64_t ix = o * g.stride_w - g.pad_w + kx * g.dil_w;
                vx[kx] += ix >= 0 && ix < g.w;
            }
        if (w.idx_bits != 16) { fprintf(stderr, "kernel_insns: conv with > 65536 columns\n"); return 2; }
        double exact = 0;
        for (int64_t p = 0; p < w.nnz; p++) {
            const int64_t c = ((const uint16_t *)w.col_idx)[p];   /* cols < 65536 here */
            const int64_t kx = c % g.kw, ky = (c / g.kw) % g.kh;
            exact += (double)(vy[ky] * vx[kx]);
        }
        float *x = make_dense(g.batch * g.c_in * g.h * g.w);
        float *bias = make_dense(g.c_out);
        const int64_t ycount = g.batch * g.c_out * g.h_out * g.w_out;
        float *y = (float *)xalloc((size_t)ycount * sizeof(float));
        for (long i = 0; i < calls && st == 0; i++)
            st = sk_f32_conv2d_sparse_isa(isa, &w, &g, x, bias, y);
        macs = exact * (double)g.batch;
        macs_proxy = (double)w.nnz * (double)(g.h_out * g.w_out) * (double)g.batch;
        cks = checksum(y, ycount);
        snprintf(desc, sizeof desc,
                 "batch=%lld cin=%lld cout=%lld h=%lld w=%lld k=%lld stride=%lld pad=%lld "
                 "density=%g nnz=%lld", (long long)g.batch, (long long)g.c_in,
                 (long long)g.c_out, (long long)g.h, (long long)g.w, (long long)g.kh,
                 (long long)g.stride_h, (long long)g.pad_h, density, (long long)w.nnz);
    } else {
        fprintf(stderr, "kernel_insns: unknown family '%s'\n", family);
        usage();
    }
    printf("family=%s isa=%s R=%ld warmup=%ld %s macs=%.0f", family, isaname, R, warmup, desc,
           macs);
    if (macs_proxy >= 0) printf(" macs_proxy=%.0f", macs_proxy);
    printf(" checksum=%.9g status=%d\n", cks, st);
    return st == 0 ? 0 : 3;
}
