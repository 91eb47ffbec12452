"""Shared fixtures: the real data in ../shared/data (read-only), and a helper that runs the
CLI in-process and captures its output. Plain helpers live in helpers.py."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# one torch thread per test process, as .ci/run sets it: `make test` runs a worker per core, and
# torch's default (a thread per core in each worker) made the suite 1.6x slower on 2 cores
# (243 s against 150 s, the same code and machine); a test that spawns a process passes it on
os.environ.setdefault("OMP_NUM_THREADS", "1")
# the report's figures are drawn in the process that asks for them, not in plots.Painter's helper:
# the helper is there to use an idle second core, and here every core runs a worker; each helper
# started python and matplotlib again (about 35 of them, 1 s of CPU each; error tests killed theirs
# unused). test_report.py starts the helper itself and checks that it draws the same files.
os.environ.setdefault("MNIST_LOGREG_PAINTER", "0")
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


@pytest.fixture(scope="session")
def _dry_run_source(tmp_path_factory, data_dir):
    """`train --dry-run --no-report` (one epoch on 2,000 images, calibrated), trained once per
    test process: eight files read such a run, and each trained its own."""
    from mnist_logreg import TrainConfig, train_run
    return train_run(TrainConfig(dry_run=True, data_dir=str(data_dir)), runs_dir=tmp_path_factory.mktemp("dry"),
                     name="r", report=False, log=None).path


@pytest.fixture(scope="module")
def dry_run_dir(_dry_run_source, tmp_path_factory):
    """The module's own copy of that run folder, ``<runs>/r`` (its tests may resume, damage or
    export it without touching another module's)."""
    return _own_copy(_dry_run_source, tmp_path_factory)


@pytest.fixture(scope="session")
def _notebook_source(tmp_path_factory, data_dir):
    """The notebook's recipe for 5 epochs (calibrated on its validation split), trained once
    per test process for the four files that read it."""
    from mnist_logreg import TrainConfig, train_run
    return train_run(TrainConfig(epochs=5, data_dir=str(data_dir)), tmp_path_factory.mktemp("five"), "r",
                     report=False, log=None).path


@pytest.fixture(scope="module")
def notebook_run(_notebook_source, tmp_path_factory):
    """The module's own copy of that run: a :class:`Run` (its model is ``fit`` for 5 epochs on
    the 50,000 training images from ``torch.manual_seed(0)``, bit for bit)."""
    from mnist_logreg import Run
    return Run.open(_own_copy(_notebook_source, tmp_path_factory))


def _own_copy(run_dir: Path, tmp_path_factory) -> Path:
    """A copy of ``run_dir`` as ``<a fresh runs folder>/r``."""
    import shutil
    dest = tmp_path_factory.mktemp("runs") / "r"
    shutil.copytree(run_dir, dest)
    return dest


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


#: seconds each file took, measured (``make durations`` rewrites it from a whole run): the longest
#: files are handed to the workers first, so that no long file starts last and runs alone at the
#: end (with --dist loadfile --no-loadscope-reorder, as the Makefile runs it, the order of the
#: items is the order files are handed out). It was a hand-kept table; now it is a measurement.
DURATIONS = Path(__file__).with_name("durations.json")


def pytest_addoption(parser):
    parser.addoption("--store-durations", action="store_true",
                     help="write each file's total seconds to tests/durations.json (make durations)")


def pytest_collection_modifyitems(items):
    import json
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    key = lambda item: item.nodeid.split("::")[0]  # noqa: E731
    items.sort(key=lambda item: -seconds.get(key(item), 0))  # stable: the rest keep their order


_measured: dict = {}


def pytest_runtest_logreport(report):
    """Sum each file's setup, call and teardown seconds (on the controller, from every worker)."""
    path = report.nodeid.split("::")[0]
    _measured[path] = _measured.get(path, 0.0) + report.duration


def pytest_sessionfinish(session):
    import json
    config = session.config
    if config.getoption("store_durations") and not hasattr(config, "workerinput"):
        table = {k: round(v, 1) for k, v in sorted(_measured.items(), key=lambda kv: -kv[1]) if v >= 0.5}
        DURATIONS.write_text(json.dumps(table, indent=1) + "\n")


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
