"""Digits photographed in uneven light: accuracy and answer states before and after the
preprocessing's lighting step, on the notebook and digits presets' models, in one run.

The photos (probes.photos_of_digits): MNIST test digits written in dark ink on paper, 240-480
pixels, under even light, a soft shadow across the page, a gradient, ruled lines and
vignetting, with sensor noise and JPEG. "before": the preprocessing without the paper's level
(preprocess.paper_level returns zeros; the crop rule of today is kept); "after": as shipped.
Columns: top-1 accuracy, the share answered "digit" and right, the share answered "digit" and
wrong (the harm: a sure wrong answer), and the share the model sets aside (unsure, not a
digit, too small, blank).

    python bench/photos.py [--data-dir DIR] [--per-lighting N] [--presets notebook digits]

Issue 23 asks for the figures before and after (bench/README.md has them). The step is a
no-op on a clean pad or an MNIST image (its paper level is 0), so bench/honesty.py's figures
on drawn inputs hold; what it cannot fix: a shadow's tip narrower than a fifth of the picture
looks like a stroke.
"""
import argparse
import os
import sys
import tempfile
import time
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from mnist_logreg import TrainConfig, load_dataset, train_run  # noqa: E402
from mnist_logreg import preprocess as P  # noqa: E402
from mnist_logreg.answers import Predictor  # noqa: E402
from mnist_logreg.probes import LIGHTING, photos_of_digits  # noqa: E402


def row(pred: Predictor, photos) -> tuple:
    answers = [pred.answer(p.image) for p in photos]
    right = np.array([a.label == p.label for a, p in zip(answers, photos)])
    sure = np.array([a.state == "digit" for a in answers])
    return right.mean(), (right & sure).mean(), (~right & sure).mean(), (~sure).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--per-lighting", type=int, default=300, help="photos per lighting (default: 300)")
    ap.add_argument("--presets", nargs="+", default=["notebook", "digits"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    runs_dir = tempfile.mkdtemp(prefix="photos-")
    preds = {p: Predictor.from_checkpoint(train_run(TrainConfig.preset(p).replace(data_dir=args.data_dir), runs_dir,
                                                    p, report=False, log=None).checkpoint) for p in args.presets}
    test = load_dataset("mnist", "test", args.data_dir, download=False)
    n = args.per_lighting
    sets = {light: photos_of_digits(test.images[k * n:(k + 1) * n].numpy(), test.labels[k * n:(k + 1) * n].numpy(),
                                    light, seed=k) for k, light in enumerate(LIGHTING)}
    print(f"trained {', '.join(preds)} and made {n * len(LIGHTING)} photos in {time.time() - t0:.0f} s\n")
    print("| model | lighting | accuracy before → after | right and sure | wrong and sure | set aside |")
    print("|---|---|---|---|---|---|")
    for name, pred in preds.items():
        for light, photos in sets.items():
            with mock.patch.object(P, "paper_level", lambda arr: np.zeros_like(arr)):
                b = row(pred, photos)
            a = row(pred, photos)
            print(f"| {name} | {light} | {b[0]:.1%} → **{a[0]:.1%}** | {b[1]:.1%} → {a[1]:.1%} | "
                  f"{b[2]:.1%} → {a[2]:.1%} | {b[3]:.1%} → {a[3]:.1%} |")
    print(f"\ntotal {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
