"""Issue 23's page list, each item checked in a real browser (Chromium) against the static site
and a real `mnist-logreg serve` process: nothing jumps, nothing is hidden at 200% zoom, a phone
shows the answer on its first screen, the docs page's JSON body works, HEAD and the short
paths answer, files are compressed, strokes drawn while the model loads are kept."""
import os

import numpy as np
import pytest
from test_web import _draw, _draw_strokes, _state

from helpers import CHROMIUM, serving, until
from mnist_logreg import probes
from mnist_logreg.cli import main
from mnist_logreg.report import build_report

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (.ci/run installs it)")
httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def run(notebook_run, data_dir):
    """The notebook's 5-epoch run (conftest's, trained once per test process) with its report
    (served at /report, copied beside the static page)."""
    build_report(notebook_run.path, data_dir=data_dir, download=False, log=None)
    return notebook_run


@pytest.fixture(scope="module")
def site(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    assert main(["export", str(run.path), "--format", "web", "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(run):
    with serving(run.path) as (url, _):
        yield url


def _open(browser, url, **kw):
    page = browser.new_page(**kw)
    page.goto(url)
    page.wait_for_selector(".bar")
    return page


def _box(page, sel):
    b = page.locator(sel).bounding_box()
    return b and (round(b["y"]), round(b["y"] + b["height"]))


def test_head_short_paths_and_compression(server):
    """HEAD was 405 on /, /model.js and /api/health; /docs and /openapi.json were 404;
    model.js (160 KB) went uncompressed to a browser that accepts gzip."""
    http = httpx.Client(base_url=server)  # one client: httpx.get built an SSL context (40 ms) each call
    for path in ("/", "/model.js", "/api/health", "/report", "/static/app.js"):
        assert http.head(path).status_code == 200, path
    for short, real in (("/docs", "/api/docs"), ("/openapi.json", "/api/openapi.json")):
        r = http.get(short)
        assert r.status_code == 308 and r.headers["location"] == real
    raw = http.get("/model.js", headers={"accept-encoding": "identity"})
    packed = http.get("/model.js", headers={"accept-encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip" and "content-encoding" not in raw.headers
    assert int(packed.headers["content-length"]) < 0.8 * len(raw.content) and packed.text == raw.text  # base64: ~3/4
    assert "content-security-policy" in http.get("/report").headers  # its own: no script at all
    http.close()


def test_layout_holds_in_every_state_and_on_every_screen(browser, site):
    url = (site / "index.html").as_uri()
    # the bars stay put whatever the answer (they jumped 26 px between states)
    page = _open(browser, url)
    ys = {"empty": _box(page, "#bars")[0]}
    for name, draw in (("too-small", lambda: _draw(page, [(0.5, 0.5), (0.51, 0.51)])),
                       ("digit", lambda: _draw(page, [(0.5, 0.15), (0.5, 0.85)])),
                       ("not-a-digit", lambda: _draw_strokes(page, probes._shape_strokes("hash", np.random.default_rng(1))))):
        page.click("#clear")
        draw()
        ys[f"{name}:{_state(page)}"] = _box(page, "#bars")[0]
    assert len(set(ys.values())) == 1, ys
    # the winning bar is not the error red; the bars do not animate under reduced motion
    colours = page.evaluate("""() => [getComputedStyle(document.querySelector('.bar.top .fill')).backgroundColor,
                                      getComputedStyle(document.getElementById('status')).color]""")
    page.close()
    page = _open(browser, url, reduced_motion="reduce")
    assert page.evaluate("getComputedStyle(document.querySelector('.bar .fill')).transitionDuration") == "0s"
    page.evaluate("document.getElementById('status').classList.add('error')")
    error_red = page.evaluate("getComputedStyle(document.getElementById('status')).color")
    assert colours[0] != error_red, colours
    # no Tab stop that does nothing (the pad), no SVG offered and then refused
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    assert "pad" not in order and "svg" not in page.get_attribute("#upload", "accept")
    page.close()
    # a phone upright: the answer, the bars and what the model saw on the first screen
    page = _open(browser, url, viewport={"width": 390, "height": 844})
    _draw(page, [(0.5, 0.15), (0.5, 0.85)])
    assert _box(page, "#bars")[1] <= 844 and _box(page, "#seen")[1] <= 844, (_box(page, "#bars"), _box(page, "#seen"))
    page.close()
    # a phone sideways: pad, buttons, slider and answer on the screen
    page = _open(browser, url, viewport={"width": 844, "height": 390})
    for sel in ("#pad", "#clear", "#width", "#predicted"):
        assert 0 <= _box(page, sel)[0] and _box(page, sel)[1] <= 390, sel
    page.close()
    # a desktop at 200% zoom (1280x800 -> 640x400 CSS pixels): the model line and the explanation stay
    page = _open(browser, url, viewport={"width": 640, "height": 400}, device_scale_factor=2)
    assert page.locator("#model-info").is_visible() and page.locator("footer p").first.is_visible()
    page.close()


def test_links_and_strokes_drawn_while_the_model_loads(browser, server, site):
    """The page links to the API docs (served) and the run's report (both); strokes drawn before
    model.js arrives are kept and answered when it does (they were lost)."""
    page = browser.new_page()
    held = []
    page.route("**/model.js", lambda route: held.append(route))
    page.goto(server + "/", wait_until="commit")  # the load events wait for model.js: it is held
    until(page, "typeof redraw === 'function'")  # app.js runs; model.js has not come
    assert page.evaluate("document.body.classList.contains('loading')")
    _draw(page, [(0.5, 0.15), (0.5, 0.85)])
    until(page, "document.getElementById('prompt').hidden")
    held[0].continue_()
    until(page, "document.getElementById('predicted').textContent === '1'")
    links = page.eval_on_selector_all("#links a", "as => as.map(a => a.getAttribute('href'))")
    assert links == ["api/docs", "report"]
    assert httpx.get(server + "/" + links[1]).text.startswith("<!doctype html>")
    page.close()
    page = _open(browser, (site / "index.html").as_uri())
    assert page.eval_on_selector_all("#links a", "as => as.map(a => a.getAttribute('href'))") == ["report.html"]
    assert (site / "report.html").is_file()
    page.close()


def test_live_region_is_quiet_while_drawing(browser, site):
    """One 3 drawn stroke by stroke: no "too small" flash and one announcement per stroke at most
    (the live region said "Draw a larger digit" 4 times while one 3 was drawn)."""
    page = _open(browser, (site / "index.html").as_uri())
    page.evaluate("""() => { window.said = [];
        new MutationObserver(() => window.said.push(document.getElementById('status').textContent))
          .observe(document.getElementById('status'), {childList: true, characterData: true, subtree: true}); }""")
    _draw_strokes(page, probes.DIGITS[3]["round"])
    said = [s for s in page.evaluate("window.said") if s]
    assert not any("small" in s.lower() for s in said) and len(said) <= 2, said
    page.close()


def test_api_docs_body_and_accessibility(browser, server):
    """Try it out on POST /api/predict: the JSON editor holds the example (switching from
    multipart left its form state there) and Execute answers; axe-core finds nothing serious
    that the page's template or settings control (nested-interactive is Swagger UI's own markup:
    a button inside its summary bar)."""
    from axe_playwright_python.sync_playwright import Axe

    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(server + "/api/docs")
    page.wait_for_selector(".opblock")
    serious = {v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")}
    assert serious <= {"nested-interactive"}, serious
    page.click("#operations-default-predict_endpoint_api_predict_post .opblock-summary")
    page.click("text=Try it out")
    ctype = page.locator("#operations-default-predict_endpoint_api_predict_post select").nth(1)
    ctype.select_option("multipart/form-data")
    ctype.select_option("application/json")
    import json
    body = json.loads(page.locator("#operations-default-predict_endpoint_api_predict_post textarea").first.input_value())
    assert list(body) == ["pixels"] and len(body["pixels"]) == 784
    page.click("#operations-default-predict_endpoint_api_predict_post .execute")
    status = "#operations-default-predict_endpoint_api_predict_post .live-responses-table tbody .response-col_status"
    page.wait_for_selector(status)
    assert page.locator(status).first.text_content().strip() == "200"
    assert '"state": "blank"' in page.locator("#operations-default-predict_endpoint_api_predict_post "
                                              ".live-responses-table tbody .microlight").first.text_content()
    page.close()


def test_upload_then_undo_brings_the_drawing_back_and_the_header_speaks_plainly(browser, site, tmp_path):
    from PIL import Image
    page = _open(browser, (site / "index.html").as_uri())
    info = page.locator("#model-info").text_content()
    assert "nn.Linear" not in info and "transform" not in info and "linear model trained on" in info
    assert page.locator("#prompt").is_visible()                      # the empty pad says what to do
    _draw(page, [(0.5, 0.15), (0.5, 0.85)])
    until(page, "document.getElementById('predicted').textContent === '1'")
    zero = Image.new("L", (200, 200), 255)
    from PIL import ImageDraw
    ImageDraw.Draw(zero).ellipse((50, 30, 150, 170), outline=0, width=16)
    zero.save(tmp_path / "zero.png")
    page.set_input_files("#upload", str(tmp_path / "zero.png"))
    until(page, "document.getElementById('predicted').textContent === '0'")
    page.keyboard.press("Control+z")                                  # the upload undone: the 1 again
    until(page, "document.getElementById('predicted').textContent === '1'")
    assert page.locator("#source").text_content() == ""
    page.close()
