"""``params check`` (conformance.cli.params): exit codes, one-line errors, hostile input."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.cli import params as cli


def _run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _file(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


def test_accepted(tmp_path, capsys):
    f = _file(tmp_path, "r.json", '{"downtime-limit": 500, "tls-creds": null}')
    rc, out, err = _run(capsys, "check", f)
    assert rc == 0 and err == ""
    report = json.loads(out)
    assert report["changed"] == {"downtime-limit": 500}
    assert report["parameters"]["tls-creds"] == ""
    assert report["ledger"]["freed_blocks_the_migration_thread_can_reach"]


def test_qmp_command_form(tmp_path, capsys):
    f = _file(tmp_path, "r.json", json.dumps(
        {"execute": "migrate-set-parameters", "arguments": {"multifd-channels": 4}}))
    rc, out, _ = _run(capsys, "params", "check", f)
    assert rc == 0 and json.loads(out)["changed"] == {"multifd-channels": 4}


@pytest.mark.parametrize("content, expected", [
    ('{"cpu-throttle-initial": 0}',
     "$.cpu-throttle-initial: Option cpu_throttle_initial expects an integer in the range "
     "of 1 to 99"),
    ('{"block-bitmap-mapping": [{"node-name": "n", "alias": "a", "bitmaps": [{}]}]}',
     "$.block-bitmap-mapping[0].bitmaps[0].name: missing"),
    ('{"max-bandwidth": "fast"}', "$.max-bandwidth: expected an integer (size), got string"),
    ('{"multifd-channels": 256}', "$.multifd-channels: expects uint8_t"),
    ('{"multifd-channels": -1}', "$.multifd-channels: expects uint8_t"),
    ('{"mode": "warp"}', "$.mode: does not accept value 'warp'"),
    ('{"bogus": 1}', "$.bogus: unexpected member (not a migration parameter)"),
    ('[1, 2]', "$: expected an object, got array"),
    ('{"a": 1, "a": 2}', "$: duplicate key 'a'"),
    ('{"downtime-limit": NaN}', "$: NaN is not JSON"),
    ('{"tls-creds": "a\\u0000b"}', "$.tls-creds: \\u0000 is not supported"),
    ('{"tls-creds": "\\ud800"}', "$.tls-creds: string is not valid Unicode"),
    ('{"downtime-limit": 1e400}', "$.downtime-limit: expected an integer"),
    ('{"downtime-limit": ' + "9" * 5000 + "}", "$: invalid JSON"),
    ("", "$: invalid JSON"),
    (b"\xff\xfe{}", "$: not UTF-8 (byte 0)"),
    ("[" * 100000, "$: nested deeper than 64 levels"),
    ('{"execute": "quit"}', '$.execute: expected "migrate-set-parameters"'),
])
def test_rejected_one_line(tmp_path, capsys, content, expected):
    f = _file(tmp_path, "r.json", content)
    rc, out, err = _run(capsys, "check", f)
    assert rc == 1, err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f + ": ")
    assert expected in err, err


def test_whitelist_during_migration(tmp_path, capsys):
    f = _file(tmp_path, "r.json", '{"tls-creds": "x", "downtime-limit": 1}')
    rc, _, err = _run(capsys, "check", f, "--during-migration", "--design", "whitelist")
    assert rc == 1
    assert err.strip() == (f"{f}: $.tls-creds: Parameter 'tls-creds' cannot be changed "
                           "while migration is active")
    rc, _, _ = _run(capsys, "check", f, "--design", "whitelist")  # not migrating: fine
    assert rc == 0


def test_open_coded_crash_reported(tmp_path, capsys):
    f = _file(tmp_path, "r.json", '{"downtime-limit": 1}')
    caps = ["--capability", "multifd", "--capability", "zero-copy-send"]
    rc, _, err = _run(capsys, "check", f, *caps)
    assert rc == 1 and "QEMU would crash (open-coded)" in err
    rc, _, _ = _run(capsys, "check", f, "--design", "merge", *caps)
    assert rc == 0


def test_current_and_capabilities(tmp_path, capsys):
    cur = _file(tmp_path, "cur.json", '{"return": {"tls-creds": "tls0"}}')
    f = _file(tmp_path, "r.json", "{}")
    rc, _, err = _run(capsys, "check", f, "--current", cur, "--capability", "multifd",
                      "--capability", "zero-copy-send")
    assert rc == 1 and "capabilities rejected by migrate_caps_check" in err
    rc, _, err = _run(capsys, "check", f, "--capability", "warp-drive")
    assert rc == 1 and err.startswith("--capability: warp-drive: unknown capability")
    bad = _file(tmp_path, "bad.json", '{"vcpu-dirty-limit": 0}')
    rc, _, err = _run(capsys, "check", f, "--current", bad)
    assert rc == 1 and err.startswith(f"{bad}: $.vcpu-dirty-limit: current parameters are "
                                      "invalid")


def test_race_option(tmp_path, capsys):
    f = _file(tmp_path, "r.json", '{"downtime-limit": 5}')
    rc, out, _ = _run(capsys, "check", f, "--design", "merge", "--race", "200")
    assert rc == 0
    race = json.loads(out)["race"]
    assert race["found"] and any("USE-AFTER-FREE" in line for line in race["interleaving"])
    rc, out, _ = _run(capsys, "check", f, "--design", "whitelist", "--race", "50")
    assert json.loads(out)["race"] == {"found": False, "examples": 50}


@pytest.mark.parametrize("argv", [[], ["check"], ["check", "x", "--design", "nope"],
                                  ["check", "x", "--race", "-1"], ["params"]])
def test_usage(capsys, argv):
    assert _run(capsys, *argv)[0] == 2


def test_missing_file(capsys):
    rc, _, err = _run(capsys, "check", "/nonexistent/r.json")
    assert rc == 1 and err.startswith("/nonexistent/r.json: $: cannot read")


def test_add_subparser_wires_into_another_parser(tmp_path):
    parser = argparse.ArgumentParser(prog="vmstate-conformance")
    sub = parser.add_subparsers(dest="command")
    cli.add_subcommands(sub)
    f = _file(tmp_path, "r.json", "{}")
    args = parser.parse_args(["params", "check", f, "--design", "swap"])
    assert args.design == "swap" and args.during_migration is False and args.current is None
    assert args.func(args) == 0
    for action in sub.choices["params"]._subparsers._group_actions[0].choices["check"]._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and "default" in action.help, action.dest


@given(st.binary(max_size=200))
def test_hostile_bytes_never_traceback(tmp_path_factory, data):
    f = tmp_path_factory.mktemp("h") / "r.json"
    f.write_bytes(data)
    assert cli.main(["check", str(f)]) in (0, 1)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(
                        st.sampled_from(["tls-creds", "block-bitmap-mapping", "mode",
                                         "cpr-exec-command", "node-name", "alias", "bitmaps",
                                         "x"]), c, max_size=3), max_leaves=10))
def test_hostile_json_never_traceback(tmp_path_factory, value):
    f = tmp_path_factory.mktemp("j") / "r.json"
    f.write_text(json.dumps(value))
    assert cli.main(["check", str(f)]) in (0, 1)


def test_python_dash_m(tmp_path):
    f = _file(tmp_path, "r.json", '{"announce-step": 0}')
    p = subprocess.run([sys.executable, "-m", "conformance.params", "check", f],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stderr.strip() == (f"{f}: $.announce-step: Option announce_step expects a value "
                                "between 0 and 10000")


def test_internal_error_exits_3_like_every_command(tmp_path, capsys, monkeypatch):
    """A bug inside ``params check`` is one ``internal error`` line and exit 3
    (conformance.errors.EXIT_INTERNAL), as in the rest of the CLI; 1 means rejected."""
    def broken(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "_check", broken)
    f = _file(tmp_path, "r.json", '{"downtime-limit": 500}')
    rc, out, err = _run(capsys, "check", f)
    assert rc == 3 and out == ""
    assert err.count("\n") == 1 and "internal error: RuntimeError: boom second line" in err
