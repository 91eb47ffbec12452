"""Atomic file writes: readers see the old file or the new one, never a part (no torch here,
so the figure code can use it without importing torch)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import CheckpointError

_UMASK = os.umask(0)
os.umask(_UMASK)


def cache_dir() -> Path:
    """This user's cache (the native kernel's builds, decoded datasets, likeness fits): ``$MNIST_LOGREG_CACHE``,
    else ``$XDG_CACHE_HOME/mnist-logreg``, else ``~/.cache/mnist-logreg``."""
    env = os.environ.get("MNIST_LOGREG_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-logreg"


def private_stat(st) -> bool:
    """Owned by this user and writable by no one else (group or world): the cache's rule."""
    return not hasattr(os, "getuid") or (st.st_uid == os.getuid() and not st.st_mode & 0o022)


def private_file(path: Path) -> bool:
    """A cache file that may be read: a regular file whose folder and itself are this user's,
    writable by no one else (a stat that fails raises OSError)."""
    return path.is_file() and private_stat(path.parent.stat()) and private_stat(path.stat())


def store_private(path: Path, write) -> None:
    """Write a cache file through ``write(tmp_path)``: atomically, mode 0600, in a folder of mode
    0700 that is this user's. Any failure leaves no file and no error: it is only a cache."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if private_stat(path.parent.stat()):
            atomic_write(path, write, durable=False)
            os.chmod(path, 0o600)
    except (OSError, CheckpointError):
        pass


def atomic_write(path, write, durable: bool = True) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers see the old file or the
    new one, never a part. The temporary file is removed on any failure.

    ``durable`` fsyncs the file before the rename (the checkpoint: a printed epoch is a saved
    epoch). Files derived from a checkpoint (history, metrics, figures, the report) skip it and
    share one :func:`sync_dir` at the end: 26 fsyncs cost about 0.5 s of a 3 s run here."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise CheckpointError(f"{path.parent}: cannot write: {e.strerror}") from None
    os.close(fd)
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600
        os.replace(tmp, path)
    except OSError as e:
        _unlink(tmp)
        raise CheckpointError(f"{path}: cannot write: {e.strerror or e}") from None
    except BaseException:
        _unlink(tmp)
        raise


def atomic_write_text(path, text: str, durable: bool = True) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text), durable)


def sync_dir(folder) -> None:
    """Flush the files written (without fsync) into ``folder``, and its entries, to disk."""
    try:
        os.sync()  # the derived files' data: one flush for all of them
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)  # the renames
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass


def _unlink(p):
    try:
        os.unlink(p)
    except OSError:
        pass


def mib(n: int) -> str:
    """A size in MiB, as limits are stated: 16777216 -> '16 MiB', 18664243 -> '17.8 MiB'."""
    return f"{n / 2**20:.1f}".rstrip("0").rstrip(".") + " MiB"


def read_input(path, limit: int, error=CheckpointError) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them, or ``error``
    with one line. FIFOs, devices and folders are refused (a read from them can block forever
    or never end), and the size is counted while reading, never trusted from ``stat``."""
    import stat

    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket or special file")
        raise error(f"{path}: is {kind}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        chunks, size = [], 0
        try:  # in pieces: read(limit + 1) asked the allocator for the whole limit (512 MiB for a CSV)
            while size <= limit:
                chunk = f.read(min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as e:
            raise error(f"{path}: cannot read: {e.strerror}") from None
        data = b"".join(chunks)
    if len(data) > limit:
        raise error(f"{path}: file is over the {mib(limit)} limit")
    return data


def _mode_for(path: Path) -> int:
    """A replaced file keeps its permissions (a 0600 file stays 0600); a new one gets the
    usual 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def check_output(path, *, force: bool = False, inputs=()) -> Path:
    """Refuse, with one line, an output file that would replace one of the command's
    ``inputs`` (never, even with ``force``: the checkpoint in use, the CSV being read), an
    existing file unless ``force``, a folder, or a path whose folder does not exist. Call it
    before any work is done; the write itself is atomic and keeps the old file's permissions."""
    from .errors import ConfigError, setting_ref

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; give a file name to write")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: the folder {path.parent} does not exist")
    if path.exists():
        for inp in inputs:
            try:
                if inp is not None and os.path.samefile(path, inp):
                    raise ConfigError(f"{path}: is an input of this command; write the output elsewhere")
            except OSError:
                continue
        if not force:
            raise ConfigError(f"{path}: exists; use {setting_ref('force')} to replace it")
        if not path.is_file():
            raise ConfigError(f"{path}: exists and is not a regular file")
    return path
