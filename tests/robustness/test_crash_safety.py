"""Crash-safe training: SIGKILL at any moment leaves a readable checkpoint; --resume reaches the
same weights as an uninterrupted run; Ctrl-C saves and says how to resume; a failing disk
leaves the previous checkpoint intact; divergence stops with the epoch and keeps the last
good checkpoint."""
import errno
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import REPO, SHARED_DATA
from mnist_logreg import load_checkpoint

TRAIN = [sys.executable, "-m", "mnist_logreg.cli", "train", "--no-report", "--data-dir", str(SHARED_DATA),
         "--seed", "3"]


def _train(*args, **kw):
    return subprocess.run(TRAIN + [str(a) for a in args], capture_output=True, text=True, cwd=REPO, timeout=300, **kw)


def _wait_for_epoch(path, epoch, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.exists():
            try:
                if load_checkpoint(path).epoch >= epoch:
                    return
            except Exception:
                pass  # never expected: the rename is atomic; the assertion below would say so
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.stderr.read()}")
        time.sleep(0.005)
    pytest.fail("no checkpoint appeared")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    r = _train("--epochs", 8, "--runs-dir", runs, "--name", "full")
    assert r.returncode == 0, r.stderr
    return load_checkpoint(runs / "full")


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, uninterrupted):
    proc = subprocess.Popen(TRAIN + ["--epochs", "8", "--runs-dir", str(tmp_path), "--name", "k"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    ckpt = tmp_path / "k" / "checkpoint.pt"
    _wait_for_epoch(ckpt, 2, proc)
    time.sleep(0.03)  # somewhere inside a later epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    survived = load_checkpoint(ckpt)  # readable, whole
    assert 2 <= survived.epoch < 8
    r = _train("--resume", tmp_path / "k", "--epochs", 8 - survived.epoch)
    assert r.returncode == 0, r.stderr
    resumed = load_checkpoint(ckpt)
    assert resumed.epoch == 8
    assert torch.equal(resumed.model.linear.weight, uninterrupted.model.linear.weight)
    assert torch.equal(resumed.model.linear.bias, uninterrupted.model.linear.bias)
    assert [h["epoch"] for h in resumed.history] == list(range(9))


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path):
    # SIGINT as a terminal leaves it: a shell's background job (nohup ... &) ignores SIGINT, its
    # children inherit that, and Python then installs no KeyboardInterrupt (a plain
    # `python -c ...` started so exits 0 at its 200th epoch)
    proc = subprocess.Popen(TRAIN + ["--epochs", "200", "--checkpoint-every", "1000", "--runs-dir", str(tmp_path),
                                     "--name", "c"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # wait for training to be under way (the epoch lines), then press Ctrl-C
    seen = ""
    while "Epoch [3]" not in seen:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        seen += line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "continue with: mnist-logreg train --resume" in err and "Traceback" not in err
    ckpt = load_checkpoint(tmp_path / "c")
    assert ckpt.epoch >= 3  # saved on the way out although --checkpoint-every was never reached
    assert [h["epoch"] for h in ckpt.history] == list(range(ckpt.epoch + 1))


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, run_cli, mnist_train):
    code, _, err = run_cli("train", "--dry-run", "--no-report", "--runs-dir", tmp_path, "--name", "d")
    assert code == 0, err
    before = (tmp_path / "d" / "checkpoint.pt").read_bytes()

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    code, out, err = run_cli("train", "--resume", tmp_path / "d", "--epochs", 2, "--no-report")
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "d" / "checkpoint.pt").read_bytes() == before
    assert not [p for p in os.listdir(tmp_path / "d") if p.endswith(".tmp")]


def test_unwritable_runs_dir_is_a_clear_error(tmp_path, run_cli):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run_cli("train", "--dry-run", "--runs-dir", blocker / "runs")
    assert code == 2 and err.startswith("error: ") and "cannot create the runs folder" in err


def test_divergence_stops_with_epoch_and_keeps_last_good(tmp_path):
    r = _train("--optimizer", "sgd", "--lr", "1e38", "--epochs", 5, "--runs-dir", tmp_path, "--name", "nan")
    assert r.returncode == 2
    assert "training diverged in epoch 1" in r.stderr and "smaller learning rate" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "nan" / "checkpoint.pt").exists()  # no good epoch to keep: nothing claimed


def test_divergence_after_good_epochs_keeps_them(tmp_path, run_cli, monkeypatch):
    import mnist_logreg.train as T
    real_fit = T.fit

    def fit_that_blows_up_after_epoch_2(model, *a, on_epoch=None, **k):
        def hook(epoch, row, opt):
            on_epoch(epoch, row, opt)  # the CLI writes its checkpoint first
            if epoch == 2:
                with torch.no_grad():
                    model.linear.weight.fill_(float("inf"))
        return real_fit(model, *a, on_epoch=hook, **k)

    monkeypatch.setattr(T, "fit", fit_that_blows_up_after_epoch_2)
    code, _, err = run_cli("train", "--epochs", 5, "--val-size", 1000, "--runs-dir", tmp_path, "--name", "g",
                           "--no-report")
    assert code == 2 and "training diverged in epoch 3" in err
    assert "the last good checkpoint (epoch 2) is kept" in err
    kept = load_checkpoint(tmp_path / "g")
    assert kept.epoch == 2 and torch.isfinite(kept.model.linear.weight).all()


def test_two_runs_never_share_a_folder(tmp_path):
    procs = [subprocess.Popen(TRAIN + ["--dry-run", "--runs-dir", str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    folders = sorted(os.listdir(tmp_path))  # NAME and NAME-2 when both started in the same second
    assert len(folders) == 2 and all((tmp_path / f / "checkpoint.pt").is_file() for f in folders)
    r = _train("--dry-run", "--runs-dir", tmp_path, "--name", folders[0])
    assert r.returncode == 2 and "run folder exists" in r.stderr


def test_same_timestamp_gets_a_suffix(tmp_path, monkeypatch):
    import datetime as dt

    from mnist_logreg import run

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(dt, "datetime", Frozen)
    a = run.new_run_dir(tmp_path, None, "mnist")
    b = run.new_run_dir(tmp_path, None, "mnist")
    assert (a.name, b.name) == ("mnist-20260102-030405", "mnist-20260102-030405-2")
