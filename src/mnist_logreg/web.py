"""The drawing page as a static site: ``mnist-logreg export RUN --format web -o site/``.

The page (``serve/static``: HTML, CSS, ``mnist.js`` with the MNIST preprocessing and the model,
``app.js`` with the pad) is the one ``serve`` serves; the model travels as ``model.js``, a
script that sets ``window.MNIST_MODEL`` (weights, bias, transform, classes), because a page
opened from ``file://`` may run scripts beside it but not fetch JSON. The folder works from
disk and from any static host, with no server and no network.

    site/index.html  site/model.js  site/static/{app.js, mnist.js, style.css, favicon.svg}
    site/.mnist-logreg-site   (the mark of a folder this wrote: the only kind --force replaces)
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from .answers import RULES, noun_for
from .errors import ConfigError, setting_ref
from .runfolder import CHECKPOINT, REPORT
from .trust import INK, LEVELS, UNUSUAL, blur_kernel

STATIC = Path(__file__).parent / "serve" / "static"
PAGE_FILES = ("app.js", "mnist.js", "style.css", "favicon.svg")


def model_info(ckpt) -> dict:
    """What the page and ``/api/model`` say about the model (no file paths)."""
    model = ckpt.model
    return {"dataset": ckpt.dataset, "classes": list(ckpt.classes) or [str(i) for i in range(10)],
            "transform": getattr(model, "transform", "none"), "parameters": model.num_parameters(),
            "metrics": {k: v for k, v in ckpt.metrics.items()
                        if isinstance(v, str) or (isinstance(v, (int, float)) and math.isfinite(v))},
            "created": ckpt.meta.get("created"), "noun": noun_for(ckpt.dataset),
            "calibrated": ckpt.trust is not None,
            "likeness": ckpt.trust is not None and ckpt.trust.likeness is not None}


def model_js(ckpt, examples: str | None = None, links: dict | None = None) -> str:
    """``window.MNIST_MODEL = {...};``: one JSON value, nothing else, so that no name or string
    of a checkpoint can become code (JSON escapes every quote, newline and U+2028 in it). The
    weights travel as base64 float32 (the very same bits), the likeness model as base64 float16
    (the precision it was fitted in: trust.py rounds it), with the answer rules of answers.py.
    ``examples``: where the page's "Wrong? It was ..." corrections go: "server" (``serve
    --collect``), "browser" (the static site: the browser's storage, then a download), or None
    (not offered). ``links``: {"docs": URL or None, "report": URL or None}, shown under the page."""
    data = {**model_info(ckpt), "rules": RULES, "weights": _b64(ckpt.model.linear.weight, "<f4"),
            "bias": _b64(ckpt.model.linear.bias, "<f4"), "trust": _trust_json(ckpt.trust), "examples": examples,
            "links": links or {"docs": None, "report": None}}
    return "window.MNIST_MODEL = " + json.dumps(data, ensure_ascii=True, allow_nan=False) + ";\n"


def _b64(t, dtype: str) -> str:
    import base64

    import numpy as np
    return base64.b64encode(np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype)).tobytes()).decode("ascii")


def _trust_json(trust):
    """The calibrator and the likeness model for mnist.js (None: the plain softmax, no likeness)."""
    if trust is None:
        return None
    c = trust.calibrator
    out = {"temperature": c.temperature, "a": c.a, "b": c.b, "c": c.c, "levels": LEVELS, "unusual": UNUSUAL,
           "likeness": None}
    lk = trust.likeness
    if lk is not None:
        import torch
        k = lk.basis.shape[1]
        rows, cols = torch.tril_indices(k + 3, k + 3)
        out["likeness"] = {"k": k, "mean": _b64(lk.mean, "<f2"), "basis": _b64(lk.basis.T, "<f2"),
                           "centres": _b64(lk.centres, "<f2"), "whiten": _b64(lk.whiten[:, rows, cols], "<f2"),
                           "log_det": _b64(lk.log_det, "<f2"), "noise": lk.noise, "table": _b64(lk.table, "<f4"),
                           "blur": blur_kernel().tolist(), "ink": INK}
    return out


MARKER = ".mnist-logreg-site"  # in every folder export_site writes: only such a folder is ever replaced


def run_report(checkpoint) -> Path | None:
    """The report.html of the run a checkpoint belongs to (``checkpoint``: a run folder or its
    checkpoint.pt), or None: linked from the page, copied beside the static site, served."""
    if checkpoint is None:
        return None
    path = Path(checkpoint)
    folder = path if path.is_dir() else path.parent if path.name == CHECKPOINT else None
    return folder / REPORT if folder is not None and (folder / REPORT).is_file() else None


def export_site(ckpt, out, *, force: bool = False) -> Path:
    """Write the static site for ``ckpt`` into the folder ``out``, whole or not at all (built
    beside it, then renamed into place). An existing folder is replaced only with ``force``, and
    only when it holds a site this function wrote (its MARKER file) and none of the inputs: a
    run folder, the current folder or any other folder of yours is never deleted."""
    out = Path(out)
    _check_site_output(out, force, [p for p in (ckpt.path, Path.cwd()) if p is not None])
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    try:
        (tmp / "static").mkdir()
        shutil.copyfile(STATIC / "index.html", tmp / "index.html")
        for name in PAGE_FILES:
            shutil.copyfile(STATIC / name, tmp / "static" / name)
        report = run_report(ckpt.path)
        if report is not None:  # the run's report beside the page, linked from it
            shutil.copyfile(report, tmp / REPORT)
        (tmp / "model.js").write_text(model_js(ckpt, examples="browser", links={
            "docs": None, "report": REPORT if report is not None else None}), encoding="utf-8")
        (tmp / MARKER).write_text("a site written by mnist-logreg export --format web; "
                                  "export --force replaces only folders that hold this file\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out.exists():  # the old site moves to a fresh name of its own, then is removed
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.resolve().parent))
            os.replace(out, old / "site")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check_site_output(out: Path, force: bool, inputs) -> None:
    """Refuse, before any work, an output folder that would cost the user anything."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file; give a folder to write the site into")
    real = out.resolve()
    for p in inputs:
        p = Path(p).resolve()
        if real == p or real in p.parents:
            raise ConfigError(f"{out}: is or holds an input of this command ({p}); write the site elsewhere")
    if not real.parent.is_dir():
        raise ConfigError(f"{out}: the folder {real.parent} does not exist")
    if out.is_symlink():
        raise ConfigError(f"{out}: is a symbolic link; give a real folder (or a new name)")
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ConfigError(f"{out}: folder exists and is not a site written by export (no {MARKER} in it); "
                              f"it is never replaced: give a new or empty folder")
        if not force:
            raise ConfigError(f"{out}: holds an earlier export; use {setting_ref('force')} to replace it")
