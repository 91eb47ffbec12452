"""Figures that are grids of 28x28 images (samples, predictions, mistakes, weight templates),
drawn with numpy and Pillow: a few milliseconds each, where matplotlib took about 0.45 s to
import and 0.2 s per figure to lay out (issue 17). The font is matplotlib's DejaVu Sans, so
these sit beside the plotted figures without a change of type.

Examples
--------
>>> import numpy as np
>>> img = grid_picture([np.zeros((28, 28), np.uint8)] * 3, ["a", "b", "c"], ["black"] * 3, cols=2, title="t")
>>> img.mode, img.size[0] > 2 * 84
('RGB', True)
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ._files import atomic_write

SCALE = 3  # each pixel drawn as SCALE x SCALE
GAP, MARGIN = 10, 12
COLOURS = {"black": (0, 0, 0), "tab:green": (44, 160, 44), "tab:red": (214, 39, 40), "tab:blue": (31, 119, 180)}
# matplotlib's RdBu (ColorBrewer, 11 steps), reversed: blue (negative) .. white .. red (positive)
_RDBU_R = np.array([[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240],
                    [247, 247, 247], [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43],
                    [103, 0, 31]], dtype=float)


@functools.lru_cache(maxsize=None)
def _font(size: int):
    """DejaVu Sans from matplotlib's package data (found without importing matplotlib), or
    Pillow's own default font."""
    import importlib.util

    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def diverging(values: np.ndarray, limit: float) -> np.ndarray:
    """RGB uint8 of ``values`` on RdBu_r, -limit (blue) .. 0 (white) .. +limit (red)."""
    t = np.clip((np.asarray(values, dtype=float) / (limit or 1.0) + 1) / 2, 0, 1) * (len(_RDBU_R) - 1)
    lo = np.floor(t).astype(int).clip(0, len(_RDBU_R) - 2)
    frac = (t - lo)[..., None]
    return np.round(_RDBU_R[lo] * (1 - frac) + _RDBU_R[lo + 1] * frac).astype(np.uint8)


def _as_rgb(cell: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """A (28, 28) grey image (uint8 0..255, or floats in [0, 1]) or an RGB one, enlarged."""
    cell = np.asarray(cell)
    if cell.ndim == 2 or cell.shape[-1] != 3:
        cell = cell.reshape(28, 28)
        grey = cell if cell.dtype == np.uint8 else np.clip(np.round(cell.astype(float) * 255), 0, 255)
        cell = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    return np.kron(cell, np.ones((scale, scale, 1), dtype=np.uint8))


def grid_picture(cells, captions, colours, *, cols: int = 8, title: str | None = None, font_size: int = 12,
                 scale: int = SCALE):
    """One picture: ``cells`` in rows of ``cols``, each under its caption in its colour, each
    pixel drawn ``scale`` x ``scale``."""
    from PIL import Image, ImageDraw

    cells = [_as_rgb(c, scale) for c in cells]
    n, cols = len(cells), max(1, min(cols, len(cells) or 1))
    rows = max(1, -(-n // cols))
    title_font = _font(font_size + 4)
    ch, cw = cells[0].shape[:2] if cells else (28 * scale, 28 * scale)
    cap = font_size + 6
    top = MARGIN + (font_size + 14 if title else 0)
    cells_width = cols * cw + (cols - 1) * GAP
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = 2 * MARGIN + max(cells_width, int(measure.textlength(title, font=title_font)) + 2 if title else 0)
    left = (width - cells_width) // 2  # a title wider than one image: the image centred under it
    height = top + rows * (cap + ch) + (rows - 1) * GAP + MARGIN
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((width / 2, MARGIN), title, fill="black", font=title_font, anchor="mt")
    for k, (cell, text, colour) in enumerate(zip(cells, captions, colours)):
        x = left + (k % cols) * (cw + GAP)
        y = top + (k // cols) * (cap + ch + GAP)
        font = _fitting(draw, str(text), font_size, cw + GAP - 2)
        draw.text((x + cw / 2, y + cap - 3), _elided(draw, str(text), font, cw + GAP - 2),
                  fill=COLOURS.get(colour, colour), font=font, anchor="mb")
        img.paste(Image.fromarray(cell), (x, y + cap))
    return img


def _fitting(draw, text: str, size: int, width: int, smallest: int = 8):
    """The font at ``size``, or smaller (down to ``smallest``, still readable) until ``text``
    fits in ``width`` pixels (long class names such as Fashion-MNIST's 'T-shirt/top→Pullover')."""
    while size > smallest and draw.textlength(text, font=_font(size)) > width:
        size -= 1
    return _font(size)


def _elided(draw, text: str, font, width: int) -> str:
    """``text``, or its start and end around "…" when it does not fit even in the smallest font:
    a long file name keeps its extension and the answer after it."""
    if draw.textlength(text, font=font) <= width:
        return text
    keep = len(text)
    while keep > 2 and draw.textlength(text[:keep // 2] + "…" + text[-(keep - keep // 2):], font=font) > width:
        keep -= 1
    return text[:keep // 2] + "…" + text[-(keep - keep // 2):]


def save_png(img, path) -> Path:
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG", optimize=False), durable=False)
    return Path(path)


def image_grid(images, labels, path, *, classes=None, cols: int = 8, title: str | None = None) -> Path:
    """A grid of images with their labels (``samples.png``, ``show``)."""
    images, labels = np.asarray(images), np.asarray(labels)
    names = [classes[int(v)] if classes is not None and 0 <= int(v) < len(classes) else str(int(v)) for v in labels]
    return save_png(grid_picture(list(images), names, ["black"] * len(names), cols=cols, title=title), path)


def gallery_plot(images, titles, colors, path, *, cols: int = 8, title: str | None = None) -> Path:
    """Images with a coloured caption each (mistakes, predictions, what the model saw)."""
    return save_png(grid_picture(list(np.asarray(images)), titles, colors, cols=cols, title=title, font_size=11),
                    path)


def evidence_plot(seen, maps, captions, path, *, title: str | None = None) -> Path:
    """For each input: what the model saw (grey) and its evidence map (red: pixels for the
    answer, blue: for the class it is compared with), two cells side by side."""
    cells, texts = [], []
    for x, m, (left, right) in zip(seen, maps, captions):
        m = np.asarray(m, dtype=float).reshape(28, 28)
        cells += [np.asarray(x, dtype=np.float32).reshape(28, 28), diverging(m, float(np.abs(m).max()) or 1.0)]
        texts += [left, right]
    return save_png(grid_picture(cells, texts, ["black"] * len(cells), cols=min(8, len(cells)), title=title,
                                 font_size=11), path)


def weights_plot(weight, classes, path) -> Path:
    """Each class's weight row as a 28x28 template on a diverging colour scale centred on 0 (red
    pixels raise the class's score, blue lower it), with the scale's bar beside them."""
    from PIL import Image, ImageDraw

    w = np.asarray(weight, dtype=float).reshape(len(classes), 28, 28)
    lim = float(np.abs(w).max()) or 1.0
    grid = grid_picture([diverging(t, lim) for t in w], [str(c) for c in classes], ["black"] * len(classes),
                        cols=5, title="Learned weight templates (rows of linear.weight)", font_size=16, scale=5)
    font = _font(13)
    bar_h = grid.size[1] - 2 * MARGIN - 50
    bar = diverging(np.linspace(lim, -lim, bar_h)[:, None].repeat(14, 1), lim)
    img = Image.new("RGB", (grid.size[0] + 90, grid.size[1]), "white")
    img.paste(grid, (0, 0))
    x, y = grid.size[0] + 8, MARGIN + 30
    img.paste(Image.fromarray(bar), (x, y))
    draw = ImageDraw.Draw(img)
    draw.rectangle([x - 1, y - 1, x + 14, y + bar_h], outline="black")
    for v, yy in ((lim, y), (0.0, y + bar_h / 2), (-lim, y + bar_h)):
        draw.text((x + 19, yy), f"{v:+.2f}" if v else "0", fill="black", font=font, anchor="lm")
    draw.text((x + 7, y - 6), "weight", fill="black", font=font, anchor="mb")
    return save_png(img, path)


def _nice_ticks(lo: float, hi: float, count: int = 6) -> list:
    """Round tick values inside [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    import math

    raw = ((hi - lo) or 1.0) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int(math.floor((hi - first) / step + 1e-9)) + 1)]


def _padded(values, pad: float = 0.05):
    lo, hi = min(values, default=0.0), max(values, default=1.0)
    span = (hi - lo) or 1.0
    return lo - pad * span, hi + pad * span


def accuracy_plot(history_rows, path) -> Path:
    """Validation accuracy against epoch (epoch 0 = before training): the notebook's plot,
    a line with an x at each epoch, drawn with Pillow; without a validation split (val_size
    0), the training loss."""
    from PIL import Image, ImageDraw

    key = "val_acc" if any(r.get("val_acc") is not None for r in history_rows) else "train_loss"  # val_size 0
    rows = [r for r in history_rows if r.get(key) is not None]
    xs, ys = [r["epoch"] for r in rows], [r[key] for r in rows]
    W, H, left, right, top, bottom = 660, 440, 78, 24, 44, 58
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    font, big = _font(12), _font(15)
    (x0, x1), (y0, y1) = _padded(xs), _padded(ys)
    xt, yt = _nice_ticks(x0, x1, 8), _nice_ticks(y0, y1, 7)
    px = lambda v: left + (v - x0) / ((x1 - x0) or 1) * (W - left - right)  # noqa: E731
    py = lambda v: H - bottom - (v - y0) / ((y1 - y0) or 1) * (H - top - bottom)  # noqa: E731
    for v in xt:
        draw.line([(px(v), top), (px(v), H - bottom)], fill=(225, 225, 225))
        draw.text((px(v), H - bottom + 6), f"{v:g}", fill="black", font=font, anchor="mt")
    for v in yt:
        draw.line([(left, py(v)), (W - right, py(v))], fill=(225, 225, 225))
        draw.text((left - 6, py(v)), f"{v:.3g}", fill="black", font=font, anchor="rm")
    draw.rectangle([left, top, W - right, H - bottom], outline="black")
    points = [(px(x), py(y)) for x, y in zip(xs, ys)]
    if len(points) > 1:
        draw.line(points, fill=COLOURS["tab:blue"], width=2)
    for x, y in points:
        draw.line([(x - 4, y - 4), (x + 4, y + 4)], fill=COLOURS["tab:blue"], width=2)
        draw.line([(x - 4, y + 4), (x + 4, y - 4)], fill=COLOURS["tab:blue"], width=2)
    title = "Accuracy vs. No. of epochs" if key == "val_acc" else "Training loss vs. No. of epochs (no validation split)"
    draw.text((W / 2, 14), title, fill="black", font=big, anchor="mt")
    draw.text((left + (W - left - right) / 2, H - 16), "epoch", fill="black", font=font, anchor="mb")
    label = Image.new("RGB", (200, 18), "white")
    ImageDraw.Draw(label).text((100, 9), "validation accuracy" if key == "val_acc" else "training loss",
                               fill="black", font=font, anchor="mm")
    img.paste(label.rotate(90, expand=True), (8, top + (H - top - bottom) // 2 - 100))
    return save_png(img, path)
