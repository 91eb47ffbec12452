"""Python 3.10, which pyproject.toml declares (``requires-python = ">=3.10"``), actually run.

Torch for 3.10 is not on this machine (a CPU build of 2.13.0 exists here for 3.11 only; any other
is a multi-GB CUDA download), so 3.10 runs what needs no torch: every module must compile
(no 3.11-only syntax), and the torch-free paths run: settings files (``tomllib`` is 3.11+;
``tomli`` replaces it, the dependency pyproject declares for 3.10), ``--help`` and
``train --print-config``. Skipped, saying why, where no Python 3.10 is found.
"""
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _python310():
    for candidate in (shutil.which("python3.10"), str(Path.home() / ".pyenv/versions/3.10.13/bin/python3.10")):
        if candidate and Path(candidate).exists():
            try:
                out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                                     capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out.stdout.strip() == "(3, 10)":
                return candidate
    return None


@pytest.fixture(scope="module")
def py310(tmp_path_factory):
    """Python 3.10 with tomli, the one dependency the torch-free paths need, and nothing else:
    tomli is installed into a folder of its own, and the interpreter runs with ``-S`` (no
    site-packages at all). A virtual environment did the same in 3.2 s (its pip, installed by
    ensurepip, was most of it); this takes 0.7 s."""
    exe = _python310()
    if exe is None:
        pytest.skip("no Python 3.10 on this machine (python3.10 or pyenv's 3.10.13)")
    site = tmp_path_factory.mktemp("py310") / "site"
    got = subprocess.run([exe, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(site),
                          "tomli>=2"], capture_output=True, text=True, timeout=300)
    if got.returncode != 0:
        pytest.skip(f"pip could not install tomli for Python 3.10: {got.stderr.strip()[-200:]}")
    return exe, site


def run(py310, *args, cache=None):
    python, site = py310
    env = {"PYTHONPATH": f"{SRC}:{site}", "PATH": "/usr/bin:/bin"}
    if cache is not None:  # compiled files go there, not beside the sources
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return subprocess.run([python, "-S", *args], capture_output=True, text=True, timeout=120, env=env)


def test_every_module_compiles_on_python_3_10(py310, tmp_path):
    r = run(py310, "-m", "compileall", "-q", str(SRC / "mnist_logreg"), cache=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_settings_files_and_the_torch_free_commands_run_on_python_3_10(py310, tmp_path):
    script = ("import sys; from mnist_logreg.config import TrainConfig; "
              "c = TrainConfig.from_toml(TrainConfig(lr=0.01, epochs=3).to_toml()); "
              "assert (c.lr, c.epochs) == (0.01, 3), c; print(sys.version_info[:2], 'torch' in sys.modules)")
    r = run(py310, "-c", script)
    assert r.returncode == 0 and r.stdout.strip() == "(3, 10) False", r.stdout + r.stderr
    (tmp_path / "bad.toml").write_text("lr = [")
    r = run(py310, "-c", "from mnist_logreg.config import TrainConfig; "
                         f"TrainConfig.from_toml(open({str(tmp_path / 'bad.toml')!r}).read())")
    assert "not valid TOML" in r.stderr  # tomli's error, translated as tomllib's is
    r = run(py310, "-m", "mnist_logreg.cli", "train", "--print-config", "--lr", "0.02")
    assert r.returncode == 0 and "lr = 0.02" in r.stdout, r.stdout + r.stderr
