"""Issue 27: what a newcomer's first day hit, each pinned: help text, the runs table, compare's
highlights, runs without a validation split, and the test suite without its data."""
import json
import os
import re
import subprocess
import sys

from helpers import REPO
from mnist_logreg.cli import build_parser

COMMANDS = ("data", "show", "train", "tune", "runs", "compare", "evaluate", "predict", "serve", "export", "report")


def test_every_default_is_said_once(run_cli):
    for command in COMMANDS:
        code, out, _ = run_cli(command, "--help")
        text = " ".join(out.split())
        assert code == 0 and not re.search(r"\(default: [^)]*\) \(default:", text), command
    assert set(COMMANDS) <= set(build_parser()._subparsers._group_actions[0].choices)


def test_runs_and_compare_show_each_setting_once_and_mark_epochs(tmp_path, run_cli, data_dir):
    for name, args in (("a", ["--epochs", "1"]), ("b", ["--epochs", "2", "--dataset", "fashion-mnist"])):
        code, _, err = run_cli("train", "--val-size", "1000", "--train-size", "5000", "--calibration-holdout", "0",
                               "--no-report", "--runs-dir", tmp_path, "--name", name, *args)
        assert code == 0, err
    code, out, _ = run_cli("runs", tmp_path)
    header = out.splitlines()[0].split()
    assert code == 0 and header.count("dataset") == 1 and header.count("epochs") == 1, header
    code, _, err = run_cli("compare", tmp_path / "a", tmp_path / "b", "-o", tmp_path / "c.html")
    page = (tmp_path / "c.html").read_text()
    assert code == 0 and re.search(r"<tr class=differ><th>epochs</th>", page), err


def test_a_run_without_validation_shows_what_exists(tmp_path, run_cli, data_dir):
    code, out, err = run_cli("train", "--dry-run", "--val-size", "0", "--epochs", "2", "--calibration-holdout", "0",
                             "--loss-q", "0.5", "--runs-dir", tmp_path, "--name", "r", "--data-dir", data_dir)
    assert code == 0, err
    assert re.search(r"Epoch \[0\], train_loss: \d", out) and re.search(r"Epoch \[1\], train_loss: \d", out)
    html = (tmp_path / "r" / "report.html").read_text()
    caption = re.search(r'id="curves".*?<figcaption>(.*?)</figcaption>', html, re.S).group(1)
    assert "no validation split" in caption and "robust loss" in caption and "validation set" not in caption
    settings = re.search(r'<table id="config">(.*?)</table>', html, re.S).group(1)
    assert "&quot;" not in settings and str(data_dir) not in settings and "loss_q" in settings
    assert "momentum" not in settings  # at its default (and adam's run has no use for it)


def test_the_suite_without_its_data_stops_in_one_line(tmp_path):
    env = {**os.environ, "MNIST_LOGREG_DATA": str(tmp_path / "nowhere")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_newcomer.py",
                        "-k", "every_default"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 4 and "the tests need the real MNIST and FashionMNIST" in r.stdout + r.stderr
    assert not (tmp_path / "nowhere").exists() and "Traceback" not in r.stdout + r.stderr
    assert json  # (json: imported for readers of the other tests)


def test_typos_get_a_suggestion_and_nan_a_sentence(run_cli):
    code, _, err = run_cli("train", "--learning-rate", "0.1")
    assert code == 2 and "did you mean --lr?" in err and "mnist-logreg train --help" in err
    code, _, err = run_cli("train", "--lr", "nan")
    assert code == 2 and "must be a finite number, got nan" in err


def test_model_from_python_starts_where_train_does(data_dir):
    """MnistModel(seed=0) + fit gives the CLI's weights, run after run (it was unseeded: 0.9272, then 0.9269)."""
    import torch

    from mnist_logreg import MnistModel, TrainConfig, fit, load_dataset, split, train_run
    torch.manual_seed(123)  # whatever the global generator holds
    a, b = MnistModel(seed=0), MnistModel(seed=0)
    assert torch.equal(a.linear.weight, b.linear.weight)
    torch.manual_seed(0)
    assert torch.equal(a.linear.weight, MnistModel().linear.weight)  # what run.py does for --seed 0
    assert callable(fit) and load_dataset and split and TrainConfig and train_run


def test_runs_reads_status_files_bounded_and_prints_no_escapes(tmp_path, run_cli, data_dir):
    """Issue 25 (6, 13, 20): a status.json that is a FIFO, huge or deeply nested, and a folder
    name with a newline and an escape sequence; `runs` lists them all in one table."""
    code, _, err = run_cli("train", "--dry-run", "--no-report", "--runs-dir", tmp_path, "--name", "ok")
    assert code == 0, err
    import shutil
    for name, status in (("fifo", None), ("huge", b" " * (1 << 20) + b'{"status": "complete"}'),
                         ("deep", b"[" * 100_000 + b"]" * 100_000), ("evil\n\x1b[31mforged  complete", None)):
        shutil.copytree(tmp_path / "ok", tmp_path / name)
        (tmp_path / name / "status.json").unlink()
        if name == "fifo":
            os.mkfifo(tmp_path / name / "status.json")
        elif status is not None:
            (tmp_path / name / "status.json").write_bytes(status)
    code, out, err = run_cli("runs", tmp_path)
    assert code == 0, err
    assert "\x1b" not in out and "\nforged" not in out and "evil??[31mforged" in out
    assert len(out.strip().splitlines()) == 2 + 5  # header, rule, five runs


def test_report_and_compare_never_overwrite_what_they_were_not_asked_to(tmp_path, run_cli, data_dir):
    """Issue 25 (19): report --out onto an earlier report needs --force; compare -o never
    writes over a file of a run it compares, even with --force."""
    code, _, err = run_cli("train", "--dry-run", "--no-report", "--runs-dir", tmp_path, "--name", "r")
    assert code == 0, err
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.html").write_text("mine")
    code, _, err = run_cli("report", tmp_path / "r", "--out", tmp_path / "out")
    assert code == 2 and "add --force" in err and (tmp_path / "out" / "report.html").read_text() == "mine"
    status = (tmp_path / "r" / "status.json").read_text()
    code, _, err = run_cli("compare", tmp_path / "r", "-o", tmp_path / "r" / "status.json", "--force")
    assert code == 2 and (tmp_path / "r" / "status.json").read_text() == status, err


def test_preprocess_is_one_import_away():
    import numpy as np

    from mnist_logreg import preprocess
    from mnist_logreg.preprocess import preprocess as the_function
    page = np.full((300, 200), 255, np.uint8)
    page[60:240, 90:110] = 0
    assert np.array_equal(preprocess(page), the_function(page))


def test_library_errors_name_settings_and_the_cli_names_flags(tmp_path, run_cli, data_dir):
    """Issue 24 (4): messages that spelled CLI flags inside the library ("--lr", "--name",
    "--resume", "--data-dir") name the setting; the command line shows the flag."""
    import pytest

    from mnist_logreg import TrainConfig, TrainingDiverged, train_run
    with pytest.raises(TrainingDiverged) as e:
        train_run(TrainConfig(optimizer="sgd", lr=1e6, epochs=2, dry_run=True), tmp_path, "x", log=None)
    assert "e.g. lr 100000" in str(e.value) and "--lr" not in str(e.value)
    code, _, err = run_cli("train", "--optimizer", "sgd", "--lr", "1e6", "--epochs", "2", "--dry-run",
                           "--runs-dir", tmp_path, "--name", "y")
    assert code == 2 and "e.g. --lr 100000" in err
    train_run(TrainConfig(dry_run=True), tmp_path, "z", report=False, log=None)
    from mnist_logreg import ConfigError
    with pytest.raises(ConfigError, match=r"continue it with resume .*choose another name\)"):
        train_run(TrainConfig(dry_run=True), tmp_path, "z", report=False, log=None)
    code, _, err = run_cli("train", "--dry-run", "--runs-dir", tmp_path, "--name", "z")
    assert code == 2 and "continue it with --resume" in err and "another --name" in err
