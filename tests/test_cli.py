"""The command line end to end on real MNIST: train, resume, evaluate, predict, Kaggle CSV,
and one-line errors with nothing written for bad input."""
import gzip
import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import write_kaggle

from helpers import SHARED_DATA, listing, make_idx_dataset, run_subprocess


@pytest.fixture(scope="module")
def dry_run(dry_run_dir):
    """One real (small) training run shared by the tests that only read it (conftest.py)."""
    return dry_run_dir


def test_train_writes_the_run_folder(tmp_path, run_cli, data_dir):
    code, out, err = run_cli("train", "--dry-run", "--no-report", "--runs-dir", tmp_path / "runs", "--name", "a", "--seed", "4")
    assert code == 0, err
    run = tmp_path / "runs" / "a"
    assert {"checkpoint.pt", "history.csv", "history.json", "metrics.json", "accuracy.png", "samples.png"} <= set(listing(run))
    assert "7,850 parameters" in out
    assert "Epoch [0], val_loss: " in out and "Epoch [1], val_loss: " in out
    assert "test_loss: " in out and "test_acc: " in out
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["config"]["seed"] == 4 and ckpt["config"]["lr"] == 1e-3 and ckpt["config"]["batch_size"] == 128
    assert ckpt["classes"] == [str(i) for i in range(10)] and ckpt["optimizer"]["state"]
    assert ckpt["metrics"]["test_acc"] > 0.5 and "torch" in ckpt["versions"]
    assert ckpt["config"]["engine"] == "auto" and ckpt["metrics"]["engine"] in ("native", "torchscript")
    assert open(run / "history.csv").readline().strip() == "epoch,train_loss,val_loss,val_acc,seconds"
    assert [r["epoch"] for r in json.loads((run / "history.json").read_text())] == [0, 1]
    for png in ("accuracy.png", "samples.png"):
        with Image.open(run / png) as im:
            assert im.size[0] > 200 and len(np.unique(np.asarray(im.convert("L")))) > 10


def test_robust_loss_options_reach_the_training_and_the_config(tmp_path, run_cli):
    runs = tmp_path / "runs"
    for name, extra in (("plain", ()), ("robust", ("--loss-cap", "5", "--loss-q", "0.5"))):
        code, _, err = run_cli("train", "--dry-run", "--no-report", "--runs-dir", runs, "--name", name, *extra)
        assert code == 0, err
    plain, robust = (torch.load(runs / n / "checkpoint.pt", weights_only=True) for n in ("plain", "robust"))
    assert plain["config"]["loss_cap"] is None and plain["config"]["loss_q"] == 0.0
    assert robust["config"]["loss_cap"] == 5.0 and robust["config"]["loss_q"] == 0.5
    assert not torch.equal(plain["model"]["linear.weight"], robust["model"]["linear.weight"])
    code, _, err = run_cli("train", "--resume", runs / "robust", "--epochs", "1", "--no-report")
    assert code == 0, err
    assert torch.load(runs / "robust" / "checkpoint.pt", weights_only=True)["config"]["loss_q"] == 0.5


def test_resume_continues_epochs_and_history(tmp_path, run_cli):
    run_cli("train", "--dry-run", "--no-report", "--runs-dir", tmp_path / "runs", "--name", "a")
    code, out, err = run_cli("train", "--resume", tmp_path / "runs" / "a", "--epochs", "2", "--no-report")
    assert code == 0, err
    assert "Epoch [2]" in out and "Epoch [3]" in out and "Epoch [1]" not in out
    hist = json.loads((tmp_path / "runs" / "a" / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [0, 1, 2, 3]


def test_evaluate_matches_train_metrics(dry_run, run_cli):
    metrics = json.loads((dry_run / "metrics.json").read_text())
    code, out, _ = run_cli("evaluate", dry_run, "--json")
    r = json.loads(out)
    assert code == 0 and r["n"] == 10_000 and r["split"] == "test"
    # --dry-run scored 1,000 test images; evaluate scores all 10,000: close, not equal
    assert abs(r["accuracy"] - metrics["test_acc"]) < 0.05
    cm = np.array(r["confusion_matrix"])
    assert cm.sum() == 10_000 and np.trace(cm) / 10_000 == pytest.approx(r["accuracy"])
    code, out, _ = run_cli("evaluate", dry_run, "--split", "val")
    assert code == 0 and "mnist/val: 10,000 images" in out and "true \\ predicted" in out


def test_evaluate_and_predict_accept_a_notebook_pth(tmp_path, run_cli, mnist_test):
    from test_model import NotebookModel
    torch.manual_seed(0)
    nb = NotebookModel()
    torch.save(nb.state_dict(), tmp_path / "mnist-logistic.pth")
    code, out, _ = run_cli("evaluate", tmp_path / "mnist-logistic.pth", "--json")
    acc = (nb(mnist_test.features()).argmax(1) == mnist_test.labels).float().mean().item()
    assert code == 0 and json.loads(out)["accuracy"] == pytest.approx(acc)


def test_predict_notebook_indices(dry_run, run_cli, mnist_test):
    code, out, _ = run_cli("predict", dry_run, "--index", 0, 10, 200, 1839, "--json")
    r = json.loads(out)
    assert code == 0 and [x["label"] for x in r] == [int(mnist_test.labels[i]) for i in (0, 10, 200, 1839)]
    assert all(len(x["top"]) == 3 and sum(t["probability"] for t in x["top"]) <= 1.0001 for x in r)
    code, out, _ = run_cli("predict", dry_run, "--index", 0)
    assert out.startswith("[0] Label: 7, Predicted: ")


def test_predict_image_file_equals_dataset_prediction(tmp_path, dry_run, run_cli, mnist_test):
    files = []
    for i in (0, 1, 2):
        f = tmp_path / f"digit{i}.png"
        Image.fromarray(mnist_test.images[i].numpy(), mode="L").save(f)
        files.append(f)
    _, by_index, _ = run_cli("predict", dry_run, "--index", 0, 1, 2, "--json")
    code, by_file, _ = run_cli("predict", dry_run, "--image", *files, "--no-preprocess", "--json")
    assert code == 0
    assert [x["predicted"] for x in json.loads(by_file)] == [x["predicted"] for x in json.loads(by_index)]


def test_kaggle_submission(tmp_path, dry_run, run_cli, mnist_test):
    write_kaggle(tmp_path / "test.csv", mnist_test.images[:30])
    code, out, err = run_cli("predict", dry_run, "--csv", tmp_path / "test.csv", "--submission", tmp_path / "sub.csv")
    assert code == 0 and "part of MNIST" in err
    lines = (tmp_path / "sub.csv").read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 31 and lines[1].startswith("1,") and lines[-1].startswith("30,")


def test_train_on_kaggle_csv(tmp_path, run_cli, mnist_train):
    write_kaggle(tmp_path / "train.csv", mnist_train.images[:600], mnist_train.labels[:600])
    code, out, err = run_cli("train", "--train-csv", tmp_path / "train.csv", "--val-size", 100, "--epochs", 2,
                             "--runs-dir", tmp_path / "runs", "--name", "k")
    assert code == 0, err
    assert "500 train, 100 validation" in out and (tmp_path / "runs" / "k" / "checkpoint.pt").is_file()


def test_help_shows_every_default(run_cli):
    code, out, _ = run_cli("train", "--help")
    assert code == 0
    for text in ("(default: 20)", "(default: 0.001)", "(default: 128)", "(default: adam)", "(default: 10000)",
                 "shuffling (default: 0)", "(L2) (default: 0.0)"):
        assert text in " ".join(out.split())


@pytest.mark.parametrize("args,message", [
    (["train", "--lr", "-1"], "must be a positive number"),
    (["train", "--epochs", "0"], "must be at least 1"),
    (["train", "--batch-size", "x"], "expected a whole number"),
    (["train", "--val-size", "60000", "--dataset", "mnist"], "--val-size must be between 0 and 59999"),
    (["train", "--dataset", "cifar"], "unknown dataset 'cifar'"),
    (["train", "--data-dir", "EMPTY", "--no-download"], "mnist not found: put train-images-idx3-ubyte.gz"),
    (["train", "--data-dir", "BAD", "--no-download"], "train-images-idx3-ubyte.gz: truncated"),
    (["train", "--device", "cuda"], "no CUDA device"),
    (["train", "--engine", "native", "--optimizer", "sgd"], "--engine native cannot run here: it runs Adam and AdamW only"),
    (["train", "--distill-epochs", "1", "--distill-alpha", "2"], "--distill-alpha must be between 0 and 1, got 2.0"),
    (["train", "--epochs", "3", "--average-from", "4"], "--average-from must be an epoch of this run (1..3), got 4"),
    (["train", "--loss-q", "1.5"], "--loss-q must be between 0 and 1, got 1.5"),
    (["train", "--loss-cap", "0"], "must be a positive number"),
    (["train", "--loss-q", "0.5", "--distill-epochs", "1"], "--loss-q works with hard labels only"),
    (["train", "--solver", "newton", "--loss-cap", "5"], "--loss-cap and --loss-q apply to --solver minibatch"),
    (["evaluate", "MISSING.pt"], "no such checkpoint"),
    (["predict", "MISSING.pt", "--index", "0"], "no such checkpoint"),
])
def test_bad_input_one_line_error_nothing_written(tmp_path, run_cli, args, message, monkeypatch):
    monkeypatch.setenv("MNIST_LOGREG_DATA", str(tmp_path / "nowhere"))
    bad = make_idx_dataset(tmp_path / "BAD")
    # 9 images claimed, 50 bytes present
    (bad / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(50)))
    (tmp_path / "EMPTY").mkdir()
    args = [a.replace("EMPTY", str(tmp_path / "EMPTY")).replace("BAD", str(bad)) for a in args]
    if "--data-dir" not in args and args[0] == "train":
        args += ["--data-dir", str(SHARED_DATA)]
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    before = listing(tmp_path)
    code, out, err = run_cli(*args, "--runs-dir", tmp_path / "runs") if args[0] == "train" else run_cli(*args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "Traceback" not in err
    assert listing(tmp_path) == before  # nothing written


def test_real_process_error_is_one_line(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"garbage")
    r = run_subprocess("evaluate", tmp_path / "x.pt")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")


def test_data_command_lists_found_datasets(run_cli, data_dir):
    code, out, _ = run_cli("data", "--json")
    r = {e["dataset"]: e for e in json.loads(out)}
    assert code == 0 and r["mnist"]["found"] and r["fashion-mnist"]["found"]
    assert r["mnist"]["files"]["train-images"].startswith(str(data_dir))
