"""The native kernel's build: compiled once into a cache keyed by source, compiler and CPU."""

import pytest

from mnist_logreg.engines import _native

pytestmark = pytest.mark.skipif(_native.load() is None, reason="no C compiler here")


def test_builds_into_its_cache_once_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_native, "_loaded", {})
    real = _native._compile  # where and when it builds is tested here, not the code: -O0 is 8x quicker
    monkeypatch.setattr(_native, "_compile", lambda cc, flags, out: real(cc, ["-O0"], out))
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
from mnist_logreg import MnistModel, fit, load_dataset
from mnist_logreg.engines import _native
# -O0: every load and store is instrumented (none optimised away), and it builds in 0.6 s where
# -O1 took 3.5 s (the whole test: 4.6 s against 8.1 s); -march=native: the vector paths CI runs
_native.FLAG_SETS = (["-O0", "-g", "-march=native", "-fno-math-errno", "-fsanitize=address",
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


def test_auto_takes_the_kernel_only_where_it_is_the_fast_engine(monkeypatch):
    """engine auto and Newton's Hessian products use the C kernel where it was built with
    AVX-512 (its blocks' size); elsewhere TorchScript and torch, which measured faster there."""
    import torch

    from mnist_logreg import MnistModel, fit
    from mnist_logreg.engines import native_is_fast, native_lib
    from mnist_logreg.solver import _native_hvp, _Problem

    if native_lib() is None:
        pytest.skip("no C compiler")
    x, y = torch.rand(300, 784), torch.randint(0, 10, (300,))
    expected = "native" if native_is_fast() else "torchscript"
    assert fit(MnistModel(), (x, y), None, epochs=1, log=None).engine == expected
    prob = _Problem(x.double(), y, 1e-3)
    assert (_native_hvp(prob, x.double()) is not None) == native_is_fast()
    monkeypatch.setenv("MNIST_LOGREG_SOLVER_NATIVE", "1")
    assert _native_hvp(prob, x.double()) is not None
    monkeypatch.setenv("MNIST_LOGREG_SOLVER_NATIVE", "0")
    assert _native_hvp(prob, x.double()) is None
