"""The static site and the page, hardened (issue 25, items 1 and 2): `export --format web --force`
never deletes a folder it did not write nor one that holds an input; no string of a checkpoint
becomes code in the page; the served pages carry a Content-Security-Policy."""
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import listing


@pytest.fixture(scope="module")
def run(dry_run_dir):
    return dry_run_dir


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


#: where -o may point, relative to a workspace holding runs/r1 (a copy of the run), mine/ (a
#: folder of the user's), old-site/ (an earlier export), a file and the current folder
TARGETS = ["runs/r1", "runs", ".", "mine", "old-site", "new-site", "a-file", "runs/r1/checkpoint.pt", "..",
           "mine/sub-site"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(TARGETS), force=st.booleans())
def test_export_web_never_deletes_what_it_did_not_write(run, tmp_path_factory, target, force, run_cli):
    ws = tmp_path_factory.mktemp("ws")
    shutil.copytree(run, ws / "runs" / "r1")
    (ws / "mine").mkdir()
    (ws / "mine" / "thesis.txt").write_text("years of work")
    (ws / "a-file").write_text("a file")
    code, _, err = run_cli("export", ws / "runs" / "r1", "--format", "web", "-o", ws / "old-site")
    assert code == 0, err
    before = _tree(ws)
    cwd = os.getcwd()
    os.chdir(ws)
    try:
        code, out, err = run_cli("export", "runs/r1", "--format", "web", "-o", target, *(["--force"] if force else []))
    finally:
        os.chdir(cwd)
    after = _tree(ws)
    kept = {k: v for k, v in before.items() if not k.startswith("old-site/")}
    assert all(after.get(k) == v for k, v in kept.items()), (target, force, err)   # nothing of yours changed
    if code == 0:
        site = ws / target
        assert (site / ".mnist-logreg-site").is_file() and (site / "index.html").is_file()
        assert target in ("new-site", "mine/sub-site") or (target == "old-site" and force)
        assert not [p for p in ws.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    else:
        assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
        assert after == before  # refused before any work: nothing written, nothing removed


def test_export_web_refusals_say_why(run, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for target, why in ((run, "is or holds an input"), (run.parent, "is or holds an input"),
                        (tmp_path, "is or holds an input")):
        code, _, err = run_cli("export", run, "--format", "web", "-o", target, "--force")
        assert code == 2 and why in err, err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    code, _, err = run_cli("export", run, "--format", "web", "-o", tmp_path / "mine", "--force")
    assert code == 2 and "is not a site written by export" in err and (tmp_path / "mine" / "notes.txt").exists()
    assert run_cli("export", run, "--format", "web", "-o", "site")[0] == 0
    code, _, err = run_cli("export", run, "--format", "web", "-o", "site")
    assert code == 2 and "use --force to replace it" in err
    (tmp_path / ".site.old").mkdir()  # a stale name from an earlier crash does not stand in the way
    (tmp_path / ".site.old" / "x").write_text("x")
    assert run_cli("export", run, "--format", "web", "-o", "site", "--force")[0] == 0


@settings(max_examples=60, deadline=None)
@given(dataset=st.text(max_size=30), cls=st.text(max_size=30))
def test_no_checkpoint_string_becomes_code(dataset, cls, tmp_path_factory):
    """Any dataset or class name: the checkpoint is refused with one line, or model.js is one JSON
    value that gives the names back unchanged (JSON escapes every quote, line break and U+2028)."""
    import torch

    from mnist_logreg import MnistModel, save
    from mnist_logreg.checkpoint import load_checkpoint
    from mnist_logreg.errors import CheckpointError
    from mnist_logreg.web import model_js

    path = tmp_path_factory.mktemp("inj") / "m.pt"
    save(MnistModel(), path, dataset=dataset, classes=[cls] + [str(i) for i in range(1, 10)])
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        assert "\n" not in str(e)
        return
    script = model_js(ckpt)
    assert script.startswith("window.MNIST_MODEL = ") and script.endswith(";\n") and script.count("\n") == 1
    data = json.loads(script[len("window.MNIST_MODEL = "):-2])
    assert data["dataset"] == dataset and data["classes"][0] == cls
    assert all(ord(ch) < 128 for ch in script)  # ensure_ascii: no raw U+2028 or other surprise
    del torch


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_a_hostile_name_does_not_run_in_the_page(run, tmp_path):
    """Even a name that load_checkpoint would refuse (built here in Python, past the check) stays
    data in model.js: the exported page opened in Chromium keeps its title."""
    from mnist_logreg.checkpoint import load_checkpoint
    from mnist_logreg.web import export_site

    playwright = pytest.importorskip("playwright.sync_api")
    ckpt = load_checkpoint(run)
    ckpt.dataset = "x\n\u2028\r*/ document.title = 'PWNED'; //</script><script>document.title='PWNED'</script>"
    ckpt.classes = ("\u2028document.title='PWNED'",) + tuple(ckpt.classes[1:])
    site = export_site(ckpt, tmp_path / "site")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                                              "--disable-background-networking"])
        page = b.new_page()
        page.goto((site / "index.html").as_uri())
        page.wait_for_selector(".bar")
        assert page.title() == "mnist-logreg — draw a digit"
        assert page.evaluate("window.MNIST_MODEL.dataset") == ckpt.dataset
        b.close()


def test_served_pages_carry_security_headers(run):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mnist_logreg.serve import create_app
    client = TestClient(create_app(run))
    for path in ("/", "/model.js", "/static/app.js", "/api/health", "/missing"):
        h = client.get(path).headers
        assert "script-src 'self';" in h["content-security-policy"] and "frame-ancestors 'none'" in h[
            "content-security-policy"], path
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
    assert "'unsafe-inline'" in client.get("/api/docs").headers["content-security-policy"]


def test_the_static_page_declares_its_policy(run, tmp_path):
    from mnist_logreg.checkpoint import load_checkpoint
    from mnist_logreg.web import export_site
    html = (export_site(load_checkpoint(run), tmp_path / "s") / "index.html").read_text()
    assert 'http-equiv="Content-Security-Policy"' in html and "script-src 'self'" in html
    assert listing(tmp_path / "s")[0] == ".mnist-logreg-site"
