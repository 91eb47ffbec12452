"""The run report: figures (PNG) and one self-contained ``report.html`` with everything a
person wants to see about a trained model: how training went, where it fails, why.

Every figure is written on its own and embedded in the page (base64), so the page opens
anywhere with no network and no files beside it.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import torch

from ._files import atomic_write_text, sync_dir
from .checkpoint import Checkpoint, load_checkpoint
from .data import ImageSet, load_dataset
from .errors import ConfigError
from .metrics import calibration, confusion_matrix, precision_recall_f1
from .model import predict
from .runfolder import REPORT

FIGURES = {
    "curves.png": ("Training curves", "Mean cross-entropy on the training batches and the validation set, and "
                   "validation accuracy, per epoch; epoch 0 is the model before training."),
    "confusion.png": ("Confusion matrix", "Test images by true class (rows) and predicted class (columns). "
                      "Off-diagonal cells are the mistakes."),
    "weights.png": ("Weight templates", "Each row of linear.weight drawn as a 28x28 image: red pixels raise the "
                    "class's score, blue pixels lower it. This is everything the model knows."),
    "reliability.png": ("Calibration", "Accuracy against confidence in 15 bins, for the model's own softmax and, "
                        "when the run was calibrated, for the probabilities the tool shows (fitted on held-out "
                        "images, never on the test set). Bars below the diagonal are over-confident. ECE is the "
                        "support-weighted mean gap."),
    "mistakes.png": ("Most confident mistakes", "Test images the model got wrong with the highest probability: "
                     "true label, predicted label and its probability."),
    "predictions.png": ("Sample predictions", "The first test images with their label and prediction: green "
                        "right, red wrong."),
}


WIDE = {"curves.png", "weights.png", "mistakes.png", "predictions.png"}  # span the page's width


def evaluate_predictions(model, data: ImageSet, n_bins: int = 15, trust=None) -> dict:
    """All report metrics for ``model`` on ``data``, from one pass of predictions; with
    ``trust``, the calibrated probabilities' calibration and the answer states too."""
    probs = predict(model, data.images).double()
    preds = probs.argmax(1)
    k = len(data.classes)
    cm = confusion_matrix(data.labels, preds, k)
    prf = precision_recall_f1(cm)
    cal = calibration(probs, data.labels, n_bins)
    return {
        "n": len(data), "accuracy": float((preds == data.labels).double().mean()),
        "loss": cal["nll"],  # mean cross-entropy is the negative log-likelihood
        "nll": cal["nll"], "ece": cal["ece"], "confusion_matrix": cm.tolist(),
        "per_class": [{"class": str(c), "precision": prf["precision"][i], "recall": prf["recall"][i],
                       "f1": prf["f1"][i], "support": prf["support"][i]} for i, c in enumerate(data.classes)],
        "macro_f1": sum(prf["f1"]) / k, "calibration": cal,
        **(_honesty(model, data, trust, n_bins) if trust is not None else {}),
        "_probs": probs, "_preds": preds,
    }


def _honesty(model, data: ImageSet, trust, n_bins: int) -> dict:
    """The calibrated probabilities' reliability and how the test images are answered."""
    from .answers import Predictor

    a = Predictor(model, trust, data.classes).assess(data.features(), data.labels, n_bins)
    return {"calibrated": a["calibration"], "states": a["states"], "sure_accuracy": a["sure_accuracy"]}


def build_report(run, *, data_dir=None, download: bool = True, out_dir=None, dataset: str | None = None,
                 log=print, painter=None) -> Path:
    """Write the report figures, ``report.json`` and ``report.html`` for a run folder or checkpoint.

    ``painter``: a :class:`~mnist_logreg.plots.Painter` started early by the caller (so that
    matplotlib loads while it works); by default one is started here.
    Returns the path of ``report.html``.
    """
    from .plots import Painter

    painter = painter if painter is not None else Painter()
    try:
        return _write_report(run, data_dir, download, out_dir, dataset, log or (lambda *a, **k: None), painter)
    finally:
        painter.close()  # a helper an error left without its jobs stops


def _write_report(run, data_dir, download, out_dir, dataset, log, painter) -> Path:
    from . import pictures

    ckpt: Checkpoint = load_checkpoint(run)
    out = Path(out_dir) if out_dir is not None else ckpt.path.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # an existing file, or a path through one
        raise ConfigError(f"{out}: cannot be the report's folder: {e.strerror}") from None
    name = dataset or (ckpt.dataset if ckpt.dataset != "kaggle-csv" else "mnist") or "mnist"
    test = load_dataset(name, "test", data_dir or ckpt.config.get("data_dir"), download=download, log=log)
    classes = tuple(ckpt.classes) if ckpt.classes else test.classes
    m = evaluate_predictions(ckpt.model, test, trust=ckpt.trust)
    probs, preds = m.pop("_probs"), m.pop("_preds")

    figures = []
    if len(ckpt.history) > 1:
        painter.draw("curves_plot", ckpt.history, out / "curves.png")
        figures.append("curves.png")
    painter.draw("confusion_plot", m["confusion_matrix"], list(classes), out / "confusion.png")
    painter.draw("reliability_plot", m["calibration"], out / "reliability.png", m.get("calibrated"))
    pictures.weights_plot(ckpt.model.linear.weight.detach(), classes, out / "weights.png")
    wrong = (preds != test.labels).nonzero().flatten()
    conf = probs.max(1).values
    worst = wrong[conf[wrong].argsort(descending=True)][:24]
    pictures.gallery_plot(test.images[worst],
                       [f"{classes[int(test.labels[i])]}→{classes[int(preds[i])]} {float(conf[i]):.2f}" for i in worst],
                       ["tab:red"] * len(worst), out / "mistakes.png",
                       title="Most confident mistakes: true→predicted, probability")
    first = torch.arange(min(32, len(test)))
    pictures.gallery_plot(test.images[first],
                       [f"{classes[int(test.labels[i])]} / {classes[int(preds[i])]}" for i in first],
                       ["tab:green" if preds[i] == test.labels[i] else "tab:red" for i in first],
                       out / "predictions.png", title="Sample test predictions: label / predicted")
    painter.finish()  # the plotted figures, drawn beside the pictures above
    # page order: wide figures alone on their row, the two square ones side by side
    figures += ["confusion.png", "reliability.png", "weights.png", "mistakes.png", "predictions.png"]

    report = {"checkpoint": str(ckpt.path), "dataset": name, "split": "test", "classes": list(classes),
              "has_validation": any(r.get("val_acc") is not None for r in ckpt.history),
              "config": ckpt.config, "train_metrics": {k: v for k, v in ckpt.metrics.items() if not isinstance(v, dict)},
              "test": m, "figures": figures, "created": ckpt.meta.get("created"),
              "mistakes": [{"index": int(i), "label": int(test.labels[i]), "predicted": int(preds[i]),
                            "probability": float(conf[i])} for i in worst]}
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n", durable=False)
    atomic_write_text(out / REPORT, render_html(report, out), durable=False)
    sync_dir(out)
    calibrated = (f" -> {m['calibrated']['ece'] * 100:.2f}% calibrated" if "calibrated" in m else "")
    log(f"report: {out / REPORT} (test accuracy {m['accuracy']:.4f}, ECE {m['ece'] * 100:.2f}%{calibrated}, "
        f"NLL {m['nll']:.4f})")
    return out / REPORT


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _plain(v) -> str:
    """A value as a person reads it: no JSON quotes, 4 significant digits."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return "none" if v is None else str(v)


def _settings_rows(config: dict) -> list:
    """The settings a reader needs: those not at their default, the data folder by its name only
    (a report is shared; the path is the author's)."""
    from .config import TrainConfig

    defaults = TrainConfig().to_dict()
    rows = []
    for k, v in sorted(config.items()):
        if k in defaults and v == defaults[k] and k not in ("dataset", "epochs", "solver"):
            continue
        rows.append((k, Path(v).name if k == "data_dir" and v else _plain(v)))
    return rows


def _curves_caption(config: dict, has_validation: bool) -> str:
    text = (FIGURES["curves.png"][1] if has_validation else
            "Mean cross-entropy on the training batches per epoch; epoch 0 is the model before training. This run "
            "has no validation split (val_size 0: it trained on all training images); its accuracy is the test "
            "set's, above.")
    if config.get("loss_cap") is not None or config.get("loss_q"):
        text += (" A robust loss was minimised (loss_cap / loss_q), not the plain cross-entropy drawn here: the "
                 "curve may rise while the accuracy improves, as images it gives up on weigh less.")
    return text


def render_html(report: dict, folder: Path) -> str:
    """One self-contained page: summary, figures with captions, per-class table, config."""
    e = html.escape
    m = report["test"]
    cards = [("test accuracy", f"{m['accuracy'] * 100:.2f}%", "accuracy", m["accuracy"]),
             ("test loss (NLL)", f"{m['nll']:.4f}", "nll", m["nll"]),
             ("calibration error (ECE)", f"{m['ece'] * 100:.2f}%", "ece", m["ece"])]
    if "calibrated" in m:
        c = m["calibrated"]
        cards += [("ECE, calibrated", f"{c['ece'] * 100:.2f}%", "ece_calibrated", c["ece"]),
                  ("NLL, calibrated", f"{c['nll']:.4f}", "nll_calibrated", c["nll"]),
                  ("answered 'unsure'", f"{m['states']['unsure'] * 100:.1f}%", "unsure", m["states"]["unsure"]),
                  ("answered 'not a digit'", f"{m['states']['not-a-digit'] * 100:.1f}%", "not_a_digit",
                   m["states"]["not-a-digit"]),
                  ("right when sure", f"{m['sure_accuracy'] * 100:.2f}%", "sure_accuracy", m["sure_accuracy"])]
    cards += [("macro F1", f"{m['macro_f1']:.4f}", "macro_f1", m["macro_f1"]),
              ("test images", f"{m['n']:,}", "n", m["n"])]
    card_html = "".join(f'<div class="card"><div class="v" data-metric="{k}" data-value="{v!r}">{e(t)}</div>'
                        f'<div class="l">{e(label)}</div></div>' for label, t, k, v in cards)
    fig_html = ""
    for f in report["figures"]:
        title, caption = FIGURES[f]
        caption = _curves_caption(report["config"], report.get("has_validation", True)) if f == "curves.png" else caption
        wide = ' class="wide"' if f in WIDE else ""
        fig_html += (f'<figure id="{f[:-4]}"{wide}><h2>{e(title)}</h2><img alt="{e(title)}" data-file="{f}" '
                     f'src="{_img(folder / f)}"><figcaption>{e(caption)}</figcaption></figure>')
    rows = "".join(f'<tr><td>{e(r["class"])}</td><td data-metric="precision">{r["precision"]:.4f}</td>'
                   f'<td data-metric="recall">{r["recall"]:.4f}</td><td data-metric="f1">{r["f1"]:.4f}</td>'
                   f'<td>{r["support"]:,}</td></tr>' for r in m["per_class"])
    cfg_rows = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _settings_rows(report["config"]))
    tm_rows = "".join(f"<tr><td>{e(str(k))}</td><td>{e(_plain(v))}</td></tr>"
                      for k, v in sorted(report["train_metrics"].items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>mnist-logreg report: {e(report['dataset'])}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }}
header {{ background: #1d2330; color: #fff; padding: 18px 28px; }}
header h1 {{ margin: 0; font-size: 22px; }} header p {{ margin: 4px 0 0; color: #b8c0cc; font-size: 13px; }}
main {{ max-width: 1180px; margin: 0 auto; padding: 20px; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 18px; }}
.card {{ background: #fff; border-radius: 8px; padding: 12px 18px; box-shadow: 0 1px 3px #0002; min-width: 150px; }}
.card .v {{ font-size: 24px; font-weight: 600; }} .card .l {{ font-size: 12px; color: #5b6473; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }}
figure {{ background: #fff; margin: 0; padding: 14px; border-radius: 8px; box-shadow: 0 1px 3px #0002; }}
figure h2 {{ font-size: 16px; margin: 0 0 8px; }} figure img {{ width: 100%; height: auto; }}
figure.wide {{ grid-column: 1 / -1; }} figure.wide img {{ max-width: 1100px; display: block; margin: 0 auto; }}
figcaption, .note {{ font-size: 13px; color: #5b6473; margin-top: 6px; }}
table {{ border-collapse: collapse; background: #fff; font-size: 13px; width: 100%; }}
td, th {{ border-bottom: 1px solid #e3e6ea; padding: 5px 10px; text-align: left; }}
section {{ margin-top: 18px; }} .two {{ display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }}
@media (max-width: 700px) {{ .grid, .two {{ grid-template-columns: 1fr; }} }}
</style></head><body>
<header><h1>mnist-logreg report — {e(report['dataset'])}</h1>
<p>{e(report['checkpoint'])} · created {e(str(report.get('created') or 'unknown'))} · one nn.Linear(784, 10), 7,850 parameters</p></header>
<main>
<div class="cards">{card_html}</div>
<div class="grid">{fig_html}</div>
<section><h2>Per-class precision, recall and F1 (test set)</h2>
<table id="per-class"><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{rows}</table></section>
<section class="two"><div><h2>Settings</h2><p class="note">Those not at their default (all of them are in
the run's config.toml).</p><table id="config">{cfg_rows}</table></div>
<div><h2>Training metrics</h2><table id="train-metrics">{tm_rows}</table></div></section>
</main></body></html>
"""
