"""The drawing page as a static site: ``mnist-logreg export RUN --format web -o site/``.

The page (``serve/static``: HTML, CSS, ``mnist.js`` with the MNIST preprocessing and the model,
``app.js`` with the pad) is the one ``serve`` serves; the model travels as ``model.js``, a
script that sets ``window.MNIST_MODEL`` (weights, bias, transform, classes), because a page
opened from ``file://`` may run scripts beside it but not fetch JSON. The folder works from
disk and from any static host, with no server and no network.

    site/index.html  site/model.js  site/static/{app.js, mnist.js, style.css, favicon.svg}
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import ConfigError

STATIC = Path(__file__).parent / "serve" / "static"
PAGE_FILES = ("app.js", "mnist.js", "style.css", "favicon.svg")


def model_info(ckpt) -> dict:
    """What the page and ``/api/model`` say about the model (no file paths)."""
    model = ckpt.model
    return {"dataset": ckpt.dataset, "classes": list(ckpt.classes) or [str(i) for i in range(10)],
            "transform": getattr(model, "transform", "none"), "parameters": model.num_parameters(),
            "metrics": {k: v for k, v in ckpt.metrics.items() if isinstance(v, (int, float, str))},
            "created": ckpt.meta.get("created")}


def model_js(ckpt) -> str:
    """``window.MNIST_MODEL = {...};``: the model info plus its float32 weights, each written
    with the digits that read back as the same float32 (repr of the float32 value)."""
    import numpy as np

    W = ckpt.model.linear.weight.detach().float().numpy()
    b = ckpt.model.linear.bias.detach().float().numpy()
    rows = ["[" + ",".join(map(_f32, row)) + "]" for row in W]
    info = json.dumps(model_info(ckpt))
    return (f"// {ckpt.dataset} model for the mnist-logreg drawing page\n"
            f"window.MNIST_MODEL = Object.assign({info}, {{\n"
            f"  bias: [{','.join(map(_f32, b))}],\n  weights: [\n    " + ",\n    ".join(rows) + "]\n});\n")


def _f32(v) -> str:
    import numpy as np
    return repr(float(np.float32(v))) if np.isfinite(v) else "0"


def export_site(ckpt, out, *, force: bool = False) -> Path:
    """Write the static site for ``ckpt`` into the folder ``out``, whole or not at all (built
    beside it, then renamed); an existing folder is replaced only with ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file; give a folder to write the site into")
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out}: folder exists and is not empty (--force replaces it)")
    if not out.resolve().parent.is_dir():
        raise ConfigError(f"{out}: the folder {out.resolve().parent} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    try:
        (tmp / "static").mkdir()
        shutil.copyfile(STATIC / "index.html", tmp / "index.html")
        for name in PAGE_FILES:
            shutil.copyfile(STATIC / name, tmp / "static" / name)
        (tmp / "model.js").write_text(model_js(ckpt), encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
