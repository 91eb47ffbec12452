"""The run folder: its files' names, and the helpers that make, hold and write one.

A run folder (``runs/NAME``) holds ``checkpoint.pt`` (weights, optimizer state, resolved
config, history, metrics), ``config.toml``, ``history.csv`` / ``history.json``,
``metrics.json``, ``status.json`` (how the last session ended) and the report
(``report.html`` and its figures). run.py trains in one, experiments.py reads many, tuning.py
and sweep.py make them: each through this module, which imports none of them.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError
from .errors import setting_ref as _ref

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.toml"
STATUS = "status.json"
METRICS = "metrics.json"
HISTORY_CSV, HISTORY_JSON = "history.csv", "history.json"
REPORT = "report.html"


@contextmanager
def locked(run_dir):
    """Hold ``run_dir`` for this process while it trains there: a lock on the folder itself
    (flock), which the system releases when the process ends, however it ends. A second
    process is refused at once rather than writing epochs into the same folder."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): unlocked
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{run_dir}: another process is training in this run folder; wait for it to end "
                              f"(two at once would lose epochs)") from None
        yield
    finally:
        os.close(fd)


def check_run_name(name) -> None:
    """A run folder's name is one folder inside the runs folder: not a path, not '..'."""
    if name is None:
        return
    bad = (not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in "/\\\0")
           or len(name.encode("utf-8", "surrogateescape")) > 200)
    if bad:
        raise ConfigError(f"{_ref('name')} must be one folder name, made inside {_ref('runs_dir')} (no '/', "
                          f"not '..'), got {name!r}")


def new_run_dir(runs_dir, name, dataset) -> Path:
    """A new, empty run folder ``runs_dir/name`` (default ``DATASET-YYYYmmdd-HHMMSS``, with a
    suffix when taken); made atomically, so two runs never share one."""
    root = Path(runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{root}: cannot create the runs folder: {e.strerror}") from None
    base = name if name is not None else f"{dataset}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    check_run_name(base)  # a dataset declared in $MNIST_LOGREG_DATASETS names default folders too
    for k in range(1000):
        cand = root / (base if k == 0 else f"{base}-{k + 1}")
        try:
            cand.mkdir()  # atomic: two runs never get the same folder
            return cand
        except FileExistsError:
            if name is not None:
                raise ConfigError(f"{cand}: run folder exists (continue it with {_ref('resume')} {cand}, or "
                                  f"choose another {_ref('name')})") from None
        except OSError as e:
            raise ConfigError(f"{cand}: cannot create the run folder: {e.strerror}") from None
    raise ConfigError(f"{root}: too many runs named {base}")


def remove_if_empty(folder: Path) -> None:
    """A run that ended before its first checkpoint leaves no empty folder behind."""
    try:
        folder.rmdir()
    except OSError:
        pass


def write_status(run_dir: Path, status: str, epoch: int, message: str = "") -> None:
    """Record how a session ended (``complete``, ``interrupted``, ``diverged``) in status.json."""
    from ._files import atomic_write_text

    atomic_write_text(Path(run_dir) / STATUS,
                      json.dumps({"status": status, "epoch": epoch, "message": message}) + "\n", durable=False)


def write_history(run_dir: Path, rows: list) -> None:
    """``history.csv`` (the notebook's columns) and ``history.json``."""
    from ._files import atomic_write_text

    cols = ["epoch", "train_loss", "val_loss", "val_acc", "seconds"]
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join("" if r.get(c) is None else (str(r[c]) if c == "epoch" else f"{r[c]:.6f}")
                              for c in cols))
    atomic_write_text(run_dir / HISTORY_CSV, "\n".join(lines) + "\n", durable=False)
    atomic_write_text(run_dir / HISTORY_JSON, json.dumps(rows, indent=2) + "\n", durable=False)


def write_results(run_dir: Path, rows: list, metrics: dict, train, classes, dataset: str) -> list:
    """The files a finished session derives from its history and metrics: history.csv and
    .json, metrics.json, accuracy.png (with two rows or more) and samples.png (the first 16
    training images). Returns their names."""
    from ._files import atomic_write_text, sync_dir
    from .pictures import accuracy_plot, image_grid

    write_history(run_dir, rows)
    atomic_write_text(run_dir / METRICS, json.dumps(metrics, indent=2) + "\n", durable=False)
    names = [HISTORY_CSV, HISTORY_JSON, METRICS]
    if len(rows) > 1:
        accuracy_plot(rows, run_dir / "accuracy.png")
        names.append("accuracy.png")
    image_grid(train.images[:16], train.labels[:16], run_dir / "samples.png", classes=classes,
               title=f"{dataset}: training images")
    sync_dir(run_dir)  # the derived files, flushed once (the checkpoint was fsynced itself)
    return names + ["samples.png"]
