"""The API reference's examples run as doctests: in an empty folder, with the real data."""
import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _doctest_env(doctest_namespace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if not os.environ.get("MNIST_LOGREG_DATA"):
        monkeypatch.setenv("MNIST_LOGREG_DATA", str(SHARED))
