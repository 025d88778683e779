"""The QEMUFile input model (engines/qemufile.py) against qemu-file.c's behaviour."""

from __future__ import annotations

from conformance.engines import reference
from conformance.engines.qemufile import IO_BUF_SIZE, QEMUFileReader
from conformance.model.description import Description
from conformance.model.macros import VMSTATE_UINT32, VMSTATE_VBUFFER_UINT32


def test_reads_past_the_end_are_zero_and_set_eio():
    f = QEMUFileReader(b"\x01\x02")
    assert f.get_be32() == 0x01020000 and f.error == -5 and f.pos == 2
    f.skip(1)  # qemu_file_skip does nothing past the end
    assert f.pos == 2


def test_a_peek_at_the_end_sets_the_sticky_error_but_keeps_the_position():
    f = QEMUFileReader(b"\x07")
    assert f.get_byte() == 7
    assert f.peek_byte(0) == 0 and f.error == -5 and f.pos == 1


def test_get_buffer_at_the_end_copies_from_peek_buffers_stale_index():
    """qemu_peek_buffer computes its index, the refill moves the unread bytes to the front
    and fails, and the stale index is used: the copy starts at the moved buffer's old
    offset (here the last stream byte, then what the memmove left behind)."""
    f = QEMUFileReader(bytes.fromhex("00000007" "f0dc6e301e"))
    assert f.get_be32() == 7
    data, got = f.get_buffer(7)
    assert (data, got, f.error, f.pos) == (bytes.fromhex("1edc6e301e"), 5, -5, 9)


def test_a_short_buffer_load_leaves_what_qemu_leaves():
    desc = Description("dev", 1, 1, fields=[VMSTATE_UINT32("len"),
                                            VMSTATE_VBUFFER_UINT32("vb", "len")])
    out = reference.load(desc, bytes.fromhex("00000007" "f0dc6e301e"),
                         {"len": 7, "vb": bytes.fromhex("7cf055547d1015")})
    assert out.kind == "error" and out.ret == -5 and out.file_error == -5
    assert out.state["vb"] == bytes.fromhex("1edc6e301e" "1015")


def test_streams_longer_than_the_buffer_refill_in_place():
    data = bytes(range(256)) * (IO_BUF_SIZE // 128)  # two buffers' worth
    f = QEMUFileReader(data)
    got, n = f.get_buffer(len(data))
    assert got == data and n == len(data) and f.error == 0


def test_after_an_error_8_0_reads_no_more_of_the_channel_and_7_2_does():
    data = bytes(IO_BUF_SIZE) + b"\x09"
    for refill, expected in ((False, 0), (True, 9)):
        f = QEMUFileReader(data, refill_after_error=refill)
        f.get_buffer(IO_BUF_SIZE)
        f.set_error(-22)
        assert f.get_byte() == expected
