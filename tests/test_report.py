"""Report metrics against scikit-learn and direct computations; figures and the HTML page."""
import base64
import json
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_logreg.metrics import calibration, confusion_matrix, precision_recall_f1

skm = pytest.importorskip("sklearn.metrics")


def _fixed_predictions(n=2000, k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    logits = torch.randn(n, k, generator=g) * 2
    logits[torch.arange(n), labels] += 1.5  # mostly right, sometimes wrong
    return torch.softmax(logits, 1), labels


def test_confusion_and_prf_match_scikit_learn():
    probs, labels = _fixed_predictions()
    preds = probs.argmax(1)
    cm = confusion_matrix(labels, preds, 10)
    assert np.array_equal(cm.numpy(), skm.confusion_matrix(labels.numpy(), preds.numpy(), labels=range(10)))
    ours = precision_recall_f1(cm)
    p, r, f, s = skm.precision_recall_fscore_support(labels.numpy(), preds.numpy(), labels=range(10), zero_division=0)
    np.testing.assert_allclose(ours["precision"], p)
    np.testing.assert_allclose(ours["recall"], r)
    np.testing.assert_allclose(ours["f1"], f)
    assert ours["support"] == s.tolist()


def test_prf_with_a_class_never_predicted():
    labels = torch.tensor([0, 1, 2, 2])
    preds = torch.tensor([0, 1, 1, 1])
    ours = precision_recall_f1(confusion_matrix(labels, preds, 3))
    p, r, f, _ = skm.precision_recall_fscore_support(labels, preds, labels=range(3), zero_division=0)
    np.testing.assert_allclose(ours["precision"], p)
    np.testing.assert_allclose(ours["f1"], f)


def test_ece_and_nll_match_a_direct_computation():
    probs, labels = _fixed_predictions(seed=1)
    conf, pred = probs.double().max(1)
    ece = 0.0
    for b in range(15):  # a plain loop over bins (lo, hi]
        lo, hi = b / 15, (b + 1) / 15
        inb = [i for i in range(len(labels)) if lo < conf[i] <= hi]
        if inb:
            acc = np.mean([pred[i] == labels[i] for i in inb])
            ece += len(inb) / len(labels) * abs(acc - np.mean([conf[i] for i in inb]))
    c = calibration(probs, labels, 15)
    assert c["ece"] == pytest.approx(ece, rel=1e-9)
    assert c["nll"] == pytest.approx(skm.log_loss(labels.numpy(), probs.double().numpy(), labels=range(10)), rel=1e-9)
    assert sum(b["count"] for b in c["bins"]) == len(labels)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.metrics, self.cells = [], {}, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        if "data-metric" in a and "data-value" in a:
            self.metrics[a["data-metric"]] = float(a["data-value"])
        if tag == "td" and "data-metric" in a:
            self.cells.append(a["data-metric"])


def test_train_writes_a_report_that_matches_its_json(tmp_path, run_cli):
    code, out, err = run_cli("train", "--dry-run", "--runs-dir", tmp_path, "--name", "r")
    assert code == 0, err
    run = tmp_path / "r"
    report = json.loads((run / "report.json").read_text())
    expected = {"curves.png", "confusion.png", "weights.png", "reliability.png", "mistakes.png", "predictions.png"}
    assert set(report["figures"]) == expected
    for name in expected:
        with Image.open(run / name) as im:
            assert im.format == "PNG" and im.width >= 400 and im.height >= 250
            px = np.asarray(im.convert("L"))
            assert px.std() > 10  # real content, not a blank canvas
    page = _Page()
    page.feed((run / "report.html").read_text())
    embedded = {img["data-file"]: img["src"] for img in page.images}
    assert set(embedded) == expected
    for name, src in embedded.items():  # self-contained: the exact PNG bytes, base64
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == (run / name).read_bytes()
    assert "http://" not in (run / "report.html").read_text() and "https://" not in (run / "report.html").read_text()
    t = report["test"]
    for key in ("accuracy", "nll", "ece", "macro_f1", "n"):
        assert page.metrics[key] == pytest.approx(t[key], rel=1e-12)
    # calibrated on the validation split: the report shows the reliability before and after
    assert page.metrics["ece_calibrated"] == pytest.approx(t["calibrated"]["ece"], rel=1e-12)
    assert sum(t["states"].values()) == pytest.approx(1) and page.metrics["unsure"] == t["states"]["unsure"]
    assert page.cells.count("f1") == 10
    # the report's test accuracy is the checkpoint's, evaluated independently
    model_metrics = json.loads((run / "metrics.json").read_text())
    code, out, _ = run_cli("evaluate", run, "--json")
    assert json.loads(out)["accuracy"] == pytest.approx(t["accuracy"])
    assert model_metrics["val_acc"] == report["train_metrics"]["val_acc"]
    # the mistakes gallery lists wrong predictions, most confident first
    probs = [m["probability"] for m in report["mistakes"]]
    assert probs == sorted(probs, reverse=True) and all(m["label"] != m["predicted"] for m in report["mistakes"])


def test_report_on_a_notebook_state_dict(tmp_path, run_cli):
    from test_model import NotebookModel
    torch.save(NotebookModel().state_dict(), tmp_path / "nb.pth")
    code, out, err = run_cli("report", tmp_path / "nb.pth", "--out", tmp_path / "rep")
    assert code == 0, err
    assert (tmp_path / "rep" / "report.html").is_file() and not (tmp_path / "rep" / "curves.png").exists()


def test_show_patch_prints_the_pixels(run_cli, mnist_train, tmp_path):
    code, out, _ = run_cli("show", "--index", 0, "--patch", "5:10,5:10", "-o", tmp_path / "p.png")
    assert code == 0
    rows = [list(map(float, ln.split())) for ln in out.splitlines()[1:6]]
    expected = (mnist_train.images[0, 5:10, 5:10].double() / 255).numpy()
    np.testing.assert_allclose(rows, expected, atol=5e-5)
    assert (tmp_path / "p.png").is_file()
    code, _, err = run_cli("show", "--patch", "5:40,0:3")
    assert code == 2 and "--patch" in err


def test_the_painters_helper_draws_the_files_drawn_in_process(tmp_path, monkeypatch):
    """plots.Painter's helper process (the CLI's default on more than one CPU; the suite turns it
    off, see conftest.py) writes the same PNG bytes as drawing in the calling process."""
    from mnist_logreg import plots
    from mnist_logreg.plots import Painter

    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "val_acc": 0.8 + e / 100} for e in range(1, 6)]
    cm = [[(5 if i == j else 1) for j in range(10)] for i in range(10)]
    for where, helper in (("helper", True), ("here", False)):
        (tmp_path / where).mkdir()
        with monkeypatch.context() as m:
            painter = Painter(helper=helper)
            assert (painter.proc is not None) == helper
            if helper:  # the helper's own drawing, not finish()'s fallback in this process
                m.setattr(plots, "curves_plot", None)
                m.setattr(plots, "confusion_plot", None)
            painter.draw("curves_plot", rows, tmp_path / where / "curves.png")
            painter.draw("confusion_plot", cm, [str(c) for c in range(10)], tmp_path / where / "confusion.png")
            painter.finish()
            assert painter.proc is None
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / "helper" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()
