"""A training run as a library: a run folder made, trained, checkpointed, reported.

``train_run(cfg)`` does exactly what ``mnist-logreg train`` does (the CLI calls it), and
``Run.open(path).resume(epochs=5)`` is the notebook's "another round of 5 epochs" from the
saved optimizer state, bit for bit the same as an uninterrupted run.

The run folder's files are named in runfolder.py (``checkpoint.pt`` with the weights, optimizer
state, resolved config, history and metrics; ``config.toml``, accepted by ``train --config``;
the history, metrics, status and report), beside ``accuracy.png`` and ``samples.png``. This
module makes the folder and reads the data; session.py trains in it. A printed epoch is a saved
epoch; Ctrl-C or divergence between checkpoints saves the last complete epoch.

Example (docs/api.md runs it as a doctest, with the data)::

    from mnist_logreg import TrainConfig, train_run, Run
    run = train_run(TrainConfig(dry_run=True), runs_dir="runs", name="demo")
    run.path, run.metrics["test_acc"], run.history[-1]
    run = Run.open("runs/demo").resume(epochs=2)     # epochs 2 and 3, from the saved optimizer state
"""
from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from .config import RUN_FOLDER, TrainConfig, check_average_from, resumable
from .errors import ConfigError
from .errors import setting_ref as _ref
from .runfolder import (
    STATUS,
    check_run_name,
    locked,
    new_run_dir,
    remove_if_empty,
)
from .session import Session, TrainingData


@dataclass
class Run:
    """A run folder: its config, history, metrics and model, read from its checkpoint.

    Attributes are read when first asked for: ``config`` (a :class:`TrainConfig`),
    ``history`` (per-epoch rows), ``metrics`` (``test_acc``, ``val_acc``, ...), ``model``,
    ``epoch`` (epochs trained).
    """

    path: Path
    _ckpt: object = field(default=None, repr=False)

    @classmethod
    def open(cls, path) -> "Run":
        """The run in folder ``path`` (or the folder of a ``checkpoint.pt``)."""
        from .checkpoint import load_checkpoint

        path = Path(path)
        ckpt = load_checkpoint(path)
        return cls(ckpt.path.parent, ckpt)

    @property
    def checkpoint(self):
        if self._ckpt is None:
            from .checkpoint import load_checkpoint
            self._ckpt = load_checkpoint(self.path)
        return self._ckpt

    @property
    def config(self) -> TrainConfig:
        return config_of(self.checkpoint)

    @property
    def history(self) -> list:
        return list(self.checkpoint.history)

    @property
    def metrics(self) -> dict:
        return dict(self.checkpoint.metrics)

    @property
    def model(self):
        return self.checkpoint.model

    @property
    def epoch(self) -> int:
        return self.checkpoint.epoch

    def resume(self, epochs: int = 20, *, report: bool = True, log=print, progress=None, **settings) -> "Run":
        """Train ``epochs`` more epochs from the last checkpoint (its optimizer state, its
        split, its seed), as ``mnist-logreg train --resume RUN --epochs N`` does. ``settings``
        may change how it runs (``threads``, ``engine``, ``device``, ``checkpoint_every``,
        ``data_dir``, ``no_download``); a setting that changes the maths is refused."""
        with locked(self.path):  # then read the checkpoint: the last session's, whole
            from .checkpoint import load_checkpoint
            self._ckpt = load_checkpoint(self.path)
            return self._resume(epochs, report, log, progress, settings)

    def _resume(self, epochs, report, log, progress, settings) -> "Run":
        ckpt = self.checkpoint
        if not ckpt.config or ckpt.optimizer_state is None:
            raise ConfigError(f"{self.path}: not a training checkpoint of this tool (no config or optimizer "
                              f"state); evaluate or predict accept it, resume does not")
        old = config_of(ckpt)
        fixed = {k: v for k, v in settings.items() if k in old.names() and not resumable(k) and v != getattr(old, k)}
        if fixed:
            k = sorted(fixed)[0]
            raise ConfigError(f"{_ref(k)} cannot change when a run is resumed (the run has {getattr(old, k)!r}); "
                              f"start a new run for other settings")
        cfg = old.replace(**settings, epochs=ckpt.epoch + epochs)
        if cfg.solver == "newton":
            raise ConfigError("resume continues mini-batch training; a newton run is already at its optimum")
        return _execute(cfg, self.path, ckpt, report=report, log=log, progress=progress)


def train_run(cfg: TrainConfig | None = None, runs_dir="runs", name: str | None = None, *, report: bool = True,
              log=print, progress=None, on_epoch=None, test: bool = True) -> Run:
    """Train a model as ``mnist-logreg train`` does and write its run folder.

    Parameters
    ----------
    cfg : the settings (default ``TrainConfig()``, the notebook's)
    runs_dir : where run folders are created
    name : the run folder's name (default ``DATASET-YYYYmmdd-HHMMSS``); an existing name is an error
    report : also write ``report.html`` and its figures
    log : where progress lines go (``print``; None for silence)
    progress : a progress bar per epoch (default: when stderr is a terminal)
    on_epoch : called as ``on_epoch(epoch, row)`` after each epoch is checkpointed (``row``: the
        history row); an exception it raises stops training and propagates (Optuna's pruning)
    test : evaluate the test set at the end (default). A sweep's trials do not: a study chooses
        on validation, and the test set is for the winner, once

    Returns
    -------
    Run, trained. Ctrl-C raises :class:`TrainingInterrupted` after saving the last complete
    epoch; divergence raises :class:`TrainingDiverged` and keeps the last good checkpoint.
    """
    check_run_name(name)
    cfg = resolve(cfg or TrainConfig())
    return _execute(cfg, None, None, report=report and test, log=log, progress=progress, runs_dir=runs_dir,
                    name=name, on_epoch=on_epoch, test=test)


def resolve(cfg: TrainConfig) -> TrainConfig:
    """The config as the run records it: the dataset's canonical name (``kaggle-csv`` for a
    CSV), the CSV's absolute path, one epoch for a dry run."""
    from .datasets import get_spec

    changes = {"dataset": "kaggle-csv" if cfg.train_csv else get_spec(cfg.dataset).name}
    if cfg.train_csv:
        changes["train_csv"] = str(Path(cfg.train_csv).resolve())
    if cfg.tensorboard not in (None, RUN_FOLDER):
        changes["tensorboard"] = str(Path(cfg.tensorboard).resolve())
    if cfg.dry_run:
        changes["epochs"] = 1
    return cfg.replace(**changes)


def config_of(ckpt) -> TrainConfig:
    """The TrainConfig saved in a checkpoint. Keys of older versions that are no settings are
    left out; a missing setting takes its default."""
    values = {k: v for k, v in ckpt.config.items() if k in TrainConfig.names()}
    return TrainConfig.from_dict(values, source=f"{ckpt.path}: config")


# -- the work -------------------------------------------------------------------------------
def _execute(cfg, run_dir, resumed, *, report, log, progress, runs_dir=None, name=None, on_epoch=None,
             test=True) -> Run:
    """Check, read the data, build the model, train, and write the run files."""
    log = log or (lambda *a, **k: None)
    device = _check_before_reading(cfg)
    painter = _painter(report, cfg)
    try:
        return _train_and_write(cfg, run_dir, resumed, device, report, log, progress, runs_dir, name, painter,
                                on_epoch, test)
    finally:
        if painter is not None:
            painter.close()


def _painter(report: bool, cfg):
    """The report's figure helper, started now so that matplotlib loads while training runs."""
    if not report or cfg.train_csv:
        return None
    from .plots import Painter
    return Painter()


def _train_and_write(cfg, run_dir, resumed, device, report, log, progress, runs_dir, name, painter,
                     on_epoch=None, test=True) -> Run:
    data = load_training_data(cfg, log)
    if not test:
        data.test = None
    fresh = run_dir is None  # a resumed run's folder is locked by Run.resume already
    run_dir = new_run_dir(runs_dir, name, cfg.dataset) if fresh else run_dir
    with locked(run_dir) if fresh else nullcontext():
        try:
            session = Session(cfg, device, data, resumed, run_dir, log, on_epoch)
        except BaseException:
            remove_if_empty(run_dir)  # nothing was written: no empty folder left behind
            raise
        with session.board():
            _run_session(session, fresh, report, painter, progress)
    return Run(run_dir)  # its checkpoint is read when first asked for


def _run_session(session, fresh, report, painter, progress) -> None:
    """Train (Newton or minibatch) in the session's folder, then write everything else."""
    session.log(f"run folder: {session.run_dir}")
    if not fresh:  # the last session's "complete" no longer holds: this one writes its own ending
        (session.run_dir / STATUS).unlink(missing_ok=True)
    if session.cfg.solver == "newton":
        session.train_newton()
    else:
        session.train_minibatch(progress)
    session.finish(report, painter)


def _check_before_reading(cfg: TrainConfig) -> str:
    """The device, and the settings that cannot run here refused before any data is read
    or any file written."""
    from .engines import check_engine

    device = _device(cfg.device)
    if cfg.tensorboard is not None:
        from .tboard import check_available, check_folder
        check_available()
        check_folder(cfg)
    if cfg.solver == "minibatch":
        check_engine(cfg.engine, cfg.optimizer, device, soft=cfg.distill_epochs > 0)
        check_average_from(cfg.average_from, cfg.epochs)
    return device


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{_ref('device')} {name}: no CUDA device is available (use cpu)")
    return name


def run_split(cfg: TrainConfig, full):
    """The run's (train, validation) split of ``full``: ``val_size`` images held out by ``seed``,
    and the first ``train_size`` of the rest (the split is a seeded permutation: a seeded sample)."""
    from .data import split

    train, val = split(full, cfg.val_size, cfg.seed)
    if cfg.train_size:
        if cfg.train_size > len(train):
            raise ConfigError(f"{_ref('train_size')} is {cfg.train_size:,}, but the training split holds "
                              f"{len(train):,} images")
        train = train.subset(slice(0, cfg.train_size))
    return train, val


def load_training_data(cfg: TrainConfig, log=print) -> TrainingData:
    """The run's training, validation and test sets, read and checked."""
    from .data import load_dataset, load_kaggle_csv

    if cfg.train_csv:
        full = load_kaggle_csv(cfg.train_csv, labelled=True)
        if full.labels.min() < 0:
            raise ConfigError(f"{cfg.train_csv}: has no label column; training needs train.csv")
        test = None
    else:
        full = load_dataset(cfg.dataset, "train", cfg.data_dir, download=not cfg.no_download, log=log)
        test = load_dataset(cfg.dataset, "test", cfg.data_dir, download=False, log=log)
    train, val = run_split(cfg, full)
    if cfg.dry_run:
        train, val = train.subset(slice(0, 2000)), val.subset(slice(0, 1000))
        test = test.subset(slice(0, 1000)) if test is not None else None
    if cfg.extra_images:
        train = with_extra_images(train, cfg, log)
    return TrainingData(train, val if len(val) else None, test, full.classes)


def with_extra_images(train, cfg: TrainConfig, log=print):
    """The training split and the examples of ``cfg.extra_images``, each ``extra_weight`` times
    (examples.py's layout: what people corrected on the page)."""
    import torch

    from .data import ImageSet
    from .examples import read

    try:
        images, labels, _ = read(cfg.extra_images, len(train.classes))
    except ConfigError as e:
        raise ConfigError(f"{_ref('extra_images')}: {e}") from None
    w = cfg.extra_weight
    extra = torch.from_numpy(images).repeat(w, 1, 1), torch.from_numpy(labels).repeat(w)
    if log:
        log(f"extra images: {len(labels):,} examples from {cfg.extra_images}, each counted {w} times")
    return ImageSet(torch.cat([train.images, extra[0]]), torch.cat([train.labels, extra[1]]), train.classes,
                    f"{train.name}+extra")



if __name__ == "__main__":  # pragma: no cover
    sys.exit("use mnist-logreg train, or train_run() from Python")
