"""Shared fixtures: the real data in ../shared/data (read-only), and a helper that runs the
CLI in-process and captures its output. Plain helpers live in helpers.py."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import SHARED_DATA  # noqa: E402


def pytest_configure(config):
    """The suite reads the real datasets and never downloads: without them it stops at once, in
    one line (it said "assert 2 == 0" per test, and tried to download beside the repo)."""
    missing = [d for d in ("MNIST", "FashionMNIST") if not (SHARED_DATA / d / "raw").is_dir()]
    if missing and not config.getoption("collectonly"):
        pytest.exit(f"the tests need the real {' and '.join(missing)} in {SHARED_DATA}/<name>/raw/: set "
                    f"MNIST_LOGREG_DATA to the folder that holds them (README: Data); nothing was run", returncode=4)


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


#: seconds a file takes on this 2-core machine (pytest --durations, 2026-11-29): the longest are
#: handed to the two workers first, so that no long file starts last and runs alone at the end
#: (with --dist loadfile --no-loadscope-reorder, as the Makefile runs it, the order of the items
#: is the order files are handed out; xdist's default orders files by their number of tests)
LONG_FILES = {"test_web.py": 27, "test_bench_smoke.py": 21, "test_notebook.py": 15, "test_solver.py": 14,
              "test_crash_safety.py": 14, "test_native.py": 13, "test_run.py": 13, "test_fuzz.py": 12,
              "test_serve.py": 11, "test_distill.py": 7, "test_sklearn.py": 7, "test_server_abuse.py": 7,
              "test_argv.py": 6, "test_experiments.py": 6}


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: -LONG_FILES.get(item.path.name, 0))  # stable: the rest keep their order


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright, one per test module."""
    from helpers import CHROMIUM, CHROMIUM_ARGS
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
