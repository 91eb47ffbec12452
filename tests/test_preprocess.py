"""MNIST-style preprocessing of outside images, on generated images and real MNIST digits."""
import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from helpers import NODE, REPO
from mnist_logreg import ImageError
from mnist_logreg import preprocess as P
from mnist_logreg.preprocess import center_of_mass, load_image, preprocess
from mnist_logreg.probes import LIGHTING, photos_of_digits


def draw_digit(size=300, box=(90, 50, 210, 250), ink=0, paper=255, mode="L", width=22):
    """A '7' drawn with a thick pen, dark ink on light paper by default."""
    im = Image.new(mode, (size, size), paper)
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = box
    d.line([(x0, y0), (x1, y0), (x0 + (x1 - x0) // 3, y1)], fill=ink, width=width)
    return im


def check_mnist_form(x):
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x.max() == pytest.approx(1.0) and x.min() == 0.0
    border = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])
    assert border.mean() < 0.05 and x[0, 0] == x[0, -1] == x[-1, 0] == x[-1, -1] == 0  # light on dark
    cy, cx = center_of_mass(x)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    ys, xs = np.nonzero(x > 0.05)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) <= 22  # fitted into ~20x20 (+ anti-aliasing)
    np.testing.assert_array_equal(np.round(x * 255), x * 255)   # 256 levels, like the training data


def png_bytes(im, fmt="PNG", **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def test_dark_on_white_300px():
    x = preprocess(png_bytes(draw_digit()))
    check_mnist_form(x)


def test_shifted_into_a_corner_gives_the_same_result():
    centred = preprocess(png_bytes(draw_digit()))
    corner = preprocess(png_bytes(draw_digit(box=(5, 5, 125, 205))))
    check_mnist_form(corner)
    assert np.abs(centred - corner).mean() < 0.04  # sub-pixel differences of the crop only


def test_alpha_channel_on_transparent_background():
    im = Image.new("RGBA", (300, 300), (0, 0, 0, 0))  # transparent black: must become white paper
    ImageDraw.Draw(im).line([(90, 50), (210, 50), (130, 250)], fill=(0, 0, 0, 255), width=22)
    x = preprocess(png_bytes(im))
    check_mnist_form(x)
    assert np.abs(x - preprocess(png_bytes(draw_digit()))).mean() < 0.02


def test_exif_rotation_is_applied():
    upright = draw_digit()
    stored = upright.rotate(90, expand=True)  # camera stored it sideways...
    exif = Image.Exif()
    exif[0x0112] = 6                          # ...and says "rotate 90 CW to view"
    x = preprocess(png_bytes(stored.convert("RGB"), "JPEG", exif=exif, quality=95))
    check_mnist_form(x)
    assert np.abs(x - preprocess(png_bytes(upright))).mean() < 0.03


def test_noisy_photo():
    rng = np.random.default_rng(0)
    arr = np.asarray(draw_digit(paper=200, ink=40), dtype=np.float64)  # grey paper, grey ink
    arr = np.clip(arr + rng.normal(0, 18, arr.shape), 0, 255).astype(np.uint8)
    x = preprocess(png_bytes(Image.fromarray(arr)))
    check_mnist_form(x)
    assert (x > 0).mean() < 0.35  # the noise did not survive as ink
    assert np.abs(x - preprocess(png_bytes(draw_digit()))).mean() < 0.05


def test_light_on_dark_is_kept():
    x = preprocess(png_bytes(draw_digit(ink=255, paper=0)))
    check_mnist_form(x)
    assert np.abs(x - preprocess(png_bytes(draw_digit()))).mean() < 0.01


@pytest.mark.parametrize("fmt,mode", [("GIF", "P"), ("BMP", "RGB"), ("WEBP", "RGB"), ("JPEG", "L")])
def test_formats(fmt, mode):
    x = preprocess(png_bytes(draw_digit().convert(mode), fmt))
    check_mnist_form(x)


@pytest.fixture(scope="module")
def trained(notebook_run):
    """5 epochs of the notebook's recipe (conftest.py)."""
    return notebook_run.model


def test_mnist_digits_survive_4x_inverted_png(trained, mnist_test):
    agree = 0
    for i in range(500):
        img = Image.fromarray(255 - mnist_test.images[i].numpy()).resize((112, 112), Image.BICUBIC)
        x = preprocess(png_bytes(img))
        a = int(trained(torch.from_numpy(x).reshape(1, 784)).argmax())
        b = int(trained(mnist_test.images[i].float().div(255).reshape(1, 784)).argmax())
        agree += a == b
    assert agree / 500 >= 0.95


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"GIF89a not really", "not an image|cannot decode"),
    (b"hello world, this is text", "not an image"),
])
def test_bad_bytes(data, message):
    with pytest.raises(ImageError, match=message):
        preprocess(data, "upload")


def test_blank_images_are_refused():
    for im in (Image.new("L", (100, 100), 255), Image.new("L", (100, 100), 0), Image.new("RGBA", (50, 50), (0, 0, 0, 0))):
        with pytest.raises(ImageError, match="blank image"):
            preprocess(png_bytes(im))


def test_pixel_limit_refuses_decompression_bombs():
    big = png_bytes(Image.new("1", (6000, 5000), 1))  # 30 megapixels in a few kB
    assert len(big) < 100_000
    with pytest.raises(ImageError, match="pixels .width x height. is over the limit of 25,000,000"):
        preprocess(big, "bomb.png")


def test_file_size_limit(tmp_path):
    p = tmp_path / "digit.png"
    p.write_bytes(png_bytes(draw_digit()))
    with pytest.raises(ImageError, match="over the"):
        load_image(p, max_bytes=100)
    with pytest.raises(ImageError, match="no such file|cannot read"):
        load_image(tmp_path / "missing.png")


def test_predict_cli_on_photos_and_folder(tmp_path, run_cli, trained):
    from mnist_logreg import save
    save(trained, tmp_path / "m.pt")
    folder = tmp_path / "imgs"
    folder.mkdir()
    draw_digit().save(folder / "seven.png")
    Image.fromarray(255 - np.zeros((10, 10), np.uint8)).save(folder / "blank.png")
    code, out, err = run_cli("predict", tmp_path / "m.pt", "--image", folder / "seven.png", "--json",
                             "--show-preprocessed", tmp_path / "seen.png")
    assert code == 0, err
    r = __import__("json").loads(out)
    assert r[0]["predicted"] == 7 and len(r[0]["top"]) == 3
    assert (tmp_path / "seen.png").is_file()
    code, out, err = run_cli("predict", tmp_path / "m.pt", "--image", folder)  # a blank image is an answer
    assert code == 0 and f"{folder / 'blank.png'}: blank: no ink found" in out.splitlines(), out


# -- issue 23: photos in uneven light, known polarity, white ink on transparency -------------


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), r=st.integers(0, 25), seed=st.integers(0, 2**16))
def test_min_and_max_filters_match_a_brute_force_window(h, w, r, seed):
    """The running-extremum filter against the definition: every window, clipped at the edges."""
    a = np.random.default_rng(seed).random((h, w))
    for op, ref in ((np.minimum, np.min), (np.maximum, np.max)):
        want = np.array([[ref(a[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]) for j in range(w)]
                         for i in range(h)])
        np.testing.assert_array_equal(P._filter(a, r, op), want)



@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), r=st.integers(0, 25), seed=st.integers(0, 2**16),
       paper=st.sampled_from([0.0, 0.5, 0.7]), ink=st.sampled_from([0.01, 0.3, 0.9, 1.0]))
def test_the_opening_on_clean_paper_is_the_two_filters_opening(h, w, r, seed, paper, ink):
    """paper_level's shortcut (every window holds the picture's minimum: the opening is that
    minimum) against the definition; the window test against every window. Paper at one level
    with ink blobs of any density: the shortcut taken, and not (a blob wider than a window)."""
    rng = np.random.default_rng(seed)
    a = np.where(rng.random((h, w)) < ink, rng.random((h, w)), paper).astype(np.float32)
    mask = a == a.min()
    holds = all(mask[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].any() for i in range(h) for j in range(w))
    assert P._every_window_holds(mask, r) == holds
    big = np.kron(a, np.ones((4, 4), np.float32))  # up to 160 pixels a side: paper_level's r up to 16
    r = max(big.shape) // P.OPENING
    want = np.minimum(P._filter(P._filter(big, r, np.minimum), r, np.maximum).astype(np.float64), P.FLAT_CAP)
    got = P.paper_level(big)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)

@pytest.fixture(scope="module")
def written_sevens():
    """Three 28x28 digits in MNIST form (light on dark), from drawings of a 7."""
    return np.stack([preprocess(png_bytes(draw_digit(box=b, width=w)))
                     for b, w in (((90, 50, 210, 250), 22), ((70, 40, 230, 260), 30), ((100, 60, 200, 240), 16))])


@pytest.mark.parametrize("lighting", [k for k in LIGHTING if k != "even"])
def test_uneven_light_is_not_ink(written_sevens, lighting):
    """A 7 photographed under a shadow, a gradient, ruled lines or vignetting reads as the same
    7 photographed in even light; without the lighting step the shadow, gradient and vignetting
    became strokes (the test can fail)."""
    labels = [7] * len(written_sevens)
    even = [preprocess(p.image) for p in photos_of_digits(written_sevens, labels, "even", seed=5)]
    lit = photos_of_digits(written_sevens, labels, lighting, seed=5)
    after = np.mean([np.abs(preprocess(p.image) - e).mean() for p, e in zip(lit, even)])
    assert after < 0.04, after
    if lighting != "ruled":  # thin lines never were paper; the crop rule keeps them out
        import unittest.mock
        with unittest.mock.patch.object(P, "paper_level", lambda arr: np.zeros_like(arr)):
            before = np.mean([np.abs(preprocess(p.image) - e).mean() for p, e in zip(lit, even)
                              if _readable(p.image)] or [1.0])
        assert before > 2 * after, (before, after)


def _readable(image) -> bool:
    try:
        preprocess(image)
        return True
    except ImageError:
        return False


def test_a_pad_filled_with_ink_does_not_flip_when_its_polarity_is_known():
    """A pad inked all over but for a few white specks at its edge: "auto" takes the specks
    for the digit (the border is dark); the pad's known polarity keeps the ink as ink."""
    pad = np.zeros((280, 280), np.uint8)
    pad[3:9, 40:46] = pad[12:18, 60:66] = 255
    _, auto = P.preprocess_with_extent(pad)
    x, known = P.preprocess_with_extent(pad, polarity="dark-on-light")
    assert auto < 0.15 and known > 0.9 and x.mean() > 0.3
    with pytest.raises(ValueError, match="polarity"):
        preprocess(pad, polarity="light")


def test_white_ink_on_a_transparent_png_is_read():
    im = Image.new("RGBA", (300, 300), (255, 255, 255, 0))   # transparent white: the ink is white too
    ImageDraw.Draw(im).line([(90, 50), (210, 50), (130, 250)], fill=(255, 255, 255, 255), width=22)
    x = preprocess(png_bytes(im))
    check_mnist_form(x)
    assert np.abs(x - preprocess(png_bytes(draw_digit()))).mean() < 0.02


PAGE_PREPROCESS = """
const fs = require('fs');
eval(fs.readFileSync(process.argv[1], 'utf8'));
const out = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')).map(([w, h, grey]) =>
  Array.from(Mnist.preprocess(Float64Array.from(grey), w, h)));
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(NODE is None, reason="neither node nor Playwright's node is installed")
def test_the_pages_preprocessing_is_pythons_with_and_without_the_clean_paper_shortcut(tmp_path):
    """mnist.js's preprocess (V8, as in Chromium, without a canvas) against Python's on the same
    grey pixels: a drawing on clean paper (the lighting step's shortcut), the same with an ink
    blob wider than a window (enough paper pixels, a window without one: the two filters), and
    photos in uneven light (too few: the filters). To float rounding, as the page test bounds it."""
    import json
    import subprocess

    yy, xx = np.mgrid[0:280, 0:280]
    pad = np.full((280, 280), 255, np.uint8)
    pad[np.abs(np.hypot(xx - 140, (yy - 140) * 0.8) - 70) < 9] = 0
    blob = pad.copy()
    blob[150:250, 20:120] = 0
    seven = np.zeros((28, 28), np.uint8)
    seven[6:9, 7:21], seven[9:23, 14:17] = 255, 255
    photos = [np.asarray(p.image) for light in ("shadow", "vignette")
              for p in photos_of_digits(seven[None], np.array([7]), light, seed=1)]
    pictures = [pad, blob, *photos]
    r = max(blob.shape) // P.OPENING
    assert P._every_window_holds(pad == 255, r) and not P._every_window_holds(blob == 255, r)  # paper: 255
    (tmp_path / "in.json").write_text(json.dumps([[p.shape[1], p.shape[0], p.reshape(-1).tolist()] for p in pictures]))
    page = json.loads(subprocess.run([NODE, "-e", PAGE_PREPROCESS, str(REPO / "src" / "mnist_logreg" / "serve" / "static"
                                                                         / "mnist.js"), str(tmp_path / "in.json")],
                                     capture_output=True, text=True, check=True, timeout=60).stdout)
    for picture, got in zip(pictures, page):
        want = preprocess(picture).reshape(-1)
        assert np.abs(np.asarray(got) - want).max() <= 1 / 255 and np.abs(np.asarray(got) - want).mean() < 1e-4
