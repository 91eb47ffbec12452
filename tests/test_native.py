"""The native kernel's build: compiled once into a cache keyed by source, compiler and CPU."""
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
