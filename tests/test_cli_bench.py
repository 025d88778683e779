"""``vmstate-conformance bench --startup`` and ``bench --analyze-migration``: the reports'
structure and the decoded output's identity (never timings: those are for the benchmark
to print as ratios, not for a test to assert)."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from conformance.bench import migration as migbench
from conformance.bench import startup
from conformance.cli import main


def test_startup_report_structure():
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["bench", "--startup", "--rounds", "1", "--json"]) == 0
    report = json.loads(out.getvalue())
    assert report["target"] == startup.TARGET and report["rounds"] == 1
    assert set(report["results"]) == set(startup.commands())
    bare = report["results"]["python3 -c pass"]
    assert bare["ratio_to_bare"] == 1.0
    for r in report["results"].values():
        assert r["min_ms"] > 0 and r["min_ms"] <= r["median_ms"]


def test_startup_table_names_the_target(capsys):
    assert main(["bench", "--startup", "--rounds", "1"]) == 0
    assert "--help / python3 -c pass = " in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--startup", "--corpus", "scalar-heavy"],
                                  ["--startup", "--quick"],
                                  ["--migration-file", "x.mig"]])
def test_bench_inapplicable_options_are_usage_errors(argv, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vmstate-conformance: bench: ") and argv[-2] in err


def test_locate_script_order(tmp_path, monkeypatch):
    for version in ("debian-10.2.2", "debian-7.2.22"):
        script = tmp_path / "vmstate-conformance" / "qemu" / version / "src" / "scripts"
        script.mkdir(parents=True)
        (script / "analyze-migration.py").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(migbench.ENV, raising=False)
    assert "debian-7.2.22" in str(migbench.locate_script("auto"))
    monkeypatch.setenv(migbench.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(migbench.BenchError, match="nowhere"):
        migbench.locate_script("auto")


def _script():
    try:
        return migbench.locate_script("auto")
    except migbench.BenchError:
        return None


@pytest.mark.qemu
@pytest.mark.skipif(_script() is None, reason="no analyze-migration.py (set "
                    "VMSTATE_CONFORMANCE_ANALYZE_MIGRATION or cache Debian's QEMU source)")
def test_ram_heavy_stream_from_real_qemu_decodes_like_the_script(tmp_path):
    """A >= 200 MB RAM-heavy stream: 200 MiB of random data loaded into guest RAM with
    -device loader; our analyze-migration output is byte-identical to the script's."""
    from qemu_helpers import make_stream, skip_reason

    if skip_reason():
        pytest.skip(skip_reason())
    blob = tmp_path / "random.bin"
    with open(blob, "wb") as fh:
        for _ in range(200):
            fh.write(os.urandom(1 << 20))
    mig = make_stream(tmp_path / "ram-heavy.mig", memory="256", timeout=240,
                      extra=("-device", f"loader,file={blob},addr=0x100000,force-raw=on"))
    blob.unlink()
    assert Path(mig).stat().st_size >= 200_000_000
    out = io.StringIO()
    assert migbench.run([str(mig)], analyze_migration=str(_script()), repeat=1, out=out,
                        as_json=True) == 0
    result = json.loads(out.getvalue())["results"][0]
    assert result["same_output"] is True
    assert result["speedup_process"] > 0 and result["memory_ratio"] > 0
