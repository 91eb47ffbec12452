"""Shared fixtures: the real data in ../shared/data (read-only), small generated IDX files,
and a helper that runs the CLI in-process and captures its output."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MNIST_LOGREG_DATA") or (REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.fail(f"real MNIST not found in {SHARED_DATA}; set MNIST_LOGREG_DATA")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path, request):
    """Every test runs in its own empty working directory with the shared data configured."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_LOGREG_DATA", str(SHARED_DATA))
    monkeypatch.delenv("MNIST_LOGREG_MIRRORS", raising=False)


@pytest.fixture(scope="session")
def mnist_train(data_dir):
    from mnist_logreg import load_dataset
    return load_dataset("mnist", "train", data_dir, download=False)


@pytest.fixture(scope="session")
def mnist_test(data_dir):
    from mnist_logreg import load_dataset
    return load_dataset("mnist", "test", data_dir, download=False)


def make_idx_dataset(folder: Path, n_train=64, n_test=32, seed=0, gz=True, shape=(28, 28)) -> Path:
    """Write a small, valid four-file IDX dataset (random blobs, labels 0..9) into ``folder``."""
    from mnist_logreg.data import write_idx

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 256, (n, *shape)).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return folder


@pytest.fixture
def run_cli(capsys):
    """Run ``mnist-logreg ARGS`` in-process; return (exit code, stdout, stderr)."""
    from mnist_logreg.cli import main

    def run(*args):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse errors
            code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def run_subprocess(*args, env=None, timeout=300, **kw):
    """Run the installed CLI as a real process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "mnist_logreg.cli", *map(str, args)],
                          capture_output=True, text=True, env=full_env, timeout=timeout, **kw)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
