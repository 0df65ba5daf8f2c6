/* qemu_insn_plugin.c - minimal QEMU TCG plugin: count every guest instruction executed.
 *
 * Written against the documented QEMU plugin API (docs/devel/tcg-plugins.rst) for the
 * ABI of QEMU 7.2 (Debian 12 qemu-user). Debian ships no qemu-plugin.h, so the few types
 * and functions used here are declared below; they are resolved at dlopen time from
 * the qemu-aarch64 executable, which exports the qemu_plugin_* API in its dynamic
 * symbol table (check: nm -D /usr/bin/qemu-aarch64 | grep qemu_plugin_).
 *
 * Counting: at translation, each translation block (TB) gets an inline
 * "add its instruction count to a 64-bit counter" op that runs every time the TB
 * is entered (QEMU_PLUGIN_INLINE_ADD_U64). mode=cb uses a C callback per TB execution
 * instead (slower, same number; useful as a cross-check).
 *
 * Arguments (QEMU 7.x style, -plugin file=PLUGIN.so,key=value,...):
 *   outfile=PATH   write "insns N\n" to PATH at exit (default: stderr, written
 *                  directly with stdio)
 *   outfile=log    send the line through qemu_plugin_outs, i.e. QEMU's log; in
 *                  qemu-user 7.2 that prints only with "-d plugin" (then to stderr,
 *                  or to the -D file)
 *   mode=inline|cb counting method (default inline)
 * The older "arg=outfile=PATH" spelling is accepted too.
 *
 * Build: gcc -O2 -shared -fPIC -o qemu_insn_plugin.so qemu_insn_plugin.c
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the subset of the QEMU 7.2 plugin ABI used here (declared by hand) ---- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;           /* opaque */
typedef struct qemu_info_t qemu_info_t; /* opaque here: never dereferenced */

enum sk_qemu_plugin_op { SK_QEMU_PLUGIN_INLINE_ADD_U64 = 0 };
enum sk_qemu_plugin_cb_flags { SK_QEMU_PLUGIN_CB_NO_REGS = 0 };

typedef void (*sk_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*sk_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*sk_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, sk_tb_trans_cb_t cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
                                                     enum sk_qemu_plugin_op op, void *ptr,
                                                     uint64_t imm);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                                 sk_vcpu_udata_cb_t cb,
                                                 enum sk_qemu_plugin_cb_flags flags,
                                                 void *userdata);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, sk_udata_cb_t cb,
                                           void *userdata);
extern void qemu_plugin_outs(const char *string);

#define SK_EXPORT __attribute__((visibility("default")))

/* The loader reads this symbol and refuses the plugin when it is above the API
 * version it implements (QEMU 7.2: QEMU_PLUGIN_VERSION 1, minimum 0). */
SK_EXPORT int qemu_plugin_version = 1;

/* ---- the plugin ---- */
static uint64_t insn_count;      /* guest instructions executed (all vCPUs; racy if >1) */
static char *outfile;           /* NULL: stderr */
static int use_cb;

static void tb_exec_cb(unsigned int vcpu_index, void *userdata) {
    (void)vcpu_index;
    __atomic_fetch_add(&insn_count, (uint64_t)(uintptr_t)userdata, __ATOMIC_RELAXED);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (use_cb)
        qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec_cb, SK_QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)n);
    else
        qemu_plugin_register_vcpu_tb_exec_inline(tb, SK_QEMU_PLUGIN_INLINE_ADD_U64,
                                                 &insn_count, (uint64_t)n);
}

static void at_exit(qemu_plugin_id_t id, void *userdata) {
    (void)id;
    (void)userdata;
    char line[64];
    snprintf(line, sizeof line, "insns %llu\n", (unsigned long long)insn_count);
    if (outfile && strcmp(outfile, "log") == 0) {
        qemu_plugin_outs(line);
    } else if (outfile) {
        FILE *f = fopen(outfile, "w");
        if (f) {
            fputs(line, f);
            fclose(f);
        } else {
            fprintf(stderr, "qemu_insn_plugin: cannot write %s\n", outfile);
            fputs(line, stderr);
        }
    } else {
        fputs(line, stderr);
        fflush(stderr);
    }
}

SK_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                  char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "arg=", 4) == 0)
            a += 4;
        if (strncmp(a, "outfile=", 8) == 0) {
            free(outfile);
            outfile = strdup(a + 8);
        } else if (strcmp(a, "mode=cb") == 0) {
            use_cb = 1;
        } else if (strcmp(a, "mode=inline") == 0) {
            use_cb = 0;
        } else {
            fprintf(stderr, "qemu_insn_plugin: unknown argument '%s' "
                            "(expected outfile=PATH or mode=inline|cb)\n", a);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
