"""One CLI: the command index, lazy imports, --version, defaults in help, inapplicable
options, empty selections, and messages that name the right file."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import COMMANDS, GROUPS, HelpFormatter, build_parser

ROOT = Path(__file__).resolve().parent.parent
MIG = ROOT / "tests" / "data" / "qemu-7.2" / "pc-min.mig"
EXAMPLE = ROOT / "conformance" / "data" / "examples" / "simple-primitive.json"


def run(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "conformance", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or ROOT)
    return proc.returncode, proc.stdout, proc.stderr


def _registered(module_name: str) -> dict[str, str]:
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module_name).add_subcommands(sub)
    return {a.dest: a.help for a in sub._choices_actions}


def test_command_index_matches_the_groups():
    seen = {}
    for module in GROUPS:
        for name, help_text in _registered(module).items():
            seen[name] = (module, help_text)
    assert seen == COMMANDS


def _imported_by(*argv) -> set[str]:
    code = ("import contextlib, io, sys\n"
            "from conformance.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), "
            "contextlib.redirect_stderr(io.StringIO()):\n"
            f"    main({list(argv)!r})\n"
            "print('\\n'.join(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    return set(proc.stdout.split())


HEAVY = {"conformance.engines.reference", "conformance.engines.optimized",
         "conformance.golden.corpus", "conformance.bench.engines", "conformance.migration",
         "conformance.cases.casefile", "hypothesis", "rich", "strategies"}


def test_top_level_help_and_version_import_no_group():
    for argv in (["--help"], ["--version"], []):
        mods = {m for m in _imported_by(*argv) if m.startswith("conformance")}
        # besides the two leaves conformance.errors (exit codes) and .names (variants)
        assert mods == {"conformance", "conformance.cli", "conformance.errors",
                        "conformance.names"}, argv


@pytest.mark.parametrize("command,allowed", [
    ("run", {"conformance.cli.cases"}),
    ("decode", {"conformance.cli.cases"}),
    ("bench", {"conformance.cli.bench"}),
    ("verify", {"conformance.cli.migration"}),
    ("golden", {"conformance.cli.golden"}),
])
def test_a_commands_help_imports_only_its_group(command, allowed):
    mods = _imported_by(command, "--help")
    assert not (mods & HEAVY), sorted(mods & HEAVY)
    groups = {m for m in mods if m in GROUPS}
    assert groups == allowed


def test_version():
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("vmstate-conformance ")


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, subsub in _subparsers(sub):
                    yield f"{name} {inner}", subsub


def test_every_option_has_help_and_every_valued_option_its_default():
    parser = build_parser(full=True)
    missing = []
    for name, sub in _subparsers(parser):
        formatter = HelpFormatter(sub.prog)
        for action in sub._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            text = formatter._expand_help(action) if action.help else ""
            if not text:
                missing.append(f"{name} {action.option_strings[0]}: no help")
            elif action.nargs != 0 and not action.required and "default" not in text.lower():
                missing.append(f"{name} {action.option_strings[0]}: no default stated")
    assert not missing


def test_exit_codes_are_in_the_help():
    for argv in (["--help"], ["run", "--help"]):
        code, out, _ = run(*argv)
        assert code == 0 and "exit status: 0" in out and "2 usage" in out


# ---------------------------------------------------------------------------------------
# decode: one command for cases and migration files


def test_decode_missing_file_names_it(tmp_path):
    code, out, err = run("decode", tmp_path / "gone.mig")
    assert code == 1 and out == ""
    assert err.strip() == f"vmstate-conformance: {tmp_path / 'gone.mig'}: no such file"


@pytest.mark.parametrize("argv,word", [
    ([MIG, "--engine", "optimized"], "--engine"),
    ([MIG, "--variant", "legacy"], "--variant"),
    ([MIG, "00"], "STREAM"),
    ([MIG, "--memory", "--format", "analyze-migration"], "--memory"),
    ([MIG, "--desc", "--sections"], "--desc"),
    ([EXAMPLE, "00", "--format", "json"], "--format"),
    ([EXAMPLE, "00", "--memory"], "--memory"),
    ([EXAMPLE, "00", "--vmdesc-from", MIG], "--vmdesc-from"),
])
def test_decode_inapplicable_options_are_usage_errors(argv, word):
    code, out, err = run("decode", *argv)
    assert code == 2 and out == "" and word in err and "Traceback" not in err


def test_decode_migration_options_work_from_the_main_cli():
    code, plain, _ = run("decode", MIG)
    assert code == 0
    code, memory, _ = run("decode", MIG, "--memory")
    assert code == 0 and len(memory) > len(plain)
    code, out, _ = run("decode", MIG, "--vmdesc-from", MIG, "--format", "analyze-migration")
    assert code == 0 and out.startswith("{")
    code, _, err = run("decode", MIG, "--vmdesc-from", "/nonexistent.mig")
    assert code == 1 and "/nonexistent.mig" in err


def test_reencode_to_a_directory_names_the_output(tmp_path):
    code, _, err = run("reencode", MIG, "-o", tmp_path)
    assert code == 1 and str(tmp_path) in err and str(MIG) not in err


def test_the_cli_variant_names_are_the_models():
    from conformance.cli import VARIANT_NAMES
    from conformance.model.variants import VARIANTS

    assert VARIANT_NAMES == tuple(VARIANTS)


def test_bench_corpora_are_the_benchmarks():
    from conformance.bench.corpora import CORPORA as REAL
    from conformance.cli.bench import CORPORA

    assert CORPORA is REAL and set(REAL) == {"scalar-heavy", "array-heavy", "pointer-array",
                                             "deep-nesting"}


def test_decoding_a_migration_file_imports_no_engine_or_case_machinery():
    """(the migration reader itself uses model.infos: that is migration/'s business)"""
    mods = _imported_by("decode", "--format", "analyze-migration", str(MIG))
    assert any(m.startswith("conformance.migration.") for m in mods)
    assert not {m for m in mods if m.startswith(("conformance.engines.", "conformance.cases",
                                                 "conformance.model.variants",
                                                 "conformance.model.state",
                                                 "conformance.model.check"))}


@pytest.mark.parametrize("argv,word", [
    (["verify", "--root", "/nonexistent"], "/nonexistent"),
    (["verify", "--case", "no-such-case-anywhere"], "no-such-case-anywhere"),
    (["show", "no-such-case-anywhere"], "no-such-case-anywhere"),
    (["regen", "--root", "/nonexistent"], "/nonexistent"),
])
def test_golden_empty_selections_are_usage_errors(argv, word):
    code, out, err = run("golden", *argv)
    assert code == 2 and "ok" not in out and word in err and "Traceback" not in err


def test_top_level_help_states_every_exit_status(capsys):
    from conformance import cli

    assert cli.main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    status = out[out.index("exit status:"):]
    for code, what in ((cli.EXIT_OK, "success"), (cli.EXIT_FAIL, "a failure"),
                       (cli.EXIT_USAGE, "usage error"), (cli.EXIT_INTERNAL, "internal error")):
        assert f"{code} {what}" in status, (code, status)
    assert cli.main(["run", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{cli.EXIT_INTERNAL} internal error" in out


# words of the project's tracker ("issue 12", "seed 004"): user-facing text names the
# patch series or the contract instead; a reader has neither the tracker nor the seeds
_TRACKER = re.compile(r"(?i)\b(?:issues?|seeds?)[ -]#?\d+|\bseed's\b")


def test_user_facing_text_has_no_tracker_words():
    files = [ROOT / "README.md", ROOT / "golden" / "FORMAT.md", *ROOT.glob("docs/*.md"),
             *ROOT.glob("conformance/**/*.py"), *ROOT.glob("strategies/**/*.py")]
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
             for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
             if _TRACKER.search(line)]
    assert not found, "\n".join(found)


def test_every_command_the_docs_show_is_wired(capsys):
    """Every ``vmstate-conformance COMMAND [SUBCOMMAND]`` the README and docs show in code
    is a registered command whose --help parses (docs/qemu-engine.md once said the qemu
    command was not wired)."""
    from conformance.cli import main

    shown = set()
    command = r"vmstate-conformance ([a-z][a-z-]*)(?: ([a-z]+))?"
    for path in [ROOT / "README.md", ROOT / "golden" / "FORMAT.md", *ROOT.glob("docs/*.md")]:
        fenced = False
        for line in path.read_text().splitlines():
            fenced ^= line.startswith("```")
            code = fenced or line.startswith("    ")  # a code block: any mention; prose: `...`
            for m in re.finditer(("^\\s*" if code else "`") + command, line):
                shown.add((path.name, m.group(1), m.group(2)))
    assert {cmd for _, cmd, _ in shown} >= {"run", "decode", "qemu", "golden", "params"}
    for name, cmd, sub in sorted(shown, key=lambda s: (s[1], s[2] or "")):
        assert cmd in COMMANDS, (name, cmd)
        groups = {"golden", "qemu", "params"}  # commands whose next word is a subcommand
        argv = [cmd, sub, "--help"] if cmd in groups and sub else [cmd, "--help"]
        assert main(argv) == 0, (name, argv)
        capsys.readouterr()
