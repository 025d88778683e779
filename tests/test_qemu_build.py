"""conformance.qemu.build: variant / API detection on synthetic trees, the cache lookup,
the CLI, and (when cached) the real builds: build-info, test-vmstate, and a smoke program
linked against QEMU's own vmstate.c that must save a uint32 as its 4 big-endian bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conformance.cli import qemu as cli
from conformance.qemu import build

# --------------------------------------------------------------------------- synthetic trees

LOAD = "int vmstate_load_state(QEMUFile *f, const VMStateDescription *vmsd,\n" \
       "                       void *opaque, int version_id{errp});\n"
SAVE = "int vmstate_save_state(QEMUFile *f, const VMStateDescription *vmsd,\n" \
       "                       void *opaque, JSONWriter *vmdesc{errp});\n"
QEMU_FILE = ("QEMUFile *qemu_file_new_input(QIOChannel *ioc);\n"
             "QEMUFile *qemu_file_new_output(QIOChannel *ioc);\n"
             "{fflush} qemu_fflush(QEMUFile *f);\n")
CHANNEL_BUFFER = ("struct QIOChannelBuffer {\n    QIOChannel parent;\n    size_t capacity;\n"
                  "    size_t usage;\n    size_t offset;\n    uint8_t *data;\n};\n"
                  "QIOChannelBuffer *\nqio_channel_buffer_new(size_t capacity);\n")


def make_tree(root: Path, version="7.2.22", errp=False, vms_end=False, auto=False,
              load=True, fflush="void", qobject=False) -> Path:
    e = ", Error **errp" if errp else ""
    vh = "enum VMStateFlags {\n    VMS_SINGLE = 0x001,\n"
    if auto:
        vh += "    VMS_ARRAY_OF_POINTER_AUTO_ALLOC = 0x10000,\n"
    if vms_end:
        vh += "    VMS_END = 0x10000\n"
    vh += "};\n"
    if errp:
        vh += "    const VMStateDescription * const *subsections;\n" \
              "    bool (*pre_load_errp)(void *opaque, Error **errp);\n" \
              "bool vmstate_section_needed(const VMStateDescription *vmsd, void *opaque);\n"
    vh += (LOAD.format(errp=e) if load else "") + SAVE.format(errp=e)
    files = {
        "VERSION": version + "\n",
        "include/migration/vmstate.h": vh,
        "migration/vmstate.c": '#include "%s"\n' % ("qobject/json-writer.h" if qobject
                                                    else "qapi/qmp/json-writer.h"),
        "migration/qemu-file.h": QEMU_FILE.format(fflush=fflush),
        "include/io/channel-buffer.h": CHANNEL_BUFFER,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_qemu_7_2_tree_is_qemu_7_2_without_errp(tmp_path):
    version, variant, api = build.detect(make_tree(tmp_path))
    assert (version, variant) == ("7.2.22", "qemu-7.2")
    assert api["load_state_errp"] is False and api["save_state_errp"] is False
    assert api["vms_end"] is False and api["json_writer_header"] == "qapi/qmp/json-writer.h"
    assert "-DVMSC_LOAD_ERRP=0" in build.api_cflags(api)


def test_qemu_10_tree_is_legacy_with_errp_and_vms_end(tmp_path):
    tree = make_tree(tmp_path, version="10.2.2", errp=True, vms_end=True, fflush="int", qobject=True)
    version, variant, api = build.detect(tree)
    assert (version, variant) == ("10.2.2", "legacy")
    assert {k: api[k] for k in ("load_state_errp", "save_state_errp", "vms_end", "subsections_const",
                                "hooks_errp", "fflush_returns_int", "json_writer_qobject",
                                "section_needed", "auto_alloc")} == {
        "load_state_errp": True, "save_state_errp": True, "vms_end": True, "subsections_const": True,
        "hooks_errp": True, "fflush_returns_int": True, "json_writer_qobject": True,
        "section_needed": True, "auto_alloc": False}
    flags = build.api_cflags(api)
    assert "-DVMSC_LOAD_ERRP=1" in flags and "-DVMSC_VMS_END=1" in flags


@pytest.mark.parametrize("version", ["8.0.0", "9.2.4", "10.0.13"])
def test_8_to_10_is_legacy(tmp_path, version):
    assert build.detect(make_tree(tmp_path, version=version))[1] == "legacy"


def test_auto_alloc_flag_decides_over_the_version(tmp_path):
    tree = make_tree(tmp_path, version="10.2.50", errp=True, vms_end=True, auto=True)
    version, variant, api = build.detect(tree)
    assert variant == "auto-alloc" and api["auto_alloc"] is True


def test_auto_alloc_in_a_comment_does_not_count(tmp_path):
    tree = make_tree(tmp_path, version="10.1.0")
    (tree / "include/migration/vmstate.h").write_text(
        "/* see VMS_ARRAY_OF_POINTER_AUTO_ALLOC */\n" + (tree / "include/migration/vmstate.h").read_text())
    assert build.detect(tree)[1] == "legacy"


def test_unknown_load_signature_is_named(tmp_path):
    tree = make_tree(tmp_path, version="10.2.2", load=False)
    with pytest.raises(build.UnknownTree, match=r"not recognised: vmstate_load_state\(QEMUFile"):
        build.detect(tree)


@pytest.mark.parametrize("version", ["11.0.0", "7.1.0", "6.2.0"])
def test_unknown_version_is_an_error(tmp_path, version):
    with pytest.raises(build.UnknownTree, match=f"QEMU {version} not recognised"):
        build.detect(make_tree(tmp_path, version=version))


def test_not_a_tree(tmp_path):
    with pytest.raises(build.UnknownTree, match="VERSION is missing"):
        build.detect(tmp_path)
    (tmp_path / "VERSION").write_text("banana\n")
    with pytest.raises(build.UnknownTree, match="not a QEMU version"):
        build.detect(tmp_path)


def test_source_key_follows_the_tree(tmp_path):
    tree = make_tree(tmp_path / "q")
    k1 = build.source_key(tree)
    assert k1.startswith("src-") and k1 == build.source_key(tree)
    (tree / "VERSION").write_text("7.2.23\n")
    assert build.source_key(tree) != k1


def test_debian_version_pick():
    vs = ["1:11.1.3+ds-1", "1:10.2.2+ds-1", "1:10.0.13+ds-0+deb13u1",
          "1:7.2+dfsg-7+deb12u18", "1:7.2+dfsg-7+deb12u15"]
    assert build.pick_debian_version("7.2", vs) == "1:7.2+dfsg-7+deb12u18"
    assert build.pick_debian_version("10.2", vs) == "1:10.2.2+ds-1"
    assert build.pick_debian_version("9.2", vs) is None


# --------------------------------------------------------------------------- cache lookup, CLI

def fake_info(root: Path, key: str, version: str, source: str, variant="legacy") -> Path:
    d = root / key
    d.mkdir(parents=True)
    info = build.BuildInfo(key=key, qemu_version=version, variant=variant, source_dir=source,
                           build_dir=str(d / "build"), test_vmstate={"passed": True, "ok": 3},
                           analyze_migration=None, cc="cc", cflags=[], link=[], api={})
    (d / build.INFO_NAME).write_text(json.dumps(info.to_json()))
    return d


def test_locate_and_available_read_build_info_only(tmp_path):
    fake_info(tmp_path, "debian-7.2.22", "7.2.22", "/x/7.2", "qemu-7.2")
    fake_info(tmp_path, "debian-10.2.2", "10.2.2", "/x/10.2")
    (tmp_path / "debian-10.0.1").mkdir()  # no build-info: unfinished or failed
    assert [b.key for b in build.available(tmp_path)] == ["debian-10.2.2", "debian-7.2.22"]
    assert build.locate("7.2", tmp_path).key == "debian-7.2.22"
    assert build.locate("10.2", tmp_path).variant == "legacy"
    assert build.locate("debian-10.2.2", tmp_path).path == str(tmp_path / "debian-10.2.2")
    assert build.locate("10.0", tmp_path) is None and build.locate("nope", tmp_path) is None


def test_cached_debian_build_returns_at_once(tmp_path):
    fake_info(tmp_path, "debian-7.2.22", "7.2.22", "/x/7.2", "qemu-7.2")
    t0 = time.monotonic()
    assert build.build_debian("7.2", root=tmp_path, quiet=True).key == "debian-7.2.22"
    assert time.monotonic() - t0 < 1


def test_cli_list_and_usage(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fake_info(tmp_path / "vmstate-conformance" / "qemu", "debian-7.2.22", "7.2.22", "/x", "qemu-7.2")
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "debian-7.2.22" in out and "qemu-7.2" in out and "passed (3/3)" in out
    assert cli.main(["build"]) == 2
    assert cli.main(["build", "--debian", "7.2", "--source", "/x"]) == 2
    assert cli.main(["build", "--debian", "8.0"]) == 2
    assert cli.main(["build", "--debian", "7.2", "--jobs", "0"]) == 2
    capsys.readouterr()
    assert cli.main(["build", "--source", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a directory" in err


def test_cli_unknown_tree_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = make_tree(tmp_path / "q", version="12.0.0")
    assert cli.main(["build", "--source", str(tree)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "QEMU 12.0.0 not recognised" in err
    assert not (tmp_path / "cache" / "vmstate-conformance" / "qemu").exists()


def test_add_subparser_wires_qemu_commands():
    import argparse
    parser = argparse.ArgumentParser()
    cli.add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["qemu", "build", "--debian", "10.2"])
    assert args.func is cli.cmd_build and args.jobs == 2 and args.force is False


# --------------------------------------------------------------------------- real cached builds

BUILDS = build.available()
NO_BUILDS = ("no cached QEMU build under ~/.cache/vmstate-conformance/qemu "
             "(python -m conformance.qemu build --debian 7.2)")
needs_builds = pytest.mark.skipif(not BUILDS, reason=NO_BUILDS)
each_build = pytest.mark.parametrize("info", BUILDS or [None], ids=[b.key for b in BUILDS] or ["none"])

SMOKE_C = Path(__file__).parent / "data" / "qemu_smoke.c"


@needs_builds
@each_build
def test_build_info_fields(info):
    data = json.loads((Path(info.path) / build.INFO_NAME).read_text())
    for field in ("qemu_version", "key", "source_dir", "build_dir", "variant", "test_vmstate",
                  "analyze_migration", "cc", "cflags", "link", "api"):
        assert field in data, field
    assert data["test_vmstate"]["passed"] is True and data["test_vmstate"]["ok"] > 0
    assert Path(data["analyze_migration"]).is_file()
    assert Path(data["build_dir"], "tests/unit/test-vmstate").is_file()
    # 7.2 links libmigration.fa; 10.2's meson lists the link_whole objects themselves
    assert any(a.endswith(("libmigration.fa", "libmigration.a", "migration_vmstate.c.o"))
               for a in data["link"])
    # (BuildInfo.load adds the -D of an API key newer than the recorded build)
    assert all(f"-D{d}=" in " ".join(info.cflags) for d in build.API_DEFINES.values())


@needs_builds
@each_build
def test_variant_matches_the_tree(info):
    version, variant, api = build.detect(Path(info.source_dir))
    assert (version, variant, api) == (info.qemu_version, info.variant, info.api)
    assert variant == {"7.2": "qemu-7.2"}.get(info.series, variant)
    if info.key.startswith("debian-10."):
        assert variant == "legacy" and api["load_state_errp"] and api["vms_end"]


@needs_builds
@each_build
def test_smoke_program_saves_and_loads_through_qemus_vmstate(info, tmp_path):
    if not shutil.which(info.cc):
        pytest.skip(f"compiler {info.cc} not installed")
    exe = tmp_path / "smoke"
    subprocess.run([info.cc, *info.cflags, "-c", str(SMOKE_C), "-o", str(tmp_path / "smoke.o")],
                   check=True, capture_output=True)
    subprocess.run([info.cc, str(tmp_path / "smoke.o"), *info.link, "-o", str(exe)], check=True,
                   capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=30).stdout
    assert out.splitlines() == ["01020304 save=0", "01020304 load=0"]


PINNED = Path(__file__).parent / "data" / "qemu-7.2"


@pytest.mark.skipif(build.locate("7.2") is None, reason=NO_BUILDS)
def test_cached_7_2_analyze_migration_reproduces_the_pinned_pc_min_outputs():
    import sys
    script = build.locate("7.2").analyze_migration
    mig = str(PINNED / "pc-min.mig")
    state = subprocess.run([sys.executable, script, "-f", mig], capture_output=True, check=True).stdout
    desc = subprocess.run([sys.executable, script, "-f", mig, "-d", "desc"], capture_output=True,
                          check=True).stdout
    assert state == (PINNED / "pc-min.state.json").read_bytes()
    assert desc == (PINNED / "pc-min.desc.json").read_bytes()


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")
def test_failed_fetch_is_one_line_with_its_log_and_leaves_no_build_info(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "debian_versions", lambda: ["1:7.2+dfsg-0nosuchversion"])
    with pytest.raises(build.BuildError) as exc:
        build.build_debian("7.2", root=tmp_path, quiet=True)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("fetch failed") and "log: " in msg
    assert Path(msg.split("log: ")[1].rstrip(")")).is_file()
    assert build.available(tmp_path) == []


def test_no_debian_source_explains_the_deb_src_line(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "debian_versions", lambda: [])
    with pytest.raises(build.BuildError, match="add a deb-src line for sid"):
        build.build_debian("10.2", root=tmp_path, quiet=True)


def _fake_overlay(d: Path, text: str = "int x;\n") -> Path:
    (d / "overlay" / "migration").mkdir(parents=True)
    (d / "assemble.sh").write_text("#!/bin/sh\n")
    (d / "overlay" / "migration" / "vmstate.c").write_text(text)
    return d


def test_overlay_key_follows_the_overlay_content(tmp_path):
    a = _fake_overlay(tmp_path / "a")
    b = _fake_overlay(tmp_path / "b")
    assert build.overlay_key(a) == build.overlay_key(b)  # where it lives does not matter
    (b / "overlay" / "migration" / "vmstate.c").write_text("int y;\n")
    assert build.overlay_key(a) != build.overlay_key(b)
    assert build.overlay_key(a).startswith("master-")
    # the key is the sha256 of the listing assemble.sh records (sha256sum format)
    assert build.overlay_sums(a).endswith("  ./migration/vmstate.c\n")


def test_cached_overlay_build_returns_at_once(tmp_path):
    ov = _fake_overlay(tmp_path / "ov")
    fake_info(tmp_path / "cache", build.overlay_key(ov), "10.2.2", "/x/m", "auto-alloc")
    info = build.build_overlay(ov, root=tmp_path / "cache", quiet=True)
    assert info.variant == "auto-alloc"


def test_overlay_without_assemble_script_is_a_build_error(tmp_path):
    with pytest.raises(build.BuildError, match="assemble.sh"):
        build.overlay_key(tmp_path)
