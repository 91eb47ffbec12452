"""Issue 23's "Wrong? It was ...": the examples folder (examples.py), serve --collect's route,
train --extra-images, and the page's button on the server and on the static site."""
import io
import multiprocessing
import zipfile

import numpy as np
import pytest
import torch

from helpers import add_examples
from helpers import stroke_image as _one
from mnist_logreg import ConfigError, TrainConfig, examples, train_run


def test_saved_examples_read_back_exactly(tmp_path):
    names = [examples.add(tmp_path, _one(k), k % 10, num_classes=10) for k in range(12)]
    images, labels, read_names = examples.read(tmp_path, num_classes=10)
    assert read_names == names and len(set(names)) == 12 and labels.tolist() == [k % 10 for k in range(12)]
    np.testing.assert_array_equal(images[3], np.round(_one(3) * 255))
    text = (tmp_path / "labels.csv").read_text().splitlines()
    assert text[0] == "file,label,saved" and len(text) == 13 and text[1].startswith(names[0] + ",0,")


def test_processes_adding_at_once_lose_and_overwrite_nothing(tmp_path):
    """4 processes (serve --workers 4) save 25 examples each into one folder at the same time.
    Their work is in helpers.py, which spawned processes import without torch (from this file,
    each imported torch: 5 s of CPU)."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        names = sum(pool.map(add_examples, [(tmp_path, 25 * i) for i in range(4)]), [])
    _, labels, read_names = examples.read(tmp_path, num_classes=10)
    assert len(names) == len(set(names)) == 100 and sorted(read_names) == sorted(names)
    assert len(list(tmp_path.glob("*.png"))) == 100 and not list(tmp_path.glob(".*"))  # no temporary left


def test_the_folder_is_bounded_and_inputs_are_checked(tmp_path):
    for k in range(3):
        examples.add(tmp_path, _one(k), 7, num_classes=10, limit=3)
    with pytest.raises(examples.FolderFull, match="holds 3 examples"):
        examples.add(tmp_path, _one(), 7, num_classes=10, limit=3)
    assert len(list(tmp_path.glob("*.png"))) == 3
    for bad_label in (10, -1, True, "1", None):
        with pytest.raises(ConfigError, match="label"):
            examples.add(tmp_path / "x", _one(), bad_label, num_classes=10)
    with pytest.raises(ConfigError, match=r"28x28"):
        examples.add(tmp_path / "x", np.full((28, 28), 2.0), 1, num_classes=10)


@pytest.mark.parametrize("index, why", [
    ("file,label,saved\n../outside.png,1,x\n", "plain file name"),
    ("file,label,saved\n/etc/passwd,1,x\n", "plain file name"),
    ("file,label,saved\na.png,12,x\n", "not a class"),
    ("file,label,saved\na.png,-1,x\n", "not a class"),
    ("file,label,saved\nmissing.png,1,x\n", "not in the folder"),
    ("a.png,1\n", "header"),
    ("", "header"),
])
def test_a_hostile_index_is_refused_in_one_line(tmp_path, index, why):
    from PIL import Image
    Image.fromarray((_one() * 255).astype(np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text(index)
    with pytest.raises(ConfigError, match=why) as e:
        examples.read(tmp_path, num_classes=10)
    assert "\n" not in str(e.value)


def test_train_learns_from_extra_images(tmp_path, data_dir):
    """--extra-images joins the training split only, each example extra_weight times; a bad
    folder is refused naming the setting, before a run folder is made."""
    folder = tmp_path / "mine"
    for k in range(5):
        examples.add(folder, _one(k), 7, num_classes=10)   # "these sticks are 7s"
    cfg = TrainConfig(dry_run=True, data_dir=str(data_dir), calibration_holdout=0)
    plain = train_run(cfg, tmp_path / "runs", "plain", report=False, log=None)
    taught = train_run(cfg.replace(extra_images=str(folder), extra_weight=200), tmp_path / "runs", "taught",
                       report=False, log=None)
    x = torch.from_numpy(np.stack([_one(k) for k in range(5)])).reshape(5, 784)
    with torch.no_grad():
        assert (plain.model(x).argmax(1) == 7).sum() < (taught.model(x).argmax(1) == 7).sum() == 5
    assert taught.config.extra_images == str(folder) and taught.config.extra_weight == 200
    with pytest.raises(ConfigError, match="extra_images.*no labels.csv"):
        train_run(cfg.replace(extra_images=str(tmp_path)), tmp_path / "runs", "bad", report=False, log=None)
    assert not (tmp_path / "runs" / "bad").exists()


def test_collect_route_saves_and_refuses(tmp_path, web_checkpoint):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mnist_logreg.serve import create_app

    plain = TestClient(create_app(web_checkpoint))
    assert plain.post("/api/examples", json={"pixels": _one().ravel().tolist(), "label": 1}).status_code in (404, 405)
    assert '"examples": null' in plain.get("/model.js").text
    client = TestClient(create_app(web_checkpoint, collect=tmp_path / "got", collect_max=2))
    assert '"examples": "server"' in client.get("/model.js").text
    r = client.post("/api/examples", json={"pixels": _one().ravel().tolist(), "label": 1})
    assert r.status_code == 201 and (tmp_path / "got" / r.json()["saved"]).is_file()
    assert client.post("/api/examples", json={"pixels": _one().ravel().tolist(), "label": 11}).status_code == 422
    assert client.post("/api/examples", json={"pixels": [1] * 5, "label": 1}).status_code == 422
    assert client.post("/api/examples", json={"pixels": _one().ravel().tolist(), "label": 2}).status_code == 201
    full = client.post("/api/examples", json={"pixels": _one().ravel().tolist(), "label": 3})
    assert full.status_code == 507 and "limit" in full.json()["error"]
    assert examples.read(tmp_path / "got", 10)[1].tolist() == [1, 2]


def test_serve_collect_refuses_a_folder_of_other_files(tmp_path, web_checkpoint, run_cli):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run_cli("serve", web_checkpoint, "--collect", tmp_path, "--port", "0")
    assert code == 2 and "holds files but no labels.csv" in err and (tmp_path / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def web_checkpoint(tmp_path_factory, data_dir):
    run = train_run(TrainConfig(dry_run=True, data_dir=str(data_dir)), tmp_path_factory.mktemp("runs"), "w",
                    report=False, log=None)
    return run.path / "checkpoint.pt"


def test_zip_from_the_static_site_is_a_folder_of_examples(tmp_path):
    """The page's zip writer, run in node on two examples, reads back with examples.read."""
    import shutil
    import subprocess

    from helpers import REPO

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    src = (REPO / "src/mnist_logreg/serve/static/app.js").read_text()
    zip_fn = src[src.index("function zip(files)"):src.index('$("teach-save")')]
    script = zip_fn + """
const png = require('fs').readFileSync(process.argv[process.argv.length - 1]);
const files = [["my-examples/labels.csv", new TextEncoder().encode("file,label,saved\\na.png,1,2026-12-01T00:00:00+00:00\\n")],
               ["my-examples/a.png", new Uint8Array(png)]];
zip(files).arrayBuffer().then(b => process.stdout.write(Buffer.from(b)));
"""
    from PIL import Image
    Image.fromarray((_one() * 255).astype(np.uint8)).save(tmp_path / "a.png")
    out = subprocess.run([node, "-e", script, str(tmp_path / "a.png")], capture_output=True, check=True).stdout
    with zipfile.ZipFile(io.BytesIO(out)) as z:
        assert z.testzip() is None
        z.extractall(tmp_path / "unzipped")
    images, labels, _ = examples.read(tmp_path / "unzipped" / "my-examples", 10)
    assert labels.tolist() == [1] and images.shape == (1, 28, 28)


def _chromium():
    import os
    import shutil
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    return pytest.importorskip("playwright.sync_api"), path


def _teach(page, label):
    """Draw a 1 with a flag in the page, then tell it: "Wrong? It was <label>" and save."""
    from test_web import _draw_strokes

    from helpers import until
    from mnist_logreg.probes import DIGITS
    page.click("#clear")
    _draw_strokes(page, DIGITS[1]["flag"])
    until(page, "!document.getElementById('teach').hidden")
    page.select_option("#teach-label", label)
    page.click("#teach-save")
    until(page, "document.getElementById('teach-status').textContent.startsWith('Saved')")


def test_the_page_saves_a_correction_on_the_server_and_on_the_static_site(tmp_path, web_checkpoint, run_cli):
    from helpers import serving

    playwright, chromium = _chromium()
    folder = tmp_path / "collected"
    code, _, err = run_cli("export", web_checkpoint, "--format", "web", "-o", tmp_path / "site")
    assert code == 0, err
    with serving(web_checkpoint, "--collect", folder) as (url, _), playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector(".bar")
        _teach(page, "1")
        assert examples.read(folder, 10)[1].tolist() == [1]
        site = browser.new_page(accept_downloads=True)
        site.goto((tmp_path / "site" / "index.html").as_uri())
        site.wait_for_selector(".bar")
        _teach(site, "1")
        _teach(site, "1")
        with site.expect_download() as d:
            site.click("#download")
        d.value.save_as(tmp_path / "mine.zip")
        browser.close()
    with zipfile.ZipFile(tmp_path / "mine.zip") as z:
        z.extractall(tmp_path / "unzipped")
    images, labels, _ = examples.read(tmp_path / "unzipped" / "my-examples", 10)
    assert labels.tolist() == [1, 1] and images.shape == (2, 28, 28) and images.max() == 255


def test_predict_scores_a_folder_of_examples_against_its_labels(tmp_path, web_checkpoint, run_cli):
    import json
    folder = tmp_path / "mine"
    for k in range(3):
        examples.add(folder, _one(k), 1 if k < 2 else 7, num_classes=10)
    code, out, err = run_cli("predict", web_checkpoint, "--image", folder)
    assert code == 0, err
    assert "of 3 labelled images right" in out and out.count("Label: 1") == 2 and "Label: 7" in out
    code, out, _ = run_cli("predict", web_checkpoint, "--image", folder, "--json")
    rows = json.loads(out)
    assert sorted(r["label"] for r in (rows if isinstance(rows, list) else rows["results"])) == [1, 1, 7]
