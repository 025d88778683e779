"""Fresh streams from Debian's qemu-system-x86_64 decode and re-encode byte for byte.

Skipped with a reason when the binary is absent (CI installs qemu-system-x86 via apt).
Each configuration takes a fraction of a second: paused guest, 16 MiB RAM, TCG.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from qemu_helpers import (
    MANY_DEVICES,
    make_postcopy_stream,
    make_ram_heavy_stream,
    make_stream,
    skip_reason,
)

from conformance.cli import migration as migcli
from conformance.migration import migfile
from conformance.migration.source import map_file

pytestmark = [pytest.mark.qemu, pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")]

DATA = Path(__file__).parent / "data" / "qemu-7.2"

CONFIGS = {
    # exactly the command line that produced data/qemu-7.2/pc-min.mig
    "pc-min": dict(machine="pc"),
    "q35-nics-usb": dict(machine="q35", devices=("e1000", "virtio-net-pci", "isa-serial", "qemu-xhci", "usb-tablet")),
    "pc-many-devices": dict(machine="pc", devices=MANY_DEVICES),
    "q35-iommu-storage": dict(machine="q35", devices=(
        "intel-iommu", "e1000e", "vmxnet3", "megasas", "nec-usb-xhci", "virtio-serial-pci", "sdhci-pci", "pvpanic",
        "virtio-gpu-pci", "i82559er")),
    # old framing: pc-i440fx-2.3 turns section footers and the configuration record off
    "pc-2.3-old-framing": dict(machine="pc-i440fx-2.3", devices=("e1000",)),
    # configuration subsections: capabilities (x-ignore-shared) and uuid (validate-uuid)
    "q35-capabilities": dict(machine="q35", capabilities={"x-ignore-shared": True, "validate-uuid": True},
                             extra=("-uuid", "12345678-1234-5678-1234-567812345678")),
    # COMPRESS_PAGE records
    "pc-compress": dict(machine="pc", capabilities={"compress": True}),
    # the BIOS runs during migration: several RAM iterations (PART sections)
    "pc-running-iterations": dict(machine="pc", capabilities={"xbzrle": True}, running=True,
                                  parameters={"max-bandwidth": 2 << 20, "downtime-limit": 1}),
    "microvm": dict(machine="microvm", devices=("virtio-net-device",)),
}


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    root = tmp_path_factory.mktemp("qemu-streams")
    return {name: make_stream(root / f"{name}.mig", **kw) for name, kw in CONFIGS.items()}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fresh_stream_decodes_and_reencodes_byte_exact(streams, name):
    data = streams[name].read_bytes()
    mf = migfile.read_migration(data)
    assert migfile.encode(mf) == data
    sections = mf.sections()
    assert sections, "no sections parsed"
    opaque = [s.label for s in sections if isinstance(s.body, migfile.Opaque)]
    assert opaque == [], f"sections kept opaque: {opaque}"
    assert mf.vmdesc is not None and mf.vmdesc.vmdesc.style == "json-writer"
    json.dumps(migfile.state_json(mf))
    migfile.render_json(migfile.analyze_state(mf))


def test_fresh_pc_min_matches_the_pinned_stream_and_analyze_output(streams, capsys):
    assert streams["pc-min"].read_bytes() == (DATA / "pc-min.mig").read_bytes()
    assert migcli.run_decode(str(streams["pc-min"]), "analyze-migration") == 0
    assert capsys.readouterr().out == (DATA / "pc-min.state.json").read_text()


def test_old_framing_has_no_footers_and_no_configuration(streams):
    mf = migfile.read_migration(streams["pc-2.3-old-framing"].read_bytes())
    assert mf.footers is False and mf.configuration is None
    assert all(not s.footer for s in mf.sections())


def test_configuration_subsections(streams):
    mf = migfile.read_migration(streams["q35-capabilities"].read_bytes())
    config = mf.configuration
    assert config.machine.startswith(b"pc-q35-")
    assert config.get("configuration/capabilities") == (b"x-ignore-shared",)
    assert config.get("configuration/uuid") == bytes.fromhex("12345678123456781234567812345678")
    blocks = mf.sections()[0].body.records[0].payload
    assert all(block.mr_addr is not None for block in blocks)


def test_verify_cli_on_fresh_streams(streams, capsys):
    assert migcli.main(["verify", *map(str, streams.values())]) == 0
    assert capsys.readouterr().out.count("byte-exact") == len(streams)


def test_postcopy_stream_commands_and_package(tmp_path):
    """A real postcopy migration (recorded between two QEMUs): every command parsed,
    the PACKAGED device state nested, no vmdesc; byte-exact; decodable with the vmdesc
    of a precopy stream of the same machine."""
    path = make_postcopy_stream(tmp_path / "postcopy.mig", machine="pc")
    data = path.read_bytes()
    mf = migfile.read_migration(data)
    assert migfile.encode(mf) == data
    assert mf.vmdesc is None
    names = [r.name for r in migfile.walk(mf.records) if isinstance(r, migfile.Command)]
    assert names[:3] == ["OPEN_RETURN_PATH", "PING", "POSTCOPY_ADVISE"]
    assert {"POSTCOPY_RAM_DISCARD", "PACKAGED", "POSTCOPY_LISTEN", "POSTCOPY_RUN"} <= set(names)
    package = next(r for r in mf.records if isinstance(r, migfile.Command) and r.name == "PACKAGED")
    assert sum(isinstance(r, migfile.Section) for r in package.records) == 30
    assert all(isinstance(s.body, migfile.Opaque) for s in package.records if isinstance(s, migfile.Section))
    decoded = migfile.read_migration(data, vmdesc=migfile.vmdesc_of((DATA / "pc-min.mig").read_bytes()))
    assert migfile.encode(decoded) == data
    assert not [s for s in decoded.sections() if isinstance(s.body, migfile.Opaque)]
    migfile.render_json(migfile.analyze_state(decoded))


def test_oldest_framing_without_vmdesc_nor_footers_is_listed(tmp_path):
    """pc-i440fx-2.2 suppresses the vmdesc and sends no footers: device sections are
    found by their headers, kept opaque, and the file still re-encodes byte-exact."""
    path = make_stream(tmp_path / "pc-2.2.mig", machine="pc-i440fx-2.2")
    data = path.read_bytes()
    mf = migfile.read_migration(data)
    assert migfile.encode(mf) == data
    assert mf.vmdesc is None and mf.footers is False and mf.tail is None
    labels = [s.label for s in mf.sections() if s.idstr is not None]
    assert labels[:4] == ["ram", "timer", "cpu_common", "cpu"] and "globalstate" in labels
    assert all("heuristic" in s.body.reason for s in mf.sections() if isinstance(s.body, migfile.Opaque))


def _analyze_script() -> str | None:
    """$VMSTATE_CONFORMANCE_ANALYZE_MIGRATION, else the cached Debian QEMU source's script."""
    from conformance.bench.migration import BenchError, locate_script

    try:
        return str(locate_script("auto"))
    except BenchError:
        return None


ANALYZE = _analyze_script()


needs_script = pytest.mark.skipif(
    not ANALYZE, reason="no analyze-migration.py: set VMSTATE_CONFORMANCE_ANALYZE_MIGRATION "
    "to QEMU's scripts/analyze-migration.py (or a QEMU checkout), or cache "
    "Debian's QEMU source under ~/.cache/vmstate-conformance/qemu/")


@needs_script
# QEMU 7.2's script stops at configuration subsections, at COMPRESS_PAGE records and at
# XBZRLE pages ("XBZRLE RAM compression is not supported yet"), which the running guest's
# later iterations have whenever it dirtied RAM in between (timing: not every run)
@pytest.mark.parametrize("name", [n for n in CONFIGS
                                  if n not in ("q35-capabilities", "pc-compress", "pc-running-iterations")])
def test_same_output_as_analyze_migration_script(streams, name):
    script = Path(ANALYZE)
    if script.is_dir():
        script = script / "scripts" / "analyze-migration.py"
    path = str(streams[name])
    theirs = subprocess.run([sys.executable, str(script), "-f", path], capture_output=True, check=True).stdout
    ours = migfile.render_json(migfile.analyze_state(migfile.read_migration(Path(path).read_bytes())))
    assert ours.encode() == theirs
    theirs = subprocess.run([sys.executable, str(script), "-f", path, "-d", "desc"], capture_output=True,
                            check=True).stdout
    assert migfile.render_json(migfile.analyze_desc(migfile.read_migration(Path(path).read_bytes()))).encode() == theirs


@pytest.fixture(scope="module")
def ram_heavy(tmp_path_factory):
    """200 MiB of random data in a 256 MB guest's RAM (-device loader): a 210 MB stream
    of PAGE records, made once for the module."""
    return make_ram_heavy_stream(tmp_path_factory.mktemp("ram-heavy") / "pc-ram-heavy.mig")


@needs_script
def test_ram_heavy_stream_decodes_like_the_script(ram_heavy):
    """Correctness only (the speed is bench --analyze-migration --ram-heavy's to print):
    the lean entry's output is the script's, byte for byte, and the model re-encodes
    to the same 210 MB."""
    path = str(ram_heavy)
    assert ram_heavy.stat().st_size >= 200_000_000
    script = Path(ANALYZE)
    if script.is_dir():
        script = script / "scripts" / "analyze-migration.py"
    theirs = subprocess.run([sys.executable, str(script), "-f", path], capture_output=True, check=True).stdout
    ours = subprocess.run([sys.executable, "-m", "conformance.cli.migration", "decode", "--format",
                           "analyze-migration", path], capture_output=True, check=True).stdout
    assert ours == theirs
    assert b'"pc.ram": "0x0000000010000000"' in ours


def test_ram_heavy_stream_is_page_runs_and_reencodes_byte_exact(ram_heavy, capsys):
    mf = migfile.read_migration(map_file(str(ram_heavy)))
    runs = [r for s in mf.sections() if isinstance(s.body, migfile.RamBody)
            for r in s.body.records if isinstance(r, migfile.PageRun)]
    assert sum(len(r) for r in runs) >= 200 * 256  # every page of the random data
    assert migcli.main(["verify", str(ram_heavy)]) == 0
    assert "byte-exact" in capsys.readouterr().out
