"""The ``qemu`` engine: QEMU's own migration/vmstate.c run on the model's descriptions.

``save(desc, state, variant, *, vmdesc=False, check=True)`` and
``load(desc, data, dest, variant, *, version_id=None, check=True)`` have the signatures
of the other engines.  The build is chosen by variant (``qemu-7.2`` -> a 7.2 build,
``legacy`` -> a 10.x build; see :data:`VARIANT_SERIES`), or explicitly with
``for_build(build_info)``.

The C side is ``driver.c`` (ours), compiled against a build's objects into the build's
cache directory, keyed by the driver's source hash; one long-running driver process per
build forks a child per operation, so ``abort()`` becomes an ``abort`` outcome and a
crash an ``undefined`` one naming the signal (see docs/qemu-engine.md).

A case the driver cannot run (a Python-code hook, an info the build lacks, a variant
without a build) gives an Outcome of kind ``rejected`` whose message starts with
:data:`NOT_EXPRESSIBLE`; :func:`not_expressible` tells the two kinds of ``rejected``
apart.  Count those as skipped, not as agreements or disagreements.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import threading
from pathlib import Path

from conformance.model import variants as _variants
from conformance.model.check import rejected as check_rejected
from conformance.model.description import Description
from conformance.model.outcome import ABORT, ERROR, LIMIT, OK, REJECTED, UNDEFINED, Hazard, Outcome
from conformance.model.state import clone, fill_missing
from conformance.qemu import build as _build
from conformance.qemu import layout as _layout

NAME = "qemu"
NOT_EXPRESSIBLE = "qemu engine: not expressible"
#: which build runs which variant: the newest cached build of that series; a variant
#: with no series (auto-alloc) runs on any build detected as that variant (QEMU master:
#: ``qemu build --overlay shared/qemu-master`` or ``--source`` a master checkout)
VARIANT_SERIES = {"qemu-7.2": ("7.2",), "legacy": ("10.2", "10.1", "10.0"), "auto-alloc": ()}
DRIVER_SOURCE = Path(__file__).with_name("driver.c")
#: seconds a child may run one operation before it is killed (outcome ``limit``)
TIMEOUT = 10

SIGNALS = {4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL",
           11: "SIGSEGV", 14: "SIGALRM"}


class EngineUnavailable(RuntimeError):
    """No usable build / the driver does not compile."""


class _ChildGone(Exception):
    def __init__(self, rec) -> None:
        super().__init__(" ".join(rec))
        self.rec = rec


def not_expressible(outcome: Outcome) -> bool:
    """True for the engine's "cannot run this case" outcome (count it as skipped)."""
    return outcome.kind == REJECTED and (outcome.message or "").startswith(NOT_EXPRESSIBLE)


def _skip(op: str, reason: str, path: str = "") -> Outcome:
    return Outcome(REJECTED, op, message=f"{NOT_EXPRESSIBLE}: {reason}",
                   messages=(NOT_EXPRESSIBLE, reason), path=path or None)


# ---------------------------------------------------------------------------------------
# Compiling the driver


def driver_hash() -> str:
    return hashlib.sha256(DRIVER_SOURCE.read_bytes()).hexdigest()[:16]


def compile_driver(info) -> Path:
    """The driver executable for ``info`` (a conformance.qemu.build.BuildInfo)."""
    out_dir = Path(info.path) / f"driver-{driver_hash()}"
    exe = out_dir / "vmstate-driver"
    if exe.is_file():
        return exe
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = out_dir / ".lock"
    with open(lock, "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if exe.is_file():
            return exe
        obj = out_dir / "driver.o"
        log = out_dir / "compile.log"
        tmp = out_dir / f".vmstate-driver.{os.getpid()}"
        cflags = [a for a in info.cflags if not a.startswith("-Werror")]
        cmds = [
            [info.cc, *cflags, "-Wno-missing-prototypes", "-Wno-unused-function",
             "-c", str(DRIVER_SOURCE), "-o", str(obj)],
            [info.cc, "-o", str(tmp), str(obj), *info.link],
        ]
        with open(log, "w") as fh:
            for cmd in cmds:
                fh.write("$ " + " ".join(cmd) + "\n")
                fh.flush()
                p = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                   cwd=info.build_dir)
                if p.returncode != 0:
                    raise EngineUnavailable(f"compiling the qemu driver failed (log: {log})")
        os.replace(tmp, exe)
    return exe


# ---------------------------------------------------------------------------------------
# The driver process


class _Driver:
    def __init__(self, exe: Path) -> None:
        self.exe = exe
        self.proc: subprocess.Popen | None = None
        self.infos: set[str] = set()
        self.major = 0
        self.lock = threading.Lock()

    def start(self) -> None:
        self.proc = subprocess.Popen([str(self.exe), str(TIMEOUT)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        hello = self.proc.stdout.readline().decode().split()
        if not hello or hello[0] != "H":
            raise EngineUnavailable(f"the qemu driver {self.exe} did not start")
        self.major = int(hello[1])
        self.infos = set(hello[2:])

    def ensure(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
            self.proc = None

    # -- framing -------------------------------------------------------------------------
    def _line(self) -> list[str]:
        line = self.proc.stdout.readline()
        if not line:
            raise EngineUnavailable("the qemu driver exited")
        return line.decode("latin-1").rstrip("\n").split(" ")

    def _exact(self, n: int) -> bytes:
        data = self.proc.stdout.read(n)
        if len(data) != n:
            raise EngineUnavailable("the qemu driver exited mid-record")
        return data

    def _send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def run(self, req: _layout.Request, op: str, walk):
        """Send one request; returns (result dict, exit record)."""
        self.ensure()
        self._send(f"O {len(req.text)}\n".encode() + req.text)
        res: dict = {}
        rec = self._line()
        if rec[0] == "R":
            res.update(ret=int(rec[1]), file_error=int(rec[2]), consumed=int(rec[3]),
                       base=int(rec[4]), errp=bytes.fromhex(rec[6]).decode("utf-8", "replace")
                       if rec[6] != "-" else None)
            res["stream"] = self._exact(int(rec[5]))
            rec = self._line()
            if rec[0] == "J":
                res["vmdesc"] = self._exact(int(rec[1])).decode()
                rec = self._line()
            if rec[0] == "M":
                try:
                    res["walk"] = walk(self, res)
                    self._send(b"q\n")
                    rec = self._line()
                except _ChildGone as gone:
                    # the child died serving a read: our walker's fault, not QEMU's
                    res["walk"] = {"walk_failed": True}
                    rec = gone.rec
        if rec[0] != "X":
            raise EngineUnavailable(f"unexpected driver record {rec[:3]}")
        stderr = self._exact(int(rec[3])).decode("utf-8", "replace")
        return res, (rec[1], int(rec[2]), stderr)

    def read(self, addr: int, n: int) -> bytes | None:
        self._send(f"r {addr} {n}\n".encode())
        rec = self._line()
        if rec[0] == "X":
            raise _ChildGone(rec)
        if rec[0] == "F":
            return None
        return self._exact(int(rec[1]))

    def gtree(self, addr: int) -> list[tuple[int, int]] | None:
        """The (key, value) pointers of a GTree the driver created, in key order; None
        for any other pointer."""
        self._send(f"g {addr}\n".encode())
        rec = self._line()
        if rec[0] == "X":
            raise _ChildGone(rec)
        if int(rec[1]) < 0:
            return None
        out = []
        for _ in range(int(rec[1])):
            k, v = self._line()
            out.append((int(k), int(v)))
        return out


# ---------------------------------------------------------------------------------------
# Engines


_ASSERT_RE = re.compile(r"Assertion `(.*)' failed\.")
_GASSERT_RE = re.compile(r"assertion failed: \((.*)\)")
_ALLOC_RE = re.compile(r"failed to allocate (\d+) bytes")


#: GLib's own log of a refused precondition (g_return_if_fail: g_tree_insert() into a
#: NULL GTree), "(process:PID): GLib-CRITICAL **: HH:MM:SS.mmm: ...": not the migration
#: core's error_report / Error text; the model records it as a hazard
_GLIB_LOG_RE = re.compile(r"^\(process:\d+\): GLib(-[A-Za-z]+)?-(CRITICAL|WARNING) \*\*: ")


def _messages(stderr: str) -> list[str]:
    out = []
    for line in stderr.splitlines():
        if _ASSERT_RE.search(line) or "GLib-ERROR" in line or line.startswith("ERROR:"):
            continue
        if _GLIB_LOG_RE.match(line):
            continue
        if line.strip():
            out.append(line)
    return out


class QemuEngine:
    """save/load against one build."""

    def __init__(self, info) -> None:
        self.info = info
        self.name = f"qemu-{info.qemu_version}"
        self._driver: _Driver | None = None

    @property
    def driver(self) -> _Driver:
        if self._driver is None:
            d = _Driver(compile_driver(self.info))
            d.start()
            self._driver = d
        return self._driver

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    # -- public API ----------------------------------------------------------------------
    def save(self, desc: Description, state, variant="legacy", *, vmdesc: bool = False,
             check: bool = True) -> Outcome:
        v = _variants.get(variant)
        if check:
            rejected = check_rejected(desc, v, "save")
            if rejected is not None:
                return rejected
        opaque = fill_missing(desc, clone(state))
        d = self.driver
        try:
            req = _layout.build_request("save", desc, opaque, v, d.infos,
                                        version_id=desc.version_id, vmdesc=vmdesc)
        except _layout.NotExpressible as exc:
            return _skip("save", exc.reason, exc.path)
        with d.lock:
            res, exit_rec = d.run(req, "save", None)
        return self._outcome("save", res, exit_rec, None, b"")

    def load(self, desc: Description, data: bytes, dest, variant="legacy", *,
             version_id: int | None = None, check: bool = True) -> Outcome:
        v = _variants.get(variant)
        if check:
            rejected = check_rejected(desc, v, "load")
            if rejected is not None:
                return rejected
        opaque = fill_missing(desc, clone(dest))
        version = desc.version_id if version_id is None else version_id
        d = self.driver
        try:
            req = _layout.build_request("load", desc, opaque, v, d.infos, version_id=version,
                                        stream=bytes(data))
        except _layout.NotExpressible as exc:
            return _skip("load", exc.reason, exc.path)

        def walk(drv: _Driver, res: dict):
            base = res["base"]
            arena = drv.read(base, req.arena_size)
            if arena is None:
                raise EngineUnavailable("the driver cannot read its own arena")
            w = _layout.Walker(req, base, arena, drv.read, drv.gtree)
            bad = w.guards_intact()
            if bad:
                return {"overflow": bad}
            return {"state": w.state()}

        with d.lock:
            res, exit_rec = d.run(req, "load", walk)
        return self._outcome("load", res, exit_rec, req, bytes(data))

    # -- mapping -------------------------------------------------------------------------
    def _outcome(self, op, res, exit_rec, req, data) -> Outcome:
        how, code, stderr = exit_rec
        messages = _messages(stderr)
        if res.get("errp"):
            messages.append(res["errp"])
        if how == "s" or (how == "e" and code != 0):
            return _crash(op, how, code, stderr, messages, res, data)
        ret = res["ret"]
        ferr = res["file_error"]
        if op == "save":
            stream = res["stream"]
            if ret == 0:
                return Outcome(OK, "save", stream, None, None, tuple(messages), 0, None, None,
                               (), (), ferr, vmdesc=res.get("vmdesc"))
            return Outcome(ERROR, "save", stream, None, messages[0] if messages else f"error {ret}",
                           tuple(messages), ret, len(stream), None, (), (), ferr)
        consumed = res["consumed"]
        walked = res.get("walk") or {}
        if "overflow" in walked:
            return Outcome(UNDEFINED, "load", data[:consumed], None,
                           "the load wrote past the end of a destination block",
                           tuple(messages), ret, consumed, None,
                           (Hazard("out-of-bounds", "", "guard bytes overwritten"),), (), ferr)
        state = walked.get("state")
        if ret == 0:
            return Outcome(OK, "load", data[:consumed], state, None, tuple(messages), 0, None,
                           None, (), (), ferr)
        return Outcome(ERROR, "load", data[:consumed], state,
                       messages[0] if messages else f"error {ret}", tuple(messages), ret,
                       consumed, None, (), (), ferr)


def _crash(op, how, code, stderr, messages, res, data) -> Outcome:
    consumed = res.get("consumed")
    got = data[:consumed] if consumed is not None else b""
    if how == "e":
        return Outcome(UNDEFINED, op, got, None, f"the driver child exited with status {code}",
                       tuple(messages), -1, consumed, None,
                       (Hazard("out-of-bounds", "", f"exit {code}: {stderr.strip()[-200:]}"),))
    sig = SIGNALS.get(code, f"signal {code}")
    m = _ASSERT_RE.search(stderr) or _GASSERT_RE.search(stderr)
    if code == 6 and m:
        return Outcome(ABORT, op, got, None, f"assertion failed: {m.group(1)}",
                       tuple(messages), -1, consumed)
    m = _ALLOC_RE.search(stderr)
    if m and code in (5, 6):
        return Outcome(ABORT, op, got, None, f"GLib: failed to allocate {m.group(1)} bytes",
                       tuple(messages), -1, consumed)
    if code == 14:
        return Outcome(LIMIT, op, got, None, f"timeout: the operation ran for more than "
                       f"{TIMEOUT}s", tuple(messages), -1, consumed)
    if code == 6:
        return Outcome(ABORT, op, got, None, f"abort() ({stderr.strip()[-200:]})",
                       tuple(messages), -1, consumed)
    return Outcome(UNDEFINED, op, got, None, f"the operation died with {sig}", tuple(messages),
                   -1, consumed, None, (Hazard(_hazard_for(code), "", sig),))


def _hazard_for(signo: int) -> str:
    return "null-dereference" if signo in (11, 7) else "out-of-bounds"


# ---------------------------------------------------------------------------------------
# Module-level engine: the build matching the variant


_ENGINES: dict[str, QemuEngine] = {}


def for_build(info) -> QemuEngine:
    """An engine running ``info`` (a BuildInfo); one driver process per build."""
    eng = _ENGINES.get(info.path)
    if eng is None:
        eng = _ENGINES[info.path] = QemuEngine(info)
    return eng


def build_for_variant(variant):
    """The newest cached build for ``variant`` (None when there is none).

    A series-less variant (auto-alloc) takes a build detected as it: a ``--source``
    checkout (the user's own QEMU master) before the overlay build, then the newest."""
    name = _variants.get(variant).name
    if name not in VARIANT_SERIES:
        return None
    for series in VARIANT_SERIES[name]:
        info = _build.locate(series)
        if info is not None and info.variant == name:
            return info
    if VARIANT_SERIES[name]:
        return None
    hits = [b for b in _build.available() if b.variant == name]
    if not hits:
        return None
    return max(hits, key=lambda b: (b.key.startswith("src-"), _build._vtuple(b.qemu_version),
                                    _mtime(b)))


def _mtime(info) -> float:
    try:
        return (Path(info.path) / _build.INFO_NAME).stat().st_mtime
    except OSError:
        return 0.0


def engine_for_variant(variant) -> QemuEngine | None:
    info = build_for_variant(variant)
    return for_build(info) if info is not None else None


def save(desc: Description, state, variant="legacy", *, vmdesc: bool = False,
         check: bool = True) -> Outcome:
    eng = engine_for_variant(variant)
    if eng is None:
        return _skip("save", f"no QEMU build for variant {_variants.get(variant).name}")
    return eng.save(desc, state, variant, vmdesc=vmdesc, check=check)


def load(desc: Description, data: bytes, dest, variant="legacy", *,
         version_id: int | None = None, check: bool = True) -> Outcome:
    eng = engine_for_variant(variant)
    if eng is None:
        return _skip("load", f"no QEMU build for variant {_variants.get(variant).name}")
    return eng.load(desc, data, dest, variant, version_id=version_id, check=check)


def available() -> list[str]:
    """Variants this machine can run under the qemu engine."""
    return [name for name in VARIANT_SERIES if build_for_variant(name) is not None]
