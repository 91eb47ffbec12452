"""A training run as a library: a run folder made, trained, checkpointed, reported.

``train_run(cfg)`` does exactly what ``mnist-logreg train`` does (the CLI calls it), and
``Run.open(path).resume(epochs=5)`` is the notebook's "another round of 5 epochs" from the
saved optimizer state, bit for bit the same as an uninterrupted run.

The run folder's files are named in runfolder.py (``checkpoint.pt`` with the weights, optimizer
state, resolved config, history and metrics; ``config.toml``, accepted by ``train --config``;
the history, metrics, status and report), beside ``accuracy.png`` and ``samples.png``. A printed
epoch is a saved epoch; Ctrl-C or divergence between checkpoints saves the last complete epoch.

Example (docs/api.md runs it as a doctest, with the data)::

    from mnist_logreg import TrainConfig, train_run, Run
    run = train_run(TrainConfig(dry_run=True), runs_dir="runs", name="demo")
    run.path, run.metrics["test_acc"], run.history[-1]
    run = Run.open("runs/demo").resume(epochs=2)     # epochs 2 and 3, from the saved optimizer state
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from .config import RUN_FOLDER, TrainConfig, check_average_from, resumable
from .errors import ConfigError, TrainingDiverged, TrainingInterrupted
from .errors import setting_ref as _ref
from .runfolder import (
    CONFIG,
    STATUS,
    Checkpoints,
    check_run_name,
    locked,
    new_run_dir,
    remove_if_empty,
    write_results,
)


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
            session = _Session(cfg, device, data, resumed, run_dir, log, on_epoch)
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


@dataclass
class TrainingData:
    train: object
    val: object  # None when val_size is 0
    test: object  # None for a Kaggle CSV
    classes: tuple


def load_training_data(cfg: TrainConfig, log=print) -> TrainingData:
    """The run's training, validation and test sets, read and checked."""
    from .data import load_dataset, load_kaggle_csv, split

    if cfg.train_csv:
        full = load_kaggle_csv(cfg.train_csv, labelled=True)
        if full.labels.min() < 0:
            raise ConfigError(f"{cfg.train_csv}: has no label column; training needs train.csv")
        test = None
    else:
        full = load_dataset(cfg.dataset, "train", cfg.data_dir, download=not cfg.no_download, log=log)
        test = load_dataset(cfg.dataset, "test", cfg.data_dir, download=False, log=log)
    train, val = split(full, cfg.val_size, cfg.seed)
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


class _Session:
    """One training session of a run: the model, its optimizer and history, trained by the
    exact solver or by minibatches, its checkpoints (runfolder.Checkpoints) and, when it
    finishes, its calibration, metrics and files."""

    def __init__(self, cfg, device, data: TrainingData, resumed, run_dir: Path, log, callback=None):
        from .train import History

        self.cfg, self.device, self.data, self.log = cfg, device, data, log
        self.run_dir = run_dir
        self.callback = callback  # train_run's on_epoch
        self.model, self.opt = _model_and_optimizer(cfg, device)
        self.history = History()
        if resumed is not None:
            self.model.load_state_dict(resumed.model.state_dict())
            try:
                self.opt.load_state_dict(resumed.optimizer_state)
            except (ValueError, KeyError, RuntimeError, TypeError, AttributeError) as e:
                raise ConfigError(f"{resumed.path}: optimizer state does not fit: {e}") from None
            self.history.rows = list(resumed.history)
        self.start_epoch = resumed.epoch if resumed is not None else 0
        self.trust = resumed.trust if resumed is not None else None  # refitted when the session finishes
        self.checkpoints = Checkpoints(run_dir, cfg, data.classes, written=self.start_epoch)
        self.info = {}  # what the solver or distillation adds to the metrics
        self.tb = None  # a tboard.Board while the session logs to TensorBoard
        log(f"MnistModel: {self.model.num_parameters():,} parameters (linear.weight 10x784 + linear.bias 10)")
        log(f"data: {len(data.train):,} train, {len(data.val) if data.val else 0:,} validation"
            + (f", {len(data.test):,} test" if data.test is not None else "") + f" ({cfg.dataset})")

    @contextmanager
    def board(self):
        """TensorBoard logging for this session, when the config asks for it."""
        if self.cfg.tensorboard is None:
            yield
            return
        from .tboard import Board
        self.tb = Board(self.cfg, self.run_dir)
        try:
            yield
        finally:
            self.tb.close()

    # -- the two solvers -----------------------------------------------------------------------
    def train_newton(self):
        from .train import evaluate

        cfg, val = self.cfg, self.data.val
        result = _solve(cfg, self.data.train, self.log)
        self.log(result.summary())
        self.model.load_state_dict(result.model.state_dict())
        row = {"epoch": result.iterations, "train_loss": result.objective}
        if val is not None:
            r = evaluate(self.model, val)
            row.update(val_loss=r["loss"], val_acc=r["accuracy"])
            self.log(f"val_loss: {row['val_loss']:.4f}, val_acc: {row['val_acc']:.4f}")
        self.history.rows.append({**row, "seconds": result.seconds})
        if self.tb is not None:
            self.tb.epoch(self.history.rows[-1], 0.0)
        self.info["solver"] = {**result.info(), "lam": cfg.lam, "tol": cfg.tol,
                               "sklearn_C": 1.0 / (cfg.lam * len(self.data.train))}

    def train_minibatch(self, progress):
        from .distill import distill_for_run
        from .train import fit

        cfg, data = self.cfg, self.data
        soft = None
        if cfg.distill_epochs:
            soft, self.info["distillation"] = distill_for_run(cfg, data.train, data.val, self.device, self.log)
        try:
            fit(self.model, data.train, data.val, cfg, epochs=cfg.epochs - self.start_epoch, optimizer=self.opt,
                soft_targets=soft, start_epoch=self.start_epoch, history=self.history, on_epoch=self.on_epoch,
                progress=progress, log=self.log)
        except (TrainingInterrupted, KeyboardInterrupt) as e:
            self.checkpoints.save_kept(self.model, self.opt, self.history.rows, self.trust)
            raise self._interrupted(e) from None
        except TrainingDiverged as e:
            self.checkpoints.save_kept(self.model, self.opt, self.history.rows, self.trust)
            raise self._diverged(e) from None

    def on_epoch(self, epoch, row, opt):
        if self.tb is not None:
            from .optim import current_lr
            self.tb.epoch(row, current_lr(opt))
        self.checkpoints.epoch_done(epoch, self.model, self.opt, self.history.rows, self.trust)
        if self.callback is not None:
            self.callback(epoch, row)

    def _interrupted(self, e) -> TrainingInterrupted:
        ckpt = self.checkpoints
        ckpt.record("interrupted", "Ctrl-C")
        e = e if isinstance(e, TrainingInterrupted) else TrainingInterrupted("interrupted")
        if not ckpt.path.exists():
            remove_if_empty(self.run_dir)
            return TrainingInterrupted(f"{e} before the first epoch ended: nothing to resume")
        return TrainingInterrupted(
            f"{e}; saved the last complete epoch ({ckpt.written}) in {ckpt.path}; continue with: mnist-logreg "
            f"train --resume {self.run_dir} --epochs N (in Python: Run.open(path).resume(epochs=N))")

    def _diverged(self, e) -> TrainingDiverged:
        ckpt = self.checkpoints
        ckpt.record("diverged", str(e).split(";")[0])
        kept = (f"; the last good checkpoint (epoch {ckpt.written}) is kept in {ckpt.path}"
                if ckpt.path.exists() else remove_if_empty(self.run_dir) or "; no run folder is left")
        return TrainingDiverged(e.template + kept)  # its settings stay marked for the CLI

    # -- the end: calibration, metrics, files --------------------------------------------------
    def finish(self, report: bool, painter=None):
        rows, data, log = self.history.rows, self.data, self.log
        self.trust = _fit_trust(self.cfg, self.model, data, self.device, log)
        metrics = _metrics(self.model, self.history, self.info, self.trust, data, log)
        self.checkpoints.write(rows[-1]["epoch"], self.model, self.opt, rows, self.trust, metrics)
        if self.tb is not None:
            self.tb.weights(self.model, rows[-1]["epoch"])
        names = write_results(self.run_dir, rows, metrics, data.train, data.classes, self.cfg.dataset)
        self.checkpoints.record("complete", epoch=rows[-1]["epoch"])
        log(f"wrote {self.checkpoints.path}, {CONFIG}, " + ", ".join(names))
        if report:
            _report(self.run_dir, self.cfg, data.test is not None, log, painter)


def _model_and_optimizer(cfg, device):
    """The model, seeded, and its optimizer, as ``cfg`` says."""
    import torch

    from .model import MnistModel
    from .optim import make_optimizer

    torch.manual_seed(cfg.seed)
    model = MnistModel(transform=cfg.transform).to(device)
    return model, make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)


def _fit_trust(cfg, model, data: TrainingData, device, log):
    """Calibration and digit-likeness (trust.py), on the validation split, or without one on
    ``calibration_holdout`` images held out of a first model trained the same way."""
    from .data import split
    from .trust import fit_trust

    if data.val is not None:
        log(f"calibration: fitted on the validation split ({len(data.val):,} images)")
        return fit_trust(model, data.train, data.val, heldout=f"the validation split ({len(data.val):,} images)")
    held = min(cfg.calibration_holdout, len(data.train) // 5)
    if not held:
        log("calibration: none (no validation split and no calibration_holdout)")
        return None
    fit_set, heldout = split(data.train, held, cfg.seed + 1)
    log(f"calibration: training a first model without {held:,} held-out images (val_size is 0), to fit "
        f"the calibration on them")
    # as many steps as the final model: it trains on more images per epoch, and longer
    # training is more confident (matched, the fashion preset's test ECE 1.02% -> ...)
    epochs = max(1, round(cfg.epochs * len(data.train) / len(fit_set)))
    probe = _train_probe(cfg, fit_set, epochs, device)
    return fit_trust(model, fit_set, heldout, probe_model=probe,
                     heldout=f"{held:,} images held out of a first model's training")


def _train_probe(cfg, fit_set, epochs: int, device):
    """A model trained as the run's, from scratch, on ``fit_set``, with no files written."""
    from .distill import distill_for_run
    from .train import fit

    if cfg.solver == "newton":
        return _solve(cfg, fit_set, None).model
    model, opt = _model_and_optimizer(cfg, device)
    soft = distill_for_run(cfg, fit_set, None, device)[0] if cfg.distill_epochs else None
    fit(model, fit_set, None, cfg, epochs=epochs, optimizer=opt, soft_targets=soft, progress=False, log=None)
    return model.cpu()


def _metrics(model, history, info: dict, trust, data: TrainingData, log) -> dict:
    """metrics.json: the last validation figures, what ran, the calibration, and the test set's."""
    from .train import evaluate

    rows = history.rows
    m = {"val_loss": rows[-1].get("val_loss"), "val_acc": rows[-1].get("val_acc"), "epochs": rows[-1]["epoch"],
         "train_seconds": round(sum(r.get("seconds", 0) for r in rows), 3)}
    if "solver" in info:
        m["solver"] = info["solver"]
    elif history.engine:
        m["engine"] = history.engine  # which engine ran (auto picks one)
    if "distillation" in info:
        m["distillation"] = info["distillation"]
    if history.average is not None:  # the model is the average: its validation is the run's
        m["weight_average"] = dict(history.average)
        if "val_acc" in history.average:
            m.update(val_loss=history.average["val_loss"], val_acc=history.average["val_acc"])
    if trust is not None:
        c = trust.calibrator
        m["calibration"] = {"temperature": c.temperature, "a": c.a, "b": c.b, "c": c.c, "heldout": trust.heldout}
    if data.test is not None:
        r = evaluate(model, data.test)
        m.update(test_loss=r["loss"], test_acc=r["accuracy"])
        log(f"test_loss: {r['loss']:.4f}, test_acc: {r['accuracy']:.4f}")
        if trust is not None:
            m.update(_test_trust(model, trust, data.test, data.classes))
    return m


def _report(run_dir, cfg, has_test: bool, log, painter) -> None:
    if not has_test:
        log("no report: a Kaggle CSV run has no test set of its own (run mnist-logreg report "
            f"{run_dir} --dataset mnist to report on MNIST's test set, which Kaggle's images overlap)")
        return
    from .report import build_report
    build_report(run_dir, data_dir=cfg.data_dir, download=False, log=log, painter=painter)


def _solve(cfg, train, log):
    """The exact optimum of the run's settings on ``train`` (solver newton)."""
    from .solver import solve
    return solve(train, cfg.lam, tol=cfg.tol, max_iter=cfg.max_iter, threads=cfg.threads or os.cpu_count(),
                 transform=cfg.transform, log=log)


def _test_trust(model, trust, test, classes) -> dict:
    """Test-set figures of the calibration and the answers: ECE before and after, and the share
    of test images answered "unsure" and "not a digit"."""
    import torch

    from .answers import Predictor
    from .metrics import calibration

    x = test.features()
    with torch.no_grad():
        raw = torch.softmax(model(x).double(), 1)
    a = Predictor(model, trust, classes).assess(x, test.labels)
    out = {"test_ece": calibration(raw, test.labels)["ece"], "test_ece_calibrated": a["calibration"]["ece"],
           "test_unsure": a["states"]["unsure"]}
    if trust.likeness is not None:
        out["test_not_a_digit"] = a["states"]["not-a-digit"]
    return out


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use mnist-logreg train, or train_run() from Python")
