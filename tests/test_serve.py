"""The web app: API tests through FastAPI's TestClient, one real uvicorn process, and a real
browser (Playwright driving Debian's Chromium) drawing on the page."""
import base64
import io
import json
import os
import shutil
import signal
import socket
import time

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from helpers import REPO, serving
from helpers import until as _until
from mnist_logreg import save

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from mnist_logreg.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, notebook_run):
    """5 epochs of the notebook's recipe (conftest.py), saved without its calibration."""
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save(notebook_run.model, path, metrics={"test_acc": 0.92}, dataset="mnist")
    return path


@pytest.fixture(scope="module")
def client(ckpt):
    return TestClient(create_app(ckpt, max_body_bytes=2_000_000))


def png(im):
    b = io.BytesIO()
    im.save(b, "PNG")
    return b.getvalue()


def stroke_one():
    im = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(im).line([(140, 40), (140, 240)], fill=0, width=18)
    return im


def test_health_and_model(client):
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    assert info["dataset"] == "mnist" and info["classes"][3] == "3" and info["parameters"] == 7850
    assert info["metrics"]["test_acc"] == 0.92 and info["created"] and info["transform"] == "none"
    assert "/" not in json.dumps(info).replace("nn.Linear", "")  # no file paths in responses


def test_page_and_static_files(client, ckpt):
    r = client.get("/")
    assert r.status_code == 200 and "<canvas id=\"pad\"" in r.text and "static/app.js" in r.text
    assert "http" not in r.text.replace("http-equiv", "")  # nothing fetched from the network
    for path in ("/static/app.js", "/static/mnist.js", "/static/style.css", "/static/favicon.svg", "/favicon.ico"):
        assert client.get(path).status_code == 200, path
    script = client.get("/model.js").text  # the weights, for the page's own inference: one JSON value
    assert script.startswith("window.MNIST_MODEL = {") and script.endswith("};\n")
    weights = np.frombuffer(base64.b64decode(json.loads(script[20:-2])["weights"]), "<f4").reshape(10, 784)
    assert np.array_equal(weights, torch.load(ckpt)["model"]["linear.weight"].numpy())


def test_openapi_describes_both_request_forms(client):
    spec = client.get("/api/openapi.json").json()
    op = spec["paths"]["/api/predict"]["post"]
    forms = op["requestBody"]["content"]
    assert forms["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
    assert "pixels" in forms["application/json"]["schema"]["properties"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    resolved = spec["components"]["schemas"][ok["$ref"].rsplit("/", 1)[1]]
    assert {"label", "class_name", "probabilities", "preprocessed"} <= set(resolved["properties"])
    assert {"413", "415", "422", "503"} <= set(op["responses"])
    docs = client.get("/api/docs").text
    assert "cdn" not in docs.lower() and "/api/docs-assets/swagger-ui-bundle.js" in docs
    assert client.get("/api/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_predict_upload(client, mnist_test):
    r = client.post("/api/predict", files={"image": ("one.png", png(stroke_one()), "image/png")})
    assert r.status_code == 200
    body = r.json()
    assert body["label"] == 1 and body["class_name"] == "1"
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
    x = np.array(body["preprocessed"])
    assert x.shape == (28, 28) and x.max() == pytest.approx(1.0)


def test_blank_inputs_are_answers_as_on_the_page(client):
    """A blank upload, and the OpenAPI example (784 zeros), are the state "blank" with no label,
    not an error and not "label 5 at 26.8%"."""
    example = client.get("/api/openapi.json").json()["paths"]["/api/predict"]["post"]["requestBody"]
    for r in (client.post("/api/predict", json=example["content"]["application/json"]["example"]),
              client.post("/api/predict", files={"image": ("w.png", png(Image.new("L", (64, 64), 255)), "image/png")})):
        assert r.status_code == 200 and r.json()["state"] == "blank" and r.json()["label"] is None, r.text


def test_predict_json_flat_and_rows_agree_with_the_model(client, ckpt, mnist_test):
    from mnist_logreg import load
    model = load(ckpt)
    img = mnist_test.images[0].float().div(255)
    flat = client.post("/api/predict", json={"pixels": img.reshape(-1).tolist()}).json()
    rows = client.post("/api/predict", json={"pixels": img.tolist()}).json()
    bytes_ = client.post("/api/predict", json={"pixels": mnist_test.images[0].tolist()}).json()
    expected = torch.softmax(model(img.reshape(1, 784)), 1)[0]
    assert flat["label"] == rows["label"] == bytes_["label"] == int(expected.argmax())
    np.testing.assert_allclose(flat["probabilities"], expected.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("kwargs,status,message", [
    ({"content": b"{bad json", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
    ({"json": {"pixels": [0.0] * 783}}, 422, "784 numbers, got 783"),
    ({"json": {"pixels": [[0.0] * 28] * 27}}, 422, "28 rows"),
    ({"content": json.dumps({"pixels": [float("nan")] * 784}).encode(),  # NaN tokens, as Python writes them
      "headers": {"content-type": "application/json"}}, 422, "finite"),
    ({"json": {"pixels": [300] * 784}}, 422, "in [0, 1]"),
    ({"json": {"pixels": ["a"] * 784}}, 422, "only numbers"),
    ({"json": {"image": []}}, 422, "'pixels' field"),
    ({"files": {"image": ("x.png", b"not an image at all", "image/png")}}, 422, "not an image"),
    ({"files": {"image": ("x.png", b"", "image/png")}}, 422, "empty"),
    ({"files": {"other": ("x.png", b"abc", "image/png")}}, 422, "field named 'image'"),
    ({"content": b"x" * 3_000_000, "headers": {"content-type": "application/json"}}, 413, "over the 2,000,000-byte limit"),
    ({"content": b"abc", "headers": {"content-type": "text/plain"}}, 415, "unsupported content type"),
])
def test_bad_requests_get_json_4xx(client, kwargs, status, message):
    r = client.post("/api/predict", **kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


@pytest.fixture(scope="module")
def server(ckpt):
    """A real `mnist-logreg serve` process on 127.0.0.1, stopped by PID at the end."""
    with serving(ckpt) as (url, proc):
        yield url, proc


def test_real_uvicorn_process(server):
    import httpx
    url, proc = server
    r = httpx.post(url + "/api/predict", files={"image": ("one.png", png(stroke_one()), "image/png")}, timeout=10)
    assert r.status_code == 200 and r.json()["label"] == 1
    # bound to the loopback address only: a connection to this host's other address fails
    port = int(url.rsplit(":", 1)[1])
    host_ip = socket.gethostbyname(socket.gethostname())
    if not host_ip.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((host_ip, port), timeout=1).close()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://localhost:{port + 0}/api/health".replace("localhost", "[::1]"), timeout=1)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_browser_draws_a_one_and_a_zero(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    url, _ = server
    artefacts = REPO / "tests" / "artefacts"
    artefacts.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone-sized screen
        page.goto(url + "/")
        page.wait_for_selector(".bar")
        box = page.locator("#pad").bounding_box()

        def draw(points):
            page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
            page.mouse.down()
            for x, y in points[1:]:
                page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
            page.mouse.up()

        draw([(0.5, 0.15), (0.5, 0.85)])  # a vertical stroke: "1"
        _until(page, "document.getElementById('predicted').textContent === '1'")
        page.screenshot(path=str(artefacts / "browser-one.png"), full_page=True)
        page.click("#clear")
        assert page.locator("#predicted").text_content() == "–"
        angles = np.linspace(0, 2 * np.pi, 40)
        draw([(0.5 + 0.28 * np.sin(a), 0.5 - 0.36 * np.cos(a)) for a in angles])  # a circle: "0"
        _until(page, "document.getElementById('predicted').textContent === '0'")
        page.screenshot(path=str(artefacts / "browser-zero.png"), full_page=True)
        widths = page.eval_on_selector_all(".bar .fill", "els => els.map(e => parseFloat(e.style.width))")
        assert widths[0] == max(widths) and len(widths) == 10
        # the API docs with the network blocked except this server: served from local files
        docs = browser.new_page()
        blocked = []

        def only_local(route):
            if route.request.url.startswith(url):
                return route.continue_()
            blocked.append(route.request.url)
            return route.abort()
        docs.route("**/*", only_local)
        docs.goto(url + "/api/docs")
        docs.wait_for_selector(".opblock", timeout=15_000)
        listed = docs.locator(".opblock-summary-path").all_text_contents()
        assert {"/api/predict", "/api/model", "/api/health"} <= set(listed) and blocked == []
        browser.close()


def test_a_loopback_server_answers_only_its_own_names(server):
    """Issue 25 (22): DNS rebinding (a page on evil.example whose name now points at 127.0.0.1)
    gets 400, not the model; one request framed two ways is refused."""
    import httpx
    url, _ = server
    assert httpx.get(url + "/api/model").status_code == 200
    assert httpx.get(url.replace("127.0.0.1", "localhost") + "/api/health").status_code == 200
    assert httpx.get(url + "/api/model", headers={"host": "evil.example"}).status_code == 400
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert s.recv(200).split(b"\r\n")[0].split()[1] == b"400"


def test_a_storage_password_is_never_printed():
    from mnist_logreg.sweep import _without_password
    assert _without_password("postgresql://me:s3cret@db/optuna") == "postgresql://me:***@db/optuna"
    assert "s3cret" not in _without_password("could not connect to postgresql://u:s3cret@h:5432/x (timeout)")


def test_a_large_json_body_is_refused_as_it_arrives(client):
    """Issue 25 (7): 784 numbers need ~20 kB; a 1.5 MB JSON body (under the 2 MB body limit here) is
    413 before it is parsed."""
    big = b'{"pixels": [' + b"0.0, " * 300_000 + b"0.0]}"
    r = client.post("/api/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "at most" in r.json()["error"]
    ok = client.post("/api/predict", json={"pixels": [0.123456789012345678] * 784})
    assert ok.status_code == 200


def test_workers_serve_the_bytes_checked_at_start(tmp_path, ckpt):
    """Issue 25 (14): `serve --workers N` loads a private snapshot of the checkpoint: the file
    changing (or breaking) afterwards reaches no worker, restarted or not."""
    import shutil

    import httpx

    from helpers import serving
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(ckpt, run / "checkpoint.pt")
    with serving(run, "--workers", "2") as (url, proc), httpx.Client(timeout=5) as client:
        before = client.get(url + "/model.js").text
        (run / "checkpoint.pt").write_bytes(b"damaged")
        killed = _workers(proc.pid)
        assert len(killed) == 2
        for child in killed:   # uvicorn restarts a worker that dies
            os.kill(child, signal.SIGKILL)
        for _ in range(300):
            try:
                restarted = [w for w in _workers(proc.pid) if w not in killed]
                if len(restarted) == 2 and client.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the killed workers were not replaced")
        assert all(client.get(url + "/model.js").text == before for _ in range(6))


def _workers(pid):
    """The server's worker processes: its children but multiprocessing's resource tracker (this
    test killed that one too, and waited for exactly two children, never three: 15-20 s a run)."""
    path = f"/proc/{pid}/task/{pid}/children"
    children = [int(c) for c in open(path).read().split()] if os.path.exists(path) else []
    return [c for c in children if b"spawn_main" in _cmdline(c)]


def _cmdline(pid) -> bytes:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:  # gone
        return b""
