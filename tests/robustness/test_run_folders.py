"""Run folders are confined to the runs folder and held by one training process at a time
(issue 14, item 11): a name is one folder name, never a path; a second process that would
train in a folder another one is training in is refused, and the hold ends with the process."""
import signal
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import REPO, SHARED_DATA, listing
from mnist_logreg import ConfigError, TrainConfig, train_run
from mnist_logreg.runfolder import new_run_dir


@settings(max_examples=300, deadline=None)
@given(name=st.text(alphabet=st.sampled_from(list("ab.-_/\\ \x00é")), max_size=8))
def test_a_name_is_a_folder_inside_the_runs_folder_or_an_error(tmp_path_factory, name):
    runs = tmp_path_factory.mktemp("runs")
    try:
        made = new_run_dir(runs, name, "mnist")
    except ConfigError as e:
        assert str(e).startswith("name must be one folder name") or "run folder exists" in str(e)
        assert listing(runs) == []  # nothing made, anywhere below
        return
    assert made.parent == runs and made.name == name and made.is_dir()


@pytest.mark.parametrize("name", ["../../escape", "/tmp/absolute-run", "..", "a/b"])
def test_train_with_an_escaping_name_is_one_line_and_writes_nothing(tmp_path, run_cli, name):
    before = listing(tmp_path)
    code, _, err = run_cli("train", "--dry-run", "--runs-dir", tmp_path / "runs", "--name", name)
    assert code == 2 and err.startswith("error: --name must be one folder name, made inside --runs-dir")
    assert listing(tmp_path) == before
    with pytest.raises(ConfigError, match="^name must be one folder name"):
        train_run(TrainConfig(dry_run=True), runs_dir=tmp_path / "runs", name=name, log=None)


def test_one_process_trains_in_a_run_folder_at_a_time(tmp_path):
    base = [sys.executable, "-m", "mnist_logreg.cli", "train", "--no-report", "--data-dir", str(SHARED_DATA)]
    train_run(TrainConfig(dry_run=True, data_dir=str(SHARED_DATA)), runs_dir=tmp_path, name="r", report=False, log=None)
    first = subprocess.Popen(base + ["--resume", str(tmp_path / "r"), "--epochs", "100000", "--checkpoint-every",
                                     "100000"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        while "Epoch [2]" not in seen:  # training is under way in the folder
            line = first.stdout.readline()
            assert line, first.stderr.read()
            seen += line
        second = subprocess.run(base + ["--resume", str(tmp_path / "r"), "--epochs", "1"], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and second.stderr.count("\n") == 1
        assert "another process is training in this run folder" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the hold ended with the process that held it
    third = subprocess.run(base + ["--resume", str(tmp_path / "r"), "--epochs", "1"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr
