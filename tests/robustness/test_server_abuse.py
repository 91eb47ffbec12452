"""The server under load and abuse, short form (the full 5,000-request run: bench/abuse.py):
every bad body gets its 4xx, every good one 200, no 5xx, memory bounded; only the
requested host is bound."""
import os
import signal
import sys

import pytest
import torch

from helpers import REPO
from mnist_logreg import MnistModel, save

sys.path.insert(0, str(REPO / "bench"))
abuse = pytest.importorskip("abuse")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.pt"
    torch.manual_seed(0)
    save(MnistModel(), path)
    port = abuse.free_port()
    proc = abuse.start_server(path, port, cwd=REPO)
    yield f"http://127.0.0.1:{port}", proc, port
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_mixed_abuse_at_concurrency(server):
    url, proc, _ = server
    statuses, errors, lat, wall, expected = abuse.run_abuse(url, 360, 32)
    assert not errors
    for name, code in expected.items():
        assert set(statuses[name]) == {code}, (name, statuses[name])
        assert sum(statuses[name].values()) == 40
    assert abuse.peak_rss_mb(proc.pid) < 700  # 20 MB bodies and 50-megapixel PNGs are never held whole


def test_only_the_given_host_is_bound(server):
    _, proc, port = server
    with open(f"/proc/{proc.pid}/net/tcp") as f:
        listening = [ln.split() for ln in f.readlines()[1:] if ln.split()[3] == "0A"]  # state LISTEN
    ours = [ln for ln in listening if int(ln[1].split(":")[1], 16) == port]
    assert ours and all(ln[1].split(":")[0] == "0100007F" for ln in ours)  # 127.0.0.1 only


def test_default_host_is_loopback():
    from mnist_logreg.cli import build_parser
    args = build_parser().parse_args(["serve", "x.pt"])
    assert args.host == "127.0.0.1"
