"""The native kernel's build: compiled once into a cache keyed by source, compiler and CPU."""
import os
from pathlib import Path

import pytest

from mnist_logreg import _native

pytestmark = pytest.mark.skipif(_native.load() is None, reason="no C compiler here")


def test_builds_into_its_cache_once_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_native, "_loaded", {})
    lib = _native.load()
    assert lib is not None and lib.mlr_classes() == 10
    built = list((tmp_path / "cache").glob("kernel-*.so"))
    assert len(built) == 1 and not list((tmp_path / "cache").glob("*.tmp*"))
    mtime = built[0].stat().st_mtime_ns
    monkeypatch.setattr(_native, "_loaded", {})
    assert _native.load() is not None
    assert built[0].stat().st_mtime_ns == mtime  # loaded from the cache, not rebuilt


def test_no_compiler_or_switched_off_means_none(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_native, "_loaded", {})
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert _native.load() is None
    assert not list((tmp_path / "cache").glob("*"))  # no half-written library left behind
    monkeypatch.setattr(_native, "_loaded", {})
    monkeypatch.delenv("CC")
    monkeypatch.setenv("MNIST_LOGREG_NATIVE", "0")
    assert _native.load() is None


ASAN_SCRIPT = r"""
import torch
from mnist_logreg import _native, MnistModel, fit, load_dataset
_native.FLAG_SETS = (["-O1", "-g", "-march=native", "-fno-math-errno", "-fsanitize=address",
                      "-fno-omit-frame-pointer"],)
assert _native.load() is not None
full = load_dataset("mnist", "train", None)
for n, bs, transform, cap, q in [(1001, 64, "none", None, 0.0), (333, 3, "none", 2.3, 0.5), (77, 1, "none", None, 0.0),
                                 (513, 5, "deskew", 2.3, 0.0), (130, 128, "none", None, 0.7)]:
    sub, val = full.subset(slice(0, n)), full.subset(slice(n, n + 101))
    weights = []
    for engine in ("native", "python"):
        torch.manual_seed(0)
        m = MnistModel(transform=transform)
        fit(m, sub, val, epochs=1, batch_size=bs, seed=1, engine=engine, loss_cap=cap, loss_q=q, log=None)
        weights.append(m.linear.weight.detach().clone())
    assert torch.allclose(weights[0], weights[1], atol=1e-6, rtol=1e-5), (n, bs, transform)
from mnist_logreg.solver import solve  # the Hessian products: uint8 rows, float rows, short last blocks
for n, transform in [(333, "none"), (77, "deskew"), (129, "none")]:
    assert solve(full.subset(slice(0, n)), 1e-2, tol=1e-4, transform=transform, log=None).converged
print("clean")
"""


def test_kernel_is_clean_under_address_sanitizer(tmp_path):
    """Every read and write of the C kernel stays in bounds: odd batch sizes (1, 3, 5: the
    one-image paths), short last batches, float features, validation, the robust losses'
    paths, the solver's Hessian products; AddressSanitizer aborts
    the process on the first stray access."""
    import os
    import shutil
    import subprocess
    import sys

    cc = shutil.which("gcc")
    libasan = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip() if cc else ""
    if not libasan or not os.path.isabs(libasan):
        pytest.skip("gcc's AddressSanitizer runtime is not installed")
    env = dict(os.environ, LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0", CC=cc,
               MNIST_LOGREG_CACHE=str(tmp_path / "asan"))
    r = subprocess.run([sys.executable, "-c", ASAN_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("clean"), r.stderr[-3000:]
    assert "AddressSanitizer" not in r.stderr


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
