/*
 * vmstate-conformance qemu driver: runs QEMU's own migration/vmstate.c,
 * vmstate-types.c and qemu-file.c on descriptions built at run time.
 *
 * This file is the project's own code (no QEMU code is copied); it only calls
 * QEMU's public migration API: vmstate_save_state(), vmstate_load_state(),
 * qemu_file_new_input()/qemu_file_new_output() on a QIOChannelBuffer.
 *
 * Protocol (stdin/stdout of a long-running server; see conformance/qemu/engine.py):
 *   server -> "H <qemu-major> <info-name-hex>...\n" once (the infos this build has)
 *   client -> "O <len>\n" + <len> bytes of request text (format: layout/request.py)
 *   the server forks one child per request; the child runs the operation and writes
 *     "R <ret> <file_error> <consumed> <arena-base> <stream-len> <err-hex>\n"
 *       + <stream-len> raw bytes (save: the stream; vmdesc JSON follows as
 *       "J <len>\n" + bytes when asked),
 *   then, for loads, serves memory reads until "q":
 *     client "r <addr> <len>\n" -> "D <len>\n" + bytes, or "F\n" (address not readable)
 *     client "g <addr>\n" (a GTree *) -> "G <n>\n" then n lines "<key> <value>"
 *   when the child is gone the server writes
 *     "X <e|s> <exit-code|signal> <stderr-len>\n" + the child's stderr bytes.
 *   abort() / SIGSEGV / a timeout kill only the child.
 */
#include "qemu/osdep.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "migration/vmstate.h"
#include "migration/qemu-file-types.h"
#include "migration/qemu-file.h"
#include "io/channel-buffer.h"
#include "qemu/queue.h"
/* API facts come from build-info.json as -DVMSC_* (conformance/qemu/build.py) */
#if VMSC_JSON_WRITER_QOBJECT
#include "qobject/json-writer.h"
#else
#include "qapi/qmp/json-writer.h"
#endif
#include <malloc.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <sys/mman.h>

#define VMS_ERRP VMSC_LOAD_ERRP
/* QEMU master's bool API (vmstate_load_vmsd / vmstate_save_vmsd); builds made before
 * build.py knew the key have no -D for it */
#ifndef VMSC_VMSD_BOOL
#define VMSC_VMSD_BOOL 0
#endif

/* ------------------------------------------------------------------------- */
/* infos by C symbol name; weak, so an info the build lacks reads as NULL      */

#define INFO_LIST(X) \
    X(bool) X(int8) X(int16) X(int32) X(int64) X(uint8) X(uint16) X(uint32) \
    X(uint64) X(int32_equal) X(int32_le) X(uint8_equal) X(uint16_equal) \
    X(uint32_equal) X(uint64_equal) X(cpudouble) X(buffer) X(unused_buffer) \
    X(tmp) X(bitmap) X(qtailq) X(qlist) X(gtree) X(nullptr) X(timer) \
    X(float64) X(g_byte_array) X(fd) X(capability)

#define DECL_WEAK(n) extern const VMStateInfo vmstate_info_##n __attribute__((weak));
INFO_LIST(DECL_WEAK)

typedef struct { const char *name; const VMStateInfo *info; } InfoEntry;
#define INFO_ENTRY(n) { "vmstate_info_" #n, &vmstate_info_##n },
static const InfoEntry infos[] = { INFO_LIST(INFO_ENTRY) { NULL, NULL } };

static const VMStateInfo *info_by_name(const char *name)
{
    for (const InfoEntry *e = infos; e->name; e++) {
        if (!strcmp(e->name, name)) {
            return e->info; /* NULL when the build lacks it */
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* raw output                                                                  */

static void out_all(const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(1, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(120);
        }
        p += n;
        len -= n;
    }
}

static void outf(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void outf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    out_all(s, strlen(s));
    g_free(s);
}

static int in_line(char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        char c;
        ssize_t r = read(0, &c, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        if (c == '\n') {
            break;
        }
        buf[n++] = c;
    }
    buf[n] = 0;
    return n;
}

static int in_exact(void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t r = read(0, p, len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        p += r;
        len -= r;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* request tokenizer                                                           */

static char *tok_pos;

static char *tok(void)
{
    char *start;
    while (*tok_pos == ' ' || *tok_pos == '\n' || *tok_pos == '\t') {
        tok_pos++;
    }
    if (!*tok_pos) {
        fprintf(stderr, "driver: truncated request\n");
        _exit(121);
    }
    start = tok_pos;
    while (*tok_pos && *tok_pos != ' ' && *tok_pos != '\n' && *tok_pos != '\t') {
        tok_pos++;
    }
    if (*tok_pos) {
        *tok_pos++ = 0;
    }
    return start;
}

static int64_t tok_int(void)
{
    return strtoll(tok(), NULL, 10);
}

static uint64_t tok_u64(void)
{
    return strtoull(tok(), NULL, 10);
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* "-" is the empty string / NULL; else hex; returns a NUL-terminated copy */
static char *tok_hex(size_t *len_out, bool null_for_dash)
{
    char *t = tok();
    size_t n = strlen(t) / 2;
    char *out;
    if (!strcmp(t, "-")) {
        if (len_out) {
            *len_out = 0;
        }
        return null_for_dash ? NULL : g_strdup("");
    }
    out = g_malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        out[i] = hexval(t[2 * i]) << 4 | hexval(t[2 * i + 1]);
    }
    out[n] = 0;
    if (len_out) {
        *len_out = n;
    }
    return out;
}

/* ------------------------------------------------------------------------- */
/* declarative predicates and hooks (model.py Pred / Hook)                     */

enum { PK_CONST, PK_MEMBER, PK_EQUALS, PK_VERSION, PK_NOT, PK_ALL, PK_ANY };

typedef struct {
    int kind;
    int64_t off;
    int width, sign;
    int64_t value;
    int nargs;
    int *args;
} Pred;

typedef struct {
    int64_t off;
    int width;
    int64_t value;
} HookSet;

typedef struct {
    int ret;
    int nsets;
    HookSet *sets;
} Hook;

static Pred *preds;
static int npreds;
static Hook *hooks;
static int nhooks;

static int64_t read_member(void *opaque, int64_t off, int width, int sign)
{
    uint8_t *p = (uint8_t *)opaque + off;
    switch (width) {
    case 1: return sign ? (int64_t)*(int8_t *)p : (int64_t)*p;
    case 2: return sign ? (int64_t)*(int16_t *)p : (int64_t)*(uint16_t *)p;
    case 4: return sign ? (int64_t)*(int32_t *)p : (int64_t)*(uint32_t *)p;
    default: return *(int64_t *)p;
    }
}

static void write_member(void *opaque, int64_t off, int width, int64_t v)
{
    uint8_t *p = (uint8_t *)opaque + off;
    switch (width) {
    case 1: *p = v; break;
    case 2: *(uint16_t *)p = v; break;
    case 4: *(uint32_t *)p = v; break;
    default: *(int64_t *)p = v; break;
    }
}

static bool eval_pred(int id, void *opaque, int version_id)
{
    Pred *p = &preds[id];
    switch (p->kind) {
    case PK_CONST:
        return p->value != 0;
    case PK_MEMBER:
        return read_member(opaque, p->off, p->width, p->sign) != 0;
    case PK_EQUALS:
        return read_member(opaque, p->off, p->width, p->sign) == p->value;
    case PK_VERSION:
        return version_id >= p->value;
    case PK_NOT:
        return !eval_pred(p->args[0], opaque, version_id);
    case PK_ALL:
        for (int i = 0; i < p->nargs; i++) {
            if (!eval_pred(p->args[i], opaque, version_id)) {
                return false;
            }
        }
        return true;
    case PK_ANY:
        for (int i = 0; i < p->nargs; i++) {
            if (eval_pred(p->args[i], opaque, version_id)) {
                return true;
            }
        }
        return false;
    }
    abort();
}

static int run_hook(int id, void *opaque)
{
    Hook *h = &hooks[id];
    for (int i = 0; i < h->nsets; i++) {
        write_member(opaque, h->sets[i].off, h->sets[i].width, h->sets[i].value);
    }
    return h->ret;
}

/*
 * QEMU's callbacks carry no context but the opaque, so each slot of a pool
 * gets its own function.  The slot tokens are base-4 digit strings with a
 * leading 0, i.e. octal literals: distinct values that index the data arrays.
 */
#define R4(M, x) M(x##0) M(x##1) M(x##2) M(x##3)
#define R16(M, x) R4(M, x##0) R4(M, x##1) R4(M, x##2) R4(M, x##3)
#define R256(M, x) R16(M, x##0) R16(M, x##1) R16(M, x##2) R16(M, x##3)
#define R1024(M, x) R256(M, x##0) R256(M, x##1) R256(M, x##2) R256(M, x##3)
#define IDX_MAX 040000

static int slot_pred[IDX_MAX];     /* field_exists slot -> pred id */
static int slot_need[IDX_MAX];     /* needed slot -> pred id */
static int slot_hook[4][IDX_MAX];  /* vmsd slot -> hook id, per hook kind */

#define FE_FN(x) static bool fe_##x(void *o, int v) { return eval_pred(slot_pred[x], o, v); }
#define NEED_FN(x) static bool need_##x(void *o) { return eval_pred(slot_need[x], o, 0); }
#define PRE_SAVE_FN(x) static int presave_##x(void *o) { return run_hook(slot_hook[0][x], o); }
#define POST_SAVE_FN(x) static int postsave_##x(void *o) { return run_hook(slot_hook[1][x], o); }
#define PRE_LOAD_FN(x) static int preload_##x(void *o) { return run_hook(slot_hook[2][x], o); }
#define POST_LOAD_FN(x) static int postload_##x(void *o, int v) { return run_hook(slot_hook[3][x], o); }
R1024(FE_FN, 0)
R256(NEED_FN, 01)
R256(PRE_SAVE_FN, 0)
R256(POST_SAVE_FN, 0)
R256(PRE_LOAD_FN, 0)
R256(POST_LOAD_FN, 0)

#define LIST_FN(pfx) pfx,
#define LIST_ID(x) x,
#define FE_NAME(x) fe_##x,
#define NEED_NAME(x) need_##x,
#define PRE_SAVE_NAME(x) presave_##x,
#define POST_SAVE_NAME(x) postsave_##x,
#define PRE_LOAD_NAME(x) preload_##x,
#define POST_LOAD_NAME(x) postload_##x,
static bool (*const fe_fns[])(void *, int) = { R1024(FE_NAME, 0) };
static const int fe_ids[] = { R1024(LIST_ID, 0) };
static bool (*const need_fns[])(void *) = { R256(NEED_NAME, 01) };
static const int need_ids[] = { R256(LIST_ID, 01) };
static int (*const presave_fns[])(void *) = { R256(PRE_SAVE_NAME, 0) };
static int (*const postsave_fns[])(void *) = { R256(POST_SAVE_NAME, 0) };
static int (*const preload_fns[])(void *) = { R256(PRE_LOAD_NAME, 0) };
static int (*const postload_fns[])(void *, int) = { R256(POST_LOAD_NAME, 0) };
static const int vm_ids[] = { R256(LIST_ID, 0) };

/* ------------------------------------------------------------------------- */
/* GTree compare functions (device code in QEMU; ours here)                    */

typedef struct {
    int nmembers;
    int64_t off[16];
    int width[16], sign[16];
} KeyLayout;

static KeyLayout key_layouts[64];
static int nkey_layouts;

static gint cmp_direct(gconstpointer a, gconstpointer b, gpointer data)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y ? -1 : x > y;
}

static gint cmp_struct(gconstpointer a, gconstpointer b, gpointer data)
{
    KeyLayout *k = data;
    for (int i = 0; i < k->nmembers; i++) {
        int64_t x = read_member((void *)a, k->off[i], k->width[i], k->sign[i]);
        int64_t y = read_member((void *)b, k->off[i], k->width[i], k->sign[i]);
        if (k->width[i] == 8 && !k->sign[i]) {
            if ((uint64_t)x != (uint64_t)y) {
                return (uint64_t)x < (uint64_t)y ? -1 : 1;
            }
        } else if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* one operation (runs in the child)                                           */

static uint8_t *arena;
static GHashTable *trees; /* the GTrees the driver created */

static int64_t read_sbe(void)
{
    return tok_int();
}

static gboolean collect_pair(gpointer key, gpointer value, gpointer data)
{
    g_ptr_array_add(data, key);
    g_ptr_array_add(data, value);
    return FALSE;
}

static void serve_reads(void)
{
    char line[256];
    int pfd[2];
    if (pipe(pfd) < 0) {
        _exit(122);
    }
    alarm(0); /* the operation is over; the client drives the reads */
    while (in_line(line, sizeof(line)) >= 0) {
        if (line[0] == 'q') {
            _exit(0);
        } else if (line[0] == 'r') {
            uint64_t addr, len;
            if (sscanf(line + 1, "%" SCNu64 " %" SCNu64, &addr, &len) != 2) {
                _exit(123);
            }
            /* probe readability without faulting: write() reports EFAULT */
            bool ok = true;
            for (uint64_t done = 0; done < len && ok;) {
                uint64_t chunk = MIN(len - done, 4096);
                ssize_t n = write(pfd[1], (void *)(uintptr_t)(addr + done), chunk);
                if (n != (ssize_t)chunk) {
                    char sink[4096];
                    if (n > 0 && read(pfd[0], sink, n) != n) {
                        _exit(122);
                    }
                    ok = false;
                } else {
                    char sink[4096];
                    if (read(pfd[0], sink, chunk) != (ssize_t)chunk) {
                        ok = false;
                    }
                }
                done += chunk;
            }
            if (!ok) {
                outf("F\n");
                continue;
            }
            outf("D %" PRIu64 "\n", len);
            out_all((void *)(uintptr_t)addr, len);
        } else if (line[0] == 'g') {
            uint64_t addr;
            GPtrArray *kv = g_ptr_array_new();
            if (sscanf(line + 1, "%" SCNu64, &addr) != 1) {
                _exit(123);
            }
            /* only trees this process created (get_gtree never creates one) */
            if (!g_hash_table_contains(trees, (gpointer)(uintptr_t)addr)) {
                outf("G -1\n");
                g_ptr_array_free(kv, true);
                continue;
            }
            g_tree_foreach((GTree *)(uintptr_t)addr, collect_pair, kv);
            outf("G %u\n", kv->len / 2);
            for (guint i = 0; i < kv->len; i += 2) {
                outf("%" PRIu64 " %" PRIu64 "\n", (uint64_t)(uintptr_t)kv->pdata[i],
                     (uint64_t)(uintptr_t)kv->pdata[i + 1]);
            }
            g_ptr_array_free(kv, true);
        } else {
            _exit(124);
        }
    }
    _exit(0);
}

static struct {
    VMStateField *field;
    int sub, key;
} gtree_fix[1024];
static int ngtree_fix;

#if VMSC_SAVE_ERRP || VMSC_LOAD_ERRP
/* An Error's text as hex, for the one-line reply (the text may hold any byte). */
static char *error_hex(Error *err)
{
    const char *msg = error_get_pretty(err);
    char *hex = g_malloc(2 * strlen(msg) + 1);

    hex[0] = 0;
    for (size_t i = 0; msg[i]; i++) {
        sprintf(hex + 2 * i, "%02x", (uint8_t)msg[i]);
    }
    return hex;
}
#endif

/*
 * One request, in the order of its text (format: layout/request.py): the header, the
 * memory image, the tables the callbacks read, the descriptions, the stream; then the
 * operation.  Each phase reads its part with tok_*(); any malformed part exits.
 */
typedef struct {
    int op_load, version_id, want_vmdesc, root;
    uint64_t arena_size, root_off;
} RequestHeader;

/* header: "save|load version vmdesc arena_size root_off root" */
static void read_header(RequestHeader *h)
{
    h->op_load = !strcmp(tok(), "load");
    h->version_id = tok_int();
    h->want_vmdesc = tok_int();
    h->arena_size = tok_u64();
    h->root_off = tok_u64();
    h->root = tok_int();
}

/* the memory image, then its relocations: arena offsets holding arena offsets */
static void read_arena(uint64_t arena_size)
{
    arena = aligned_alloc(64, arena_size ? ROUND_UP(arena_size, 64) : 64);
    {
        size_t n;
        char *bytes = tok_hex(&n, false);
        memcpy(arena, bytes, MIN(n, arena_size));
        g_free(bytes);
    }
    {
        int nrel = tok_int();
        for (int i = 0; i < nrel; i++) {
            uint64_t at = tok_u64();
            uint64_t *slot = (uint64_t *)(arena + at);
            *slot = (uint64_t)(uintptr_t)(arena + *slot);
        }
    }
}

/* key layouts for struct-keyed trees */
static void read_key_layouts(void)
{
    nkey_layouts = tok_int();
    for (int i = 0; i < nkey_layouts; i++) {
        KeyLayout *k = &key_layouts[i];
        k->nmembers = tok_int();
        for (int j = 0; j < k->nmembers; j++) {
            k->off[j] = tok_int();
            k->width[j] = tok_int();
            k->sign[j] = tok_int();
        }
    }
}

/* glib objects in the arena: a GTree or a GByteArray per member */
static void read_objects(void)
{
    int nobj = tok_int();
    for (int i = 0; i < nobj; i++) {
        char *kind = tok();
        uint64_t at = tok_u64();
        if (!strcmp(kind, "gtree")) {
            int keyl = tok_int();
            int npairs = tok_int();
            GTree *t;
            if (keyl < 0) {
                t = g_tree_new_full(cmp_direct, NULL, NULL, NULL);
            } else {
                t = g_tree_new_full(cmp_struct, &key_layouts[keyl], NULL, NULL);
            }
            for (int j = 0; j < npairs; j++) {
                uint64_t k = tok_u64();
                uint64_t v = tok_u64();
                void *kp = keyl < 0 ? (void *)(uintptr_t)k : (void *)(arena + k);
                g_tree_insert(t, kp, arena + v);
            }
            *(GTree **)(arena + at) = t;
            g_hash_table_add(trees, t);
        } else if (!strcmp(kind, "gbytearray")) {
            /* a GByteArray * member: device code creates the array (VMSTATE_GBYTEARRAY) */
            size_t n;
            char *bytes = tok_hex(&n, false);
            GByteArray *a = g_byte_array_new();
            g_byte_array_append(a, (const guint8 *)bytes, n);
            g_free(bytes);
            *(GByteArray **)(arena + at) = a;
        } else {
            _exit(125);
        }
    }
}

/* the predicates (field_exists, needed) and hooks (pre/post save/load) tables */
static void read_preds_and_hooks(void)
{
    npreds = tok_int();
    preds = g_new0(Pred, npreds + 1);
    for (int i = 0; i < npreds; i++) {
        Pred *p = &preds[i];
        p->kind = tok_int();
        p->off = tok_int();
        p->width = tok_int();
        p->sign = tok_int();
        p->value = read_sbe();
        p->nargs = tok_int();
        p->args = g_new0(int, p->nargs + 1);
        for (int j = 0; j < p->nargs; j++) {
            p->args[j] = tok_int();
        }
    }
    nhooks = tok_int();
    hooks = g_new0(Hook, nhooks + 1);
    for (int i = 0; i < nhooks; i++) {
        Hook *h = &hooks[i];
        h->ret = tok_int();
        h->nsets = tok_int();
        h->sets = g_new0(HookSet, h->nsets + 1);
        for (int j = 0; j < h->nsets; j++) {
            h->sets[j].off = tok_int();
            h->sets[j].width = tok_int();
            h->sets[j].value = read_sbe();
        }
    }
}

/* description i's callbacks: a hook or predicate id per slot, -1 for none */
static void read_vmsd_callbacks(VMStateDescription *d, int i)
{
    int h;
    h = tok_int();
    if (h >= 0) {
        slot_hook[0][vm_ids[i]] = h;
        d->pre_save = presave_fns[i];
    }
    h = tok_int();
    if (h >= 0) {
        slot_hook[1][vm_ids[i]] = h;
        d->post_save = postsave_fns[i];
    }
    h = tok_int();
    if (h >= 0) {
        slot_hook[2][vm_ids[i]] = h;
        d->pre_load = preload_fns[i];
    }
    h = tok_int();
    if (h >= 0) {
        slot_hook[3][vm_ids[i]] = h;
        d->post_load = postload_fns[i];
    }
    h = tok_int();
    if (h >= 0) {
        slot_need[need_ids[i]] = h;
        d->needed = need_fns[i];
    }
}

/* one VMStateField; *nfe counts the field_exists slots handed out so far */
static void read_field(VMStateField *f, VMStateDescription **vmsds, int *nfe)
{
    char *info;
    int sub, key, fe;
    f->name = tok_hex(NULL, false);
    f->offset = tok_u64();
    f->size = tok_u64();
    f->start = tok_u64();
    f->num = tok_int();
    f->num_offset = tok_u64();
    f->size_offset = tok_u64();
    info = tok();
    if (strcmp(info, "-")) {
        f->info = info_by_name(info);
        if (!f->info) {
            fprintf(stderr, "driver: no info %s in this build\n", info);
            _exit(127);
        }
    }
    f->flags = tok_int();
    sub = tok_int();
    key = tok_int();
    if (key >= 0) {
        /* GTREE: vmsd[0] is the value, vmsd[1] the key (contiguous);
         * copied once every description is filled in */
        if (ngtree_fix >= 1024) {
            _exit(126);
        }
        gtree_fix[ngtree_fix].field = f;
        gtree_fix[ngtree_fix].sub = sub;
        gtree_fix[ngtree_fix++].key = key;
    } else if (sub >= 0) {
        f->vmsd = vmsds[sub];
    }
    f->version_id = tok_int();
    f->struct_version_id = tok_int();
    fe = tok_int();
    if (fe >= 0) {
        if (*nfe >= 1024) {
            _exit(126);
        }
        slot_pred[fe_ids[*nfe]] = fe;
        f->field_exists = fe_fns[(*nfe)++];
    }
}

/* the descriptions (fields refer to others by index), then the GTREE pairs */
static VMStateDescription **read_descriptions(void)
{
    int nvmsd = tok_int();
    VMStateDescription **vmsds;
    int nfe = 0;

    if (nvmsd > 256) {
        _exit(126);
    }
    vmsds = g_new0(VMStateDescription *, nvmsd);
    for (int i = 0; i < nvmsd; i++) {
        vmsds[i] = g_new0(VMStateDescription, 1);
    }
    for (int i = 0; i < nvmsd; i++) {
        VMStateDescription *d = vmsds[i];
        int nfields, nsubs;
        VMStateField *fields;
        d->name = tok_hex(NULL, false);
        d->version_id = tok_int();
        d->minimum_version_id = tok_int();
        read_vmsd_callbacks(d, i);
        nfields = tok_int();
        fields = g_new0(VMStateField, nfields + 1);
        for (int j = 0; j < nfields; j++) {
            read_field(&fields[j], vmsds, &nfe);
        }
        /* the end-of-list entry: name NULL, flags as described */
        fields[nfields].flags = tok_int();
        d->fields = fields;
        nsubs = tok_int();
        if (nsubs) {
            const VMStateDescription **subs = g_new0(const VMStateDescription *,
                                                     nsubs + 1);
            for (int j = 0; j < nsubs; j++) {
                subs[j] = vmsds[tok_int()];
            }
            d->subsections = (void *)subs;
        }
    }
    for (int i = 0; i < ngtree_fix; i++) {
        VMStateDescription *pair = g_new0(VMStateDescription, 2);
        pair[0] = *vmsds[gtree_fix[i].sub];
        pair[1] = *vmsds[gtree_fix[i].key];
        gtree_fix[i].field->vmsd = pair;
    }
    return vmsds;
}

/* save: run it, reply "R ..." + the stream (+ "J ..." + the vmdesc JSON), exit */
static void run_save(const VMStateDescription *vmsd, void *opaque, int want_vmdesc)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(4096);
    QEMUFile *f = qemu_file_new_output(QIO_CHANNEL(bioc));
    JSONWriter *jw = want_vmdesc ? json_writer_new(false) : NULL;
    int ret, ferr;
    char *errhex = g_strdup("-");
    if (jw) {
        json_writer_start_object(jw, NULL);
    }
#if VMSC_VMSD_BOOL
    /* what master's savevm.c calls; vmstate_save_state() is this, 0 / -EINVAL */
    Error *err = NULL;
    ret = vmstate_save_vmsd(f, vmsd, opaque, jw, &err) ? 0 : -EINVAL;
    if (err) {
        g_free(errhex);
        errhex = error_hex(err);
    }
#elif VMSC_SAVE_ERRP
    Error *err = NULL;
    ret = vmstate_save_state(f, vmsd, opaque, jw, &err);
    if (err) {
        g_free(errhex);
        errhex = error_hex(err);
    }
#else
    ret = vmstate_save_state(f, vmsd, opaque, jw);
#endif
    qemu_fflush(f);
    ferr = qemu_file_get_error(f);
    outf("R %d %d %zu %" PRIu64 " %zu %s\n", ret, ferr, bioc->usage,
         (uint64_t)(uintptr_t)arena, bioc->usage, errhex);
    out_all(bioc->data, bioc->usage);
    if (jw) {
        const char *text;
        json_writer_end_object(jw);
        text = json_writer_get(jw);
        outf("J %zu\n", strlen(text));
        out_all(text, strlen(text));
    }
    _exit(0);
}

/* load: run it on the stream, reply "R ..." and "M", then serve reads of the memory */
static void run_load(const VMStateDescription *vmsd, void *opaque, int version_id,
                     const uint8_t *stream, size_t stream_len)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(stream_len + 1);
    QEMUFile *f;
    int ret, ferr;
    size_t got, consumed;
    uint8_t *drain;
    char *errhex = g_strdup("-");

    memcpy(bioc->data, stream, stream_len);
    bioc->usage = stream_len;
    f = qemu_file_new_input(QIO_CHANNEL(bioc));
#if VMSC_VMSD_BOOL
    /* what master's savevm.c calls; vmstate_load_state() is this, 0 / -EINVAL */
    Error *err = NULL;
    ret = vmstate_load_vmsd(f, vmsd, opaque, version_id, &err)
          ? 0 : -EINVAL;
    if (err) {
        g_free(errhex);
        errhex = error_hex(err);
    }
#elif VMS_ERRP
    Error *err = NULL;
    ret = vmstate_load_state(f, vmsd, opaque, version_id, &err);
    if (err) {
        g_free(errhex);
        errhex = error_hex(err);
    }
#else
    ret = vmstate_load_state(f, vmsd, opaque, version_id);
#endif
    ferr = qemu_file_get_error(f);
    /*
     * Bytes consumed: drain what is left (buffered or still in the channel);
     * consumed = bytes the file pulled from the channel - bytes drained.
     */
    drain = g_malloc(stream_len + 1);
    got = qemu_get_buffer(f, drain, stream_len + 1);
    consumed = bioc->offset - got;
    outf("R %d %d %zu %" PRIu64 " 0 %s\n", ret, ferr, consumed,
         (uint64_t)(uintptr_t)arena, errhex);
    outf("M\n");
    serve_reads();
}

static void run_request(char *req)
{
    RequestHeader h;
    VMStateDescription **vmsds;
    uint8_t *stream;
    size_t stream_len;

    tok_pos = req;
    trees = g_hash_table_new(NULL, NULL);
    read_header(&h);
    read_arena(h.arena_size);
    read_key_layouts();
    read_objects();
    read_preds_and_hooks();
    vmsds = read_descriptions();
    stream = (uint8_t *)tok_hex(&stream_len, false);

    if (!h.op_load) {
        run_save(vmsds[h.root], arena + h.root_off, h.want_vmdesc);
    } else {
        run_load(vmsds[h.root], arena + h.root_off, h.version_id, stream, stream_len);
    }
}

/* ------------------------------------------------------------------------- */
/* server                                                                      */

int main(int argc, char **argv)
{
    char line[256];
    int errfd;
    int timeout = argc > 1 ? atoi(argv[1]) : 10;

    module_call_init(MODULE_INIT_QOM);
    errfd = memfd_create("vmstate-driver-stderr", 0);
    if (errfd < 0) {
        perror("memfd_create");
        return 1;
    }
    outf("H %d", QEMU_VERSION_MAJOR);
    for (const InfoEntry *e = infos; e->name; e++) {
        if (e->info) {
            outf(" %s", e->name);
        }
    }
    outf("\n");

    while (in_line(line, sizeof(line)) >= 0) {
        size_t len;
        char *req;
        pid_t pid;
        int status;

        if (line[0] != 'O') {
            return 2;
        }
        len = strtoull(line + 2, NULL, 10);
        req = g_malloc(len + 1);
        if (in_exact(req, len) < 0) {
            return 3;
        }
        req[len] = 0;
        if (ftruncate(errfd, 0) < 0 || lseek(errfd, 0, SEEK_SET) < 0) {
            return 4;
        }
        pid = fork();
        if (pid < 0) {
            return 5;
        }
        if (pid == 0) {
            struct rlimit lim = { 4ULL << 30, 4ULL << 30 };
            dup2(errfd, 2);
            setrlimit(RLIMIT_AS, &lim);
            /* malloc'd (not zeroed) memory reads as 0xa5 bytes (M_PERTURB 0x5a) */
            mallopt(M_PERTURB, 0x5a);
            alarm(timeout);
            run_request(req);
            _exit(0);
        }
        g_free(req);
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                return 6;
            }
        }
        {
            off_t n = lseek(errfd, 0, SEEK_END);
            char *buf = g_malloc(n + 1);
            if (pread(errfd, buf, n, 0) != n) {
                n = 0;
            }
            if (WIFSIGNALED(status)) {
                outf("X s %d %lld\n", WTERMSIG(status), (long long)n);
            } else {
                outf("X e %d %lld\n", WEXITSTATUS(status), (long long)n);
            }
            out_all(buf, n);
            g_free(buf);
        }
    }
    return 0;
}
