"""Downloads against local HTTP servers on 127.0.0.1 (never the internet): a good mirror, a
dead mirror, a mirror serving a file with the wrong checksum, and two concurrent processes."""
import dataclasses
import functools
import hashlib
import http.server
import json
import subprocess
import sys
import threading

import pytest

from helpers import REPO, listing, make_idx_dataset
from mnist_logreg.data import download, load_dataset
from mnist_logreg.datasets import ROLES, get_spec
from mnist_logreg.errors import DownloadError


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def serve():
    servers = []

    def start(directory):
        handler = functools.partial(_Quiet, directory=str(directory))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def mirror_files(tmp_path):
    good = make_idx_dataset(tmp_path / "good", n_train=50, n_test=20)
    bad = make_idx_dataset(tmp_path / "bad", n_train=50, n_test=20, seed=1)  # same names, other bytes
    md5 = {r: hashlib.md5((good / get_spec("mnist").files[r]).read_bytes()).hexdigest() for r in ROLES}
    return good, bad, md5


def _dead_url():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    return f"http://127.0.0.1:{port}/"


def test_falls_back_past_dead_and_wrong_checksum_mirrors(tmp_path, serve, mirror_files):
    good, bad, md5 = mirror_files
    spec = dataclasses.replace(get_spec("mnist"), md5=md5)
    mirrors = [_dead_url(), serve(bad), serve(good)]
    logs = []
    paths = download(spec, tmp_path / "root", mirrors=mirrors, timeout=5, log=logs.append)
    raw = tmp_path / "root" / "MNIST" / "raw"
    for role in ROLES:
        assert paths[role] == raw / spec.files[role]
        assert paths[role].read_bytes() == (good / spec.files[role]).read_bytes()
    assert not [p for p in listing(raw) if p.startswith(".download-")]  # no temporary left over
    assert len(load_dataset("mnist", "train", tmp_path / "root", download=False)) == 50
    assert all(mirrors[2] in line for line in logs)
    # a second call finds verified files and fetches nothing
    logs.clear()
    download(spec, tmp_path / "root", mirrors=[_dead_url()], log=logs.append)
    assert logs == []


def test_no_good_mirror_leaves_nothing(tmp_path, serve, mirror_files):
    _, bad, md5 = mirror_files
    spec = dataclasses.replace(get_spec("mnist"), md5=md5)
    with pytest.raises(DownloadError) as e:
        download(spec, tmp_path / "root", mirrors=[_dead_url(), serve(bad)], timeout=5)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "md5" in msg and "URLError" in msg
    raw = tmp_path / "root" / "MNIST" / "raw"
    assert not [p for p in listing(raw) if not p.startswith(".") or p.startswith(".download-")]


def test_env_mirrors_override(tmp_path, serve, mirror_files, monkeypatch):
    good, _, md5 = mirror_files
    spec = dataclasses.replace(get_spec("mnist"), md5=md5)
    monkeypatch.setenv("MNIST_LOGREG_MIRRORS", serve(good))
    download(spec, tmp_path / "r", timeout=5, log=None)
    assert (tmp_path / "r" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").is_file()


CHILD = """
import dataclasses, json, sys
from mnist_logreg.data import download
from mnist_logreg.datasets import get_spec
md5, mirror, root = json.loads(sys.argv[1])
download(dataclasses.replace(get_spec("mnist"), md5=md5), root, mirrors=[mirror], timeout=10, log=lambda *a: None)
print("ok")
"""


def test_two_processes_download_into_one_empty_folder(tmp_path, serve, mirror_files):
    good, _, md5 = mirror_files
    arg = json.dumps([md5, serve(good), str(tmp_path / "shared-root")])
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, arg], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    raw = tmp_path / "shared-root" / "MNIST" / "raw"
    for role in ROLES:
        name = get_spec("mnist").files[role]
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5[role]


def test_a_failed_download_leaves_no_folder_behind(tmp_path):
    """All mirrors dead: one line, and no empty ROOT/KMNIST/raw (nor its lock files) left (issue 27)."""
    from mnist_logreg.data import download
    from mnist_logreg.errors import DownloadError

    with pytest.raises(DownloadError, match="could not download"):
        download("kmnist", tmp_path / "data", mirrors=[_dead_url()], timeout=2, log=None)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()  # a folder that was there before stays
    with pytest.raises(DownloadError):
        download("kmnist", tmp_path / "mine", mirrors=[_dead_url()], timeout=2, log=None)
    assert [p.name for p in tmp_path.iterdir()] == ["mine"] and list((tmp_path / "mine").iterdir()) == []
