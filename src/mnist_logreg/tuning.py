"""Choosing a setting on the validation split, then testing once: the library behind
``mnist-logreg tune`` (also used by ``bench/accuracy.py`` and the tutorial notebook).

Honesty is the point: the grid is scored on validation images only; the winner is tested
once, after an optional refit on train + validation.

Examples
--------
>>> import torch
>>> from mnist_logreg import MnistModel
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.rand(400, 784, generator=g); y = (x[:, :392].sum(1) > x[:, 392:].sum(1)).long()
>>> path = lam_path((x[:300], y[:300]), (x[300:], y[300:]), [1e-1, 1e-2], tol=1e-6)
>>> [p["lam"] for p in path], choose(path)["lam"] in (1e-1, 1e-2)
([0.1, 0.01], True)
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .config import TrainConfig, TuneConfig


def lam_path(train, val, lams, *, tol: float = 1e-5, threads: int | None = None, transform: str = "none",
             log=None) -> list:
    """The exact optimum for each ``lam``, strongest first, each warm-started from the one
    before (a few Newton steps instead of a cold start), scored on ``val``.

    Returns one dict per lam: ``lam``, ``C`` (scikit-learn's), ``loss``, ``accuracy`` (on
    ``val``), ``iterations``, ``converged``, ``seconds`` and the fitted ``model``.
    """
    from .metrics import evaluate
    from .solver import solve_path

    rows = []
    for r in solve_path(train, sorted(lams, reverse=True), tol=tol, threads=threads, transform=transform, log=None):
        lam = r.lam
        row = {"lam": lam, "C": 1.0 / (lam * len(_labels(train))), **evaluate(r.model, val),
               "iterations": r.iterations, "converged": r.converged, "seconds": round(r.seconds, 2), "model": r.model}
        rows.append(row)
        if log:
            log(f"lam {lam:9.2e}  C {row['C']:9.3g}  val_loss {row['loss']:.4f}  val_acc {row['accuracy']:.4f}"
                f"  {r.iterations:3d} it  {r.seconds:6.2f}s{'' if r.converged else '  NOT converged'}")
    return rows


def lr_grid(train, val, lrs, max_epochs: int, cfg: TrainConfig, log=None) -> list:
    """For each learning rate, ``max_epochs`` epochs of ``cfg``'s mini-batch training; every
    epoch is a candidate. Returns one dict per (lr, epochs): ``lr``, ``epochs``, ``loss``,
    ``accuracy`` (on ``val``)."""
    import torch

    from .model import MnistModel
    from .train import fit

    rows = []
    for lr in lrs:
        torch.manual_seed(cfg.seed)
        h = fit(MnistModel(transform=cfg.transform), train, val, cfg, epochs=max_epochs, lr=lr, log=None)
        mine = [{"lr": lr, "epochs": r["epoch"], "loss": r["val_loss"], "accuracy": r["val_acc"]} for r in h.rows[1:]]
        rows += mine
        if log:
            b = choose(mine)
            log(f"lr {lr:9.2e}  best epoch {b['epochs']:3d}  val_loss {b['loss']:.4f}  val_acc {b['accuracy']:.4f}")
    return rows


def choose(rows: list) -> dict:
    """The row with the best validation accuracy (ties: the lower validation loss)."""
    return max(rows, key=lambda r: (r["accuracy"], -r["loss"]))


def _labels(data):
    return data.labels if hasattr(data, "labels") else data[1]


@dataclass
class TuneResult:
    """What ``tune`` found: the grid (validation scores), the winner's config, its test
    score (measured once) and the folder it was written to."""

    path: Path
    config: TrainConfig  # the winner, as a config train_run can run
    grid: list = field(repr=False)
    test_loss: float = 0.0
    test_acc: float = 0.0
    n_train: int = 0

    def as_dict(self) -> dict:
        return {"dataset": self.config.dataset, "grid": self.grid, "winner": _winner(self.config),
                "refit": self.config.val_size == 0, "test_loss": self.test_loss, "test_acc": self.test_acc,
                "n_train": self.n_train}


def _winner(cfg: TrainConfig) -> dict:
    if cfg.solver == "newton":
        return {"solver": "newton", "lam": cfg.lam}
    return {"solver": "minibatch", "lr": cfg.lr, "epochs": cfg.epochs}


def tune(cfg: TrainConfig | None = None, search: TuneConfig | None = None, runs_dir="runs", name: str | None = None,
         *, log=print) -> TuneResult:
    """Grid search by validation accuracy, as ``mnist-logreg tune`` does: newton tunes ``lam``
    along a warm-started path, minibatch tunes ``lr`` and the epoch count. The winner is
    (optionally) refitted on train + validation, tested once, and saved in a run folder
    (``tune.json``, ``checkpoint.pt``, ``config.toml``: the winner's settings).

    ``cfg`` gives the data, split, seed, transform, ``tol`` and ``threads``; ``search`` the grid.
    """
    from ._files import atomic_write_text
    from .checkpoint import save
    from .metrics import evaluate
    from .run import load_training_data, resolve
    from .runfolder import CHECKPOINT, CONFIG, check_run_name, new_run_dir

    check_run_name(name)
    log = log or (lambda *a, **k: None)
    cfg, search = resolve(cfg or TrainConfig()), search or TuneConfig()
    data = load_training_data(cfg, log=log)
    if data.val is None:
        from .errors import ConfigError, setting_ref
        raise ConfigError(f"tune needs a validation split: {setting_ref('val_size')} must be at least 1")
    run_dir = new_run_dir(runs_dir, name or f"{cfg.dataset}-tune-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}",
                          cfg.dataset)
    log(f"tune: {len(search.lams) if search.solver == 'newton' else len(search.lrs)} "
        f"{'values of lam (newton, warm-started)' if search.solver == 'newton' else 'learning rates'} on the "
        f"validation split ({len(data.val):,} images); a line each as it finishes")
    if search.solver == "newton":
        grid = lam_path(data.train, data.val, search.lams, tol=cfg.tol, threads=cfg.threads or os.cpu_count(),
                        transform=cfg.transform, log=log)
        best = choose(grid)
        winner = cfg.replace(solver="newton", lam=best["lam"])
    else:
        grid = lr_grid(data.train, data.val, search.lrs, search.max_epochs, cfg, log=log)
        best = choose(grid)
        winner = cfg.replace(solver="minibatch", lr=best["lr"], epochs=best["epochs"])
    log(f"winner: {', '.join(f'{k} {v:g}' if isinstance(v, float) else f'{k} {v}' for k, v in _winner(winner).items())}"
        f" (val_acc {best['accuracy']:.4f})")
    # -- the winner: optionally retrained on train+validation, then tested once --------------
    if search.refit:
        winner = winner.replace(val_size=0)
        train = load_training_data(winner, log=log).train
    else:
        train = data.train
    model = _train_winner(winner, train)
    t = evaluate(model, data.test)
    log(f"{'refit on train+val' if search.refit else 'winner'}: test_loss: {t['loss']:.4f}, test_acc: {t['accuracy']:.4f}")
    grid = [{k: v for k, v in r.items() if k != "model"} for r in grid]
    result = TuneResult(run_dir, winner, grid, t["loss"], t["accuracy"], len(train))
    save(model, run_dir / CHECKPOINT, config=winner.to_dict(), dataset=cfg.dataset, classes=data.classes,
         metrics={"test_loss": t["loss"], "test_acc": t["accuracy"], "tune": result.as_dict()})
    atomic_write_text(run_dir / CONFIG, winner.to_toml())
    atomic_write_text(run_dir / "tune.json", json.dumps(result.as_dict(), indent=2) + "\n")
    log(f"wrote {run_dir / 'tune.json'}, {run_dir / 'checkpoint.pt'}, {run_dir / 'config.toml'}")
    return result


def _train_winner(cfg: TrainConfig, train):
    """The winner's model, trained on ``train`` with its settings."""
    import torch

    from .model import MnistModel
    from .solver import solve
    from .train import fit

    if cfg.solver == "newton":
        return solve(train, cfg.lam, tol=cfg.tol, threads=cfg.threads or os.cpu_count(), transform=cfg.transform,
                     log=None).model
    torch.manual_seed(cfg.seed)
    model = MnistModel(transform=cfg.transform)
    fit(model, train, None, cfg, log=None)
    return model
