"""The check gate (issue 24): ruff's error rules (pyflakes: undefined and unused names; pycodestyle's
E4/E7/E9) over the package, the benchmarks and the tests, as configured in pyproject.toml."""
import subprocess
import sys

import pytest

from helpers import REPO


def test_ruff_finds_nothing():
    pytest.importorskip("ruff")
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "src", "bench", "tests"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
