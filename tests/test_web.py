"""The drawing page in a real browser (Playwright driving Debian's Chromium), as `export --format
web` writes it and opened from disk: it draws, it matches Python's preprocessing and model on
320 images, it is accessible by axe-core's rules, and it does not pretend to be sure."""
import base64
import io
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import CHROMIUM, REPO
from helpers import until as _until
from mnist_logreg import MnistModel, probes
from mnist_logreg.answers import Predictor
from mnist_logreg.preprocess import preprocess
from mnist_logreg.transforms import apply

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def run(notebook_run):
    """The notebook's recipe for 5 epochs, calibrated on its validation split, as train makes it."""
    return notebook_run


@pytest.fixture(scope="module")
def model(run):
    return run.model


@pytest.fixture(scope="module")
def site(tmp_path_factory, run, run_cli_module):
    folder = tmp_path_factory.mktemp("web")
    code, out, err = run_cli_module("export", run.path, "--format", "web", "-o", folder / "site")
    assert code == 0, err
    return folder / "site"


@pytest.fixture(scope="module")
def run_cli_module():
    import contextlib

    from mnist_logreg.cli import main

    def run(*args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
        return code, out.getvalue(), err.getvalue()
    return run


def _open(browser, site, **kw):
    page = browser.new_page(**kw)
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((site / "index.html").as_uri())
    page.wait_for_selector(".bar")
    return page, requests


def _draw(page, points, button="left"):
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
    page.mouse.down(button=button)
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
    page.mouse.up(button=button)


def _predicted(page):
    return page.locator("#predicted").text_content()


CIRCLE = [(0.5 + 0.28 * np.sin(a), 0.5 - 0.36 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 40)]


def test_exported_page_from_disk_draws_a_one_and_a_zero(browser, site):
    assert sorted(p.name for p in site.iterdir()) == [".mnist-logreg-site", "index.html", "model.js", "static"]
    page, requests = _open(browser, site, viewport={"width": 390, "height": 844})
    _draw(page, [(0.5, 0.15), (0.5, 0.85)])
    _until(page, "document.getElementById('predicted').textContent === '1'")
    page.click("#clear")
    assert _predicted(page) == "–"
    _draw(page, CIRCLE)
    _until(page, "document.getElementById('predicted').textContent === '0'")
    assert page.locator("#model-info").text_content().startswith("A linear model trained on mnist")
    assert all(u.startswith("file://") for u in requests)  # no server, no network
    page.close()


def _pads(n, rng):
    """MNIST-like placements on the 280x280 pad: (size, x, y) of a digit's 28x28 box."""
    sizes = rng.integers(70, 280, n)
    return [(int(s), int(rng.integers(0, 281 - s)), int(rng.integers(0, 281 - s))) for s in sizes]


# arguments and results cross as one JSON string each: Playwright validates a nested list element
# by element (7 million calls, 9 s of this test's 30 on this machine, for 320 images of 784 pixels)
DRAW_IN_PAGE = """(json) => {
  const [digits, places, transform] = JSON.parse(json);
  const pad = document.getElementById('pad'), ctx = pad.getContext('2d');
  const tmp = document.createElement('canvas'); tmp.width = tmp.height = 28;
  const t = tmp.getContext('2d');
  const model = Object.assign({}, window.MNIST_MODEL, {transform});
  return JSON.stringify(digits.map((d, k) => {
    const img = t.createImageData(28, 28);
    d.forEach((v, i) => { img.data[4*i] = img.data[4*i+1] = img.data[4*i+2] = 255 - v; img.data[4*i+3] = 255; });
    t.putImageData(img, 0, 0);
    const [s, x, y] = places[k];
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, 280, 280);
    ctx.imageSmoothingEnabled = true; ctx.drawImage(tmp, x, y, s, s);
    const grey = Mnist.greyFromRGBA(ctx.getImageData(0, 0, 280, 280).data, 280, 280);
    const pre = Mnist.preprocess(grey, 280, 280), r = Mnist.predict(model, pre), a = Mnist.answerPixels(model, pre);
    return {png: pad.toDataURL('image/png'), input: Array.from(r.input),
            label: r.probabilities.indexOf(Math.max(...r.probabilities)),
            state: a.state, likeness: a.likeness, probabilities: a.probabilities};
  }));
}"""

UPLOAD_IN_PAGE = """async (json) => {
  const [urls, transform] = JSON.parse(json);
  const model = Object.assign({}, window.MNIST_MODEL, {transform});
  const out = [];
  for (const url of urls) {   // what the upload button does with a file
    const bytes = Uint8Array.from(atob(url.split(',')[1]), c => c.charCodeAt(0));  // no fetch: the page's CSP
    const bitmap = await createImageBitmap(new Blob([bytes], {type: 'image/png'}));
    const c = document.createElement('canvas'); c.width = bitmap.width; c.height = bitmap.height;
    const g = c.getContext('2d'); g.fillStyle = '#fff'; g.fillRect(0, 0, c.width, c.height); g.drawImage(bitmap, 0, 0);
    const grey = Mnist.greyFromRGBA(g.getImageData(0, 0, c.width, c.height).data, c.width, c.height);
    const x = Mnist.preprocess(grey, c.width, c.height), r = Mnist.predict(model, x), a = Mnist.answerPixels(model, x);
    out.push({input: Array.from(r.input), label: r.probabilities.indexOf(Math.max(...r.probabilities)),
              state: a.state, likeness: a.likeness, probabilities: a.probabilities});
  }
  return JSON.stringify(out);
}"""


def _python(model, png_bytes, transform, trust):
    """Python's preprocessing, transform, model and answer on the same image: (input, label, answer)."""
    x28 = torch.from_numpy(preprocess(png_bytes)).reshape(1, 784)
    x = apply(transform, x28)
    with torch.no_grad():
        label = int(model.linear(x).argmax())
    m = MnistModel(transform=transform)
    m.load_state_dict(model.state_dict())
    return x.reshape(-1).numpy(), label, Predictor(m, trust).answers(x28)[0]


def _upload_png(digit, side, rng):
    """A dark digit on light paper, ``side`` pixels square, as a PNG."""
    paper = Image.new("L", (side, side), int(rng.integers(200, 256)))
    s = int(side * rng.uniform(0.3, 0.8))
    ink = Image.fromarray(255 - digit).resize((s, s), Image.BILINEAR)
    paper.paste(ink, (int(rng.integers(0, side - s + 1)), int(rng.integers(0, side - s + 1))))
    b = io.BytesIO()
    paper.save(b, "PNG")
    return b.getvalue()


def test_browser_and_python_agree_on_320_images(browser, site, run, mnist_test):
    """240 MNIST test digits drawn onto the pad at random sizes and places, and 80 uploads
    (60 to 400 pixels a side, and two of 1,600, box-reduced to 1,024 first), half through the deskew
    transform: the browser's preprocessing + model + calibration + likeness + answer state against
    Python's on the same pixels. Tolerance: mnist.js ports Pillow's Lanczos and bilinear
    arithmetic, so the inputs agree to float rounding; one grey level (1/255) per pixel on average
    is the bound asserted, and identical predictions and states on at least 99%."""
    rng = np.random.default_rng(0)
    model, trust = run.model, run.checkpoint.trust
    page, _ = _open(browser, site)
    digits = [mnist_test.images[i].numpy() for i in range(320)]
    results = []
    for k, transform in enumerate(("none", "deskew")):
        chunk = list(range(k * 120, (k + 1) * 120))
        drawn = json.loads(page.evaluate(DRAW_IN_PAGE, json.dumps([[digits[i].reshape(-1).tolist() for i in chunk],
                                                                    _pads(len(chunk), rng), transform])))
        for d in drawn:
            png = base64.b64decode(d["png"].split(",", 1)[1])
            results.append((d, *_python(model, png, transform, trust)))
        sides = [1600] + [int(rng.choice([60, 150, 400])) for _ in range(39)]  # 1600: reduced to 1024 first
        pngs = [_upload_png(digits[i], side, rng) for i, side in zip(range(240 + 40 * k, 280 + 40 * k), sides)]
        uploaded = json.loads(page.evaluate(UPLOAD_IN_PAGE, json.dumps([["data:image/png;base64," + base64.b64encode(p).decode()
                                                                        for p in pngs], transform])))
        results += [(u, *_python(model, p, transform, trust)) for u, p in zip(uploaded, pngs)]
    page.close()
    assert len(results) == 320
    same = np.mean([r["label"] == label for r, _, label, _ in results])
    diff = np.mean([np.abs(np.asarray(r["input"]) - x).mean() for r, x, _, _ in results])
    states = np.mean([r["state"] == a.state for r, _, _, a in results])
    like = np.mean([abs(r["likeness"] - a.likeness) <= 2 / 1001 for r, _, _, a in results])
    prob = max(np.abs(np.asarray(r["probabilities"]) - a.probabilities).max() for r, _, _, a in results)
    print(f"parity: {same:.4f} of predictions identical, mean |input difference| {diff:.2e}, states {states:.4f}, "
          f"likeness within 2/1001 {like:.4f}, largest probability difference {prob:.2e}")  # pytest -s
    assert same >= 0.99 and diff <= 1 / 255 and states >= 0.99 and like >= 0.99, (same, diff, states, like)


STROKES_IN_PAGE = """(strokes) => {
  const pad = document.getElementById('pad');
  const fire = (target, type, [clientX, clientY], buttons) => target.dispatchEvent(new PointerEvent(type, {
    pointerId: 1, pointerType: 'mouse', isPrimary: true, button: 0, buttons, clientX, clientY, bubbles: true,
    cancelable: true}));
  for (const stroke of strokes) {
    fire(pad, 'pointerdown', stroke[0], 1);
    for (const p of stroke.slice(1)) fire(pad, 'pointermove', p, 1);
    fire(pad, 'pointerup', stroke[stroke.length - 1], 0);
  }
}"""


def _draw_strokes(page, strokes, size=0.6):
    """Strokes of the unit square drawn into the middle of the pad: the pointer events a mouse
    sends (the page's own handlers draw and answer), dispatched in the page at once. Through
    Playwright's mouse each event was a round trip and a frame, ~20 ms: 1,500 of them made this
    file's longest test (the mouse itself is driven by the tests that draw a one and a zero)."""
    box = page.locator("#pad").bounding_box()
    at = lambda x, y: (box["x"] + (0.5 - size / 2 + size * x) * box["width"],  # noqa: E731
                       box["y"] + (0.5 - size / 2 + size * y) * box["height"])
    points = []
    for stroke in strokes:  # at most 16 points a stroke, as the mouse drew them
        stroke = list(stroke)
        points.append([at(*p) for p in stroke[::max(1, len(stroke) // 15)] + [stroke[-1]]])
    page.evaluate(STROKES_IN_PAGE, points)  # bounding_box() is in the viewport's CSS pixels: clientX/Y


def _state(page):
    return page.locator("#result").get_attribute("data-state")


def test_the_page_says_when_it_is_not_a_digit(browser, site, tmp_path):
    """Issue 22's table, drawn in the real page with the mouse: letters, a smiley, a scribble, a
    line, a hash sign and an almost filled pad get "not a digit" or "unsure"; so does a photo
    without a digit; digits drawn honestly keep their answers."""
    page, _ = _open(browser, site)
    rng = np.random.default_rng(3)
    shapes = {k: probes._shape_strokes(k, rng) for k in ("smiley", "scribble", "line", "hash", "box")}
    cases = {"A": probes.LETTERS["A"], "e": probes.LETTERS["e"], "M": probes.LETTERS["M"], **shapes}
    said = {}
    for name, strokes in cases.items():
        page.click("#clear")
        _draw_strokes(page, strokes)
        said[name] = (_state(page), page.locator("#status").text_content())
    page.click("#clear")
    page.locator("#width").fill("32")
    _draw_strokes(page, probes._shape_strokes("filled", rng), size=0.98)   # the pad almost filled
    said["filled"] = (_state(page), page.locator("#status").text_content())
    Image.fromarray(probes.photos_without_digit(1, seed=3)[0].image).save(tmp_path / "photo.jpg")
    page.set_input_files("#upload", str(tmp_path / "photo.jpg"))
    _until(page, "document.getElementById('source').textContent.includes('photo.jpg')")
    said["photo"] = (_state(page), page.locator("#status").text_content())
    print(said)  # pytest -s
    assert all(state in ("not-a-digit", "unsure") for state, _ in said.values()), said
    page.locator("#width").fill("18")
    kept = []
    for d, variants in probes.DIGITS.items():
        for v, strokes in variants.items():
            if f"{d}-{v}" == "1-flag":  # a style MNIST's writers did not use: issue 23's "teach it"
                continue
            page.click("#clear")
            _draw_strokes(page, strokes)
            kept.append((d, v, _state(page), page.locator("#predicted").text_content()))
    right = [k for k in kept if k[2] == "digit" and k[3] == str(k[0])]
    assert len(right) >= len(kept) - 2, kept  # honest digits keep their answers
    page.close()


def test_page_is_honest_and_keyboard_usable(browser, site, tmp_path):
    page, _ = _open(browser, site)
    _draw(page, [(0.5, 0.5), (0.51, 0.51)])                       # a click, not a digit
    assert page.locator("#result").get_attribute("data-state") == "too-small"
    assert _predicted(page) == "Too small" and "larger" in page.locator("#status").text_content()
    page.click("#clear")
    _draw(page, [(0.3, 0.3), (0.7, 0.7)], button="right")         # a right-click draws nothing
    assert page.evaluate("Array.from(document.getElementById('pad').getContext('2d')"
                         ".getImageData(0, 0, 280, 280).data).every(v => v === 255)")
    _draw(page, [(0.5, 0.15), (0.5, 0.85)])
    _until(page, "document.getElementById('predicted').textContent === '1'")
    _draw(page, CIRCLE)                                           # a 1 through a 0
    page.keyboard.press("Control+z")                              # undo: the 1 again
    _until(page, "document.getElementById('predicted').textContent === '1'")
    page.click("#eraser")
    _draw(page, [(0.5, 0.1), (0.5, 0.9)])                         # erased
    assert page.locator("#eraser").get_attribute("aria-pressed") == "true"
    assert _predicted(page) == "–"
    page.click("#eraser")
    # the upload is reachable by keyboard and is shown in the drawing area
    page.keyboard.press("Tab")
    focus_order = [page.evaluate("document.activeElement.id")]
    for _ in range(6):
        page.keyboard.press("Tab")
        focus_order.append(page.evaluate("document.activeElement.id"))
    assert "upload" in focus_order and "undo" in focus_order
    one = Image.new("L", (200, 300), 255)
    one.paste(0, (90, 40, 110, 260))
    one.save(tmp_path / "one.png")
    page.set_input_files("#upload", str(tmp_path / "one.png"))
    _until(page, "document.getElementById('predicted').textContent === '1'")
    assert "one.png" in page.locator("#source").text_content()
    (tmp_path / "bad.png").write_bytes(b"not an image")
    page.set_input_files("#upload", str(tmp_path / "bad.png"))  # a failed upload clears the old result
    _until(page, "document.getElementById('status').classList.contains('error')")
    assert _predicted(page) == "–" and "bad.png" in page.locator("#status").text_content()
    page.close()


def test_axe_finds_no_serious_violations(browser, site):
    from axe_playwright_python.sync_playwright import Axe

    only = {"resultTypes": ["violations"]}
    for scheme, rules in (("light", only), ("dark", {**only, "runOnly": ["color-contrast"]})):  # all rules, then colours
        page, _ = _open(browser, site, color_scheme=scheme)
        _draw(page, CIRCLE)
        _until(page, "document.getElementById('predicted').textContent !== '–'")
        results = Axe().run(page, options=rules)
        serious = [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], (scheme, results.generate_report())
        page.close()


def test_landscape_phone_shows_pad_and_buttons(browser, site):
    page, _ = _open(browser, site, viewport={"width": 844, "height": 390})
    for sel in ("#pad", "#clear", "#predicted"):
        box = page.locator(sel).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 390, sel
    page.screenshot(path=str(REPO / "tests" / "artefacts" / "web-landscape.png"))
    page.close()


# -- issue 23: photos in uneven light, the page's limits, transparency, a pad covered in ink ----
def test_browser_and_python_agree_on_photos_in_uneven_light(browser, site, run, mnist_test):
    """40 MNIST digits photographed under even light, a shadow, a gradient, ruled lines and
    vignetting (probes.photos_of_digits): the page's lighting step, preprocessing and answer
    against Python's on the same PNGs."""
    page, _ = _open(browser, site)
    photos = [p for k, light in enumerate(probes.LIGHTING)
              for p in probes.photos_of_digits(mnist_test.images[8 * k:8 * k + 8].numpy(),
                                               mnist_test.labels[8 * k:8 * k + 8].numpy(), light, seed=k)]
    pngs = []
    for p in photos:
        b = io.BytesIO()
        Image.fromarray(p.image).save(b, "PNG")
        pngs.append(b.getvalue())
    got = json.loads(page.evaluate(UPLOAD_IN_PAGE, json.dumps(
        [["data:image/png;base64," + base64.b64encode(p).decode() for p in pngs], "none"])))
    page.close()
    want = [_python(run.model, p, "none", run.checkpoint.trust) for p in pngs]
    diff = max(np.abs(np.asarray(g["input"]) - x).mean() for g, (x, _, _) in zip(got, want))
    states = np.mean([g["state"] == a.state and g["label"] == label for g, (_, label, a) in zip(got, want)])
    assert diff <= 1e-5 and states == 1.0, (diff, states)


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header says width x height (and holds no pixels): enough to be refused."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_the_page_refuses_what_the_api_refuses_with_the_same_words(browser, site, tmp_path):
    """A 400-megapixel PNG is refused from its header at once (it froze the page 34 s, then
    said "blank"); an empty file says "empty file"; both messages are preprocess's, word for word."""
    from mnist_logreg.errors import ImageError

    page, _ = _open(browser, site)
    cases = {"huge.png": _png_header(20_000, 20_000), "empty.png": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageError) as python:
            preprocess(data, name)
        page.set_input_files("#upload", str(tmp_path / name))
        _until(page, "document.getElementById('status').classList.contains('error')", timeout=5)
        assert page.locator("#status").text_content() == str(python.value) + ".", name
        page.click("#clear")
    page.close()


def test_white_ink_on_transparency_and_a_pad_covered_in_ink(browser, site, run, tmp_path):
    page, _ = _open(browser, site)
    im = Image.new("RGBA", (300, 300), (255, 255, 255, 0))
    from PIL import ImageDraw
    ImageDraw.Draw(im).line([(150, 40), (150, 260)], fill=(255, 255, 255, 255), width=24)
    im.save(tmp_path / "white-one.png")
    page.set_input_files("#upload", str(tmp_path / "white-one.png"))
    _until(page, "document.getElementById('source').textContent.includes('white-one.png')")
    assert _state(page) != "blank" and _predicted(page) == "1"
    page.click("#clear")
    page.locator("#width").fill("32")
    _draw_strokes(page, [[(0.01, y), (0.99, y)] for y in np.linspace(0.01, 0.99, 15)], size=1.0)  # 32-px pen
    _until(page, "document.getElementById('status').textContent !== ''")
    status = page.locator("#status").text_content()
    assert _state(page) == "blank" and "covered in ink" in status, status   # it said nothing before
    page.close()


def test_a_large_upload_is_read_in_strips_as_python_reads_it(browser, site, tmp_path):
    """A 2,600-pixel PNG (box-reduced by 3 to 867 before preprocessing, read by the page in
    strips of 1,599 rows, two passes for its transparency) with white ink on transparent
    paper: the page's input equals Python's to float rounding."""
    from PIL import ImageDraw
    im = Image.new("RGBA", (2600, 2400), (255, 255, 255, 0))
    ImageDraw.Draw(im).line([(900, 500), (1700, 500), (1100, 1900)], fill=(255, 255, 255, 255), width=160)
    im.save(tmp_path / "big.png")
    page, _ = _open(browser, site)
    page.set_input_files("#upload", str(tmp_path / "big.png"))
    _until(page, "document.getElementById('source').textContent.includes('big.png')", timeout=30)
    got = np.asarray(page.evaluate("Array.from(current.input)"), dtype=np.float32).reshape(28, 28)
    page.close()
    want = preprocess((tmp_path / "big.png").read_bytes())
    assert np.abs(got - want).max() <= 1 / 255 and np.abs(got - want).mean() < 1e-4
