/* Counts the guest instructions QEMU executes, for tinyml-nas.
 *
 * A QEMU TCG plugin (the documented plugin API, version 1 to 4): every translated block, when it
 * runs, adds its number of instructions to one counter. When the guest enters one of two marked
 * addresses (begin=ADDR, end=ADDR: the runner's nas_begin and nas_end), the running count is
 * recorded with the mark. At exit, out=PATH receives "total N" and one "B N" or "E N" line a mark.
 * Only the few API functions used are declared here; their signatures are those of qemu-plugin.h.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

#ifndef NAS_PLUGIN_VERSION
#define NAS_PLUGIN_VERSION 1
#endif
__attribute__((visibility("default"))) int qemu_plugin_version = NAS_PLUGIN_VERSION;

static uint64_t count;
static uint64_t begin_at = UINT64_MAX, end_at = UINT64_MAX;
static char out_path[4096];
static char *marks;   /* 'B' or 'E' per mark */
static uint64_t *at;  /* the running count at each mark */
static size_t n_marks, cap_marks;

static void tb_exec(unsigned int vcpu, void *n_insns) { count += (uintptr_t)n_insns; }

static void mark(char kind) {
    if (n_marks == cap_marks) {
        cap_marks = cap_marks ? 2 * cap_marks : 1024;
        marks = realloc(marks, cap_marks);
        at = realloc(at, cap_marks * sizeof *at);
        if (!marks || !at) abort();
    }
    marks[n_marks] = kind;
    at[n_marks++] = count;
}

static void on_begin(unsigned int vcpu, void *udata) { mark('B'); }
static void on_end(unsigned int vcpu, void *udata) { mark('E'); }

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        if (vaddr == begin_at) qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
        if (vaddr == end_at) qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
}

static void at_exit(qemu_plugin_id_t id, void *udata) {
    FILE *f = fopen(out_path, "w");
    if (!f) return;
    fprintf(f, "total %" PRIu64 "\n", count);
    for (size_t i = 0; i < n_marks; i++) fprintf(f, "%c %" PRIu64 "\n", marks[i], at[i]);
    fclose(f);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "begin=", 6) == 0) begin_at = strtoull(argv[i] + 6, NULL, 0) & ~1ull;
        else if (strncmp(argv[i], "end=", 4) == 0) end_at = strtoull(argv[i] + 4, NULL, 0) & ~1ull;
        else if (strncmp(argv[i], "out=", 4) == 0) snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        else { fprintf(stderr, "nas icount plugin: unknown argument %s\n", argv[i]); return -1; }
    }
    if (!out_path[0]) { fprintf(stderr, "nas icount plugin: out=PATH is required\n"); return -1; }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
