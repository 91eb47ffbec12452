"""Two `mnist-logreg train` processes downloading into the same empty data folder at once,
from a mirror on 127.0.0.1: both train, both see whole, verified files, and their runs get
separate folders. (The dataset is a small one declared through $MNIST_LOGREG_DATASETS, with
its own checksums, since the real archives' md5 cannot be served locally.)"""
import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading

from helpers import REPO, make_idx_dataset
from mnist_logreg.datasets import ROLES


class _Slow(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_two_trains_download_into_one_empty_folder(tmp_path):
    mirror = make_idx_dataset(tmp_path / "mirror", n_train=800, n_test=200)
    names = {"train-images": "train-images-idx3-ubyte.gz", "train-labels": "train-labels-idx1-ubyte.gz",
             "test-images": "t10k-images-idx3-ubyte.gz", "test-labels": "t10k-labels-idx1-ubyte.gz"}
    md5 = {r: hashlib.md5((mirror / names[r]).read_bytes()).hexdigest() for r in ROLES}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Slow, directory=str(mirror)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        spec = tmp_path / "datasets.json"
        spec.write_text(json.dumps([{"name": "tiny", "folder": "Tiny", "classes": [str(i) for i in range(10)],
                                     "mirrors": [f"http://127.0.0.1:{srv.server_address[1]}/"], "md5": md5}]))
        env = dict(os.environ, MNIST_LOGREG_DATASETS=str(spec))
        cmd = [sys.executable, "-m", "mnist_logreg.cli", "train", "--dataset", "tiny", "--data-dir",
               str(tmp_path / "empty"), "--val-size", "100", "--epochs", "2", "--no-report",
               "--runs-dir", str(tmp_path / "runs")]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
                 for _ in range(2)]
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        srv.shutdown()
        srv.server_close()
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("test_acc: " in out for out, _ in outs)
    raw = tmp_path / "empty" / "Tiny" / "raw"
    for role in ROLES:
        assert hashlib.md5((raw / names[role]).read_bytes()).hexdigest() == md5[role]
    assert not [p for p in os.listdir(raw) if p.startswith(".download-")]
    assert len(os.listdir(tmp_path / "runs")) == 2
