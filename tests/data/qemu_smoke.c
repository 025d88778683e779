/* vmstate-conformance smoke test: one uint32 field through QEMU's real
 * vmstate_save_state/vmstate_load_state on a QIOChannelBuffer-backed QEMUFile. */
#include "qemu/osdep.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "io/channel-buffer.h"
#include "migration/vmstate.h"
#include "migration/qemu-file.h"

typedef struct Smoke {
    uint32_t x;
} Smoke;

static const VMStateDescription vmstate_smoke = {
    .name = "smoke",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (VMStateField[]) {
        VMSTATE_UINT32(x, Smoke),
        VMSTATE_END_OF_LIST()
    },
};

int main(void)
{
    Smoke src = { .x = 0x01020304 }, dst = { 0 };
    QIOChannelBuffer *bioc;
    QEMUFile *f, *fin;
    size_t i;
    int rc;
#if VMSC_SAVE_ERRP || VMSC_LOAD_ERRP
    Error *err = NULL;
#endif

    module_call_init(MODULE_INIT_QOM);
    bioc = qio_channel_buffer_new(64);
    f = qemu_file_new_output(QIO_CHANNEL(bioc));
#if VMSC_SAVE_ERRP
    rc = vmstate_save_state(f, &vmstate_smoke, &src, NULL, &err);
#else
    rc = vmstate_save_state(f, &vmstate_smoke, &src, NULL);
#endif
    qemu_fflush(f);
    for (i = 0; i < bioc->usage; i++) {
        printf("%02x", bioc->data[i]);
    }
    printf(" save=%d\n", rc);
    /* not qemu_fclose(f) yet: closing a QIOChannelBuffer frees its data */
    qio_channel_io_seek(QIO_CHANNEL(bioc), 0, SEEK_SET, NULL);
    fin = qemu_file_new_input(QIO_CHANNEL(bioc));
#if VMSC_LOAD_ERRP
    rc = vmstate_load_state(fin, &vmstate_smoke, &dst, 1, &err);
#else
    rc = vmstate_load_state(fin, &vmstate_smoke, &dst, 1);
#endif
    printf("%08" PRIx32 " load=%d\n", dst.x, rc);
    qemu_fclose(fin);
    qemu_fclose(f);
    object_unref(OBJECT(bioc));
    return 0;
}
