"""Digits that are not MNIST's: printed digits from the fonts installed on this machine (thin
ExtraLight, regular and bold weights, upright and slanted, three sizes, dark ink on paper-like
grey with noise), through the tool's preprocessing, against two models: the default (the
notebook's recipe) and the `digits` preset (deskew + robust loss). Then the same with the
stroke width brought toward MNIST's before the 20x20 fit, to see whether that helps.

Stroke-width normalisation (this script only, not the tool's preprocessing): at 4x the 20x20
scale (80 pixels for the longer side), the stroke width is estimated as ink area / skeleton-free
length proxy, 2 * area / perimeter; grey erosion or dilation (3x3 min / max filters) is applied
until it is within the 25-75% range of MNIST's training digits measured the same way, then the
tool's steps continue.

    python bench/outside_digits.py [--data-dir DIR]
"""
import argparse
import glob
import os
import sys
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from mnist_logreg import TrainConfig, load_dataset  # noqa: E402
from mnist_logreg import preprocess as P  # noqa: E402


def fonts():
    keep = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-ExtraLight.ttf", "DejaVuSerif.ttf",
            "DejaVuSerif-Bold.ttf", "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf",
            "LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf", "LiberationMono-Regular.ttf",
            "LiberationMono-Bold.ttf", "DejaVuSansMono.ttf")
    found = {os.path.basename(f): f for f in glob.glob("/usr/share/fonts/**/*.ttf", recursive=True)}
    return [found[k] for k in keep if k in found]


def render(font_path, digit, size, slant, rng):
    font = ImageFont.truetype(font_path, size)
    side = int(size * 1.8)
    im = Image.new("L", (side, side), 0)
    ImageDraw.Draw(im).text((side // 2, side // 2), str(digit), fill=255, font=font, anchor="mm")
    im = im.transform(im.size, Image.AFFINE, (1, slant, -slant * side / 2, 0, 1, 0), resample=Image.BILINEAR)
    paper = rng.uniform(180, 240) + rng.normal(0, 6, (side, side)) + np.linspace(-10, 10, side)[None, :]
    ink = rng.uniform(10, 60)
    a = np.asarray(im, dtype=np.float64) / 255
    return np.clip(paper * (1 - a) + ink * a, 0, 255).astype(np.uint8)


def stroke_width(x):
    """2 * area / perimeter of the ink (> 0.5) of a grey image in [0, 1]."""
    ink = x > 0.5
    area = ink.sum()
    edges = (ink[1:, :] != ink[:-1, :]).sum() + (ink[:, 1:] != ink[:, :-1]).sum()
    return 2 * area / max(edges, 1)


def normalise_width(arr, target):
    """Light-on-dark float image in [0, 1] (after the tool's polarity and noise steps): crop,
    scale the longer side to 80 px, erode or dilate toward MNIST's stroke width."""
    ys, xs = np.nonzero(arr > 0.5)
    crop = arr[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    s = 80 / max(h, w)
    im = Image.fromarray((crop * 255).astype(np.uint8)).resize((max(1, round(w * s)), max(1, round(h * s))),
                                                                Image.LANCZOS)
    im = Image.fromarray(np.pad(np.asarray(im), 8))
    for _ in range(6):
        width = stroke_width(np.asarray(im) / 255)
        if width > target[1]:
            im = im.filter(ImageFilter.MinFilter(3))
        elif width < target[0]:
            im = im.filter(ImageFilter.MaxFilter(3))
        else:
            break
    return np.asarray(im)


def mnist_width_range(train):
    widths = []
    for img in train.images[:2000].numpy():
        ys, xs = np.nonzero(img > 127)
        crop = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        h, w = crop.shape
        s = 80 / max(h, w)
        big = Image.fromarray(crop).resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
        widths.append(stroke_width(np.asarray(big) / 255))
    return np.percentile(widths, [25, 50, 75])


def accuracy(model, xs, ys):
    with torch.no_grad():
        return float((model(torch.from_numpy(np.stack(xs))).argmax(1).numpy() == np.array(ys)).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    import tempfile

    from mnist_logreg.run import train_run

    train = load_dataset("mnist", "train", args.data_dir, download=False)
    p25, p50, p75 = mnist_width_range(train)
    print(f"MNIST stroke width at 80 px (2 x area / perimeter), 2,000 training digits: 25% {p25:.1f}, "
          f"median {p50:.1f}, 75% {p75:.1f}")
    rng = np.random.default_rng(0)
    images, labels, kinds = [], [], []
    for f in fonts():
        for digit in range(10):
            for size in (40, 90, 160):
                for slant in (-0.25, 0.0, 0.25):
                    images.append(render(f, digit, size, slant, rng))
                    labels.append(digit)
                    kinds.append(os.path.basename(f))
    print(f"{len(images)} printed digits from {len(fonts())} fonts; {time.strftime('%Y-%m-%d')}")
    plain = [P.preprocess(im) for im in images]
    widened = [P.preprocess(normalise_width(_light(im), (p25, p75))) for im in images]
    with tempfile.TemporaryDirectory() as tmp:
        models = {name: train_run(TrainConfig.preset(name).replace(data_dir=args.data_dir, no_download=True),
                                  tmp, name, report=False, log=None).model for name in ("notebook", "digits")}
    print(f"\n{'model':10s} {'as preprocessed':>16s} {'+ stroke width':>15s}")
    for name, m in models.items():
        print(f"{name:10s} {accuracy(m, plain, labels):16.3f} {accuracy(m, widened, labels):15.3f}")
    for group in ("Bold", "ExtraLight"):
        idx = [i for i, k in enumerate(kinds) if group in k]
        sub = lambda xs: [xs[i] for i in idx]  # noqa: E731
        print(f"  {group:8s} fonts only ({len(idx)}): " + ", ".join(
            f"{name} {accuracy(m, sub(plain), sub(labels)):.3f} -> {accuracy(m, sub(widened), sub(labels)):.3f}"
            for name, m in models.items()))


def _light(im):
    """The tool's first steps (polarity, median filter, Otsu, background to 0): light ink on dark."""
    a = im.astype(np.float64) / 255
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if np.median(border) > 0.5:
        a = 1 - a
    a = np.asarray(Image.fromarray(a.astype(np.float32), mode="F").filter(ImageFilter.MedianFilter(3)))
    t = P.otsu_threshold(a)
    bg, fg = np.median(a[a < t]), np.percentile(a[a >= t], 90)
    return np.clip((a - bg) / (fg - bg), 0, 1)


if __name__ == "__main__":
    main()
