"""Real QEMU 10.0 data (Debian 13's qemu-system-x86 10.0.13, from a trixie root made by
.ci/trixie-qemu.sh): the committed stream decodes and re-encodes byte for byte, beside
the 7.2 ones; with the root present, QEMU 10.0 makes the same stream and dump again,
and a real 7.2 -> 10.0 migration agrees with compat's executed verdict."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest

from conformance.compat import trixie
from conformance.migration import migfile

DATA = Path(__file__).parent / "data" / "qemu-10.0"
PC_MIN = DATA / "pc-min.mig.xz"
DUMP = DATA / "dump-vmstate-pc.json.xz"


@pytest.fixture(scope="module")
def pc_min_bytes() -> bytes:
    return lzma.decompress(PC_MIN.read_bytes())


def test_pc_min_10_0_reencodes_byte_exact(pc_min_bytes):
    mf = migfile.read_migration(pc_min_bytes)
    assert migfile.encode(mf) == pc_min_bytes
    assert mf.configuration.machine == b"pc-i440fx-10.0"
    assert mf.footers is True and mf.vmdesc is not None
    sections = mf.sections()
    assert all(not isinstance(s.body, migfile.Opaque) for s in sections)
    assert {s.idstr for s in sections} >= {b"timer", b"cpu", b"apic", b"hpet", b"ram"}


def test_pc_min_10_0_verifies_from_the_command_line(tmp_path, capsys):
    from conformance.cli import main

    path = tmp_path / "pc-min-10.0.mig"
    path.write_bytes(lzma.decompress(PC_MIN.read_bytes()))
    assert main(["verify", str(path)]) == 0
    assert "re-encoded byte-exact" in capsys.readouterr().out


ROOT_SKIP = trixie.skip_reason()
needs_root = pytest.mark.skipif(ROOT_SKIP is not None, reason=ROOT_SKIP or "")


@needs_root
def test_qemu_10_0_makes_the_committed_stream_and_dump_again(tmp_path, pc_min_bytes):
    assert "10.0." in (trixie.version() or "")
    stream = trixie.make_stream(tmp_path / "pc-min.mig")
    assert stream.read_bytes() == pc_min_bytes
    dump = trixie.dump(tmp_path / "dump.json")
    assert dump.read_bytes() == lzma.decompress(DUMP.read_bytes())


def _host_qemu_skip() -> str | None:
    from conformance.qemu.streams import skip_reason

    return skip_reason()


@needs_root
@pytest.mark.skipif(_host_qemu_skip() is not None, reason=_host_qemu_skip() or "")
@pytest.mark.parametrize("device,section,loads", [
    ("am53c974", "am53c974", False),  # 10.0 reads esp's drq_state, which 7.2 never sent
    ("e1000e", "e1000e", True),  # timadj's test is false on pc-i440fx-7.2
    (None, "hpet", True),  # num_timers -> num_timers_save: a rename only
])
def test_a_real_7_2_to_10_0_migration_agrees_with_the_executed_verdict(
        tmp_path, device, section, loads):
    from conformance.compat.compare import compare
    from conformance.compat.inputs import read_side
    from conformance.qemu.streams import make_stream

    devices = (device,) if device else ()
    stream = make_stream(tmp_path / "s.mig", machine="pc-i440fx-7.2", devices=devices)
    error = trixie.load_in_root(stream, "pc-i440fx-7.2", devices)
    assert (error is None) == loads, error
    src = read_side(Path(__file__).parent / "data" / "qemu-7.2" / "dump-vmstate-pc.json.xz")
    row = compare(src, read_side(DUMP), examples=10, sections=[section]).rows[0]
    if loads:
        assert row.verdict in ("compatible", "some-states")
    else:
        assert row.verdict == "incompatible"
        assert "Missing section footer" in error
