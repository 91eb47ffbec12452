"""Helpers shared by the tests (imported as ``from helpers import ...``; conftest.py holds
the fixtures)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"   # Debian's (.ci/run installs it); no downloads
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHARED_DATA = Path(os.environ.get("MNIST_LOGREG_DATA") or (REPO.parent / "shared" / "data")).resolve()


def _node() -> str | None:
    """Node, to run the page's scripts outside a browser: the system's, else the one Playwright ships."""
    import importlib.util
    spec = importlib.util.find_spec("playwright")
    bundled = Path(spec.origin).parent / "driver" / "node" if spec else None
    return shutil.which("node") or (str(bundled) if bundled and bundled.is_file() else None)


NODE = _node()


def make_idx_dataset(folder: Path, n_train=64, n_test=32, seed=0, gz=True, shape=(28, 28)) -> Path:
    """Write a small, valid four-file IDX dataset (random blobs, labels 0..9) into ``folder``."""
    from mnist_logreg.data import write_idx

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 256, (n, *shape)).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return folder


def run_subprocess(*args, env=None, timeout=300, **kw):
    """Run the installed CLI as a real process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "mnist_logreg.cli", *map(str, args)],
                          capture_output=True, text=True, env=full_env, timeout=timeout, **kw)


def stroke_image(k=0):
    """A 28x28 float32 image in [0, 1]: a vertical bar, its place set by ``k``."""
    x = np.zeros((28, 28), np.float32)
    x[4:24, 12 + k % 4:15 + k % 4] = 1.0
    return x


def add_examples(args):
    """``examples.add`` 25 times into ``folder``, names from ``start`` (a process of a Pool)."""
    from mnist_logreg import examples
    folder, start = args
    return [examples.add(folder, stroke_image(k), 1, num_classes=10, limit=10_000) for k in range(start, start + 25)]


def free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@contextmanager
def serving(checkpoint, *options):
    """A real `mnist-logreg serve CHECKPOINT OPTIONS` process on 127.0.0.1: its URL and the
    process, stopped by PID at the end."""
    import signal
    import time

    import httpx
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mnist_logreg.cli", "serve", str(checkpoint), "--port", str(port),
                             *map(str, options)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=1) as client:  # one: httpx.get builds an SSL context each time (40 ms)
            for _ in range(300):
                try:
                    if client.get(url + "/api/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                proc.kill()
                raise AssertionError("server did not start: " + proc.stdout.read().decode()[-500:])
        yield url, proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def until(page, expression, timeout=10.0):
    """Wait until a JavaScript expression is true, asking from outside the page: the page's
    Content-Security-Policy forbids the eval that wait_for_function's polling needs."""
    import time
    end = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < end, f"timed out waiting for: {expression}"
        page.wait_for_timeout(30)
