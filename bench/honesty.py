"""Can a model's answers be trusted? Out-of-distribution detection, calibration and the answer
states, measured on the three presets' models, side by side in one run.

1. Scores that should say "this is not a digit", on the same models: the largest softmax
   probability (the usual baseline), the energy score (log-sum-exp of the logits), the residual
   outside the top 100 principal components of the training images (after the model's
   transform), and the tool's digit-likeness (trust.Likeness). AUROC of MNIST test digits
   (in) against each generated set (out): Fashion-MNIST test images, letters drawn on the pad,
   letters printed in 11 fonts, shapes drawn on the pad (lines, boxes, hash signs, smileys,
   scribbles, an almost filled pad, ...), photos without a digit; and of honestly drawn digits
   against all of those. The share of each set the default threshold flags.
2. Calibration on the test set: ECE and NLL of the plain softmax, a temperature alone, and the
   tool's temperature + top-label Platt scaling.
3. The answer states (digit / unsure / not a digit / too small / blank) of every set, through
   the whole pipeline (preprocessing included), and the unsure share against SURE_AT.

    python bench/honesty.py [--data-dir DIR] [--quick]

Targets (issue 22): AUROC >= 0.99 against Fashion-MNIST and >= 0.95 against letters + shapes;
the default threshold flags <= 2% of MNIST test digits and <= 5% of drawn digits; test ECE
<= 1.0% for the three presets.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from mnist_logreg import TrainConfig, load_dataset, split, train_run  # noqa: E402
from mnist_logreg import probes as P  # noqa: E402
from mnist_logreg.answers import NOT_A_DIGIT_BELOW, STATES, Predictor  # noqa: E402
from mnist_logreg.errors import ImageError  # noqa: E402
from mnist_logreg.metrics import calibration  # noqa: E402
from mnist_logreg.preprocess import preprocess  # noqa: E402
from mnist_logreg.transforms import apply  # noqa: E402
from mnist_logreg.trust import Calibrator  # noqa: E402


def auroc(inside, outside) -> float:
    """P(score of an in-distribution input > score of an outside one), ties counted half
    (the Mann-Whitney statistic, from average ranks)."""
    a, b = np.asarray(inside, np.float64), np.asarray(outside, np.float64)
    values = np.concatenate([a, b])
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    sv, i = values[order], 0
    while i < len(sv):
        j = np.searchsorted(sv, sv[i], side="right")
        ranks[order[i:j]] = (i + j + 1) / 2  # the average of ranks i+1 .. j
        i = j
    return float((ranks[:len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))


def probe_sets(quick: bool) -> dict:
    """The generated inputs, as pictures (probes.Probe), by set."""
    k = 3 if quick else 1
    return {"drawn digits": P.drawn_digits(600 // k, seed=10), "drawn letters": P.drawn_letters(240 // k, seed=11),
            "font letters": P.font_letters(seed=13)[::k], "drawn shapes": P.drawn_shapes(260 // k, seed=12),
            "photos": P.photos_without_digit(60 // k, seed=14)}


def preprocessed(probes) -> torch.Tensor:
    xs = []
    for p in probes:
        try:
            xs.append(preprocess(p.image))
        except ImageError:
            pass
    return torch.from_numpy(np.stack(xs)).reshape(len(xs), 784)


class Scores:
    """Every score of the comparison for one model (higher = more like the training data)."""

    def __init__(self, run, train):
        self.pred = Predictor.from_checkpoint(run.checkpoint)
        self.model = run.model
        x = apply(self.model.transform, train.features()).double()
        self.mu = x.mean(0)
        d = x - self.mu
        _, vectors = torch.linalg.eigh(d.T @ d)
        self.pcs = vectors.flip(1)[:, :100]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> dict:
        logits = self.model(x).double()
        d = apply(self.model.transform, x).double() - self.mu
        residual = (d * d).sum(1) - ((d @ self.pcs) ** 2).sum(1)
        return {"max softmax": torch.softmax(logits, 1).max(1).values.numpy(),
                "energy": torch.logsumexp(logits, 1).numpy(), "PCA-100 residual": (-residual).numpy(),
                "digit-likeness": self.pred.likeness_model.score(x).numpy()}


def ood_table(name, scores: Scores, inside: torch.Tensor, outside: dict, drawn) -> None:
    s_in = scores(inside)
    s_out = {k: scores(v) for k, v in outside.items()}
    s_drawn = scores(drawn) if drawn is not None else None
    cols = list(outside) + ["letters + shapes"] + (["drawn digits vs letters + shapes"] if drawn is not None else [])
    print(f"\n### {name}: AUROC, in-distribution = its test images\n")
    print("| score | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    ls_sets = [k for k in outside if k in ("drawn letters", "font letters", "drawn shapes")]
    for method in s_in:
        ls = np.concatenate([s_out[k][method] for k in ls_sets]) if ls_sets else None
        row = [auroc(s_in[method], s_out[k][method]) for k in outside]
        row.append(auroc(s_in[method], ls) if ls is not None else float("nan"))
        if drawn is not None:
            row.append(auroc(s_drawn[method], ls))
        print(f"| {method} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    like = {k: scores.pred.likeness(v).numpy() for k, v in {"test": inside, **outside}.items()}
    if drawn is not None:
        like["drawn digits"] = scores.pred.likeness(drawn).numpy()
    print(f"\nflagged 'not a digit' at the default threshold (likeness < {NOT_A_DIGIT_BELOW}): "
          + ", ".join(f"{k} {np.mean(v < NOT_A_DIGIT_BELOW) * 100:.1f}%" for k, v in like.items()))


def calibration_rows(name, run, test) -> list:
    pred = Predictor.from_checkpoint(run.checkpoint)
    with torch.no_grad():
        logits = run.model(test.features())
    c = pred.calibrator
    rows = []
    for what, probs in (("softmax", torch.softmax(logits.double(), 1)),
                        ("temperature only", Calibrator(c.temperature)(logits)),
                        ("temperature + Platt (with the likeness: the tool's)", pred.probabilities(test.features()))):
        cal = calibration(probs, test.labels)
        rows.append(f"| {name} | {what} | {cal['ece'] * 100:.2f}% | {cal['nll']:.4f} |")
    return rows


def states_table(name, pred: Predictor, sets: dict, test) -> None:
    print(f"\n### {name}: answer states (whole pipeline)\n")
    print("| set | n | " + " | ".join(STATES) + " | right when 'digit' |")
    print("|---" * (len(STATES) + 3) + "|")
    answers = {"MNIST test" if "fashion" not in name else "test": (pred.answers(test.features()), test.labels.tolist())}
    for k, probes in sets.items():
        answers[k] = ([pred.answer(p.image) for p in probes], [p.label for p in probes])
    for k, (ans, labels) in answers.items():
        counts = [sum(a.state == s for a in ans) / len(ans) * 100 for s in STATES]
        sure = [(a.label == y) for a, y in zip(ans, labels) if a.state == "digit" and y is not None]
        right = f"{np.mean(sure) * 100:.1f}%" if sure else "-"
        print(f"| {k} | {len(ans)} | " + " | ".join(f"{c:.1f}%" for c in counts) + f" | {right} |")


def sure_sweep(pred: Predictor, test, drawn) -> None:
    print("\nunsure share and accuracy of the sure answers, by SURE_AT (MNIST test; drawn digits):")
    for name, (x, y) in (("MNIST test", (test.features(), test.labels)), ("drawn digits", drawn)):
        probs = pred.probabilities(x)
        top = probs.max(1)
        for at in (0.6, 0.7, 0.8, 0.9):
            sure = top.values >= at
            acc = float((top.indices[sure] == y[sure]).double().mean())
            print(f"  {name:12s} SURE_AT {at}: unsure {float((~sure).double().mean()) * 100:5.1f}%, "
                  f"sure answers right {acc * 100:.2f}%")


def examples(preds: dict) -> None:
    """The issue's table: what each model answers for a few inputs a person tries."""
    rng = np.random.default_rng(99)
    cases = {"letter A": P.LETTERS["A"], "letter e": P.LETTERS["e"], "letter S": P.LETTERS["S"]}
    pics = {k: P.render_strokes(P._jitter(v, rng, 0.3), rng, width=18, size=200) for k, v in cases.items()}
    for shape in ("smiley", "scribble", "line", "hash", "filled"):
        pics[shape] = next(p.image for p in P.drawn_shapes(13, seed=5) if p.name == shape)
    pics["photo, no digit"] = P.photos_without_digit(1, seed=3)[0].image
    pics["1 with a flag"] = P.drawn_digits(1, seed=7, variants={"1-flag"})[0].image
    pics["a drawn 3"] = P.drawn_digits(4, seed=7)[3].image
    print("\n### What a person sees\n")
    print("| input | " + " | ".join(preds) + " |")
    print("|---" * (len(preds) + 1) + "|")
    for k, img in pics.items():
        print(f"| {k} | " + " | ".join(p.answer(img).message for p in preds.values()) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--quick", action="store_true", help="a third of the generated sets (CI's smoke run)")
    ap.add_argument("--presets", nargs="+", default=["notebook", "digits", "fashion"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    runs_dir = tempfile.mkdtemp(prefix="honesty-")
    runs = {p: train_run(TrainConfig.preset(p).replace(data_dir=args.data_dir), runs_dir, p, report=False, log=None)
            for p in args.presets}
    print(f"trained {', '.join(runs)} in {time.time() - t0:.0f} s (calibration included)")
    sets = probe_sets(args.quick)
    x_sets = {k: preprocessed(v) for k, v in sets.items()}
    drawn = x_sets.pop("drawn digits")
    drawn_labels = torch.tensor([p.label for p in sets["drawn digits"]
                                 if not _blank(p.image)])
    mnist_test = load_dataset("mnist", "test", args.data_dir, download=False)
    fashion_test = load_dataset("fashion-mnist", "test", args.data_dir, download=False)
    n = 2000 if args.quick else 10_000
    for p, run in runs.items():
        cfg = run.config
        train = split(load_dataset(cfg.dataset, "train", args.data_dir, download=False), cfg.val_size, cfg.seed)[0]
        scores = Scores(run, train)
        if cfg.dataset == "mnist":
            outside = {"Fashion-MNIST": fashion_test.features()[:n], **x_sets}
            ood_table(p, scores, mnist_test.features()[:n], outside, drawn)
        else:
            outside = {"MNIST": mnist_test.features()[:n], **x_sets}
            ood_table(p, scores, fashion_test.features()[:n], outside, None)
    print("\n### Calibration on the test set (15 bins)\n")
    print("| model | probabilities | ECE | NLL |\n|---|---|---|---|")
    for p, run in runs.items():
        test = mnist_test if run.config.dataset == "mnist" else fashion_test
        print("\n".join(calibration_rows(p, run, test)))
    preds = {p: Predictor.from_checkpoint(run.checkpoint) for p, run in runs.items()}
    for p, pred in preds.items():
        test = mnist_test if runs[p].config.dataset == "mnist" else fashion_test
        states_table(p, pred, sets, test)
        if runs[p].config.dataset == "mnist":
            sure_sweep(pred, mnist_test, (drawn, drawn_labels))
    examples({p: v for p, v in preds.items() if runs[p].config.dataset == "mnist"})
    print(f"\ntotal {time.time() - t0:.0f} s")


def _blank(image) -> bool:
    try:
        preprocess(image)
        return False
    except ImageError:
        return True


if __name__ == "__main__":
    main()
