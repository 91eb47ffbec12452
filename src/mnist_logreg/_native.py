"""The native training kernel (``_kernel.c``): compiled once per machine, loaded with ctypes.

The C source ships with the package; the first ``fit`` on a machine compiles it with the
system C compiler (``$CC``, else ``cc``) into a cache folder, about a second, and later runs
load the cached library. Without a compiler, or with ``MNIST_LOGREG_NATIVE=0``, ``load()``
returns None and ``fit`` runs its TorchScript kernel instead (same maths, slower).

Cache: ``$MNIST_LOGREG_CACHE``, else ``$XDG_CACHE_HOME/mnist-logreg``, else
``~/.cache/mnist-logreg``; the file name hashes the source, the compiler command and the CPU,
so an edited kernel or another machine never loads a stale build. A cached library is loaded
only when this user owns it and its folder, and nobody else can write either.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("_kernel.c")
FLAG_SETS = (["-O3", "-march=native", "-fno-math-errno"], ["-O3", "-fno-math-errno"])

_loaded: dict = {}


def cache_dir() -> Path:
    env = os.environ.get("MNIST_LOGREG_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-logreg"


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags", "Features"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() + platform.machine()


def _compile(cc: str, flags: list[str], out: Path) -> bool:
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        r = subprocess.run([cc, *flags, "-shared", "-fPIC", "-o", tmp, str(SOURCE), "-lm"],
                           capture_output=True, timeout=120)
        if r.returncode != 0:
            return False
        os.chmod(tmp, 0o755)  # whatever the umask: writable by this user only
        os.replace(tmp, out)  # atomic: a process racing us loads a whole library or none
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _trusted(path: Path) -> bool:
    """A cached library is loaded only if this user owns it and its folder, the library is
    writable by nobody else and the folder by no other user: loading it runs its code, so
    nobody else may have put it there."""
    if not hasattr(os, "getuid"):  # no POSIX ownership to check (Windows)
        return True
    lib, folder = path.stat(), path.parent.stat()
    return (lib.st_uid == folder.st_uid == os.getuid() and not lib.st_mode & 0o022
            and not folder.st_mode & 0o002)


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, f32, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
    lib.mlr_adam_chunk.restype = i32
    lib.mlr_adam_chunk.argtypes = [p, i32, i64, p, p, i64, i64, i64, f32,
                                   p, p, p, p, p, p, p, p,
                                   p, p, p, p, p, p,
                                   f32, f32, f32, f32, f32, i32, f32, f32]
    lib.mlr_evaluate.restype = i32
    lib.mlr_evaluate.argtypes = [p, i32, i64, i64, p, f32, p, p, p, p, p, p, p]
    lib.mlr_classes.restype = i32
    return lib


def load(log=None):
    """The loaded kernel library, or None when it cannot be built here (or is switched off).
    ``log`` hears one line when the library has to be compiled (the first run on a machine)."""
    if "lib" in _loaded:
        return _loaded["lib"]
    lib = None
    if os.environ.get("MNIST_LOGREG_NATIVE", "1") != "0":
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if cc is not None:
            source = SOURCE.read_bytes()
            for flags in FLAG_SETS:
                key = hashlib.sha256(source + repr((cc, flags)).encode() + _cpu_signature().encode())
                path = cache_dir() / f"kernel-{key.hexdigest()[:16]}.so"
                try:
                    # a cached build someone else could have written is rebuilt, not loaded
                    if not path.exists() or not _trusted(path):
                        if log is not None:
                            log(f"compiling the native training kernel once ({cc}, cached in {path.parent})")
                        if not _compile(cc, flags, path):
                            continue
                    if _trusted(path):
                        lib = _bind(ctypes.CDLL(str(path)))
                        break
                except OSError:  # unwritable cache, a library that does not load: next option
                    continue
    _loaded["lib"] = lib
    return lib
