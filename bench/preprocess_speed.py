"""Preprocessing time per picture, in Python (preprocess.preprocess, what the server and
`predict --image` run) and in the page's JavaScript (mnist.js under Node, V8 as in Chromium),
with the clean-paper shortcut of the lighting step and without it, side by side in one run.

    python bench/preprocess_speed.py [--n 200]

Pictures: a 0 drawn on the 280-pixel pad (clean paper: the shortcut applies), and a 7 photographed
in a soft shadow, 240 to 480 pixels a side (probes.photos_of_digits: the two filters run either way).
Prints the median milliseconds of each and the ratio without / with the shortcut.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

from mnist_logreg import preprocess as P
from mnist_logreg.probes import photos_of_digits

MNIST_JS = Path(P.__file__).parent / "serve" / "static" / "mnist.js"

NODE = """
const fs = require('fs');
const [js, data, n, off] = process.argv.slice(1);
let src = fs.readFileSync(js, 'utf8');
if (off === '1') src = src.replace('function everyWindowHolds(a, w, h, r, v) {', 'function everyWindowHolds(a, w, h, r, v) { return false;');
eval(src);
const out = {};
for (const [name, [w, h, grey]] of Object.entries(JSON.parse(fs.readFileSync(data, 'utf8')))) {
  const g = Float64Array.from(grey), times = [];
  for (let i = 0; i < 20; i++) Mnist.preprocess(g, w, h);  // warm up the JIT
  for (let i = 0; i < +n; i++) { const t = performance.now(); Mnist.preprocess(g, w, h); times.push(performance.now() - t); }
  times.sort((a, b) => a - b);
  out[name] = times[times.length >> 1];
}
console.log(JSON.stringify(out));
"""


def pictures() -> dict:
    """name -> 2-D uint8 grey picture (dark ink on light paper)."""
    yy, xx = np.mgrid[0:280, 0:280]
    pad = np.full((280, 280), 255, np.uint8)
    pad[np.abs(np.hypot(xx - 140, (yy - 140) * 0.8) - 70) < 9] = 0  # a 0, 18 pixels wide
    seven = np.zeros((28, 28), np.uint8)
    seven[6:9, 7:21] = 255
    for r in range(9, 23):
        seven[r, 20 - (r - 9) // 2:23 - (r - 9) // 2] = 255
    photo = photos_of_digits(seven[None], np.array([7]), "shadow", seed=0)[0].image
    return {"pad drawing, 280 px": pad, f"photo in a shadow, {max(photo.shape)} px": np.asarray(photo)}


def python_ms(pic, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        P.preprocess(pic)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="timed repetitions of each (default: 200)")
    args = ap.parse_args()
    pics = pictures()
    rows = {}
    for name, pic in pics.items():
        on = python_ms(pic, args.n)
        with mock.patch.object(P, "_every_window_holds", lambda mask, r: False):
            off = python_ms(pic, args.n)
        rows[("Python", name)] = (off, on)
    node = shutil.which("node")
    if node:
        data = Path(__file__).with_name(".preprocess_speed.json")
        data.write_text(json.dumps({k: [v.shape[1], v.shape[0], v.reshape(-1).tolist()] for k, v in pics.items()}))
        try:
            got = [json.loads(subprocess.run([node, "-e", NODE, str(MNIST_JS), str(data), str(args.n), off],
                                             capture_output=True, text=True, check=True).stdout) for off in ("1", "0")]
        finally:
            data.unlink()
        for name in pics:
            rows[("page JS (Node)", name)] = (got[0][name], got[1][name])
    else:
        print("node not found: the page's JavaScript is not timed", file=sys.stderr)
    print("| where | picture | without the shortcut (ms) | with it (ms) | ratio |")
    print("|---|---|---|---|---|")
    for (where, name), (off, on) in rows.items():
        print(f"| {where} | {name} | {off:.2f} | {on:.2f} | {off / on:.2f}x |")


if __name__ == "__main__":
    main()
