"""One training session of a run: the model and optimizer built (or resumed), trained by the
exact solver or by minibatches, checkpointed as it goes, and finished: calibrated, measured,
its files written. run.py makes the folder and the data and hands them to a :class:`Session`.
"""
from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, TrainingDiverged, TrainingInterrupted
from .runfolder import CHECKPOINT, CONFIG, remove_if_empty, write_results, write_status


@dataclass
class TrainingData:
    train: object
    val: object  # None when val_size is 0
    test: object  # None for a Kaggle CSV
    classes: tuple


class Checkpoints:
    """A session's checkpoint: written every ``cfg.checkpoint_every`` epochs with the config
    beside it (config.toml, once per session); between two, the last complete epoch is kept
    in memory (7,850 weights and the optimizer state: cheap), so that Ctrl-C or divergence
    can still save it (:meth:`save_kept`)."""

    def __init__(self, run_dir: Path, cfg, classes, written: int = 0):
        self.run_dir, self.cfg, self.classes = run_dir, cfg, classes
        self.path = run_dir / CHECKPOINT
        self.written, self.kept = written, None  # the last epoch on disk; (epoch, model, optimizer, rows)
        self.config_written = False

    def write(self, epoch, model, opt, rows, trust=None, metrics=None) -> None:
        from ._files import atomic_write_text
        from .checkpoint import save

        save(model, self.path, optimizer=opt, epoch=epoch, config=self.cfg.to_dict(), dataset=self.cfg.dataset,
             classes=self.classes, metrics=metrics or {}, history=rows, trust=trust)
        if not self.config_written:
            atomic_write_text(self.run_dir / CONFIG, self.cfg.to_toml(), durable=False)
            self.config_written = True

    def epoch_done(self, epoch, model, opt, rows, trust=None) -> None:
        """Write this epoch when it is a checkpoint epoch, else keep it in memory."""
        if epoch % self.cfg.checkpoint_every == 0:
            self.write(epoch, model, opt, rows, trust)
            self.written, self.kept = epoch, None
        else:
            self.kept = (epoch, copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), list(rows))

    def save_kept(self, model, opt, rows: list, trust=None) -> None:
        """Back to the kept epoch (``model``, ``opt`` and ``rows`` in place), and write it."""
        if self.kept is None:
            return
        epoch, model_sd, opt_sd, kept_rows = self.kept
        model.load_state_dict(model_sd)
        opt.load_state_dict(opt_sd)
        rows[:] = kept_rows
        self.write(epoch, model, opt, rows, trust)
        self.written = epoch

    def record(self, status: str, message: str = "", epoch: int | None = None) -> None:
        """status.json: how this session ended, for ``mnist-logreg runs`` (once a checkpoint exists)."""
        if self.path.exists():
            write_status(self.run_dir, status, self.written if epoch is None else epoch, message)


class Session:
    """One training session of a run: the model, its optimizer and history, trained by the
    exact solver or by minibatches, its checkpoints (:class:`Checkpoints`) and, when it
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
        from .metrics import evaluate

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
        except (TrainingInterrupted, KeyboardInterrupt, TrainingDiverged) as e:
            self.checkpoints.save_kept(self.model, self.opt, self.history.rows, self.trust)
            raise (self._diverged(e) if isinstance(e, TrainingDiverged) else self._interrupted(e)) from None

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
    from .metrics import evaluate

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
