"""Migration files: framing, the vmdesc trailer and QEMU's JSON writer."""
