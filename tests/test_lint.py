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


def test_the_api_reference_shows_the_real_signatures():
    """docs/api.md's headings of the functions it documents match their signatures (they drifted:
    solve, build_report)."""
    import inspect
    import re

    from mnist_logreg.report import build_report
    from mnist_logreg.solver import solve
    text = (REPO / "docs" / "api.md").read_text()
    for fn in (solve, build_report):
        heading = re.search(rf"^### `{fn.__name__}\((.*?)\)", text, re.M).group(1)
        documented = [p.strip().split("=")[0].strip() for p in heading.split(",") if p.strip() not in ("*",)]
        real = [n for n in inspect.signature(fn).parameters]
        assert documented == real, (fn.__name__, documented, real)


def test_the_public_api_is_a_literal_list():
    import ast

    import mnist_logreg
    tree = ast.parse((REPO / "src" / "mnist_logreg" / "__init__.py").read_text())
    literal = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                   and any(getattr(t, "id", None) == "__all__" for t in n.targets))
    assert literal == sorted(mnist_logreg._EXPORTS) + ["__version__"] == mnist_logreg.__all__


@pytest.mark.parametrize("argv", [["--help"], ["data"], ["train", "--print-config"], ["train", "--help"]])
def test_commands_that_need_no_model_do_not_import_torch(argv):
    """Issue 24: main() imported train (and torch, about 1 s) for every command to catch one
    exception; `data` and `train --print-config` now start in a fraction of that."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "mnist_logreg.cli", *argv], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported, argv


def test_runs_reads_honest_checkpoints_without_torch(tmp_path):
    """Issue 24: `runs` read every checkpoint with torch.load (1 s of import for a table);
    checkpoint.read_fields reads their fields without it, checked as load_checkpoint checks them."""
    from mnist_logreg import MnistModel, TrainConfig, save

    for name, acc in (("a", 0.91), ("b", 0.92)):
        (tmp_path / "runs" / name).mkdir(parents=True)
        save(MnistModel(), tmp_path / "runs" / name / "checkpoint.pt", epoch=3, config=TrainConfig(lr=acc / 100).to_dict(),
             history=[{"epoch": 3, "val_acc": acc}], metrics={"val_acc": acc, "test_acc": acc - 0.01})
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "mnist_logreg.cli", "runs", tmp_path / "runs"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines()[2:]}
    assert rows["a"][2:6] == ["complete", "3", "0.9100", "0.9000"] and rows["b"][-1] == "0.0092", r.stdout
