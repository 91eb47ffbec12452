"""Labelled examples people give the model ("wrong? it was a 1"): one folder layout for every
tool that writes or reads them.

    DIR/labels.csv    the index: a header ``file,label,saved``, then one row per example,
                      appended, never rewritten (``saved``: UTC time, ISO 8601)
    DIR/<name>.png    the 28x28 grey picture the model read (light digit on black: MNIST form)

``serve --collect DIR`` writes it (one file per example, then its index row, under a lock:
safe with ``--workers N``; bounded in count; a name is never reused), the static site's
"download my examples" zip holds it, ``train --extra-images DIR`` learns from it and
``predict --image DIR`` scores against its labels. Nothing about the person is kept: the
28x28 input, the label and the time.

Examples
--------
>>> import numpy as np, tempfile
>>> folder = tempfile.mkdtemp()
>>> one = np.zeros((28, 28), np.float32); one[4:24, 13:15] = 1.0
>>> name = add(folder, one, 1, num_classes=10)
>>> images, labels, names = read(folder, num_classes=10)
>>> images.shape, labels.tolist(), names == [name]
((1, 28, 28), [1], True)
"""
from __future__ import annotations

import csv
import io
import os
import re
import secrets
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import ConfigError

INDEX = "labels.csv"
HEADER = ["file", "label", "saved"]
MAX_EXAMPLES = 10_000            # serve --collect's default bound; read() refuses more
MAX_INDEX_BYTES = 4 * 2**20      # 10,000 rows are ~0.5 MB
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class FolderFull(ConfigError):
    """The folder holds its bound of examples."""


def add(folder, pixels, label: int, num_classes: int, limit: int = MAX_EXAMPLES) -> str:
    """Save one example (``pixels``: 28x28 in [0, 1], MNIST form) with its ``label``; returns
    the new file's name. The picture is written whole under a fresh name (never over a file),
    then its index row is appended, both under a lock on the folder."""
    x = np.asarray(pixels, dtype=np.float64)
    if x.shape not in ((28, 28), (784,)) or not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ConfigError("an example is 28x28 (or 784) numbers in [0, 1]")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
        raise ConfigError(f"label must be a class index from 0 to {num_classes - 1}, got {label!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    png = _png(np.round(x.reshape(28, 28) * 255).astype(np.uint8))
    with _locked(folder):
        count = len(_rows(folder)) if (folder / INDEX).exists() else 0
        if count >= limit:
            raise FolderFull(f"{folder}: holds {count:,} examples, its limit; no more are saved")
        now = datetime.now(timezone.utc)
        name = _write_new(folder, now.strftime("%Y%m%dT%H%M%S") + "-{}.png", png)
        _append(folder, [name, str(int(label)), now.isoformat(timespec="seconds")])
    return name


def read(folder, num_classes: int, limit: int = MAX_EXAMPLES):
    """The examples of ``folder``: (uint8 images (n, 28, 28), int64 labels (n,), file names).
    A 28x28 grey file is taken as it is (MNIST form, as ``add`` writes it); any other picture
    goes through :func:`mnist_logreg.preprocess.preprocess`, as ``predict --image`` reads it."""
    from .preprocess import load_image, preprocess

    folder = Path(folder)
    rows = _rows(folder)
    if not rows:
        raise ConfigError(f"{folder / INDEX}: no examples in it")
    if len(rows) > limit:
        raise ConfigError(f"{folder / INDEX}: {len(rows):,} examples, over the limit of {limit:,}")
    labels = labels_of(folder, num_classes, rows)
    images = []
    for name in labels:
        im = load_image(folder / name)
        images.append(np.asarray(im) if im.size == (28, 28) else np.round(preprocess(im, name) * 255).astype(np.uint8))
    return np.stack(images), np.array(list(labels.values()), dtype=np.int64), list(labels)


def labels_of(folder, num_classes: int, rows=None) -> dict:
    """``{file name: label}`` from the folder's index, every row checked (a plain file name
    inside the folder, a label in range, the file present)."""
    folder = Path(folder)
    out = {}
    for k, row in enumerate(_rows(folder) if rows is None else rows, start=2):
        where = f"{folder / INDEX}, line {k}"
        if len(row) < 2 or not _NAME.fullmatch(row[0]):
            raise ConfigError(f"{where}: expected file,label[,saved] with a plain file name, got {','.join(row)[:80]!r}")
        if not re.fullmatch(r"\d{1,6}", row[1]) or int(row[1]) >= num_classes:
            raise ConfigError(f"{where}: label {row[1][:20]!r} is not a class from 0 to {num_classes - 1}")
        if not (folder / row[0]).is_file():
            raise ConfigError(f"{where}: {row[0]} is not in the folder")
        out[row[0]] = int(row[1])
    return out


def _rows(folder: Path) -> list:
    from ._files import read_input

    path = folder / INDEX
    if not path.is_file():
        raise ConfigError(f"{folder}: not a folder of examples (no {INDEX}: file,label,saved)")
    text = read_input(path, MAX_INDEX_BYTES, ConfigError).decode("utf-8", errors="replace")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows or [c.strip() for c in rows[0][:2]] != HEADER[:2]:
        raise ConfigError(f"{path}: the first line must be the header {','.join(HEADER)}")
    return rows[1:]


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, "PNG")
    return buf.getvalue()


def _write_new(folder: Path, pattern: str, data: bytes) -> str:
    """Write ``data`` whole under a name never used (a temporary file, then a hard link, which
    fails rather than replace): readers never see a part, nothing is overwritten."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".example-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for _ in range(20):
            name = pattern.format(secrets.token_hex(4))
            try:
                os.link(tmp, folder / name)
                os.chmod(folder / name, 0o644)
                return name
            except FileExistsError:
                continue
        raise ConfigError(f"{folder}: no free file name")  # pragma: no cover (2^32 names a second)
    finally:
        os.unlink(tmp)


def _append(folder: Path, row: list) -> None:
    """One index row, appended in a single write (with the header first for a new index)."""
    path = folder / INDEX
    line = io.StringIO()
    w = csv.writer(line, lineterminator="\n")
    if not path.exists() or path.stat().st_size == 0:
        w.writerow(HEADER)
    w.writerow(row)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.getvalue().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _locked(folder: Path):
    """An exclusive lock on the folder (flock: processes of ``serve --workers`` wait their turn)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows: one process at a time is the user's to keep)
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
