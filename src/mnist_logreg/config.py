"""Every training setting, declared once: its type, default, valid range and help text.

:class:`TrainConfig` is a frozen dataclass whose field metadata is the one table of settings
(in the spirit of scikit-learn's ``_parameter_constraints``). It validates itself on
construction, so an instance is always a config that can run; it is saved with every run (in
the checkpoint and as ``config.toml``), read back from TOML, and the ``train`` / ``tune``
options of the command line are generated from it. Errors name the setting (``lr``); the
CLI shows the same error with the flag (``--lr``), a config file with the file's name.

Examples
--------
>>> cfg = TrainConfig()                       # the notebook's settings
>>> cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs
('adam', 0.001, 128, 20)
>>> cfg.replace(lr=2e-3, epochs=60).lr
0.002
>>> TrainConfig(lr=-1)
Traceback (most recent call last):
...
mnist_logreg.errors.ConfigError: lr must be a positive number, got -1.0
>>> TrainConfig.preset("digits").transform
'deskew'
>>> TrainConfig.from_toml(TrainConfig.preset("fashion").to_toml()) == TrainConfig.preset("fashion")
True
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .errors import setting_ref as _ref

ENGINES = ("auto", "native", "torchscript", "python")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
SOLVERS = ("minibatch", "newton")
SEARCHES = ("grid", "optuna")
#: the settings an Optuna trial can sample (sweep.py says how)
SPACE_SETTINGS = ("lr", "epochs", "lr_schedule", "loss_cap", "loss_q", "transform", "weight_decay", "batch_size")
TRANSFORMS = ("none", "deskew", "cbrt")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
RUN_FOLDER = "run"  # tensorboard's value for "in the run folder" (a folder named run: ./run)


def setting(default, help: str, *, low=None, above=None, high=None, choices=None, metavar=None,
            resumable: bool = False, const=None):
    """A dataclass field with its rules: ``low`` <= value (or ``above`` < value) <= ``high``,
    one of ``choices``; ``resumable`` settings may change when a run is resumed (they do not
    change the maths of the epochs already run); ``const``: the value of the bare flag (the
    option's argument is then optional)."""
    return field(default=default, metadata={"help": help, "low": low, "above": above, "high": high,
                                            "choices": choices, "metavar": metavar, "resumable": resumable,
                                            "const": const})


@functools.cache
def setting_types(cls) -> dict:
    """Each setting's type, resolved once per config class (``typing.get_type_hints`` parses
    every string annotation again on each call: half the time of building a config)."""
    return typing.get_type_hints(cls)


@dataclass(frozen=True)
class _Settings:
    """Validation shared by every config class: types, ranges and choices from the field
    metadata, then the class's own combination checks (``_check``)."""

    def __post_init__(self):
        hints = setting_types(type(self))
        for f in dataclasses.fields(self):
            value = _coerce(f.name, getattr(self, f.name), hints[f.name])
            object.__setattr__(self, f.name, value)
            _check_range(f, value)
        self._check()

    def _check(self):
        pass

    # -- construction and conversion --------------------------------------------------------
    def replace(self, **changes):
        """A copy with ``changes`` applied, validated like a new config."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}; the settings are: {', '.join(self.names())}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def names(cls) -> list:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict, *, source: str | None = None):
        """A config from a mapping of settings; unknown keys are an error naming the key (and
        ``source``, e.g. the file it came from); missing keys take their defaults."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source + ': ' if source else ''}expected a table of settings, "
                              f"got {type(values).__name__}")
        unknown = sorted(map(str, set(values) - set(cls.names())))
        if unknown:
            raise ConfigError(f"{source + ': ' if source else ''}unknown setting {unknown[0]!r}; "
                              f"the settings are: {', '.join(cls.names())}")
        try:
            return cls(**values)
        except ConfigError as e:
            if source is None:
                raise
            raise ConfigError(f"{source}: {e}") from None  # named as in the file: its keys

    def to_toml(self) -> str:
        """The settings as TOML, one ``key = value`` line each; a setting that is not set
        (None) is left out, as TOML has no null, and reads back as its default."""
        lines = [f"# mnist-logreg {type(self).__name__}"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in self.to_dict().items() if v is not None]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, *, source: str | None = None):
        try:
            import tomllib
        except ImportError:  # Python 3.10: the same parser, as a package
            import tomli as tomllib

        _check_toml_shape(text, source or "config")
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{source or 'config'}: not valid TOML: {e}") from None
        return cls.from_dict(values, source=source or "config")

    @classmethod
    def load(cls, path):
        """Read a TOML file of settings (``config.toml`` of a run, or one of your own)."""
        from ._files import read_input

        path = Path(path)
        try:
            text = read_input(path, 2**20, ConfigError).decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        return cls.from_toml(text, source=str(path))


@dataclass(frozen=True)
class TrainConfig(_Settings):
    """Every setting of a training run. Defaults are the notebook's: Adam, lr 1e-3, batch 128,
    20 epochs, a seeded 50k/10k split of MNIST. See :func:`mnist_logreg.train_run`."""

    # -- data ----------------------------------------------------------------------------
    dataset: str = setting("mnist", "dataset: mnist, fashion-mnist or kmnist (or one declared in "
                           "$MNIST_LOGREG_DATASETS)", metavar="NAME")
    data_dir: typing.Optional[str] = setting(
        None, "folder searched first for the data (torchvision layout ROOT/MNIST/raw/ or the four files "
              "flat); then $MNIST_LOGREG_DATA, then ./data", metavar="DIR", resumable=True)
    no_download: bool = setting(False, "never download; fail with the list of expected files instead",
                                resumable=True)
    train_csv: typing.Optional[str] = setting(
        None, "train on a Kaggle Digit Recognizer train.csv instead (no test set)", metavar="FILE")
    extra_images: typing.Optional[str] = setting(
        None, "a folder of labelled examples to learn from as well (labels.csv + 28x28 PNGs: what serve "
              "--collect writes and the page's \"download my examples\" holds); they join the training split "
              "only", metavar="DIR")
    extra_weight: int = setting(
        20, "how many times each --extra-images example counts (it is repeated in the training split)", low=1,
        high=10_000, metavar="W")
    val_size: int = setting(10_000, "validation images held out of train", low=0, high=10**9)
    train_size: int = setting(
        0, "train on this many images of the training split, a seeded sample (0: all of them): a quicker run, or "
           "a point of a learning curve; validation and test sets stay whole", low=0, high=10**9, metavar="N")
    seed: int = setting(0, "seed of the initial weights, the split and the shuffling", low=0, high=2**32 - 1)
    dry_run: bool = setting(False, "a quick check: 1 epoch on 2,000 training images, 1,000 validation images")
    calibration_holdout: int = setting(
        5000, "images held out to fit the calibration and the digit-likeness table when there is no validation "
              "split (val_size 0): a first model is trained without them, with these same settings, which doubles "
              "the training time (at most a fifth of the training images; 0: none, and the answers then show the "
              "plain softmax and no digit-likeness); with a validation split, that split is used", low=0,
        high=10**9)
    transform: str = setting(
        "none", "fixed input transform ahead of the linear layer, applied in training, evaluation, predict, "
                "serve and export: deskew straightens each digit by its image moments (best for digits); "
                "cbrt takes each pixel's cube root (best for clothing)", choices=TRANSFORMS)
    # -- mini-batch training ---------------------------------------------------------------
    solver: str = setting(
        "minibatch", "minibatch: the notebook's mini-batch training (optimizer, lr, ...); newton: the exact "
                     "optimum of mean cross-entropy + lam/2 ||W||^2 on the training split", choices=SOLVERS)
    epochs: int = setting(20, "epochs to train (when resuming: the epochs to add)", low=1, high=10**6)
    lr: float = setting(1e-3, "learning rate", above=0)
    batch_size: int = setting(128, "mini-batch size", low=1, high=2**20)
    optimizer: str = setting("adam", "optimizer", choices=OPTIMIZERS)
    lr_schedule: str = setting(
        "constant", "learning rate per epoch: constant (the notebook's), or cosine: from lr down to nearly 0 "
                    "along a half cosine over the run's epochs", choices=LR_SCHEDULES)
    momentum: float = setting(0.9, "momentum (sgd only)", low=0)
    weight_decay: float = setting(0.0, "weight decay (L2)", low=0)
    loss_cap: typing.Optional[float] = setting(
        None, "robust loss: cap each image's cross-entropy at NATS (e.g. 5), so that images the linear model "
              "gets hopelessly wrong (p(true) < e^-NATS) stop pulling on the weights (default: no cap, the "
              "notebook's plain cross-entropy)", above=0, metavar="NATS")
    loss_q: float = setting(
        0.0, "robust loss: generalised cross-entropy (1 - p(true)^Q) / Q, between 0 and 1; each image's "
             "gradient is weighted by p(true)^Q (0: the cross-entropy; not with distillation)",
        low=0, high=1, metavar="Q")
    average_from: typing.Optional[int] = setting(
        None, "weight averaging: the final model is the mean of the weights at the end of each epoch from "
              "EPOCH on (still one linear layer; off by default)", low=1, high=10**6, metavar="EPOCH")
    augment_shift: float = setting(0.0, "augmentation: random shifts up to PX pixels (each epoch a new draw)",
                                   low=0, metavar="PX")
    augment_rotate: float = setting(0.0, "augmentation: random rotations up to DEG degrees", low=0, metavar="DEG")
    augment_scale: float = setting(0.0, "augmentation: random scaling by up to +-FRAC (0.1 = 10%)", low=0,
                                   metavar="FRAC")
    augment_elastic: float = setting(0.0, "augmentation: smooth elastic distortion of up to PX pixels", low=0,
                                     metavar="PX")
    distill_epochs: int = setting(
        0, "distillation: train a small CNN teacher for N epochs (0: off) and train the linear model on a mix "
           "of the true labels and the teacher's softened probabilities; the teacher is a training aid only "
           "and is not saved", low=0, high=1000, metavar="N")
    distill_temperature: float = setting(2.0, "softmax temperature of the teacher's probabilities", above=0,
                                         metavar="T")
    distill_alpha: float = setting(0.5, "weight of the true labels in the targets (1 - A on the teacher's), "
                                        "between 0 and 1", low=0, high=1, metavar="A")
    # -- the exact solver -----------------------------------------------------------------
    lam: float = setting(1e-4, "L2 strength for solver newton (scikit-learn's C = 1 / (lam * n_train))", above=0)
    tol: float = setting(1e-5, "gradient-norm tolerance for solver newton", above=0)
    max_iter: int = setting(100, "Newton iterations at most", low=1, high=10**6)
    # -- how it runs (no effect on the result) ----------------------------------------------
    threads: typing.Optional[int] = setting(
        None, "CPU threads (default: 1 for minibatch, whose small products lose with more threads on a busy "
              "machine, see bench/train_speed.py; all cores for newton)", low=1, high=1024, resumable=True)
    engine: str = setting(
        "auto", "how minibatch Adam/AdamW epochs run, all the same maths: native (a C kernel built on first "
                "use with the system C compiler, CPU), torchscript, python; auto picks the fastest that applies: "
                "native on a CPU with AVX-512, else torchscript (the run's metrics record which ran)",
        choices=ENGINES, resumable=True)
    device: str = setting("auto", "cpu, cuda, cuda:N, or auto (cuda when present)", resumable=True)
    checkpoint_every: int = setting(1, "write checkpoint.pt every N epochs (atomically)", low=1, high=10**6,
                                    resumable=True)
    tensorboard: typing.Optional[str] = setting(
        None, "write TensorBoard event files (loss, accuracy and learning rate per epoch, the weight templates, "
              "the config): bare, into the run folder's tensorboard/; with DIR, into DIR/<run name> (needs the "
              "tensorboard extra; view with: tensorboard --logdir DIR)", metavar="DIR", resumable=True,
        const=RUN_FOLDER)

    def _check(self):
        if not _DEVICE.fullmatch(self.device):
            raise ConfigError(f"{_ref('device')} must be cpu, cuda, cuda:N or auto, not {self.device!r}")
        soft = self.distill_epochs > 0
        if self.solver == "newton" and (self.loss_cap is not None or self.loss_q):
            raise ConfigError(f"{_ref('loss_cap')} and {_ref('loss_q')} apply to {_ref('solver')} minibatch; "
                              f"newton solves the plain L2-regularised cross-entropy exactly")
        if self.loss_q and soft:
            raise ConfigError(f"{_ref('loss_q')} works with hard labels only, not with distillation's soft "
                              f"targets ({_ref('distill_epochs')})")
        why = engine_limit(self.engine, self.optimizer, soft)
        if why:
            raise ConfigError(f"{_ref('engine')} {self.engine} cannot run here: {why}")

    @classmethod
    def preset(cls, name: str) -> "TrainConfig":
        """A named recipe: ``notebook`` (the defaults), ``digits`` (95.9% on MNIST) or
        ``fashion`` (86.4% on Fashion-MNIST); see :data:`PRESETS`."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose from: {', '.join(PRESETS)}")
        return cls(**PRESETS[name][0])


@dataclass(frozen=True)
class TuneConfig(_Settings):
    """What ``tune`` searches (see :func:`mnist_logreg.tune`); the data, transform, seed and
    split come from a :class:`TrainConfig`."""

    solver: str = setting("newton", "what to tune: newton (lam; each exact optimum warm-starts the next) or "
                                    "minibatch (lr; every epoch is a candidate)", choices=SOLVERS)
    lams: typing.Tuple[float, ...] = setting((1e-3, 3e-4, 1e-4, 3e-5, 1e-5), "lam grid for newton", above=0)
    lrs: typing.Tuple[float, ...] = setting((3e-4, 1e-3, 3e-3), "lr grid for minibatch", above=0)
    max_epochs: int = setting(40, "epochs tried for minibatch (every epoch is a candidate)", low=1, high=10**6)
    refit: bool = setting(False, "retrain the winner on train+validation (val_size 0) before testing")
    search: str = setting("grid", "grid: the grid above, in this process; optuna: an Optuna study of the minibatch "
                                  "recipe (see --space), shared through --storage by every process that joins it",
                          choices=SEARCHES)
    trials: int = setting(20, "optuna: trials this process runs", low=1, high=10**6, metavar="N")
    study: typing.Optional[str] = setting(
        None, "optuna: the study's name, also its folder in the runs folder, which holds a run folder per trial "
              "(default: DATASET-sweep)", metavar="NAME")
    storage: typing.Optional[str] = setting(
        None, "optuna: where the study lives, an SQLAlchemy URL: sqlite:///sweep.db on one machine, "
              "postgresql://... or mysql://... for many (default: sqlite:///RUNS_DIR/STUDY/optuna.db)",
        metavar="URL")
    space: typing.Tuple[str, ...] = setting(
        SPACE_SETTINGS, "optuna: the settings each trial samples (default: all of them, less those given on the "
                        "command line)", choices=SPACE_SETTINGS, metavar="SETTING")
    timeout: typing.Optional[float] = setting(None, "optuna: stop starting trials after this many seconds",
                                              above=0, metavar="S")


#: the TrainConfig settings that ``tune`` uses (its command-line options, beside TuneConfig's)
TUNE_TRAIN_SETTINGS = ("dataset", "data_dir", "no_download", "transform", "seed", "val_size", "train_size",
                       "dry_run", "tol", "threads")


#: name -> (settings, what it is): the recipes of bench/accuracy.md, each chosen on validation
#: and then refitted on train + validation (val_size 0), as the bench measured them
PRESETS = {
    "notebook": ({}, "the tutorial notebook's settings: Adam, lr 1e-3, batch 128, 20 epochs (92.7% on MNIST)"),
    "digits": (dict(transform="deskew", epochs=60, lr=2e-3, lr_schedule="cosine", loss_cap=5.0, loss_q=0.5,
                    val_size=0),
               "deskew + robust loss + cosine over 60 epochs, refit on all 60,000 images (95.9% on MNIST)"),
    "fashion": (dict(dataset="fashion-mnist", transform="cbrt", epochs=60, lr_schedule="cosine", loss_q=0.5,
                     val_size=0),
                "cube root + robust loss + cosine over 60 epochs, refit on all 60,000 images "
                "(86.4% on Fashion-MNIST)"),
}


# -- validation helpers ---------------------------------------------------------------------
MAX_TOML_KEYS = 200      # a config holds each setting once: about 40
MAX_TOML_VALUE = 10_000  # characters in one value (a list of a few hundred numbers)


def _check_toml_shape(text: str, source: str) -> None:
    """A settings file is flat: ``name = value`` lines, a value a string, number, boolean or a list
    of those. Anything else is refused before the TOML parser sees it: tables, dotted or quoted
    keys, inline tables, lists of lists (tomllib's memory grows with the square of dotted keys: a
    32 kB file took 1.23 GB; 10,000 nested arrays end in a RecursionError)."""
    keys, value, depth, quote, i, n = 0, 0, 0, "", 0, len(text)
    at_start = True
    while i < n:
        c = text[i]
        if quote:  # inside a string: only its end matters
            if quote in ('"', '"""') and c == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i, quote = i + len(quote), ""
                continue
            if c == "\n" and len(quote) == 1:
                raise ConfigError(f"{source}: a string runs past the end of its line")
            i += 1
            continue
        if at_start and c not in " \t\r\n#":
            m = _TOML_KEY.match(text, i)
            if not m:
                line = text.count("\n", 0, i) + 1
                raise ConfigError(f"{source}: line {line}: expected a setting as name = value "
                                  f"(no tables, dotted or quoted names)")
            keys += 1
            if keys > MAX_TOML_KEYS:
                raise ConfigError(f"{source}: more than {MAX_TOML_KEYS} settings")
            i, at_start, value = m.end(), False, 0
            continue
        if c == "#":  # a comment, to the end of the line
            i = text.find("\n", i) if text.find("\n", i) >= 0 else n
            continue
        if c in "\"'":
            quote = text[i:i + 3] if text.startswith(c * 3, i) else c
            i += len(quote)
            value += len(quote)
            continue
        if c == "{":
            raise ConfigError(f"{source}: inline tables are no settings")
        depth += (c == "[") - (c == "]")
        if depth > 1:
            raise ConfigError(f"{source}: lists of lists are no settings")
        if c == "\n" and depth == 0:
            at_start = True
        value += 1
        if value > MAX_TOML_VALUE:
            raise ConfigError(f"{source}: a value over {MAX_TOML_VALUE:,} characters")
        i += 1


_TOML_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}[ \t]*=")



def _coerce(name, value, hint):
    """``value`` as the field's type: an int where a float is wanted becomes a float; bools
    are not numbers; anything else of the wrong type is an error naming the setting."""
    optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
    if optional:
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:  # a list of numbers (tune's grids)
        item = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{_ref(name)} must be a non-empty list of numbers, got {value!r}")
        return tuple(_coerce(name, v, item) for v in value)
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}[hint]
    if not ok(value):
        noun = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[hint]
        raise ConfigError(f"{_ref(name)} must be {noun}, got {value!r}")
    if hint is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a path with a byte that is no UTF-8: config.toml could not hold it
            raise ConfigError(f"{_ref(name)} must be text (UTF-8), got {value!r}") from None
    if hint is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{_ref(name)} must be a finite number, got {value}")
    return value


def _check_range(f, value):
    m = f.metadata
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v is None or isinstance(v, bool):
            continue
        if m["choices"] is not None and v not in m["choices"]:
            raise ConfigError(f"{_ref(f.name)} must be one of {', '.join(m['choices'])}, got {v!r}")
        bad = ((m["low"] is not None and v < m["low"]) or (m["above"] is not None and not v > m["above"])
               or (m["high"] is not None and v > m["high"]))
        if bad:
            raise ConfigError(f"{_ref(f.name)} must be {range_text(f, v)}, got {v!r}")


def range_text(f, value=None) -> str:
    """The rule a numeric field's ``value`` breaks, in words: 'a positive number', 'at least
    1', 'at most 1048576', 'between 0 and 1' (for a fraction)."""
    m = f.metadata
    low, high = m["above"] if m["above"] is not None else m["low"], m["high"]
    if high is not None and low is not None and high - low <= 1:
        return f"between {_num(low)} and {_num(high)}"
    if high is not None and value is not None and value > high:
        return f"at most {_num(high)}"
    if m["above"] is not None:
        return "a positive number" if m["above"] == 0 else f"more than {_num(m['above'])}"
    if m["low"] is not None:
        return f"at least {_num(m['low'])}" if m["low"] else "0 or more"
    return "valid"


def _num(v) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    if isinstance(v, tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    # a TOML basic string: JSON's escapes are TOML's, except that DEL must be escaped too
    return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")


ADAM_ONLY = "it runs Adam and AdamW only"
HARD_LABELS_ONLY = "it trains on hard labels only, not on distillation's soft targets"


def engine_limit(engine: str, optimizer: str, soft: bool) -> str | None:
    """Why ``engine`` cannot run ``optimizer`` (with distillation's ``soft`` targets) on any
    machine, or None; the engines package adds what depends on the machine (a compiler, TorchScript)."""
    if engine in ("native", "torchscript") and optimizer not in ("adam", "adamw"):
        return ADAM_ONLY
    if engine == "native" and soft:
        return HARD_LABELS_ONLY
    return None


def check_average_from(average_from, last_epoch: int) -> None:
    """Weight averaging starts at an epoch of the run: 1..last_epoch (None: no averaging)."""
    if average_from is not None and not 1 <= average_from <= last_epoch:
        raise ConfigError(f"{_ref('average_from')} must be an epoch of this run (1..{last_epoch}), "
                          f"got {average_from}")


def resumable(name: str) -> bool:
    """Whether setting ``name`` may change when a run is resumed: it does not change the
    results (threads, engine, ...), or it is ``epochs``, the run's length."""
    return next(f for f in dataclasses.fields(TrainConfig) if f.name == name).metadata["resumable"] or name == "epochs"
