"""No input file is ever overwritten, an existing output only with --force, atomically and with
its permissions kept (issue 14, item 4); output paths that cannot be written are one line."""
import os
import stat

import pytest
from test_data import write_kaggle

from helpers import listing


@pytest.fixture(scope="module")
def run(dry_run_dir):
    return dry_run_dir


@pytest.fixture
def csv(tmp_path, mnist_test):
    write_kaggle(tmp_path / "test.csv", mnist_test.images[:5])
    return tmp_path / "test.csv"


def _snapshot(*paths):
    return [(p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in paths]


def test_an_input_is_never_the_output_even_with_force(run, csv, run_cli):
    ckpt = run / "checkpoint.pt"
    before = _snapshot(ckpt, csv)
    for target in (csv, ckpt):
        code, _, err = run_cli("predict", run, "--csv", csv, "--submission", target, "--force")
        assert code == 2 and err == f"error: {target}: is an input of this command; write the output elsewhere\n"
    code, _, err = run_cli("export", run, "-o", ckpt, "--force")
    assert code == 2 and "is an input of this command" in err
    assert _snapshot(ckpt, csv) == before


def test_an_existing_output_needs_force_and_keeps_its_permissions(tmp_path, run, csv, run_cli):
    out = tmp_path / "sub.csv"
    out.write_text("keep me\n")
    os.chmod(out, 0o600)
    code, _, err = run_cli("predict", run, "--csv", csv, "--submission", out)
    assert code == 2 and err == f"error: {out}: exists; use --force to replace it\n"
    assert out.read_text() == "keep me\n"
    code, _, err = run_cli("predict", run, "--csv", csv, "--submission", out, "--force")
    assert code == 0, err
    assert out.read_text().startswith("ImageId,Label\n") and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.csv", "test.csv"]  # no temporary left


@pytest.mark.parametrize("argv", [
    ["show", "-o", "{existing}"],
    ["export", "{run}", "-o", "{existing}"],
    ["predict", "{run}", "--image", "{image}", "--show-preprocessed", "{existing}"],
    ["export", "{run}", "-o", "{folder}"],
    ["export", "{run}", "-o", "{under_file}"],
    ["report", "{run}", "--out", "{existing}"],
    ["report", "{run}", "--out", "{under_file}"],
])
def test_unwritable_or_taken_outputs_are_one_line(tmp_path, run, run_cli, mnist_test, argv):
    from PIL import Image
    existing, folder = tmp_path / "taken.png", tmp_path / "folder"
    existing.write_bytes(b"mine")
    folder.mkdir()
    Image.fromarray(mnist_test.images[0].numpy()).save(tmp_path / "digit.png")
    values = {"existing": existing, "folder": folder, "under_file": existing / "x.png", "run": run,
              "image": tmp_path / "digit.png"}
    before = listing(tmp_path)
    code, _, err = run_cli(*[a.format(**values) for a in argv])
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert listing(tmp_path) == before and existing.read_bytes() == b"mine"


@pytest.mark.parametrize("argv,message", [
    (["serve", "RUN", "--port", "70000"], "must be a port number, 0 to 65535"),
    (["serve", "RUN", "--max-body-mb", "1e308"], "must be more than 0 and at most 1024"),
])
def test_server_options_out_of_range_are_one_line(run, run_cli, argv, message):
    code, _, err = run_cli(*[str(run) if a == "RUN" else a for a in argv])
    assert code == 2 and message in err and len(err.splitlines()) == 1
