"""The kernel cache (issue 14, item 2): a library is loaded, which runs its code, only when it
is ours, whole, in a folder no one else can write, and has the kernel's functions; anything
else is rebuilt, or not used, with one line."""
import os
from pathlib import Path

import pytest

from mnist_logreg.engines import _native

pytestmark = pytest.mark.skipif(_native.load() is None, reason="no C compiler here")


def test_a_library_others_could_write_is_rebuilt_not_loaded(tmp_path, monkeypatch):
    """Loading a library runs its code: a cached one that others could have replaced is
    rebuilt first, and in a folder others can write nothing is loaded at all."""
    import os

    cache = _prebuilt(tmp_path, monkeypatch)
    assert _native.load() is not None
    built = next(cache.glob("kernel-*.so"))
    assert built.stat().st_mode & 0o777 == 0o755
    planted = tmp_path / "planted"
    planted.write_bytes(b"planted")  # not a library: loading it would fail
    planted.chmod(0o666)
    os.replace(planted, built)  # a new file (the loaded library's pages stay mapped)
    monkeypatch.setattr(_native, "_loaded", {})
    assert _native.load() is not None and built.stat().st_mode & 0o777 == 0o755
    assert built.read_bytes()[:4] == b"\x7fELF"  # rebuilt by us
    cache.chmod(0o777)
    monkeypatch.setattr(_native, "_loaded", {})
    before = sorted(cache.iterdir())
    assert _native.load() is None
    assert sorted(cache.iterdir()) == before  # nothing compiled into a folder others can write


def _fresh(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(cache))
    monkeypatch.setattr(_native, "_loaded", {})
    # these tests are about when a library is (re)built and loaded, not about its code: rebuild
    # at -O0 (0.5 s instead of 4), into the file the real flags name
    real = _native._compile
    monkeypatch.setattr(_native, "_compile", lambda cc, flags, out: real(cc, ["-O0"], out))
    return cache


def _prebuilt(tmp_path, monkeypatch):
    """A fresh cache holding the library this process already built (and its digest), as a
    previous run would have left it: no compile needed to set the scene."""
    import shutil

    cache = _fresh(tmp_path, monkeypatch)
    cache.mkdir(mode=0o700)
    built = Path(_native._loaded_path)
    for f in (built, Path(f"{built}.sha256")):
        shutil.copy2(f, cache / f.name)
    return cache


def test_a_truncated_library_is_rebuilt_not_mapped(tmp_path, monkeypatch):
    """Same owner, right modes, half the bytes: mapping it would die of SIGBUS; its digest
    no longer matches, so it is rebuilt."""
    cache = _prebuilt(tmp_path, monkeypatch)
    built = next(cache.glob("kernel-*.so"))
    whole = built.read_bytes()
    half = tmp_path / "half.so"
    half.write_bytes(whole[:len(whole) // 2])
    half.chmod(0o755)
    os.replace(half, built)  # a new file: this process's mapping of the old one stays whole
    monkeypatch.setattr(_native, "_loaded", {})
    lines = []
    assert _native.load(lines.append) is not None
    assert len(built.read_bytes()) == len(whole) and lines[0].startswith("compiling the native training kernel")


@pytest.mark.parametrize("mode", [0o770, 0o777])
def test_a_cache_folder_others_can_write_is_not_used(tmp_path, monkeypatch, mode):
    cache = _fresh(tmp_path, monkeypatch)
    cache.mkdir()
    cache.chmod(mode)
    lines = []
    assert _native.load(lines.append) is None
    assert list(cache.iterdir()) == [] and len(lines) == 1 and "other users can write to it" in lines[0]


def test_a_library_without_the_kernels_symbols_falls_back_with_one_line(tmp_path, monkeypatch):
    """A library that loads but is not the kernel (here: what a broken compiler produced)."""
    import shutil
    import subprocess

    _fresh(tmp_path, monkeypatch)
    (tmp_path / "other.c").write_text("int something_else(void) { return 1; }\n")
    cc = shutil.which("cc") or shutil.which("gcc")

    def compile_other(_cc, _flags, out):
        subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(tmp_path / "other.c")], check=True)
        out.chmod(0o755)
        _native._write_private(type(out)(f"{out}.sha256"), __import__("hashlib").sha256(out.read_bytes()).hexdigest())
        return True

    monkeypatch.setattr(_native, "_compile", compile_other)
    lines = []
    assert _native.load(lines.append) is None
    assert len(lines) == 2 and "does not load" in lines[1] and "undefined symbol" in lines[1]
