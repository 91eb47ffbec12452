"""End-to-end latency of each command, as a ratio to ``python -c "import torch"`` measured in
the same run (this machine is shared and noisy: the commands run round-robin, so a busy
moment slows all of them alike).

    python bench/latency.py [--data-dir DIR] [--n 5]

Prints, per command, the min and median wall time of N runs and the median's ratio to
``import torch``'s median, with issue 17's target beside it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "mnist_logreg.cli"]


def commands(work: Path, run: Path, image: Path) -> list:
    """(label, argv, target ratio or None); argv may use {i}, the repetition number."""
    return [
        ("python -c 'import torch'", [sys.executable, "-c", "import torch"], None),
        ("train (20 epochs, with the report)", CLI + ["train", "--runs-dir", str(work / "runs"), "--name", "r{i}"], 2.0),
        ("train --no-report", CLI + ["train", "--no-report", "--runs-dir", str(work / "runs"), "--name", "n{i}"], 1.6),
        ("report RUN", CLI + ["report", str(run), "--out", str(work / "report{i}")], 1.5),
        ("evaluate RUN", CLI + ["evaluate", str(run)], 1.25),
        ("predict RUN --image (one file)", CLI + ["predict", str(run), "--image", str(image)], 1.25),
        ("export RUN --format onnx", CLI + ["export", str(run), "--format", "onnx", "-o", str(work / "m{i}.onnx")], 1.25),
    ]


def timed(argv, env) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{r.stderr}")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="data folder (default: $MNIST_LOGREG_DATA)")
    ap.add_argument("--n", type=int, default=5, help="runs of each command (default: 5)")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.data_dir:
        env["MNIST_LOGREG_DATA"] = str(Path(args.data_dir).resolve())
    work = Path(tempfile.mkdtemp(prefix="latency-"))
    try:
        # a run to report on, evaluate, predict with and export; a drawn digit to predict
        subprocess.run(CLI + ["train", "--runs-dir", str(work / "base"), "--name", "run"], check=True,
                       capture_output=True, env=env)
        from PIL import Image, ImageDraw
        image = work / "seven.png"
        page = Image.new("L", (300, 300), 255)
        ImageDraw.Draw(page).line([(90, 50), (210, 50), (130, 250)], fill=0, width=22)
        page.save(image)
        cmds = commands(work, work / "base" / "run", image)
        times = {label: [] for label, _, _ in cmds}
        for label, argv, _ in cmds:  # one warm-up each (page cache, kernel build, data cache)
            timed([a.replace("{i}", "w") for a in argv], env)
        for i in range(args.n):
            for label, argv, _ in cmds:
                times[label].append(timed([a.replace("{i}", str(i)) for a in argv], env))
                print(f"  {label}: {times[label][-1]:.2f}s", file=sys.stderr, flush=True)
        base = statistics.median(times[cmds[0][0]])
        print("| command | min (s) | median (s) | median / import torch | target |")
        print("|---|---|---|---|---|")
        for label, _, target in cmds:
            med = statistics.median(times[label])
            ok = "" if target is None else (f"<= {target}x " + ("met" if med / base <= target else "**missed**"))
            print(f"| `{label}` | {min(times[label]):.2f} | {med:.2f} | {med / base:.2f}x | {ok} |")
        print(f"\n{args.n} runs each, round-robin; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
