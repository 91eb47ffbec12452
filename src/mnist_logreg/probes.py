"""Inputs a digit model was never trained on, and digits drawn the way people draw them:
generated, small and seeded, to measure whether a model's answers can be trusted.

Everything here is a picture as a person would give it to the tool (dark ink on white, any
size), to be sent through :func:`mnist_logreg.preprocess.preprocess`, the drawing page or the
REST API like any other input:

- :func:`drawn_digits`: digits drawn on the page's 280x280 pad, stroke by stroke, with the
  pad's round pen: several ways to write each digit (a 1 as a stick or with a flag, a 7 with
  or without its bar, an open or closed 4, ...), jittered in slant, shape, size, place and
  stroke width. The "honestly drawn digits" of the honesty bench and the browser tests.
- :func:`drawn_letters`, :func:`drawn_shapes`: letters, lines, boxes, hash signs, smileys,
  scribbles, an almost filled pad, drawn on the same pad.
- :func:`font_letters`: upper- and lower-case letters printed in the fonts matplotlib ships
  (so every machine has them), on paper-like grey.
- :func:`photos_of_digits`: MNIST digits as dark ink on paper photographed in uneven light:
  a soft shadow across the page, a gradient, ruled lines, vignetting (or even light).
- :func:`photos_without_digit`: camera-like pictures (uneven light, noise, JPEG) of objects
  that are not digits: a rectangle and a disc, bars, rings, a texture.

``bench/honesty.py`` measures the digit-likeness score and the calibration on these sets;
``report.html`` shows what a model says about a few of them.

Examples
--------
>>> import numpy as np
>>> pads = drawn_digits(3, seed=0)
>>> [(p.image.shape, p.image.dtype.name, p.label) for p in pads][:1]
[((280, 280), 'uint8', 0)]
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

PAD = 280            # the drawing page's pad, in canvas pixels
PEN_WIDTHS = (10, 14, 18, 18, 18, 22, 26)  # the page's slider runs 8..32, default 18
SUPERSAMPLE = 4      # strokes are drawn 4x larger and box-reduced: anti-aliased like a canvas


@dataclass
class Probe:
    """One generated input: a grey uint8 picture (dark ink on light paper), what it is
    (``kind``: "digit", "letter", "shape", "photo"), its ``name`` (e.g. "1-flag", "A",
    "smiley") and, for digits, the ``label``."""

    image: np.ndarray
    kind: str
    name: str
    label: int | None = None


# -- strokes ------------------------------------------------------------------------------
def _arc(cx, cy, rx, ry, a0, a1, n=40):
    """Points of an elliptical arc, angles in degrees, 0 = right, 90 = down (y grows down)."""
    t = np.radians(np.linspace(a0, a1, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


def _bez(p0, p1, p2, p3, n=30):
    """Points of a cubic Bézier curve."""
    t = np.linspace(0, 1, n)[:, None]
    pts = ((1 - t) ** 3 * np.array(p0) + 3 * (1 - t) ** 2 * t * np.array(p1) + 3 * (1 - t) * t ** 2 * np.array(p2)
           + t ** 3 * np.array(p3))
    return [tuple(p) for p in pts]


def _eight():
    t = np.linspace(0, 2 * np.pi, 80)
    return list(zip(0.5 + 0.24 * np.sin(2 * t), 0.5 - 0.42 * np.cos(t)))


#: digit -> {variant: strokes}; a stroke is a list of (x, y) in the unit square, y down
DIGITS = {
    0: {"oval": [_arc(0.5, 0.5, 0.3, 0.42, -90, 285)]},
    1: {"stick": [[(0.5, 0.08), (0.5, 0.92)]],
        "flag": [[(0.3, 0.3), (0.56, 0.08), (0.56, 0.92)]],
        "flag-base": [[(0.3, 0.3), (0.56, 0.08), (0.56, 0.92)], [(0.3, 0.92), (0.82, 0.92)]]},
    2: {"z": [_bez((0.2, 0.28), (0.22, 0.0), (0.82, 0.02), (0.75, 0.36)) + [(0.18, 0.9), (0.85, 0.9)]]},
    3: {"round": [_bez((0.2, 0.15), (0.5, -0.05), (0.95, 0.2), (0.45, 0.47))
                  + _bez((0.45, 0.47), (0.95, 0.5), (0.85, 1.05), (0.18, 0.85))]},
    4: {"closed": [[(0.62, 0.08), (0.15, 0.64), (0.85, 0.64)], [(0.62, 0.32), (0.62, 0.92)]],
        "open": [[(0.25, 0.08), (0.2, 0.56), (0.8, 0.56)], [(0.66, 0.08), (0.66, 0.92)]]},
    5: {"one-stroke": [[(0.78, 0.1), (0.3, 0.1), (0.26, 0.45)] + _bez((0.26, 0.45), (0.6, 0.3), (0.98, 0.6), (0.7, 0.83))
                       + _bez((0.7, 0.83), (0.55, 0.97), (0.3, 0.95), (0.18, 0.85))],
        "two-strokes": [[(0.3, 0.1), (0.26, 0.45)] + _bez((0.26, 0.45), (0.6, 0.3), (0.98, 0.6), (0.7, 0.83))
                        + _bez((0.7, 0.83), (0.55, 0.97), (0.3, 0.95), (0.18, 0.85)), [(0.3, 0.1), (0.8, 0.1)]]},
    6: {"loop": [_bez((0.7, 0.08), (0.32, 0.15), (0.2, 0.5), (0.23, 0.7)) + _arc(0.5, 0.7, 0.27, 0.22, 180, -170)]},
    7: {"plain": [[(0.18, 0.1), (0.82, 0.1), (0.4, 0.92)]],
        "bar": [[(0.18, 0.1), (0.82, 0.1), (0.4, 0.92)], [(0.35, 0.5), (0.76, 0.5)]]},
    8: {"eight": [_eight()]},
    9: {"round": [_arc(0.5, 0.3, 0.24, 0.21, 0, -360) + [(0.74, 0.32), (0.7, 0.92)]],
        "hook": [_arc(0.5, 0.3, 0.24, 0.21, 0, -360) + _bez((0.74, 0.3), (0.76, 0.7), (0.7, 0.95), (0.35, 0.88))]},
}

#: letters as people draw them with a mouse or a finger
LETTERS = {
    "A": [[(0.15, 0.92), (0.5, 0.08), (0.85, 0.92)], [(0.3, 0.6), (0.7, 0.6)]],
    "E": [[(0.78, 0.1), (0.25, 0.1), (0.25, 0.9), (0.8, 0.9)], [(0.25, 0.5), (0.7, 0.5)]],
    "F": [[(0.8, 0.1), (0.28, 0.1), (0.28, 0.92)], [(0.28, 0.5), (0.7, 0.5)]],
    "H": [[(0.2, 0.08), (0.2, 0.92)], [(0.8, 0.08), (0.8, 0.92)], [(0.2, 0.5), (0.8, 0.5)]],
    "K": [[(0.25, 0.08), (0.25, 0.92)], [(0.8, 0.1), (0.27, 0.55), (0.82, 0.92)]],
    "M": [[(0.12, 0.92), (0.2, 0.08), (0.5, 0.6), (0.8, 0.08), (0.88, 0.92)]],
    "N": [[(0.2, 0.92), (0.2, 0.08), (0.8, 0.92), (0.8, 0.08)]],
    "R": [[(0.25, 0.92), (0.25, 0.08)] + _bez((0.25, 0.08), (0.95, 0.05), (0.95, 0.5), (0.25, 0.5)) + [(0.8, 0.92)]],
    "T": [[(0.12, 0.1), (0.88, 0.1)], [(0.5, 0.1), (0.5, 0.92)]],
    "V": [[(0.15, 0.08), (0.5, 0.92), (0.85, 0.08)]],
    "W": [[(0.08, 0.1), (0.28, 0.9), (0.5, 0.35), (0.72, 0.9), (0.92, 0.1)]],
    "X": [[(0.18, 0.1), (0.82, 0.9)], [(0.82, 0.1), (0.18, 0.9)]],
    "Y": [[(0.15, 0.08), (0.5, 0.5), (0.85, 0.08)], [(0.5, 0.5), (0.5, 0.92)]],
    "S": [_bez((0.78, 0.18), (0.5, -0.05), (0.1, 0.15), (0.3, 0.4)) + _bez((0.3, 0.4), (0.5, 0.55), (0.95, 0.6), (0.7, 0.85))
          + _bez((0.7, 0.85), (0.5, 1.0), (0.2, 0.9), (0.18, 0.8))],
    "a": [_arc(0.45, 0.65, 0.25, 0.25, -30, -390), [(0.72, 0.38), (0.72, 0.92)]],
    "e": [[(0.2, 0.6), (0.8, 0.6)] + _arc(0.5, 0.6, 0.3, 0.3, 0, -320)],
    "h": [[(0.25, 0.05), (0.25, 0.95)], _bez((0.25, 0.6), (0.4, 0.35), (0.75, 0.35), (0.75, 0.6)) + [(0.75, 0.95)]],
    "k": [[(0.25, 0.05), (0.25, 0.95)], [(0.75, 0.4), (0.27, 0.7), (0.78, 0.95)]],
    "m": [[(0.1, 0.4), (0.1, 0.92)], _bez((0.1, 0.5), (0.2, 0.3), (0.5, 0.3), (0.5, 0.5)) + [(0.5, 0.92)],
          _bez((0.5, 0.5), (0.6, 0.3), (0.9, 0.3), (0.9, 0.5)) + [(0.9, 0.92)]],
    "n": [[(0.25, 0.35), (0.25, 0.92)], _bez((0.25, 0.5), (0.35, 0.3), (0.75, 0.3), (0.75, 0.5)) + [(0.75, 0.92)]],
    "r": [[(0.3, 0.35), (0.3, 0.92)], _bez((0.3, 0.55), (0.4, 0.35), (0.6, 0.3), (0.78, 0.38))],
    "w": [[(0.08, 0.35), (0.28, 0.9), (0.5, 0.45), (0.72, 0.9), (0.92, 0.35)]],
    "x": [[(0.2, 0.35), (0.8, 0.92)], [(0.8, 0.35), (0.2, 0.92)]],
    "u": [[(0.25, 0.35)] + _bez((0.25, 0.35), (0.22, 1.0), (0.78, 1.0), (0.75, 0.35)) + [(0.77, 0.92)]],
}


def _shape_strokes(name, rng):
    """Strokes of a shape that is not a digit (some drawn afresh every time: scribbles)."""
    if name == "line":
        y = rng.uniform(0.3, 0.7)
        return [[(0.08, y), (0.92, y + rng.uniform(-0.08, 0.08))]]
    if name == "box":
        return [[(0.15, 0.15), (0.85, 0.15), (0.85, 0.85), (0.15, 0.85), (0.15, 0.15)]]
    if name == "hash":
        return [[(0.35, 0.1), (0.3, 0.9)], [(0.7, 0.1), (0.65, 0.9)], [(0.1, 0.35), (0.9, 0.35)], [(0.1, 0.65), (0.9, 0.65)]]
    if name == "smiley":
        return [_arc(0.5, 0.5, 0.42, 0.42, 0, 365), [(0.36, 0.38)], [(0.64, 0.38)], _arc(0.5, 0.55, 0.22, 0.18, 20, 160)]
    if name == "scribble":
        pts = np.cumsum(rng.normal(0, 0.12, (40, 2)), axis=0)
        pts = (pts - pts.min(0)) / np.maximum(np.ptp(pts, axis=0), 1e-6) * 0.84 + 0.08
        return [[tuple(p) for p in pts]]
    if name == "filled":  # the pad almost filled: back-and-forth strokes with the widest pen
        ys = np.linspace(0.04, 0.96, 12)
        return [[(0.03 if k % 2 == 0 else 0.97, y) for k, y in enumerate(ys) for _ in (0, 1)][1:]]
    if name == "star":
        a = np.radians(np.arange(0, 5 * 144 + 1, 144) - 90)
        return [list(zip(0.5 + 0.42 * np.cos(a), 0.52 + 0.42 * np.sin(a)))]
    if name == "triangle":
        return [[(0.5, 0.1), (0.9, 0.88), (0.1, 0.88), (0.5, 0.1)]]
    if name == "spiral":
        t = np.linspace(0, 5 * np.pi, 120)
        return [list(zip(0.5 + 0.42 * t / t[-1] * np.cos(t), 0.5 + 0.42 * t / t[-1] * np.sin(t)))]
    if name == "wave":
        x = np.linspace(0.06, 0.94, 60)
        return [list(zip(x, 0.5 + 0.15 * np.sin(x * 4 * np.pi)))]
    if name == "arrow":
        return [[(0.08, 0.5), (0.9, 0.5)], [(0.65, 0.28), (0.9, 0.5), (0.65, 0.72)]]
    if name == "heart":
        return [_bez((0.5, 0.9), (0.0, 0.5), (0.2, 0.0), (0.5, 0.3)) + _bez((0.5, 0.3), (0.8, 0.0), (1.0, 0.5), (0.5, 0.9))]
    if name == "plus":
        return [[(0.5, 0.1), (0.5, 0.9)], [(0.1, 0.5), (0.9, 0.5)]]
    raise ValueError(f"unknown shape {name!r}")


SHAPES = ("line", "box", "hash", "smiley", "scribble", "filled", "star", "triangle", "spiral", "wave", "arrow",
          "heart", "plus")


def _jitter(strokes, rng, amount=1.0):
    """A person's version of a template: slanted, sheared, squeezed, wobbly; in the unit square."""
    angle = math.radians(rng.normal(0, 7) * amount)
    shear = rng.normal(0, 0.12) * amount
    sx, sy = rng.uniform(0.75, 1.1), rng.uniform(0.9, 1.1)
    c, s = math.cos(angle), math.sin(angle)
    out = []
    for stroke in strokes:
        p = np.asarray(stroke, dtype=np.float64) - 0.5
        p = p @ np.array([[sx, 0], [0, sy]]) @ np.array([[1, 0], [shear, 1]]) @ np.array([[c, s], [-s, c]])
        if len(p) > 2:  # a slow wobble along the stroke, not per-point noise
            k = np.linspace(0, 1, len(p))[:, None]
            p = p + 0.025 * amount * np.sin(2 * np.pi * (k * rng.uniform(0.5, 1.5) + rng.uniform(0, 1, (1, 2))))
        out.append(p + 0.5)
    return out


def render_strokes(strokes, rng=None, *, width=None, size=None, place=None) -> np.ndarray:
    """Strokes in the unit square drawn on a white 280x280 pad with the page's round black pen
    (width in canvas pixels; the drawing ``size`` pixels tall, at ``place`` = its top-left)."""
    from PIL import Image, ImageDraw

    rng = rng if rng is not None else np.random.default_rng(0)
    width = width if width is not None else int(rng.choice(PEN_WIDTHS))
    size = size if size is not None else rng.uniform(0.45, 0.85) * PAD
    pts = np.concatenate([np.asarray(s, dtype=np.float64) for s in strokes])
    lo, hi = pts.min(0), pts.max(0)
    scale = size / max(hi[1] - lo[1], hi[0] - lo[0], 1e-6)
    extent = (hi - lo) * scale
    if place is None:
        room = np.maximum(PAD - extent - width, 0)
        place = (rng.uniform(0, room[0]) + width / 2, rng.uniform(0, room[1]) + width / 2)
    S = SUPERSAMPLE
    im = Image.new("L", (PAD * S, PAD * S), 255)
    draw = ImageDraw.Draw(im)
    r = width * S / 2
    for stroke in strokes:
        xy = [((x - lo[0]) * scale * S + place[0] * S, (y - lo[1]) * scale * S + place[1] * S)
              for x, y in np.asarray(stroke, dtype=np.float64)]
        if len(xy) > 1:
            draw.line(xy, fill=0, width=max(1, round(width * S)))
        for x, y in xy:  # round caps and joins, as the canvas's lineCap/lineJoin "round"
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return np.asarray(im.reduce(S), dtype=np.uint8)


def drawn_digits(n: int, seed: int = 0, *, variants=None) -> list[Probe]:
    """``n`` digits drawn on the pad, labels cycling 0..9, every way of writing each digit in
    turn (``variants``: only these, e.g. ``{"1-flag"}``)."""
    rng = np.random.default_rng(seed)
    kinds = [(d, v) for d in DIGITS for v in DIGITS[d] if variants is None or f"{d}-{v}" in variants]
    out = []
    for k in range(n):
        d, v = kinds[k % len(kinds)] if variants is not None else _cycle(k)
        out.append(Probe(render_strokes(_jitter(DIGITS[d][v], rng), rng), "digit", f"{d}-{v}", d))
    return out


def _cycle(k):
    """The k-th drawn digit: label k % 10, its variants taken in turn."""
    d = k % 10
    names = list(DIGITS[d])
    return d, names[(k // 10) % len(names)]


def drawn_letters(n: int, seed: int = 0) -> list[Probe]:
    """``n`` letters drawn on the pad (the :data:`LETTERS` in turn)."""
    rng = np.random.default_rng(seed)
    names = list(LETTERS)
    return [Probe(render_strokes(_jitter(LETTERS[names[k % len(names)]], rng), rng), "letter", names[k % len(names)])
            for k in range(n)]


def drawn_shapes(n: int, seed: int = 0) -> list[Probe]:
    """``n`` shapes drawn on the pad (:data:`SHAPES` in turn): the almost filled pad with the
    widest pen over the whole pad, the rest like a drawing."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        name = SHAPES[k % len(SHAPES)]
        strokes = _shape_strokes(name, rng)
        if name == "filled":
            img = render_strokes(strokes, rng, width=32, size=PAD - 16, place=(8, 8))
        else:
            img = render_strokes(_jitter(strokes, rng, 0.6), rng)
        out.append(Probe(img, "shape", name))
    return out


def font_files() -> list[str]:
    """The fonts matplotlib ships (present wherever the tool is installed): sans, serif and
    mono, regular, bold and slanted."""
    import os

    import matplotlib

    root = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    names = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
             "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "STIXGeneral.ttf",
             "STIXGeneralItalic.ttf", "cmr10.ttf", "cmss10.ttf")
    return [os.path.join(root, n) for n in names if os.path.exists(os.path.join(root, n))]


def printed(text: str, font_path: str, rng, size: int = 120) -> np.ndarray:
    """``text`` printed in a font, dark on paper-like grey with a little noise and light falloff."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, size)
    side = int(size * 1.8)
    im = Image.new("L", (side, side), 0)
    ImageDraw.Draw(im).text((side // 2, side // 2), text, fill=255, font=font, anchor="mm")
    paper = rng.uniform(190, 245) + rng.normal(0, 5, (side, side)) + np.linspace(-8, 8, side)[None, :]
    ink = rng.uniform(10, 60)
    a = np.asarray(im, dtype=np.float64) / 255
    return np.clip(paper * (1 - a) + ink * a, 0, 255).astype(np.uint8)


def font_letters(seed: int = 0, letters: str = "ABCDEFGHJKLMNPQRTUVWXYabdefhkmnprtuvwxy") -> list[Probe]:
    """Each of ``letters`` in each of :func:`font_files`. The default leaves out the letters
    that are digits in many hands and fonts (I l O o S s Z z g q, and c i j), whose honest
    answer may well be a digit; :func:`drawn_letters` keeps S."""
    rng = np.random.default_rng(seed)
    return [Probe(printed(ch, f, rng), "letter", ch) for f in font_files() for ch in letters]


def photos_without_digit(n: int, seed: int = 0) -> list[Probe]:
    """Camera-like grey pictures with no digit: uneven light, sensor noise, JPEG; a rectangle
    and a disc, bars, a ring, a blob, a texture, in turn."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    kinds = ("rectangle-and-disc", "bars", "ring", "blob", "texture")
    out = []
    for k in range(n):
        kind = kinds[k % len(kinds)]
        w, h = int(rng.integers(300, 700)), int(rng.integers(300, 700))
        yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
        light = 215 + 25 * np.cos(2.0 * (xx - rng.uniform(0, 1))) * np.cos(1.5 * (yy - rng.uniform(0, 1)))
        im = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(im)
        s = min(w, h)
        if kind == "rectangle-and-disc":
            d.rectangle((0.15 * w, 0.2 * h, 0.45 * w, 0.7 * h), fill=255)
            d.ellipse((0.55 * w, 0.35 * h, 0.55 * w + 0.3 * s, 0.35 * h + 0.3 * s), fill=255)
        elif kind == "bars":
            for j in range(int(rng.integers(3, 7))):
                x0 = (0.1 + 0.13 * j) * w
                d.rectangle((x0, 0.15 * h, x0 + 0.05 * w, 0.85 * h), fill=255)
        elif kind == "ring":
            d.ellipse((0.2 * w, 0.2 * h, 0.2 * w + 0.6 * s, 0.2 * h + 0.6 * s), outline=255, width=int(0.05 * s))
            d.rectangle((0.1 * w, 0.8 * h, 0.9 * w, 0.88 * h), fill=255)
        elif kind == "blob":
            pts = [(w / 2 + 0.3 * s * math.cos(a) * rng.uniform(0.5, 1.2), h / 2 + 0.3 * s * math.sin(a) * rng.uniform(0.5, 1.2))
                   for a in np.linspace(0, 2 * math.pi, 9)[:-1]]
            d.polygon(pts, fill=255)
        else:
            tex = rng.random((h // 16 + 1, w // 16 + 1)) > 0.55
            im = Image.fromarray((tex * 255).astype(np.uint8)).resize((w, h), Image.NEAREST)
        a = np.asarray(im.filter(ImageFilter.GaussianBlur(2)), dtype=np.float64) / 255
        ink = rng.uniform(20, 90)
        pic = np.clip(light * (1 - a) + ink * a + rng.normal(0, 4, (h, w)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pic).save(buf, "JPEG", quality=int(rng.integers(60, 90)))
        out.append(Probe(np.asarray(Image.open(buf).convert("L")), "photo", kind))
    return out


LIGHTING = ("even", "shadow", "gradient", "ruled", "vignette")


def photos_of_digits(images, labels, lighting: str, seed: int = 0) -> list[Probe]:
    """Each 28x28 digit (light on dark, uint8 or floats in [0, 1]) written in dark ink on paper
    and photographed in ``lighting`` (one of :data:`LIGHTING`): a soft shadow across the page
    (light falls to 45-65%), a gradient (to 40-60%), ruled lines, vignetting (the corners at
    35-55%); sensor noise and JPEG in all. The digit spans 40-75% of a 240-480 pixel picture."""
    from PIL import Image, ImageDraw, ImageFilter

    if lighting not in LIGHTING:
        raise ValueError(f"lighting: expected one of {', '.join(LIGHTING)}, got {lighting!r}")
    rng = np.random.default_rng(seed)
    out = []
    for img, label in zip(images, labels):
        digit = np.asarray(img, dtype=np.float64).reshape(28, 28)
        digit = digit / 255 if digit.max() > 1 else digit
        side = int(rng.integers(240, 481))
        s = int(side * rng.uniform(0.4, 0.75))
        a = np.zeros((side, side))
        ink = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((s, s), Image.BICUBIC)) / 255
        y, x = (int(rng.integers(0, side - s + 1)) for _ in range(2))
        a[y:y + s, x:x + s] = np.clip(ink, 0, 1)
        light = np.full((side, side), rng.uniform(205, 245))
        yy, xx = np.mgrid[0:side, 0:side] / side
        if lighting == "shadow":    # a half-plane edge through the digit's area, blurred
            t = rng.uniform(0, 2 * math.pi)
            d = (xx - (x + s / 2) / side) * math.cos(t) + (yy - (y + s / 2) / side) * math.sin(t)
            soft = 1 / (1 + np.exp(-d / rng.uniform(0.01, 0.06)))
            light *= 1 - (1 - rng.uniform(0.45, 0.65)) * soft
        elif lighting == "gradient":
            t = rng.uniform(0, 2 * math.pi)
            d = (xx - 0.5) * math.cos(t) + (yy - 0.5) * math.sin(t)
            light *= 1 - (1 - rng.uniform(0.4, 0.6)) * np.clip(d + 0.5, 0, 1)
        elif lighting == "vignette":
            r2 = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.5
            light *= 1 - (1 - rng.uniform(0.35, 0.55)) * r2
        elif lighting == "ruled":   # blue-grey lines every 6-9% of the page, and a margin
            lines = Image.new("L", (side, side), 0)
            dr = ImageDraw.Draw(lines)
            step = side * rng.uniform(0.06, 0.09)
            for k in range(1, int(side / step) + 1):
                dr.line([(0, k * step), (side, k * step)], fill=255, width=2)
            dr.line([(0.12 * side, 0), (0.12 * side, side)], fill=255, width=2)
            light *= 1 - rng.uniform(0.15, 0.3) * np.asarray(lines.filter(ImageFilter.GaussianBlur(0.7))) / 255
        reflect = rng.uniform(0.08, 0.3)        # the ink's share of the light it returns
        pic = light * (1 - (1 - reflect) * a) + rng.normal(0, 3, a.shape)
        buf = io.BytesIO()
        Image.fromarray(np.clip(pic, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(75, 93)))
        out.append(Probe(np.asarray(Image.open(buf).convert("L")), "digit", f"{lighting}-{int(label)}", int(label)))
    return out
