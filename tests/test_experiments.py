"""Many runs: `runs` over folders of every status, `compare`, TensorBoard event files read back
by tensorboard's own reader, and an Optuna study shared by two processes through SQLite."""
import base64
import io
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from PIL import Image

from helpers import REPO, SHARED_DATA
from mnist_logreg import TrainConfig, train_run
from mnist_logreg.errors import TrainingDiverged, TrainingInterrupted
from mnist_logreg.runfolder import locked

# 1,000 validation images: the calibration is fitted on them (on a 59,000-image split it took 3.3 s a run);
# 5,000 training images: the likeness model is fitted on them (on 20,000 of 59,000 it took 1 s a run)
SMALL = TrainConfig(data_dir=str(SHARED_DATA), val_size=1_000, train_size=5_000, epochs=3, no_download=True)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """A folder with a run of every status, a folder that is not a run, and a broken checkpoint."""
    import mnist_logreg.train as T

    root = tmp_path_factory.mktemp("runs")
    train_run(SMALL, root, "done", report=False, log=None)
    train_run(SMALL.replace(lr=1e-2, epochs=2), root, "fast", report=False, log=None)

    def stop(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt
    with pytest.raises(TrainingInterrupted):
        train_run(SMALL, root, "stopped", report=False, log=None, on_epoch=stop)

    real_fit = T.fit

    def blow_up(model, *a, on_epoch=None, **k):
        def hook(epoch, row, opt):
            on_epoch(epoch, row, opt)
            if epoch == 1:
                with torch.no_grad():
                    model.linear.weight.fill_(float("inf"))
        return real_fit(model, *a, on_epoch=hook, **k)
    T.fit = blow_up
    try:
        with pytest.raises(TrainingDiverged):
            train_run(SMALL, root, "nan", report=False, log=None)
    finally:
        T.fit = real_fit
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("not a run")
    (root / "broken").mkdir()
    (root / "broken" / "checkpoint.pt").write_bytes(b"\x00garbage")
    (root / "busy").mkdir()
    (root / "busy" / "config.toml").write_text(SMALL.to_toml())
    return root


def _rows(table: str) -> dict:
    lines = table.splitlines()
    header = lines[0].split()
    return {cells[0]: dict(zip(header, cells)) for cells in (ln.split() for ln in lines[2:]) if cells[0] in
            ("done", "fast", "stopped", "nan", "broken", "busy")}


def test_runs_lists_every_status(runs_dir, run_cli):
    with locked(runs_dir / "busy"):  # a process training there now
        code, out, err = run_cli("runs", runs_dir)
    assert code == 0 and err == "" and "Traceback" not in out
    rows = _rows(out)
    assert {k: v["status"] for k, v in rows.items()} == {
        "done": "complete", "fast": "complete", "stopped": "interrupted", "nan": "diverged",
        "broken": "unreadable", "busy": "running"}
    assert "notes" not in out                      # a folder that is not a run is no row
    assert rows["stopped"]["epochs"] == "2" and rows["nan"]["epochs"] == "1" and rows["done"]["epochs"] == "3"
    assert "lr" in out.splitlines()[0] and "seed" not in out.splitlines()[0]  # only the settings that differ
    assert re.search(r"broken: .*checkpoint", out)  # the reason it is unreadable, in one line


def test_runs_json_sort_and_errors(runs_dir, run_cli):
    code, out, _ = run_cli("runs", runs_dir, "--json", "--sort", "val_acc")
    listed = json.loads(out)
    accs = [r["val_acc"] for r in listed if r["val_acc"] is not None]
    assert code == 0 and accs == sorted(accs, reverse=True) and listed[0]["config"]["lr"] in (1e-3, 1e-2)
    assert listed[-1]["val_acc"] is None           # runs without a value come last
    code, _, err = run_cli("runs", runs_dir, "--sort", "colour")
    assert code == 2 and err.startswith("error: cannot sort by 'colour'")
    code, _, err = run_cli("runs", runs_dir / "missing")
    assert code == 2 and "no such folder of runs" in err


def test_compare_writes_a_page_of_real_figures(runs_dir, run_cli, tmp_path):
    out = tmp_path / "cmp.html"
    code, stdout, err = run_cli("compare", runs_dir / "done", runs_dir / "fast", runs_dir / "stopped", "-o", out)
    assert code == 0, err
    page = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3
    for b64 in images:
        img = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert img.format == "PNG" and img.size[0] >= 400 and len(set(img.convert("L").tobytes())) > 10
    assert page.count("<tr class=differ><th>lr</th>") == 1 and "<td>0.01</td>" in page
    code, _, err = run_cli("compare", runs_dir / "done", "-o", out)
    assert code == 2 and "exists" in err          # --force to replace it
    code, _, err = run_cli("compare", runs_dir / "done", runs_dir / "broken", "-o", tmp_path / "b.html")
    assert code == 2 and "broken" in err and not (tmp_path / "b.html").exists()


def test_tensorboard_events_read_back(tmp_path, run_cli):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, _, err = run_cli("train", "--data-dir", SHARED_DATA, "--val-size", 1000, "--train-size", 5000, "--epochs", 3,
                           "--no-report", "--runs-dir", tmp_path, "--name", "tb", "--tensorboard")
    assert code == 0, err
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard"), size_guidance={"images": 0}).Reload()
    for tag in ("loss/train", "loss/val", "accuracy/val", "lr"):
        assert [e.step for e in events.Scalars(tag)] == [1, 2, 3], tag
    history = json.loads((tmp_path / "tb" / "history.json").read_text())
    assert [e.value for e in events.Scalars("accuracy/val")] == pytest.approx([r["val_acc"] for r in history[1:]])
    (weights,) = events.Images("weights")   # the ten 28x28 templates, as one grid of 8 x 2
    grid = Image.open(io.BytesIO(weights.encoded_image_string))
    assert weights.step == 3 and grid.size == (8 * 28, 2 * 28) and len(set(grid.convert("L").tobytes())) > 20
    assert "lr = 0.001" in events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    code, _, _ = run_cli("train", "--resume", tmp_path / "tb", "--epochs", 1, "--no-report",
                         "--tensorboard", tmp_path / "board")   # resumable: another folder
    assert code == 0 and (tmp_path / "board" / "tb").is_dir()


def test_tensorboard_missing_is_one_line(tmp_path, run_cli, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    code, _, err = run_cli("train", "--dry-run", "--runs-dir", tmp_path, "--tensorboard")
    assert code == 2 and err.strip() == ("error: --tensorboard needs the tensorboard package: "
                                         "pip install 'mnist-logreg[tensorboard]'")
    assert list(tmp_path.iterdir()) == []


def test_optuna_study_shared_by_two_processes(tmp_path, run_cli):
    import optuna

    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    cmd = [sys.executable, "-m", "mnist_logreg.cli", "tune", "--search", "optuna", "--trials", "2", "--dry-run",
           "--data-dir", str(SHARED_DATA), "--study", "s", "--storage", storage, "--runs-dir", str(tmp_path / "runs"),
           "--transform", "none"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    study = optuna.load_study(study_name="s", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.number for t in done) == [0, 1, 2, 3]   # four trials, none run twice
    mine = [set(re.findall(r"trial-(\d+): val_acc", out)) for out, _ in outs]
    assert mine[0] and mine[1] and not mine[0] & mine[1]    # each process ran its own
    assert all("transform" not in t.params for t in done)   # given on the command line: not sampled
    assert sorted(os.listdir(tmp_path / "runs" / "s")) == [f"trial-000{i}" for i in range(4)]
    for i in range(4):  # the study chooses on validation: no trial looked at the test set (issue 27)
        metrics = json.loads((tmp_path / "runs" / "s" / f"trial-000{i}" / "metrics.json").read_text())
        assert "val_acc" in metrics and not any(k.startswith("test_") for k in metrics), metrics
    code, out, err = run_cli("tune", "--best", "--refit", "--study", "s", "--storage", storage, "--runs-dir",
                             tmp_path / "runs")
    assert code == 0, err
    best = TrainConfig.from_toml(out)
    assert best.lr == pytest.approx(study.best_params["lr"]) and "refit on train+validation: test_acc" in err


def test_pruned_trials_are_runs_that_say_so(tmp_path, run_cli):
    """A trial the pruner stops is a run folder whose status is 'pruned', and a state Optuna
    knows (the default MedianPruner waits for 5 trials: too many for a test)."""
    import optuna

    from mnist_logreg.sweep import sweep

    study = sweep(SMALL, "p", trials=2, space=("lr",), runs_dir=tmp_path, log=None,
                  pruner=optuna.pruners.ThresholdPruner(lower=0.99))  # every trial falls behind at epoch 1
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    code, out, _ = run_cli("runs", tmp_path)
    assert code == 0 and out.count("pruned") >= 2 and "p/trial-0001" in out
    assert json.loads((tmp_path / "p" / "trial-0000" / "status.json").read_text())["epoch"] == 1


def test_optuna_missing_is_one_line(tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    code, _, err = run_cli("tune", "--search", "optuna", "--dry-run", "--runs-dir", tmp_path)
    assert code == 2 and err.strip() == "error: --search optuna needs optuna: pip install 'mnist-logreg[optuna]'"
    assert list(tmp_path.iterdir()) == []


def test_a_shared_study_decides_settings_never_paths_or_resources(tmp_path):
    """Issue 25 (10): a tampered study's stored config (a TensorBoard folder in someone's
    ~/.config, 1024 threads, other data) reaches nothing but the searched maths."""
    import optuna

    from mnist_logreg.sweep import best_config, default_storage

    storage = default_storage(tmp_path, "s")
    evil = TrainConfig(lr=0.0123, epochs=7, tensorboard=str(tmp_path / "victim" / ".config" / "autostart"),
                       threads=1024, data_dir=str(tmp_path / "other-data"), train_csv=str(tmp_path / "x.csv"))
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.9, params={}, distributions={},
                                              user_attrs={"config": evil.to_dict()}))
    mine = TrainConfig(data_dir=str(SHARED_DATA), threads=1)
    cfg, trial = best_config("s", storage, runs_dir=tmp_path, base=mine)
    assert (cfg.lr, cfg.epochs) == (0.0123, 7) and trial.number == 0
    assert (cfg.tensorboard, cfg.threads, cfg.data_dir, cfg.train_csv) == (None, 1, str(SHARED_DATA), None)
    with pytest.raises(__import__("mnist_logreg").ConfigError, match="--study must be one folder name|study must be one folder name"):
        best_config("../../x", None, runs_dir=tmp_path)
    assert not (tmp_path.parent / "x").exists()
