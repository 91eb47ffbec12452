"""The native training kernel (``_kernel.c``): compiled once per machine, loaded with ctypes.

The C source ships with the package; the first ``fit`` on a machine compiles it with the
system C compiler (``$CC``, else ``cc``) into a cache folder, about a second, and later runs
load the cached library. Without a compiler, or with ``MNIST_LOGREG_NATIVE=0``, ``load()``
returns None and ``fit`` runs its TorchScript kernel instead (same maths, slower).

Cache: ``$MNIST_LOGREG_CACHE``, else ``$XDG_CACHE_HOME/mnist-logreg``, else
``~/.cache/mnist-logreg``; the file name hashes the source, the compiler command and the CPU,
so an edited kernel or another machine never loads a stale build. A cached library is loaded
only when this user owns it and its folder, nobody else can write either, and its bytes match
the SHA-256 written beside it after its build; a folder other users can write to is not used
(nothing is compiled into it).
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

from .._files import cache_dir
from .._files import private_stat as _private

SOURCE = Path(__file__).with_name("_kernel.c")
FLAG_SETS = (["-O3", "-march=native", "-fno-math-errno"], ["-O3", "-fno-math-errno"])

_loaded: dict = {}
_loaded_path = None  # the file the library was loaded from (tests copy it into fresh caches)
built_flags: list = []  # the compiler flags of the loaded library (tests/test_golden.py reads them)


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags", "Features"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() + platform.machine()


def _compile(cc: str, flags: list[str], out: Path) -> bool:
    """Build the library into ``out``, then write its SHA-256 beside it (``out.sha256``): a
    library is loaded only when its bytes still match (a truncated or replaced file never is)."""
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        r = subprocess.run([cc, *flags, "-shared", "-fPIC", "-o", tmp, str(SOURCE), "-lm"],
                           capture_output=True, timeout=120)
        if r.returncode != 0:
            return False
        os.chmod(tmp, 0o755)  # whatever the umask: writable by this user only
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
        os.replace(tmp, out)  # atomic: a process racing us loads a whole library or none
        _write_private(Path(f"{out}.sha256"), digest)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_private(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _trusted(path: Path) -> bool:
    """A cached library is loaded only if this user owns it and its folder, nobody else can
    write either (loading it runs its code), and its bytes match the digest written after
    its build: a truncated file (SIGBUS when mapped) or a planted one is rebuilt instead."""
    try:
        if not (_private(path.stat()) and _private(path.parent.stat())):
            return False
        digest = Path(f"{path}.sha256")
        return _private(digest.stat()) and digest.read_text().strip() == hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return False


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, f32, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
    lib.mlr_adam_chunk.restype = i32
    lib.mlr_adam_chunk.argtypes = [p, i32, i64, p, p, i64, i64, i64, f32,
                                   p, p, p, p, p, p, p, p,
                                   p, p, p, p, p, p,
                                   f32, f32, f32, f32, f32, i32, f32, f32, p]
    lib.mlr_evaluate.restype = i32
    lib.mlr_evaluate.argtypes = [p, i32, i64, i64, p, f32, p, p, p, p, p, p, p]
    lib.mlr_hvp.restype = i32
    lib.mlr_hvp.argtypes = [p, i32, i64, i64, f32, p, p, p, p, p, p, p, p, p, p]
    lib.mlr_classes.restype = i32
    lib.mlr_eval_block.restype = i32
    lib.mlr_avx512.restype = i32
    return lib


def load(log=None):
    """The loaded kernel library, or None when it cannot be built or loaded here (or is
    switched off). ``log`` hears one line when the library has to be compiled (the first run on
    a machine), and one when the cache cannot be used or the library does not load."""
    if "lib" not in _loaded:
        _loaded["lib"] = _load(log or (lambda msg: None))
    return _loaded["lib"]


def _load(log):
    if os.environ.get("MNIST_LOGREG_NATIVE", "1") == "0":
        return None
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    folder = cache_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(folder.stat()):
            log(f"not using the kernel cache {folder}: other users can write to it (chmod 700 it); "
                f"training runs the TorchScript engine")
            return None
    except OSError as e:
        log(f"no kernel cache at {folder} ({e.strerror}); training runs the TorchScript engine")
        return None
    source = SOURCE.read_bytes()
    for flags in FLAG_SETS:
        key = hashlib.sha256(source + repr((cc, flags)).encode() + _cpu_signature().encode())
        path = folder / f"kernel-{key.hexdigest()[:16]}.so"
        if not _trusted(path):  # missing, damaged, or someone else's: build it (again)
            log(f"compiling the native training kernel once ({cc}, cached in {folder})")
            if not _compile(cc, flags, path) or not _trusted(path):
                continue
        try:
            lib = _bind(ctypes.CDLL(str(path)))
            global _loaded_path, built_flags
            _loaded_path, built_flags = str(path), list(flags)
            return lib
        except (OSError, AttributeError) as e:  # does not load, or lacks a symbol
            why = ("it lacks the kernel's functions (undefined symbol)" if isinstance(e, AttributeError)
                   else str(e).rsplit(": ", 1)[-1][:160])
            log(f"the native kernel {path} does not load: {why}; training runs the TorchScript engine")
            return None
    return None
