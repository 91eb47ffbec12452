"""Every file the tool reads is read from a regular file, at most its limit (issue 14, item 6):
a FIFO would block forever, /dev/zero never ends, a folder is no file. Each kind, through every
command that reads a file, is one line naming it, exit 2, nothing written."""
import os

import pytest

from helpers import listing


@pytest.fixture(scope="module")
def run(dry_run_dir):
    return dry_run_dir


def special(kind, tmp_path):
    if kind == "device":
        return "/dev/zero"
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe.png")
        return str(tmp_path / "pipe.png")
    if kind == "folder":
        (tmp_path / "dir.png").mkdir()
        return str(tmp_path / "dir.png")
    big = tmp_path / "big.png"  # sparse: 600 MiB of nothing, over every limit
    with open(big, "wb") as f:
        f.truncate(600 * 2**20)
    return str(big)


COMMANDS = {
    "predict --image": lambda run, f: ["predict", run, "--image", f],
    "predict --csv": lambda run, f: ["predict", run, "--csv", f],
    "evaluate CHECKPOINT": lambda run, f: ["evaluate", f],
    "export CHECKPOINT": lambda run, f: ["export", f, "-o", "out.onnx"],
    "train --config": lambda run, f: ["train", "--config", f],
    "train --resume": lambda run, f: ["train", "--resume", f],
}
WHY = {"device": "is a device, not a regular file", "fifo": "is a FIFO, not a regular file",
       "folder": "is a folder, not a regular file", "huge": "limit"}


@pytest.mark.parametrize("kind", sorted(WHY))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_special_and_huge_files_are_one_line_errors(tmp_path, run_cli, run, command, kind):
    if command in ("evaluate CHECKPOINT", "export CHECKPOINT", "train --resume", "predict --image") and kind == "folder":
        pytest.skip("a folder is a run folder (or a folder of images) there, by design")
    f = special(kind, tmp_path)
    before = listing(tmp_path)
    code, out, err = run_cli(*COMMANDS[command](run, f))
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert WHY[kind] in err and "Traceback" not in err
    assert listing(tmp_path) == before


def test_a_dataset_list_that_is_a_device_is_one_line(run_cli, monkeypatch):
    monkeypatch.setenv("MNIST_LOGREG_DATASETS", "/dev/zero")
    code, _, err = run_cli("data")
    assert code == 2 and err == "error: /dev/zero: is a device, not a regular file\n"


def test_limits_are_stated_in_mib(tmp_path):
    from mnist_logreg import ImageError
    from mnist_logreg.preprocess import load_image
    with open(tmp_path / "x.png", "wb") as f:
        f.truncate(17 * 2**20)
    with pytest.raises(ImageError, match=r"x.png: file is over the 16 MiB limit$"):
        load_image(tmp_path / "x.png")
