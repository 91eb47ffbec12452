"""Outside images to MNIST form, the way MNIST itself was made.

LeCun's recipe: the digit was size-normalised to fit a 20x20 box keeping its aspect ratio
(anti-aliased, so grey levels appear), then centred in 28x28 by its centre of mass. A
photo or a drawing must go through the same steps before a linear model, which has no
translation invariance, can read it:

1. load (any format Pillow reads; GIF: first frame), apply the EXIF orientation,
   flatten transparency (onto white, or black when the ink is light), convert to grey;
2. polarity: MNIST is light ink on a dark background; dark-on-light input (the border is
   mostly light) is inverted;
3. lighting: a shadow, a gradient or vignetting across the paper is not ink. The paper's
   level is estimated at a large scale (a morphological opening: it removes every structure
   narrower than about a fifth of the picture, strokes included, and keeps smooth or wide
   ones, a shadow's sharp edge too); each pixel is mapped so that its paper is 0 and full
   ink stays 1 (a pad almost filled with ink stays ink);
4. noise: Otsu's threshold separates ink from background; the background level is mapped
   to 0, the ink level to 1, and faint specks below half the threshold are cleared;
5. crop to the ink's bounding box (pixels over the threshold and over half the ink's level:
   ruled lines are not ink) and resize (Lanczos, anti-aliased) so the longer side is
   20 pixels;
6. pad to 28x28 and shift (sub-pixel, bilinear) so the centre of mass is at (14, 14), where
   MNIST's digits have theirs (mean over the test set: row 13.99, column 14.01);
7. stretch so the brightest pixel is 1 (MNIST's strokes reach full white) and quantise to
   the 256 levels of the training data, as floats in [0, 1].

``preprocess`` returns the 28x28 array, so callers can show what the model saw.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .errors import ImageError

MAX_FILE_BYTES = 16 * 1024 * 1024     # larger files are refused before decoding
MAX_PIXELS = 25_000_000              # width x height; decompression bombs are refused
# Larger images are reduced to at most this many pixels a side as soon as they are decoded:
# the digit ends up 20 pixels tall, and a 5000x5000 upload preprocessed at full size held
# about 800 MB of float arrays (issue 14); reduced, about 40 MB.
WORK_SIZE = 1024
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
TARGET_COM = (14.0, 14.0)
POLARITIES = ("auto", "dark-on-light", "light-on-dark")
# Lighting: the paper's level is a morphological opening whose square is ~1/5 of the picture's
# longer side (radius: side // OPENING): structures narrower than that are not paper (the
# page's widest pen is 11% of the pad), a shadow's edge, sharp or soft, is kept. Each pixel
# is then mapped so that its paper is 0 and full ink stays 1 ((v - level) / (1 - level): ink
# in a shadow is as strong as ink in the light), the level at most FLAT_CAP (a shadow leaves
# paper at least 40% of its light; a pad filled with ink, level 1, stays ink; measured: 0.7
# made the outlines of large dark objects in photos without a digit read as digits, 0.5 lost
# some shadows).
# Minima and maxima only: mnist.js computes the same numbers exactly. Measured on
# bench/photos.py: a 64x64 grid of block minima, interpolated, left each sharp shadow edge
# as a stroke (66% right under a shadow; at full resolution, see bench/README.md).
OPENING, FLAT_CAP = 10, 0.6


def load_image(source, name: str | None = None, max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS):
    """Open ``source`` (a path or bytes) as an 8-bit grey PIL image, upright, alpha on white."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = name or (str(source) if not isinstance(source, (bytes, bytearray)) else "image")
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        from ._files import read_input
        data = read_input(source, max_bytes, ImageError)
    if not data:
        raise ImageError(f"{label}: empty file")
    if len(data) > max_bytes:
        from ._files import mib
        raise ImageError(f"{label}: {mib(len(data))}, over the {mib(max_bytes)} limit")
    try:
        im = Image.open(io.BytesIO(data))
        w, h = im.size
        if w * h > max_pixels:
            raise ImageError(_too_many(label, w * h, max_pixels))
        im.seek(0)  # animated formats: the first frame
        im.draft("L", (WORK_SIZE, WORK_SIZE))  # JPEG: decoded grey at 1/2..1/8 scale, far less memory
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = Image.fromarray(flatten_alpha(np.asarray(im.convert("RGBA"))))
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(im, dtype=np.float64)
            lo, hi = float(arr.min()), float(arr.max())
            im = Image.fromarray(((arr - lo) / (hi - lo or 1) * 255).astype(np.uint8))
        im = im.convert("L")
        if max(im.size) > WORK_SIZE:  # box-averaged down: ink is kept, floats stay small
            im = im.reduce(-(-max(im.size) // WORK_SIZE))
        return im
    except ImageError:
        raise
    except Image.DecompressionBombError as e:  # Pillow refuses first past 2 x its own limit; its message has the count
        import re
        count = re.search(r"\((\d+) pixels\)", str(e))
        raise ImageError(_too_many(label, int(count.group(1)), max_pixels) if count
                         else f"{label}: too many pixels (decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"{label}: cannot decode image ({type(e).__name__}: {str(e)[:80]})") from None


def _too_many(label: str, pixels: int, limit: int) -> str:
    """The refusal of a picture over the pixel limit (mnist.js's ``refusal`` says the same)."""
    return f"{label}: {pixels:,} pixels (width x height) is over the limit of {limit:,}"


def flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """An RGBA picture as 8-bit grey on a background that contrasts with its ink: white, or
    black when what is drawn is light (white ink on a transparent PNG was read as blank).
    Pillow's grey formula; mnist.js's ``greyFromRGBA`` computes the same integers. In bands of
    rows, in int32 (a 25-megapixel picture as one int64 array took 800 MB)."""
    h = rgba.shape[0]
    grey = np.empty(rgba.shape[:2], np.uint8)
    inked = weight = 0
    transparent = False
    bands = range(0, h, 256)
    for y in bands:  # first pass: is the ink light?
        c = rgba[y:y + 256].astype(np.int32)
        g = (c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000) >> 16
        a = c[..., 3]
        inked += int((g * a).sum(dtype=np.int64))
        weight += int(a.sum(dtype=np.int64))
        transparent = transparent or bool((a < 255).any())
    paper = 0 if transparent and weight > 0 and inked > 128 * weight else 255
    for y in bands:
        c = rgba[y:y + 256].astype(np.int32)
        g = (c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000) >> 16
        a = c[..., 3]
        grey[y:y + 256] = (2 * (g * a + paper * (255 - a)) + 255) // 510  # floor(x / 255 + 0.5), exactly
    return grey


def paper_level(arr: np.ndarray) -> np.ndarray:
    """The background's level under light ink on dark (after the polarity step), at every
    pixel: a morphological opening (a min filter, then a max filter) with a square of side
    2 * r + 1, r = the longer side // OPENING, at most FLAT_CAP."""
    r = max(arr.shape) // OPENING
    low = arr.min()
    if _every_window_holds(arr == low, r):  # the min filter is ``low`` everywhere, and so the opening
        return np.full(arr.shape, min(float(low), FLAT_CAP))
    return np.minimum(_filter(_filter(arr, r, np.minimum), r, np.maximum).astype(np.float64), FLAT_CAP)


def _every_window_holds(mask: np.ndarray, r: int) -> bool:
    """Whether every square window of side 2 * r + 1 (clipped at the edges) holds a True of
    ``mask``: each row's windows by running counts, then (transposed) each column's windows of
    those. A drawing on clean paper (the pad's) has paper at the picture's minimum within r of
    every pixel: its opening is that minimum, exactly, and a drawing on the 280-pixel pad is
    preprocessed 1.9x quicker (bench/preprocess_speed.py). A photo's minimum is a few noisy
    pixels, fewer than the disjoint windows that fit: refused by a count first, at no cost."""
    k = 2 * r + 1
    if np.count_nonzero(mask) < (mask.shape[0] // k) * (mask.shape[1] // k):
        return False
    for _ in range(2):
        n = mask.shape[1]
        counts = np.zeros((mask.shape[0], n + 2 * r + 1), dtype=np.int32)  # column r + 1 + x: pixels 0..x
        counts[:, r + 1:r + 1 + n] = np.cumsum(mask, axis=1, dtype=np.int32)
        counts[:, r + 1 + n:] = counts[:, [r + n]]                       # past the edge: all of the row
        mask = (counts[:, 2 * r + 1:] > counts[:, :n]).T                  # pixels x - r .. x + r
    return bool(mask.all())


def _filter(a: np.ndarray, r: int, op) -> np.ndarray:
    """A square min or max filter of side 2 * r + 1, the window clipped at the edges: van Herk
    and Gil-Werman's running extremum (three comparisons a pixel, whatever r), rows then columns.
    The padded row is cut into blocks of k = 2r + 1: the window starting at offset j of block b
    is the block's tail from j (``behind``) and the next block's head up to j - 1 (``ahead``).
    Taken as (block, offset) pairs, not as flat rows, the reversed tails are never copied:
    twice as fast (a 1,024-pixel photo's opening 110 -> 60 ms), the same pairs, the same values."""
    k = 2 * r + 1
    for _ in range(2):
        rows, n = a.shape
        m = -(-(n + 2 * r) // k) * k
        blocks = np.pad(a, ((0, 0), (r, m - n - r)), mode="edge").reshape(rows, m // k, k)
        ahead = op.accumulate(blocks, axis=2)                            # from each block's start
        behind = op.accumulate(blocks[:, :, ::-1], axis=2)[:, :, ::-1]  # to its end (a view)
        out = np.empty_like(blocks)
        out[:, :, 0] = behind[:, :, 0]  # a window that is one whole block
        op(behind[:, :-1, 1:], ahead[:, 1:, :-1], out=out[:, :-1, 1:])  # the last block's tail: past n
        a = np.ascontiguousarray(out.reshape(rows, m)[:, :n].T)
    return a


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1] (256 bins): the cut maximising between-class variance."""
    hist, edges = np.histogram(values, bins=256, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    mu_t = mu[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu_t * omega - mu) ** 2 / (omega * (1 - omega))
    between = np.nan_to_num(between, nan=-1.0)
    return float(edges[int(np.argmax(between)) + 1])


def center_of_mass(arr: np.ndarray) -> tuple[float, float]:
    total = arr.sum()
    rows, cols = np.indices(arr.shape)
    return float((rows * arr).sum() / total), float((cols * arr).sum() / total)


def preprocess(image, name: str | None = None, polarity: str = "auto") -> np.ndarray:
    """Turn an image (path, bytes, PIL image or 2-D array) into a 28x28 float32 MNIST-style
    array in [0, 1]: light digit on black, fitted into 20x20, centre of mass at (14, 14).

    ``polarity``: "auto" (the border is background: a light border means dark ink), or the
    known one ("dark-on-light": the drawing page's pad, so that a pad almost filled with ink
    does not turn into white specks on black). Raises :class:`ImageError` (one line) for
    unreadable, oversized or blank images.

    Examples
    --------
    >>> import numpy as np
    >>> page = np.full((300, 200), 255, np.uint8); page[60:240, 90:110] = 0   # a dark "1" on paper
    >>> x = preprocess(page)
    >>> x.shape, float(x.max()), [round(c) for c in center_of_mass(x)]
    ((28, 28), 1.0, [14, 14])
    """
    return preprocess_with_extent(image, name, polarity)[0]


def preprocess_with_extent(image, name: str | None = None, polarity: str = "auto") -> tuple[np.ndarray, float]:
    """:func:`preprocess`, and the ink's extent: the longer side of its bounding box over the
    picture's longer side (1.0: the ink spans the picture; under ``answers.MIN_INK_SIDE``: too
    small to read)."""
    label = name or "image"
    if polarity not in POLARITIES:
        raise ValueError(f"polarity: expected one of {', '.join(POLARITIES)}, got {polarity!r}")
    arr = _light_on_dark(_grey(image, name, label), polarity)
    if min(arr.shape) >= 56:
        arr = _flatten_lighting(arr)
    arr, ink = _ink(arr, label)
    crop, extent = _crop_to_ink(arr, ink, label)
    return _centred(_fit_into_20(crop), label), extent


def _grey(image, name, label: str) -> np.ndarray:
    """The picture as a float64 grey array in [0, 1]."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        arr = image.astype(np.float64)
        if arr.ndim != 2:
            raise ImageError(f"{label}: expected a 2-D grey array, got shape {arr.shape}")
        arr = arr / 255.0 if arr.max() > 1.0 else arr
    else:
        im = image if isinstance(image, Image.Image) else load_image(image, name)
        arr = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
    if arr.size == 0 or min(arr.shape) < 1:
        raise ImageError(f"{label}: empty image")
    if not np.isfinite(arr).all():
        raise ImageError(f"{label}: contains NaN or infinite values")
    return arr


def _light_on_dark(arr: np.ndarray, polarity: str) -> np.ndarray:
    """Polarity: the border is background; a light background means dark ink: inverted."""
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    if polarity == "dark-on-light" or (polarity == "auto" and np.median(border) > 0.5):
        return 1.0 - arr
    return arr


def _flatten_lighting(arr: np.ndarray) -> np.ndarray:
    """Noise and lighting, in large images (a photo's): a 3x3 median filter removes sensor
    specks; the paper's level (shadows, gradients, vignetting) is subtracted: paper -> 0, full
    ink stays 1. The filtered picture is float32, and the opening's minima and maxima are exact
    in it: no float64 copy to filter (a 1,024-pixel photo's preprocessing 13% quicker)."""
    from PIL import Image, ImageFilter

    arr = np.asarray(Image.fromarray(arr.astype(np.float32), mode="F").filter(ImageFilter.MedianFilter(3)))
    level = paper_level(arr)
    return np.maximum((arr.astype(np.float64) - level) / (1.0 - level), 0.0)


def _ink(arr: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Otsu's threshold splits ink from background: background -> 0, ink -> 1, the soft edges of
    strokes kept and faint specks dropped; and the mask the crop follows (ruled lines and smudges
    under half the ink's level are not ink)."""
    if arr.max() - arr.min() < 0.08:
        raise ImageError(f"{label}: blank image (no ink found)")
    t = otsu_threshold(arr)
    below, above = arr[arr < t], arr[arr >= t]
    if above.size == 0 or below.size == 0:
        raise ImageError(f"{label}: blank image (no ink found)")
    bg, fg = float(np.median(below)), float(np.percentile(above, 90))
    if fg - bg < 0.08:
        raise ImageError(f"{label}: blank image (no ink found)")
    ink = arr >= max(t, (bg + fg) / 2)
    arr = np.clip((arr - bg) / (fg - bg), 0.0, 1.0)
    arr[arr < 0.5 * (t - bg) / (fg - bg)] = 0.0
    return arr, ink


def _crop_to_ink(arr: np.ndarray, ink: np.ndarray, label: str) -> tuple[np.ndarray, float]:
    """The bounding box of the ink, and its longer side over the picture's."""
    ys, xs = np.nonzero(ink)
    if ys.size == 0:
        raise ImageError(f"{label}: blank image (no ink found)")
    crop = arr[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return crop, max(crop.shape) / max(arr.shape)


def _fit_into_20(crop: np.ndarray) -> np.ndarray:
    """The crop with its longer side resized to 20 pixels (Lanczos), in the middle of a 28x28
    canvas, as MNIST's digits were."""
    from PIL import Image

    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize((new_w, new_h), Image.LANCZOS))
    canvas = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - new_h) // 2, (28 - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = np.clip(small, 0.0, 1.0)
    return canvas


def _centred(canvas: np.ndarray, label: str) -> np.ndarray:
    """The canvas shifted so that its centre of mass is at (14, 14) (bilinear), its brightest
    pixel full white as MNIST's strokes are, rounded to the 256 levels of the training data."""
    from PIL import Image

    if canvas.sum() <= 0:
        raise ImageError(f"{label}: blank image (no ink found)")
    cy, cx = center_of_mass(canvas)
    dy, dx = cy - TARGET_COM[0], cx - TARGET_COM[1]
    # output pixel (r, c) samples input (r + dy, c + dx): the mass moves by (-dy, -dx)
    shifted = Image.fromarray(canvas, mode="F").transform((28, 28), Image.AFFINE, (1, 0, dx, 0, 1, dy),
                                                          resample=Image.BILINEAR)
    out = np.clip(np.asarray(shifted, dtype=np.float32), 0.0, 1.0)
    out /= out.max()
    return (np.round(out * 255) / 255).astype(np.float32)


def expand_image_args(paths) -> list[Path]:
    """Files and folders (their image files, sorted) from the command line."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise ImageError(f"{p}: folder has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise ImageError(f"{p}: no such file or folder")
    return out


class _CallableModule(type(__import__("sys"))):
    """``from mnist_logreg import preprocess`` gives this module (a submodule shadows a name of
    the package); calling it calls :func:`preprocess`, so both spellings work."""

    def __call__(self, image, name: str | None = None, polarity: str = "auto"):
        return preprocess(image, name, polarity)


__import__("sys").modules[__name__].__class__ = _CallableModule
