"""Issue 25 (17): what was a traceback is one line, and nothing is left behind."""
import numpy as np
import pytest


@pytest.mark.parametrize("args, message", [
    (["--tensorboard", "{file}"], "--tensorboard {file}: cannot make the folder"),
    (["--tensorboard", "/proc/no-such-folder"], "--tensorboard /proc/no-such-folder: cannot make the folder"),
    (["--tensorboard", "/dev/full"], "--tensorboard /dev/full: cannot make the folder"),
    (["--data-dir", "bad\udcff"], "--data-dir must be text (UTF-8)"),
])
def test_train_refuses_before_any_work(tmp_path, run_cli, args, message):
    pytest.importorskip("tensorboard")
    (tmp_path / "afile").write_text("")
    args = [a.replace("{file}", str(tmp_path / "afile")) for a in args]
    code, _, err = run_cli("train", "--dry-run", "--no-report", "--runs-dir", tmp_path / "runs", "--name", "r", *args)
    assert code == 2 and err.startswith("error: " + message.replace("{file}", str(tmp_path / "afile")))
    assert len(err.splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_a_storage_that_is_no_database_is_one_line(tmp_path, run_cli):
    pytest.importorskip("optuna")
    (tmp_path / "notes.db").write_text("my notes, not a database\n" * 100)
    code, _, err = run_cli("tune", "--search", "optuna", "--storage", f"sqlite:///{tmp_path / 'notes.db'}",
                           "--trials", "1", "--dry-run", "--runs-dir", tmp_path / "runs")
    assert code == 2 and "file is not a database" in err and len(err.splitlines()) == 1
    assert (tmp_path / "notes.db").read_text().startswith("my notes")


def test_schema_valid_oddities_never_crash_runs_compare_or_report(tmp_path, run_cli):
    """Issue 25 (18): metrics that are strings, lists, NaN or infinite, history rows without an
    epoch, a symlink loop: `runs` lists every folder (`--json` stays JSON), `compare` and `report`
    answer or refuse in one line."""
    import json
    import os

    import torch
    code, _, err = run_cli("train", "--dry-run", "--no-report", "--runs-dir", tmp_path / "runs", "--name", "ok")
    assert code == 0, err
    honest = torch.load(tmp_path / "runs" / "ok" / "checkpoint.pt", weights_only=True)
    odd = {"strings": {"metrics": {**honest["metrics"], "val_acc": "high", "test_acc": [1, 2]}},
           "nan": {"metrics": {**honest["metrics"], "val_acc": float("nan"), "test_acc": float("inf")}},
           "noepoch": {"history": [{"train_loss": 0.3}, {"val_acc": 0.9}]}}
    for name, change in odd.items():
        (tmp_path / "runs" / name).mkdir()
        torch.save({**honest, **change}, tmp_path / "runs" / name / "checkpoint.pt")
    os.symlink("loop", tmp_path / "runs" / "loop")
    code, out, err = run_cli("runs", tmp_path / "runs", "--json")
    assert code == 0, err
    listed = {r["name"]: r for r in json.loads(out)}  # NaN/Infinity would not parse
    assert {"ok", "strings", "nan", "noepoch"} <= set(listed) and listed["nan"]["val_acc"] is None
    assert listed["noepoch"]["status"] == "unreadable"
    for name in ("strings", "nan"):
        code, _, err = run_cli("compare", tmp_path / "runs" / name, tmp_path / "runs" / "ok", "-o", tmp_path / f"{name}.html")
        assert code == 0, err
    code, _, err = run_cli("report", tmp_path / "runs" / "noepoch", "--out", tmp_path / "rep")
    assert code == 2 and "each with its epoch" in err and len(err.splitlines()) == 1


def test_predict_bounds_the_work_it_takes_on(tmp_path, run_cli):
    """Issue 25 (16): 200,000 indices took 1.6 GB; 30,000 images in one picture 2.2 GB."""
    code, _, err = run_cli("train", "--dry-run", "--no-report", "--runs-dir", tmp_path, "--name", "r")
    assert code == 0, err
    code, _, err = run_cli("predict", tmp_path / "r", "--index", *range(10_001))
    assert code == 2 and "at most 10,000 inputs in one call" in err
    code, _, err = run_cli("predict", tmp_path / "r", "--index", *range(1_001), "--explain", tmp_path / "e.png")
    assert code == 2 and "at most 1,000 inputs in one picture" in err and not (tmp_path / "e.png").exists()


def test_a_large_transparent_picture_is_flattened_in_bands():
    """Issue 25 (16): the alpha composition of a 4900x4900 RGBA picture stays near its own size
    (one int64 copy of it took 800 MB)."""
    import tracemalloc

    import numpy as np

    from mnist_logreg.preprocess import flatten_alpha
    rgba = np.zeros((4900, 4900, 4), np.uint8)
    rgba[1000:3000, 2000:2300] = 255
    tracemalloc.start()
    grey = flatten_alpha(rgba)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert grey.shape == (4900, 4900) and grey[2000, 2100] == 255 and grey[0, 0] == 0  # white ink on black
    assert peak < 2 * grey.nbytes + 50 * 2**20, peak


def test_a_kaggle_csv_is_held_as_bytes_not_floats(tmp_path):
    """Issue 25 (11): the 512 MiB limit did not bound memory (511 MiB of CSV: 5.6 GB as
    float64). 10,000 rows, parsed 2,048 at a time: the peak is the text plus the uint8
    pixels plus one chunk, not 8 bytes a cell."""
    import tracemalloc

    import numpy as np

    from mnist_logreg.data import load_kaggle_csv
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, (10_000, 785))
    rows[:, 0] %= 10
    text = "label," + ",".join(f"pixel{i}" for i in range(784)) + "\n"
    text += "\n".join(",".join(map(str, r)) for r in rows) + "\n"
    (tmp_path / "train.csv").write_text(text)
    import torch  # noqa: F401  (imported before the count: its import is not the CSV's)
    tracemalloc.start()
    data = load_kaggle_csv(tmp_path / "train.csv")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert data.images.shape == (10_000, 28, 28) and data.labels.tolist()[:3] == rows[:3, 0].tolist()
    float64_of_all = rows.size * 8
    # all of it as float64 beside the text is len(text) + float64_of_all at the very least (it was
    # more: 5.6 GB for 511 MiB); chunked: the text, one chunk and the uint8 pixels twice (71.8 MB here)
    assert peak < len(text) + 0.75 * float64_of_all, (peak, len(text), float64_of_all)


@pytest.mark.parametrize("make, message", [
    (lambda S, X, y: S().fit(X, y, sample_weight=np.full(len(y), 1e308)), "sample weights sum to inf"),
    (lambda S, X, y: S().fit(X, y, sample_weight=np.full(len(y), 1e-320)), "sample weights sum to"),
    (lambda S, X, y: S().fit(X * 1e300, y), "scale them first"),
    (lambda S, X, y: S(threads=1024).fit(X, y), "threads"),
    (lambda S, X, y: S().fit(np.repeat(X, 2, 0)[:2002], np.arange(2002)), "at most 1000 classes"),
])
def test_the_estimator_refuses_what_it_cannot_fit_in_one_line(make, message):
    """Issue 25 (21, 12): weights that overflow or vanish (an all-zero model, no warning), inputs
    whose squares overflow (a LinAlgError), threads=1024 (libgomp aborted the process), 2,000
    classes for newton (33 s, 721 MB)."""
    pytest.importorskip("sklearn")
    from mnist_logreg.sklearn import SoftmaxClassifier
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(1001, 5)), rng.integers(0, 3, 1001)
    with pytest.raises(ValueError, match=message):
        make(SoftmaxClassifier, X, y)


def test_deskew_checks_its_image_shape():
    pytest.importorskip("sklearn")
    from mnist_logreg.sklearn import Deskew
    with pytest.raises(ValueError, match="two positive whole numbers"):
        Deskew(image_shape=(-28, -28)).fit(np.zeros((2, 784)))
