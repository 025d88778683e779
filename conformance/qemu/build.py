"""Build QEMU's own migration objects from source, cached, for the QEMU engine.

One cache directory per build key under ``cache_root()``:

* ``debian-<VERSION>`` for a Debian source package (``apt-get source qemu=<ver>``),
  holding ``src/`` (the unpacked, patched tree), ``build/`` (meson), ``logs/``;
* ``src-<hash>`` for ``--source DIR`` (the tree stays where it is; ``build/`` and
  ``logs/`` live in the cache);
* ``master-<hash>`` for ``--overlay DIR``: the shared QEMU-master overlay
  (``shared/qemu-master``: master's migration/vmstate.c and vmstate-types.c over
  Debian's 10.2.2 tree, assembled by its ``assemble.sh``) in ``src/``; the hash is the
  sha256 of the overlay's file list with their sha256 sums, so a changed overlay is a
  new build.

``build-info.json`` is written last (atomically) and only after QEMU's own
``tests/unit/test-vmstate`` passed, so its presence means "usable".  ``locate`` and
``available`` only read those files.

Nothing here is QEMU code: the compile flags come from the build's
``compile_commands.json`` (migration/vmstate.c) and the link line from ``build.ninja``
(tests/unit/test-vmstate), and the API facts from regexes over the tree's headers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs

INFO_NAME = "build-info.json"
#: Debian series we know how to fetch: series -> upstream prefix of the source version
SERIES = ("7.2", "10.2")
#: meson for trees whose pythondeps.toml asks for a newer one than Debian 12's (>= 8.1)
MESON_PIN = "meson==1.9.0"
TEST_TIMEOUT = 300


class BuildError(Exception):
    """A build step failed; the message is one line naming the step and its log."""


class UnknownTree(BuildError):
    """The source tree's VERSION / vmstate API is not one the driver knows."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vmstate-conformance" / "qemu"


@attrs.frozen
class BuildInfo:
    key: str
    qemu_version: str
    variant: str
    source_dir: str
    build_dir: str
    test_vmstate: dict
    analyze_migration: str | None
    cc: str
    cflags: list
    link: list
    api: dict
    debian_version: str | None = None
    configure: list = attrs.field(factory=list)
    seconds: dict = attrs.field(factory=dict)
    path: str = ""  # the cache directory (not stored in the file)

    @classmethod
    def load(cls, cache_dir: Path) -> BuildInfo:
        data = json.loads((cache_dir / INFO_NAME).read_text())
        names = {a.name for a in attrs.fields(cls)} - {"path"}
        data = {k: v for k, v in data.items() if k in names}
        # an API key added after the build was recorded (vmsd_bool): absent = 0, the
        # driver's #ifndef default; the -D goes into the flags the driver compiles with
        api = dict(data.get("api") or {})
        missing = [k for k in API_DEFINES if k not in api]
        if missing and "cflags" in data:
            api.update({k: False for k in missing})
            data["api"] = api
            data["cflags"] = list(data["cflags"]) + [f"-D{API_DEFINES[k]}=0" for k in missing]
        return cls(**data, path=str(cache_dir))

    def to_json(self) -> dict:
        d = attrs.asdict(self)
        d.pop("path")
        return d

    @property
    def series(self) -> str:
        return ".".join(self.qemu_version.split(".")[:2])


# --------------------------------------------------------------------------- lookup

def available(root: Path | None = None) -> list[BuildInfo]:
    """Every cached build with a build-info.json (i.e. test-vmstate passed), by key."""
    root = root or cache_root()
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if (d / INFO_NAME).is_file():
                try:
                    out.append(BuildInfo.load(d))
                except (ValueError, TypeError, OSError):
                    continue
    return out


def locate(spec: str, root: Path | None = None) -> BuildInfo | None:
    """A cached build by series ("7.2"), key ("debian-7.2.22") or source path."""
    builds = available(root)
    for b in builds:
        if b.key == spec:
            return b
    if re.fullmatch(r"\d+\.\d+", spec):
        hits = [b for b in builds if b.series == spec]
        hits.sort(key=lambda b: (b.key.startswith("debian-"), _vtuple(b.qemu_version)))
        return hits[-1] if hits else None
    p = Path(spec)
    if p.exists():
        real = str(p.resolve())
        for b in builds:
            if b.source_dir == real:
                return b
    return None


def _vtuple(v: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.\-]", v))


# --------------------------------------------------------------------------- variant / API

_LOAD_RE = re.compile(
    r"int\s+vmstate_load_state\s*\(\s*QEMUFile\s*\*\s*\w+\s*,\s*const\s+VMStateDescription\s*\*\s*\w+\s*,"
    r"\s*void\s*\*\s*\w+\s*,\s*int\s+\w+\s*(,\s*Error\s*\*\*\s*\w+\s*)?\)\s*;")
_SAVE_RE = re.compile(
    r"int\s+vmstate_save_state\s*\(\s*QEMUFile\s*\*\s*\w+\s*,\s*const\s+VMStateDescription\s*\*\s*\w+\s*,"
    r"\s*void\s*\*\s*\w+\s*,\s*JSONWriter\s*\*\s*\w+\s*(,\s*Error\s*\*\*\s*\w+\s*)?\)\s*;")
_BOOL_RE = re.compile(r"^\s*bool\s+vmstate_load_vmsd\s*\(", re.M)
_FNEW_RE = re.compile(r"QEMUFile\s*\*\s*qemu_file_new_(input|output)\s*\(\s*QIOChannel\s*\*\s*\w+\s*\)\s*;")
_FFLUSH_RE = re.compile(r"\b(void|int)\s+qemu_fflush\s*\(\s*QEMUFile\s*\*\s*\w+\s*\)\s*;")
_BUFNEW_RE = re.compile(r"qio_channel_buffer_new\s*\(\s*size_t\s+\w+\s*\)\s*;")
_BUFSTRUCT_RE = re.compile(r"struct\s+QIOChannelBuffer\s*\{[^}]*\bsize_t\s+usage\s*;[^}]*\buint8_t\s*\*\s*data\s*;")

#: -D flags the driver can #if on, one per boolean API fact
API_DEFINES = {
    "load_state_errp": "VMSC_LOAD_ERRP",
    "save_state_errp": "VMSC_SAVE_ERRP",
    "vms_end": "VMSC_VMS_END",
    "subsections_const": "VMSC_SUBSECTIONS_CONST",
    "hooks_errp": "VMSC_HOOKS_ERRP",
    "fflush_returns_int": "VMSC_FFLUSH_INT",
    "json_writer_qobject": "VMSC_JSON_WRITER_QOBJECT",
    "section_needed": "VMSC_SECTION_NEEDED",
    "auto_alloc": "VMSC_AUTO_ALLOC",
    "vmsd_bool": "VMSC_VMSD_BOOL",
}


def _read(tree: Path, rel: str) -> str:
    try:
        return (tree / rel).read_text(errors="replace")
    except OSError:
        raise UnknownTree(f"{tree}: {rel} is missing (not a QEMU source tree?)") from None


def read_version(tree: Path) -> str:
    v = _read(tree, "VERSION").strip()
    if not re.fullmatch(r"\d+\.\d+\.\d+(\.\d+)?", v):
        raise UnknownTree(f"{tree}/VERSION holds {v[:40]!r}, not a QEMU version")
    return v


def detect(tree: Path) -> tuple[str, str, dict]:
    """(qemu_version, variant, api facts) for a source tree, or UnknownTree."""
    tree = Path(tree)
    version = read_version(tree)
    major, minor = (int(x) for x in version.split(".")[:2])
    vh = _read(tree, "include/migration/vmstate.h")
    # a tree only counts as auto-alloc if the flag is in the enum, not in a comment
    auto = re.search(r"^\s*VMS_ARRAY_OF_POINTER_AUTO_ALLOC\s*=", vh, re.M) is not None
    missing = []
    load = _LOAD_RE.search(vh)
    save = _SAVE_RE.search(vh)
    if not load:
        missing.append("vmstate_load_state(QEMUFile *, const VMStateDescription *, void *, int[, Error **])"
                       " in include/migration/vmstate.h")
    if not save:
        missing.append("vmstate_save_state(QEMUFile *, const VMStateDescription *, void *, JSONWriter *"
                       "[, Error **]) in include/migration/vmstate.h")
    qf = ""
    for rel in ("migration/qemu-file.h", "include/migration/qemu-file.h"):
        if (tree / rel).is_file():
            qf = (tree / rel).read_text(errors="replace")
            break
    if sorted(m.group(1) for m in _FNEW_RE.finditer(qf)) != ["input", "output"]:
        missing.append("qemu_file_new_input/qemu_file_new_output(QIOChannel *) in migration/qemu-file.h")
    fflush = _FFLUSH_RE.search(qf)
    if not fflush:
        missing.append("qemu_fflush(QEMUFile *) in migration/qemu-file.h")
    cb = (tree / "include/io/channel-buffer.h")
    cbt = cb.read_text(errors="replace") if cb.is_file() else ""
    if not (_BUFNEW_RE.search(cbt) and _BUFSTRUCT_RE.search(cbt)):
        missing.append("qio_channel_buffer_new(size_t) / QIOChannelBuffer{usage, data} in include/io/channel-buffer.h")
    vc = _read(tree, "migration/vmstate.c")
    if missing:
        raise UnknownTree(f"{tree} (QEMU {version}): vmstate API not recognised: " + "; ".join(missing))
    if auto:
        variant = "auto-alloc"
    elif (major, minor) == (7, 2):
        variant = "qemu-7.2"
    elif 8 <= major <= 10:
        variant = "legacy"
    else:
        raise UnknownTree(f"{tree}: QEMU {version} not recognised (known: 7.2.x -> qemu-7.2, "
                          "8.0-10.x -> legacy, VMS_ARRAY_OF_POINTER_AUTO_ALLOC -> auto-alloc)")
    api = {
        "load_state_errp": bool(load.group(1)),
        "save_state_errp": bool(save.group(1)),
        # VMSTATE_END_OF_LIST() sets .flags = VMS_END and vmstate.c asserts it
        "vms_end": re.search(r"^\s*VMS_END\s*=", vh, re.M) is not None,
        "subsections_const": re.search(r"const\s+VMStateDescription\s*\*\s*const\s*\*\s*subsections", vh) is not None,
        "hooks_errp": "pre_load_errp" in vh,
        "fflush_returns_int": fflush.group(1) == "int",
        "json_writer_qobject": '"qobject/json-writer.h"' in vc,
        "section_needed": "vmstate_section_needed" in vh,
        "auto_alloc": auto,
        # QEMU master: bool vmstate_load_vmsd() / vmstate_save_vmsd() (the bool API)
        "vmsd_bool": _BOOL_RE.search(vh) is not None,
        "json_writer_header": "qobject/json-writer.h" if '"qobject/json-writer.h"' in vc
                              else "qapi/qmp/json-writer.h",
        "qemu_file_header": "migration/qemu-file.h",
    }
    return version, variant, api


def api_cflags(api: dict) -> list[str]:
    return [f"-D{API_DEFINES[k]}={int(bool(api.get(k)))}" for k in API_DEFINES]


# --------------------------------------------------------------------------- flags from the build

_DROP_WITH_ARG = {"-o", "-MQ", "-MF", "-MT"}
_DROP = {"-c", "-MD", "-MMD", "-Winvalid-pch"}


def compile_flags(build_dir: Path) -> tuple[str, list[str]]:
    """(cc, flags) QEMU compiled migration/vmstate.c with, paths made absolute."""
    entries = json.loads((build_dir / "compile_commands.json").read_text())
    hits = [e for e in entries if e["file"].endswith("migration/vmstate.c")]
    # prefer the library test-vmstate links (libmigration), not libcommon's copy
    hits.sort(key=lambda e: "migration" not in e.get("output", "").split("/")[0])
    if not hits:
        raise BuildError(f"{build_dir}/compile_commands.json has no migration/vmstate.c entry")
    e = hits[0]
    args = e.get("arguments") or shlex.split(e["command"])
    cwd = Path(e.get("directory", build_dir))
    cc, out = args[0], []
    path_opts = ("-I", "-isystem", "-iquote", "-include", "-idirafter")
    i = 1
    while i < len(args):
        a = args[i]
        i += 1
        if a in _DROP_WITH_ARG:
            i += 1
            continue
        if a in _DROP or a.startswith("-fdiagnostics-color") or a.endswith("migration/vmstate.c"):
            continue
        if a in path_opts[1:]:
            out += [a, str((cwd / args[i]).resolve())]
            i += 1
            continue
        if a.startswith("-I") and len(a) > 2:
            out.append("-I" + str((cwd / a[2:]).resolve()))
            continue
        out.append(a)
    return cc, out


def link_args(build_dir: Path) -> list[str]:
    """test-vmstate's link inputs and LINK_ARGS minus its own object, paths absolute."""
    text = (build_dir / "build.ninja").read_text()
    m = re.search(r"^build tests/unit/test-vmstate: \S+ (.*)\n LINK_ARGS = (.*)$", text, re.M)
    if not m:
        raise BuildError(f"{build_dir}/build.ninja has no link rule for tests/unit/test-vmstate")
    out = []
    for a in shlex.split(m.group(2)):
        if re.search(r"\.(a|fa|o)$", a) and not a.startswith("/") and not a.startswith("-"):
            a = str((build_dir / a).resolve())
        out.append(a)
    # inputs ninja lists before '|' that are not in LINK_ARGS (e.g. extra objects)
    explicit = m.group(1).split(" | ")[0].split("||")[0].split()
    extra = [str((build_dir / x).resolve()) for x in explicit
             if "test-vmstate.c.o" not in x and str((build_dir / x).resolve()) not in out]
    return extra + out


# --------------------------------------------------------------------------- steps

class _Progress:
    def __init__(self, label: str, quiet: bool = False):
        self.t0 = time.monotonic()
        self.label = label
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.t0:7.1f}s] {self.label}: {msg}", flush=True)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.t0, 1)


def _run(step: str, cmd: list[str], log: Path, cwd: Path | None = None, env=None,
         timeout: float | None = None) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        fh.write("$ " + shlex.join(cmd) + "\n")
        fh.flush()
        try:
            rc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                timeout=timeout).returncode
        except FileNotFoundError:
            raise BuildError(f"{step} failed: {cmd[0]} not found (see .ci/qemu-build.sh for the packages)") from None
        except subprocess.TimeoutExpired:
            raise BuildError(f"{step} timed out after {timeout:.0f}s (log: {log})") from None
    if rc != 0:
        raise BuildError(f"{step} failed with exit status {rc} (log: {log})")


def _nice() -> list[str]:
    return ["nice", "-n", "10"] if shutil.which("nice") else []


def _meson_python(root: Path, log: Path) -> str:
    """A python whose site-packages hold a recent meson (QEMU >= 8.1's mkvenv finds it)."""
    venv = root / "_tools" / "venv"
    py = venv / "bin" / "python3"
    if not (venv / "bin" / "meson").exists():
        _run("meson venv", [sys.executable, "-m", "venv", "--clear", str(venv)], log)
        _run("meson venv", [str(py), "-m", "pip", "install", "-q", MESON_PIN], log.with_suffix(".pip.log"))
    return str(py)


def configure_args(tree: Path, root: Path, log: Path) -> list[str]:
    args = [
        # one target with an accelerator (kvm needs no code generation) is enough for
        # have_system, which tests/unit/meson.build needs for test-vmstate
        "--target-list=x86_64-softmmu", "--without-default-features", "--without-default-devices",
        "--disable-docs", "--disable-tools", "--disable-install-blobs", "--disable-werror",
        "--disable-tcg", "--enable-kvm", "--enable-fdt=system", "--disable-slirp",
    ]
    if (tree / "pythondeps.toml").is_file():  # mkvenv era: wants meson newer than Debian 12's
        args.append("--python=" + _meson_python(root, log))
        args.append("--disable-download")
    return args


def _test_vmstate(build_dir: Path, log: Path) -> dict:
    exe = build_dir / "tests" / "unit" / "test-vmstate"
    t0 = time.monotonic()
    with open(log, "w") as fh:
        try:
            p = subprocess.run([str(exe), "--tap", "-k"], cwd=build_dir, stdout=subprocess.PIPE,
                               stderr=fh, text=True, timeout=TEST_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BuildError(f"test-vmstate timed out (log: {log})") from None
        fh.write(p.stdout)
    ok = len(re.findall(r"^ok \d+", p.stdout, re.M))
    bad = len(re.findall(r"^not ok \d+", p.stdout, re.M))
    if p.returncode != 0 or bad or not ok:
        raise BuildError(f"test-vmstate failed: exit {p.returncode}, {ok} ok, {bad} not ok (log: {log})")
    return {"passed": True, "ok": ok, "failed": 0, "seconds": round(time.monotonic() - t0, 2)}


def _write_info(cache_dir: Path, info: BuildInfo) -> None:
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".build-info.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(info.to_json(), fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, cache_dir / INFO_NAME)


def _build_tree(key: str, tree: Path, cache_dir: Path, root: Path, jobs: int, progress: _Progress,
                debian_version: str | None = None, seconds: dict | None = None) -> BuildInfo:
    version, variant, api = detect(tree)  # before spending minutes on an unknown tree
    logs = cache_dir / "logs"
    build_dir = cache_dir / "build"
    seconds = dict(seconds or {})
    cfg = configure_args(tree, root, logs / "meson-venv.log")
    if not (build_dir / "build.ninja").is_file():
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        progress(f"configure QEMU {version} (log: {logs / 'configure.log'})")
        t = time.monotonic()
        _run("configure", _nice() + [str(tree / "configure")] + cfg, logs / "configure.log", cwd=build_dir)
        seconds["configure"] = round(time.monotonic() - t, 1)
    progress(f"build tests/unit/test-vmstate with ninja -j{jobs} (log: {logs / 'build.log'})")
    t = time.monotonic()
    ninja = shutil.which("ninja") or shutil.which("ninja-build") or "ninja"
    _run("build", _nice() + [ninja, "-C", str(build_dir), f"-j{jobs}", "tests/unit/test-vmstate"],
         logs / "build.log")
    seconds["build"] = round(time.monotonic() - t, 1)
    progress("run test-vmstate")
    result = _test_vmstate(build_dir, logs / "test-vmstate.log")
    progress(f"test-vmstate passed ({result['ok']} tests)")
    cc, flags = compile_flags(build_dir)
    script = tree / "scripts" / "analyze-migration.py"
    seconds["total"] = progress.elapsed()
    info = BuildInfo(
        key=key, qemu_version=version, variant=variant, source_dir=str(tree.resolve()),
        build_dir=str(build_dir.resolve()), test_vmstate=result,
        analyze_migration=str(script.resolve()) if script.is_file() else None,
        cc=cc, cflags=flags + api_cflags(api), link=link_args(build_dir), api=api,
        debian_version=debian_version, configure=cfg, seconds=seconds, path=str(cache_dir),
    )
    _write_info(cache_dir, info)
    return info


# --------------------------------------------------------------------------- Debian

def debian_versions() -> list[str]:
    """Source versions of qemu known to apt (needs deb-src lines), newest first."""
    try:
        out = subprocess.run(["apt-cache", "showsrc", "qemu"], capture_output=True, text=True,
                             timeout=60).stdout
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    vs = []
    for block in out.split("\n\n"):
        if re.search(r"^Package: qemu$", block, re.M):
            m = re.search(r"^Version: (\S+)$", block, re.M)
            if m and m.group(1) not in vs:
                vs.append(m.group(1))
    return sorted(vs, key=lambda v: _vtuple(_upstream(v)) + (v,), reverse=True)


def _upstream(debver: str) -> str:
    """1:7.2+dfsg-7+deb12u18 -> 7.2; 1:10.2.2+ds-1 -> 10.2.2"""
    return re.split(r"[+~-]", debver.split(":", 1)[-1])[0]


def pick_debian_version(series: str, versions: list[str]) -> str | None:
    hits = [v for v in versions if (_upstream(v) + ".").startswith(series + ".")]
    if not hits:
        return None
    # apt's own ordering within a series: highest Debian revision
    return max(hits, key=_debkey)


def _debkey(v: str) -> tuple:
    return tuple((int(x) if x.isdigit() else -1, x) for x in re.findall(r"\d+|[a-z]+", v))


def build_debian(series: str, jobs: int = 2, force: bool = False, root: Path | None = None,
                 quiet: bool = False) -> BuildInfo:
    if series not in SERIES:
        raise BuildError(f"unknown Debian series {series!r} (known: {', '.join(SERIES)})")
    root = root or cache_root()
    if not force:
        have = [b for b in available(root) if b.key.startswith("debian-") and b.series == series]
        if have:
            return max(have, key=lambda b: _vtuple(b.qemu_version))
    progress = _Progress(f"qemu {series}", quiet)
    debver = pick_debian_version(series, debian_versions())
    if debver is None:
        raise BuildError(f"apt knows no qemu source for {series}: add a deb-src line for "
                         f"{'bookworm' if series == '7.2' else 'sid'} and run apt-get update "
                         "(see .ci/qemu-build.sh)")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".fetch-"))
    try:
        fetch_log = root / "logs" / f"fetch-{series}.log"  # outlives the staging dir
        progress(f"apt-get source qemu={debver} (log: {fetch_log})")
        t = time.monotonic()
        _run("fetch", ["apt-get", "source", "-qq", "--only-source", f"qemu={debver}"],
             fetch_log, cwd=staging)
        trees = [d for d in staging.iterdir() if d.is_dir() and (d / "VERSION").is_file()]
        if len(trees) != 1:
            raise BuildError(f"fetch: apt-get source unpacked no qemu tree (log: {fetch_log})")
        version = read_version(trees[0])
        key = f"debian-{version}"
        cache_dir = root / key
        if force and cache_dir.exists():
            shutil.rmtree(cache_dir)
        if (cache_dir / INFO_NAME).is_file():
            return BuildInfo.load(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        if not (cache_dir / "src" / "VERSION").is_file():
            if (cache_dir / "src").exists():
                shutil.rmtree(cache_dir / "src")
            trees[0].rename(cache_dir / "src")
            (cache_dir / "logs").mkdir(exist_ok=True)
            shutil.copy(fetch_log, cache_dir / "logs" / "fetch.log")
        fetch_s = round(time.monotonic() - t, 1)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _build_tree(key, cache_dir / "src", cache_dir, root, jobs, progress,
                       debian_version=debver, seconds={"fetch": fetch_s})


# --------------------------------------------------------------------------- --overlay DIR

#: the Debian series the shared QEMU-master overlay is laid over (its README)
OVERLAY_BASE_SERIES = "10.2"
OVERLAY_RECORD = ".vmsc-qemu-master-overlay.sha256"


def overlay_sums(overlay: Path) -> str:
    """The overlay's ``sha256sum`` listing (sorted ``./path``), as assemble.sh records it
    in ``OUT/.vmsc-qemu-master-overlay.sha256``."""
    files = overlay / "overlay"
    if not (overlay / "assemble.sh").is_file() or not files.is_dir():
        raise BuildError(f"--overlay {overlay}: no assemble.sh and overlay/ (expected the "
                         "shared qemu-master folder)")
    lines = []
    for path in sorted(p for p in files.rglob("*") if p.is_file()):
        rel = "./" + path.relative_to(files).as_posix()
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel}\n")
    return "".join(sorted(lines, key=lambda line: line.split("  ", 1)[1]))


def overlay_key(overlay: Path) -> str:
    return "master-" + hashlib.sha256(overlay_sums(Path(overlay)).encode()).hexdigest()[:12]


def build_overlay(path: str | Path, jobs: int = 2, force: bool = False, root: Path | None = None,
                  quiet: bool = False) -> BuildInfo:
    """QEMU master's migration core: the overlay laid over the cached Debian 10.2 tree
    (built first if missing), cached under ``master-<overlay hash>``."""
    overlay = Path(path).resolve()
    root = root or cache_root()
    key = overlay_key(overlay)
    cache_dir = root / key
    if (cache_dir / INFO_NAME).is_file() and not force:
        return BuildInfo.load(cache_dir)
    base = build_debian(OVERLAY_BASE_SERIES, jobs=jobs, root=root, quiet=quiet)
    progress = _Progress(f"qemu {key}", quiet)
    if force and cache_dir.exists():
        shutil.rmtree(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tree = cache_dir / "src"
    record = tree / OVERLAY_RECORD
    # assemble.sh sorts with the locale's collation: compare the lines as a set
    if not record.is_file() or (sorted(record.read_text().splitlines())
                                != sorted(overlay_sums(overlay).splitlines())):
        if tree.exists():
            shutil.rmtree(tree)
        progress(f"assemble {overlay}/overlay over {base.source_dir}")
        _run("assemble", ["sh", str(overlay / "assemble.sh"), base.source_dir, str(tree)],
             cache_dir / "logs" / "assemble.log")
    return _build_tree(key, tree, cache_dir, root, jobs, progress)


# --------------------------------------------------------------------------- --source DIR

def source_key(tree: Path) -> str:
    tree = Path(tree).resolve()
    h = hashlib.sha256(read_version(tree).encode())
    head = None
    if (tree / ".git").exists():
        try:
            head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                                  text=True, timeout=30).stdout.strip() or None
        except (FileNotFoundError, subprocess.TimeoutExpired):
            head = None
    if head:
        h.update(b"git:" + head.encode())
    else:
        h.update(b"path:" + str(tree).encode())
        for rel in (".", "VERSION", "include/migration/vmstate.h", "migration/vmstate.c",
                    "migration/vmstate-types.c", "migration/qemu-file.c"):
            try:
                h.update(f"{rel}:{(tree / rel).stat().st_mtime_ns}".encode())
            except OSError:
                pass
    return "src-" + h.hexdigest()[:12]


def build_source(path: str | Path, jobs: int = 2, force: bool = False, root: Path | None = None,
                 quiet: bool = False) -> BuildInfo:
    tree = Path(path).resolve()
    if not tree.is_dir():
        raise BuildError(f"--source {path}: not a directory")
    root = root or cache_root()
    key = source_key(tree)
    cache_dir = root / key
    if (cache_dir / INFO_NAME).is_file() and not force:
        return BuildInfo.load(cache_dir)
    detect(tree)  # an unknown tree fails here, before anything is written
    if force and cache_dir.exists():
        shutil.rmtree(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    progress = _Progress(f"qemu {key}", quiet)
    return _build_tree(key, tree, cache_dir, root, jobs, progress)
