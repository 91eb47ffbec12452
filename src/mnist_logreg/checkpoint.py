"""Saving and loading checkpoints: atomic writes, and loads that never execute code.

A checkpoint is a dict saved with ``torch.save``::

    {"format": "mnist-logreg/1", "model": state_dict, "optimizer": state_dict or None,
     "epoch": int, "config": {...resolved options...}, "dataset": str, "classes": [...],
     "metrics": {...}, "history": [...], "versions": {...}, "created": ISO time,
     "trust": {...calibration and digit-likeness, see trust.Trust.state...}}

A bare ``state_dict`` (what the notebook's ``torch.save(model.state_dict(), ...)`` writes)
is accepted everywhere a checkpoint is. :func:`read_fields` reads a checkpoint's fields besides
its tensors without importing torch (``mnist-logreg runs``), so this module imports torch only
where tensors are made or read.
"""
from __future__ import annotations

import collections
import datetime as _dt
import io
import pickle
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ._files import atomic_write, read_input
from .datasets import INPUT_SIZE, NUM_CLASSES
from .errors import CheckpointError

if TYPE_CHECKING:
    from .model import MnistModel

FORMAT = "mnist-logreg/1"
SHAPES = {"linear.weight": (NUM_CLASSES, INPUT_SIZE), "linear.bias": (NUM_CLASSES,)}  # a 784-to-10 model


def versions() -> dict:
    import numpy
    import torch

    from . import __version__

    return {"mnist_logreg": __version__, "torch": str(torch.__version__), "numpy": str(numpy.__version__),
            "python": platform.python_version()}


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model plus everything saved beside it."""

    model: MnistModel
    optimizer_state: dict | None = None
    epoch: int = 0
    config: dict = field(default_factory=dict)
    dataset: str = "mnist"
    classes: tuple = tuple(str(i) for i in range(10))
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    path: Path | None = None
    trust: object = None  # a trust.Trust (calibration, digit-likeness), or None: not fitted


def save(model: MnistModel, path, *, optimizer=None, epoch: int = 0, config: dict | None = None,
         dataset: str = "mnist", classes=None, metrics: dict | None = None,
         history: list | None = None, trust=None) -> Path:
    """Save ``model`` (and optionally optimizer state and metadata) atomically to ``path``.

    Examples
    --------
    >>> import tempfile, os
    >>> from mnist_logreg import MnistModel
    >>> p = os.path.join(tempfile.mkdtemp(), "m.pt")
    >>> _ = save(MnistModel(), p, metrics={"test_acc": 0.9})
    >>> load_checkpoint(p).metrics
    {'test_acc': 0.9}
    """
    import torch

    payload = {
        "format": FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": int(epoch),
        "config": dict(config or {}),
        "dataset": dataset,
        "classes": list(classes or (str(i) for i in range(NUM_CLASSES))),
        "metrics": dict(metrics or {}),
        "history": list(history or []),
        "transform": getattr(model, "transform", "none"),
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **({"trust": trust.state()} if trust is not None else {}),
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return Path(path)


MAX_CHECKPOINT_BYTES = 64 * 2**20  # this model's checkpoint is ~100 KiB; a notebook .pth ~32 KiB


#: the pickle opcodes torch.save writes for dicts, lists and tuples of tensors, strings, numbers,
#: booleans and None; anything else (sets, frozensets, bytearrays, ...) is no checkpoint's
_OPCODES = {"PROTO", "FRAME", "STOP", "MARK", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2",
            "TUPLE3", "SETITEM", "SETITEMS", "APPEND", "APPENDS", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
            "BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "NONE", "NEWTRUE", "NEWFALSE", "BINPUT",
            "LONG_BINPUT", "MEMOIZE", "BINGET", "LONG_BINGET", "GLOBAL", "STACK_GLOBAL", "REDUCE", "BINPERSID",
            "BUILD"}
_BUILDS = {"EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "REDUCE", "BUILD",
           "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINFLOAT", "LONG1", "BININT"}
MAX_OBJECTS = 300_000   # objects a checkpoint's pickle may build (an honest one: about 1,000)
MAX_PICKLE_BYTES = 16 * 2**20


def _check_pickle(data: bytes, path) -> None:
    """Read the checkpoint's pickle opcode by opcode, building nothing: refuse opcodes no
    checkpoint uses and more objects than MAX_OBJECTS, before torch.load materialises them. A
    one-byte EMPTY_SET is a 200-byte object: within the 64 MiB file limit, 8 GB of them."""
    import pickletools
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(names) != 1:
                raise CheckpointError(f"{path}: not a checkpoint: its archive has {len(names)} pickles, not one")
            if z.getinfo(names[0]).file_size > MAX_PICKLE_BYTES:
                raise CheckpointError(f"{path}: refused: its pickle is over {MAX_PICKLE_BYTES // 2**20} MiB "
                                      f"(a checkpoint's is a few kB; its tensors are stored beside it)")
            pickles = [z.read(names[0])]
    except zipfile.BadZipFile:
        pickles = [data]  # torch's legacy format: pickles one after another; the first ones hold the objects
    except (OSError, RuntimeError, NotImplementedError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({str(e)[:100]})") from None
    built = 0
    stream = io.BytesIO(pickles[0])
    for _ in range(6 if len(pickles) == 1 and not data.startswith(b"PK") else 1):
        try:
            for op, arg, _pos in pickletools.genops(stream):
                if op.name not in _OPCODES:
                    raise CheckpointError(f"{path}: refused: its pickle uses {op.name}, which no checkpoint does")
                built += op.name in _BUILDS
                if op.name == "LONG1" and abs(arg) >= 2**63:
                    raise CheckpointError(f"{path}: refused: a {len(str(abs(arg)))}-digit integer")
                if built > MAX_OBJECTS:
                    raise CheckpointError(f"{path}: refused: its pickle builds over {MAX_OBJECTS:,} objects "
                                          f"(a checkpoint builds about a thousand)")
        except CheckpointError:
            raise
        except Exception:  # the end of the pickles, or garbage: torch.load says which
            break
        if stream.tell() >= len(pickles[0]):
            break


def _torch_load(path: Path):
    import torch

    data = read_input(path, MAX_CHECKPOINT_BYTES, CheckpointError)
    _check_pickle(data, path)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses globals it does not know: that is a pickle trying to run code.
        first = str(e).strip().splitlines()
        hint = next((ln.strip() for ln in first if "Unsupported global" in ln), "")
        raise CheckpointError(f"{path}: refused: the file contains Python objects other than "
                              f"tensors, which could run code when loaded{': ' + hint if hint else ''}") from None
    except Exception as e:  # torch.load raises many types on garbage (IndexError, EOFError, ...)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, OSError) and e.strerror:
            msg = e.strerror
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({msg[:200]})") from None


def _state_dict_from(obj, path) -> dict:
    import torch

    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state_dict or an mnist-logreg checkpoint, "
                              f"found {type(obj).__name__}")
    sd = obj.get("model") if "model" in obj and isinstance(obj.get("model"), dict) else obj
    if not all(isinstance(k, str) for k in sd):
        raise CheckpointError(f"{path}: the state_dict has keys that are not names: "
                              f"{[k for k in sd if not isinstance(k, str)][:3]}")
    # tolerate a plain nn.Linear's state_dict and DataParallel's "module." prefix
    if set(sd) == {"weight", "bias"}:
        sd = {f"linear.{k}": v for k, v in sd.items()}
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    for key, shape in SHAPES.items():
        if key not in sd:
            raise CheckpointError(f"{path}: missing key {key!r} (found: {', '.join(map(str, sd)) or 'none'})")
        t = sd[key]
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{path}: {key} is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != shape:
            raise CheckpointError(f"{path}: {key} has shape {tuple(t.shape)}, expected {shape} "
                                  f"(a 784-to-10 linear model)")
        if t.layout != torch.strided or not t.is_floating_point():
            raise CheckpointError(f"{path}: {key} is a {t.layout} {t.dtype} tensor, expected a dense float one")
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{path}: {key} contains NaN or infinite values")
        if float(t.abs().max()) > MAX_WEIGHT:  # 3e38 is finite, and overflows the first logit
            raise CheckpointError(f"{path}: {key} has values up to {float(t.abs().max()):.3g}; a model's are at "
                                  f"most {MAX_WEIGHT:g} (trained ones: a few units)")
    extra = sorted(set(sd) - set(SHAPES))
    if extra:
        raise CheckpointError(f"{path}: unexpected keys {extra} (not a 784-to-10 linear model)")
    return {k: sd[k].float() for k in SHAPES}


MAX_WEIGHT = 1e6  # |w| above this makes logits of 784 pixels overflow float32's range long before 3e38

_NUMBER = (int, float)
#: the one schema of a checkpoint's fields besides the weights: field -> (types, rule, what it must be)
FIELDS = {
    "format": (str, None, "a format name"),
    "epoch": (int, lambda v: not isinstance(v, bool) and v >= 0, "a whole number >= 0"),
    "optimizer": ((dict, type(None)), None, "an optimizer state (a table) or none"),
    "config": (dict, lambda v: all(isinstance(k, str) for k in v) and all(_plain(x, 1) for x in v.values()),
               "a table of settings (numbers, strings, true/false, lists of them)"),
    # names reach terminals, HTML and the page's script: plain names only (a dataset name as
    # $MNIST_LOGREG_DATASETS allows them; class names printable, no control or line-break characters)
    "dataset": (str, lambda v: re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", v) is not None,
                "a dataset name (lower-case letters, digits, '.', '_', '-')"),
    "classes": (list, lambda v: len(v) == NUM_CLASSES and all(isinstance(c, str) and _printable(c) for c in v),
                f"a list of {NUM_CLASSES} class names (1 to 40 printable characters)"),
    "metrics": (dict, lambda v: all(isinstance(k, str) for k in v) and all(_plain(x, 4) for x in v.values()),
                "a table of metrics (numbers, strings, tables of them)"),
    "history": (list, lambda v: len(v) <= MAX_HISTORY and all(isinstance(r, dict) and all(isinstance(k, str) for k in r)
                                    and type(r.get("epoch")) is int and 0 <= r["epoch"] <= 10**6
                                    and all(x is None or (isinstance(x, _NUMBER) and not isinstance(x, bool))
                                            for x in r.values()) for r in v),
                "a list of per-epoch rows of numbers, each with its epoch"),
    "transform": (str, None, "a transform name"),
    "versions": (dict, None, "a table of versions"),
    "created": (str, None, "a time"),
    "trust": (dict, None, "a table of calibration and digit-likeness"),
}


OLD_FIELDS = ("split_seed",)  # written by earlier versions (the seed was later kept in the config); ignored
MAX_HISTORY = 100_000  # rows: a run of 100,000 epochs (an honest one has tens)


def _plain(value, depth: int) -> bool:
    """A number (not a 20-digit-plus integer), string, bool, None, or a list / string-keyed table
    of such, nested at most ``depth`` levels."""
    if value is None or isinstance(value, (bool, float, str)):
        return True
    if isinstance(value, int):
        return abs(value) < 2**63
    if depth <= 0:
        return False
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth - 1) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and _plain(v, depth - 1) for k, v in value.items())


def _printable(name: str) -> bool:
    """1 to 40 characters, none of them a control, format or line/paragraph separator."""
    import unicodedata
    return 0 < len(name) <= 40 and all(unicodedata.category(ch)[0] not in "CZ" or ch == " " for ch in name)


def _check_fields(obj: dict, path) -> None:
    """Every field of an mnist-logreg checkpoint against FIELDS: a wrong type is one line."""
    for key in obj:
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: a field named {key!r} (fields are named by strings)")
        if key not in FIELDS and key not in ("model", *OLD_FIELDS):
            raise CheckpointError(f"{path}: a field named {key[:40]!r}, which no checkpoint of this tool has")
    for key, (types, rule, what) in FIELDS.items():
        if key in obj and not (isinstance(obj[key], types) and (rule is None or rule(obj[key]))):
            shown = repr(obj[key])
            raise CheckpointError(f"{path}: {key} must be {what}, found {shown[:60] + '...' if len(shown) > 60 else shown}")


def _check_config(config: dict, path) -> None:
    """The settings a checkpoint records, against TrainConfig's types and ranges (keys that are
    no settings, from older versions or other tools, are left alone; missing ones default)."""
    from .config import TrainConfig
    from .errors import ConfigError

    try:
        TrainConfig.from_dict({k: v for k, v in config.items() if k in TrainConfig.names()})
    except ConfigError as e:
        raise CheckpointError(f"{path}: config: {e}") from None


def load_checkpoint(path) -> Checkpoint:
    """Load a checkpoint or a bare state_dict safely (``weights_only=True``), checking keys,
    shapes and values. Raises :class:`CheckpointError` with one line naming the problem."""
    from .model import MnistModel

    path = _checkpoint_path(path)
    obj = _torch_load(path)  # a FIFO, a device, an oversized file: one line from read_input
    sd = _state_dict_from(obj, path)
    transform = _transform(obj, path)
    model = MnistModel(transform=transform)
    model.load_state_dict(sd)
    model.eval()
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        _check_fields(obj, path)
        _check_config(obj.get("config") or {}, path)
        return Checkpoint(model=model, optimizer_state=obj.get("optimizer"), epoch=int(obj.get("epoch", 0)),
                          config=dict(obj.get("config") or {}), dataset=obj.get("dataset", "mnist"),
                          classes=tuple(obj.get("classes") or ()), metrics=dict(obj.get("metrics") or {}),
                          history=list(obj.get("history") or []),
                          meta={k: obj[k] for k in ("versions", "created") if k in obj}, path=path,
                          trust=_trust_from(obj, path))
    return Checkpoint(model=model, path=path, meta={"source": "state_dict"})


def _transform(obj, path) -> str:
    """The input transform the checkpoint's model applies ("none" for a bare state_dict)."""
    from .config import TRANSFORMS

    transform = obj.get("transform", "none") if isinstance(obj, dict) and obj.get("format") == FORMAT else "none"
    if transform not in TRANSFORMS:
        raise CheckpointError(f"{path}: unknown input transform {transform!r}")
    return transform


def _checkpoint_path(path) -> Path:
    """The checkpoint file itself: ``path``, or a run folder's checkpoint."""
    path = Path(path)
    if path.is_dir():
        from .runfolder import CHECKPOINT
        path = path / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    return path


@dataclass
class _Tensor:
    """What :func:`read_fields` makes of a tensor: its shape, and where its numbers are."""

    shape: tuple
    storage: tuple  # (storage type, key in the archive)
    offset: int
    stride: tuple


def _tensor(storage, offset, size, stride, *args):  # torch._utils._rebuild_tensor_v2's arguments
    return _Tensor(tuple(size), storage, offset, tuple(stride))


class _FieldReader(pickle.Unpickler):
    """torch.save's pickle, its tensors read as :class:`_Tensor`: the globals are the three an
    mnist-logreg checkpoint holds (anything else is refused: load_checkpoint then decides)."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _tensor
        if module == "torch" and name.endswith("Storage") and name.isidentifier():
            return name
        raise pickle.UnpicklingError(f"global {module}.{name}")

    def persistent_load(self, pid):  # ("storage", type, key, location, numel)
        return (pid[1], str(pid[2]))


def read_fields(path) -> dict:
    """An mnist-logreg checkpoint's fields (epoch, config, dataset, classes, metrics, history, ...)
    read and checked as :func:`load_checkpoint` checks them, weights included, without torch
    (``mnist-logreg runs``): tensors come back as shapes and places. ``trust`` is checked to be
    a table only (``runs`` does not show it; what answers loads it with load_checkpoint). Raises
    :class:`CheckpointError` for anything else (a bare state_dict, another tool's pickle, a
    damaged file): :func:`load_checkpoint` then says exactly what is wrong."""
    import zipfile

    path = _checkpoint_path(path)
    data = read_input(path, MAX_CHECKPOINT_BYTES, CheckpointError)
    _check_pickle(data, path)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            (name,) = [n for n in z.namelist() if n.endswith("/data.pkl")]
            obj = _FieldReader(io.BytesIO(z.read(name))).load()
            sd = obj.get("model") if isinstance(obj, dict) and obj.get("format") == FORMAT else None
            honest = _weights_ok(sd, lambda key: z.read(name[:-len("data.pkl")] + "data/" + key))
    except Exception as e:  # not a zip, not one pickle, a global it does not read, garbage
        raise CheckpointError(f"{path}: not read without torch ({type(e).__name__})") from None
    if not honest:
        raise CheckpointError(f"{path}: not an mnist-logreg checkpoint that reads without torch")
    _transform(obj, path)
    _check_fields(obj, path)
    _check_config(obj.get("config") or {}, path)
    return obj


def _weights_ok(sd, read) -> bool:
    """A 784-to-10 model's two float32 tensors, dense, finite and at most MAX_WEIGHT (as
    _state_dict_from checks them), read from the archive's bytes with the standard library."""
    import array
    import math
    import sys

    if sys.byteorder != "little" or not isinstance(sd, dict) or set(sd) != set(SHAPES):
        return False
    for key, shape in SHAPES.items():
        t, size = sd[key], math.prod(shape)
        dense = (INPUT_SIZE, 1) if len(shape) == 2 else (1,)
        if not isinstance(t, _Tensor) or t.shape != shape or t.stride != dense or t.storage[0] != "FloatStorage":
            return False
        values = array.array("f", read(t.storage[1]))[t.offset:t.offset + size]
        if len(values) != size or not all(math.isfinite(v) and abs(v) <= MAX_WEIGHT for v in values):
            return False
    return True


def _trust_from(obj: dict, path):
    """The checkpoint's calibration and digit-likeness (None when it has none), checked."""
    if "trust" not in obj:
        return None
    from .trust import Trust
    try:
        return Trust.from_state(obj["trust"], NUM_CLASSES)
    except ValueError as e:
        raise CheckpointError(f"{path}: trust: {e}") from None


def load(path) -> MnistModel:
    """Load just the model from a checkpoint, a run folder or a notebook ``.pth`` state_dict."""
    return load_checkpoint(path).model
