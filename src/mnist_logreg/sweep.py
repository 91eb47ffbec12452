"""Optuna sweeps of the minibatch recipe: ``tune --search optuna``.

Optuna is the engine: a study lives in its storage (SQLite for one machine, a PostgreSQL or
MySQL URL for many); every process that runs :func:`sweep` on the same study and storage
draws its own trials from it, so two processes, or two machines, share the work with no
scheduler of ours. Each trial is a run folder ``RUNS_DIR/STUDY/trial-NNNN`` (the trial's
number in the study, unique across processes), written as ``train`` writes one, so ``runs``
and ``compare`` see trials like any run; a pruned trial's folder says ``pruned``.

The objective is the run's validation accuracy; a trial is pruned when its validation
accuracy at an epoch falls below the median of earlier trials at that epoch (Optuna's
MedianPruner, after 5 complete trials and 3 epochs). The sampler is TPE, unseeded: two
processes with one seed would draw the same trials. Each trial reproduces from its
config.toml.

Example::

    from mnist_logreg import TrainConfig
    from mnist_logreg.sweep import sweep, best_config
    study = sweep(TrainConfig(transform="deskew"), "digits", "sqlite:///sweep.db", trials=100)
    print(best_config("digits", "sqlite:///sweep.db").to_toml())
"""
from __future__ import annotations

from pathlib import Path

from .config import SPACE_SETTINGS, TrainConfig
from .errors import ConfigError
from .errors import setting_ref as _ref

#: the settings a trial samples (``space``), and how
SPACE = {
    "lr": lambda t: t.suggest_float("lr", 1e-4, 3e-2, log=True),
    "epochs": lambda t: t.suggest_int("epochs", 5, 60, step=5),
    "lr_schedule": lambda t: t.suggest_categorical("lr_schedule", ["constant", "cosine"]),
    "loss_cap": lambda t: t.suggest_categorical("loss_cap", [None, 2.0, 3.0, 5.0, 8.0]),
    "loss_q": lambda t: t.suggest_float("loss_q", 0.0, 1.0),
    "transform": lambda t: t.suggest_categorical("transform", ["none", "deskew", "cbrt"]),
    "weight_decay": lambda t: t.suggest_categorical("weight_decay", [0.0, 1e-6, 1e-5, 1e-4]),
    "batch_size": lambda t: t.suggest_categorical("batch_size", [32, 64, 128, 256, 512]),
}


assert tuple(SPACE) == SPACE_SETTINGS  # declared in config.py, sampled here


def _check_study(study) -> None:
    """A study's name is one folder name inside the runs folder, for every use of it."""
    from .runfolder import check_run_name

    try:
        check_run_name(study)
    except ConfigError:
        raise ConfigError(f"{_ref('study')} must be one folder name, made inside {_ref('runs_dir')} (no '/', not "
                          f"'..', at most 200 bytes), got {study[:60]!r}") from None


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"{_ref('search')} optuna needs optuna: pip install 'mnist-logreg[optuna]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial instead
    return optuna


def default_storage(runs_dir, study: str) -> str:
    """A SQLite file in the study's folder: ``sqlite:///RUNS_DIR/STUDY/optuna.db`` (the study's
    name is one folder name: ``--study ../../x`` made files outside the runs folder)."""
    _check_study(study)
    folder = Path(runs_dir).resolve() / study
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'optuna.db'}"


def sweep(cfg: TrainConfig, study: str, storage: str | None = None, *, trials: int = 20, space=tuple(SPACE),
          runs_dir="runs", timeout: float | None = None, pruner=None, log=print):
    """Run ``trials`` trials of ``study`` (created, or joined when it exists) in this process:
    each samples the settings in ``space`` over ``cfg`` and trains a run. ``pruner``: an Optuna
    pruner (default: MedianPruner after 5 trials and 3 epochs). Returns the ``optuna.Study``,
    which holds every process's trials."""
    optuna, log = _optuna(), log or (lambda *a, **k: None)
    _check_study(study)
    unknown = sorted(set(space) - set(SPACE))
    if unknown:
        raise ConfigError(f"{_ref('space')}: cannot sample {unknown[0]!r}; choose from: {', '.join(SPACE)}")
    if cfg.solver != "minibatch":
        raise ConfigError(f"{_ref('search')} optuna tunes the minibatch recipe; {_ref('solver')} must be minibatch")
    s = optuna.create_study(study_name=study, storage=_storage(storage or default_storage(runs_dir, study)),
                            direction="maximize", load_if_exists=True,
                            pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3))
    s.optimize(lambda trial: _trial(trial, cfg, space, Path(runs_dir) / study, log), n_trials=trials,
               timeout=timeout, catch=())
    return s


def _trial(trial, cfg, space, folder: Path, log) -> float:
    """One trial: sample, train a run folder, report each epoch's validation accuracy."""
    import optuna

    from .errors import TrainingDiverged
    from .run import resolve, train_run
    from .runfolder import write_status

    sampled = {name: SPACE[name](trial) for name in space}
    trial_cfg = resolve(cfg.replace(**sampled))
    trial.set_user_attr("config", trial_cfg.to_dict())  # what --best writes, wherever the trial ran
    name = f"trial-{trial.number:04d}"

    last = [0]  # the epoch the trial reached

    def on_epoch(epoch, row):
        last[0] = epoch
        trial.report(row["val_acc"], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: val_acc {row['val_acc']:.4f}")

    try:
        run = train_run(trial_cfg, folder, name, report=False, log=None, progress=False, on_epoch=on_epoch,
                        test=False)  # the test set is for the winner, once (refit_best)
    except optuna.TrialPruned as e:
        write_status(folder / name, "pruned", last[0], str(e))
        log(f"{name}: {e}")
        raise
    except TrainingDiverged as e:  # a bad corner of the space: the worst score, not a crash
        log(f"{name}: diverged ({str(e).split(';')[0]})")
        return 0.0
    acc = run.metrics["val_acc"]
    log(f"{name}: val_acc {acc:.4f}  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                    for k, v in sampled.items()))
    return acc


def _storage(url: str):
    """Optuna's RDB storage at ``url``. Two processes that open a new SQLite file at the same
    moment can collide creating its tables: retried. A URL that is not one, or a database
    driver that is not installed, is one line naming the setting."""
    import time

    import optuna
    import sqlalchemy.exc

    shown = _without_password(url)
    for attempt in range(6):
        try:
            return optuna.storages.RDBStorage(url)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as e:  # first: DatabaseErrors too
            if attempt == 5:
                raise ConfigError(f"{_ref('storage')} {shown!r}: {_without_password(str(e).splitlines()[0])}") from None
            time.sleep(0.2 * (attempt + 1))
        except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.DatabaseError, ImportError, ValueError) as e:
            # a URL that is not one, a driver not installed, a file that is no database
            raise ConfigError(f"{_ref('storage')} {shown!r}: {_without_password(str(e).splitlines()[0])}") from None


#: settings a study never decides: where files are read and written, and the machine's
#: resources. A study can be shared (a database several people write to): its stored config
#: once sent a refit's TensorBoard files into another user's ~/.config and asked for 1024
#: threads. These come from ``base`` (the command line), the rest from the winning trial.
LOCAL_SETTINGS = ("data_dir", "no_download", "train_csv", "extra_images", "tensorboard", "threads", "engine",
                  "device", "checkpoint_every", "dry_run")


def _without_password(text: str) -> str:
    """A storage URL (or a message holding one) with its password replaced by ***."""
    import re
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def best_config(study: str, storage: str | None = None, *, runs_dir="runs", base: TrainConfig | None = None):
    """The best trial's settings as it trained (a :class:`TrainConfig`), with the paths and
    resources of ``base`` (:data:`LOCAL_SETTINGS`; default: ``TrainConfig()``'s), and the trial
    (``.value``: its validation accuracy, ``.number``)."""
    optuna = _optuna()
    storage = storage or default_storage(runs_dir, study)
    try:
        best = optuna.load_study(study_name=study, storage=_storage(storage)).best_trial
    except KeyError:
        raise ConfigError(f"no study named {study!r} in {storage}") from None
    except ValueError:
        raise ConfigError(f"study {study!r} has no complete trial yet") from None
    stored = TrainConfig.from_dict(best.user_attrs["config"], source=f"study {study}: trial {best.number}")
    local = (base or TrainConfig()).to_dict()
    return stored.replace(**{k: local[k] for k in LOCAL_SETTINGS}), best


def refit_best(study: str, storage: str | None = None, *, runs_dir="runs", log=print, base: TrainConfig | None = None):
    """The best trial's settings retrained on train + validation (``val_size`` 0) and tested
    once, as the run folder ``RUNS_DIR/STUDY/best-refit-NNNN``. Returns the Run."""
    from .run import train_run

    _check_study(study)
    cfg, best = best_config(study, storage, runs_dir=runs_dir, base=base)
    return train_run(cfg.replace(val_size=0), Path(runs_dir) / study, f"best-refit-{best.number:04d}",
                     report=False, log=log, progress=False)
