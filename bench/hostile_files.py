"""Files people pass to each other, made hostile (issue 25, items 4 and 5): each command run in
its own process, its exit status, CPU seconds and peak RSS measured (the reliable figures on a
shared machine), beside the same command on an honest file.

    python bench/hostile_files.py [--data-dir DIR]

Cases: an honest checkpoint plus 32 MiB of one-byte EMPTY_SET opcodes (8.15 GB RSS and 48.5 s
of CPU before the pickle was read opcode by opcode), plus 2 MiB of EMPTY_LIST opcodes, a 32 kB and
a 400 kB TOML of dotted keys (1.23 GB; the kernel's OOM killer at 400 kB before the shape check);
then items 6, 11 and 16: `runs` over status files that are a FIFO, 300 MB of spaces and 100,000
brackets; Kaggle CSVs of 8,000 and 80,000 rows (memory should grow with the file, not 8 bytes a
cell); a 1000- and a 4900-pixel transparent PNG; 20,000 indices for `predict --index` (200,000
do not fit on a command line here).
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path


def measure(argv, env):
    """(exit status, CPU seconds, peak RSS in MB) of one command in a child process."""
    code = ("import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:], capture_output=True); "
            "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(json.dumps([r.returncode, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024, r.stderr.decode()[-160:]]))")
    import json
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "mnist_logreg.cli", *map(str, argv)],
                         capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def with_opcodes(good: Path, out: Path, payload: bytes) -> None:
    src = zipfile.ZipFile(good)
    with zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("/data.pkl"):
                data = data[:-1] + b"X\x05\x00\x00\x00extra](" + payload + b"es."
            z.writestr(name, data)


def _more_files(tmp: Path, run: Path) -> None:
    """Issue 25's items 6, 11 and 16: run folders with hostile status files, Kaggle CSVs of
    two sizes, a small and a 24-megapixel transparent PNG."""
    import shutil

    import numpy as np
    from PIL import Image, ImageDraw

    for folder, statuses in (("honest-runs", {"a": None}),
                             ("odd-runs", {"fifo": "fifo", "huge": b" " * (300 << 20), "deep": b"[" * 100_000})):
        for name, status in statuses.items():
            shutil.copytree(run, tmp / folder / name)
            if status == "fifo":
                (tmp / folder / name / "status.json").unlink()
                os.mkfifo(tmp / folder / name / "status.json")
            elif status is not None:
                (tmp / folder / name / "status.json").write_bytes(status)
    rng = np.random.default_rng(0)
    header = ",".join(f"pixel{i}" for i in range(784)) + "\n"
    block = "\n".join(",".join(map(str, r)) for r in rng.integers(0, 256, (8_000, 784))) + "\n"
    (tmp / "small.csv").write_text(header + block)
    (tmp / "big.csv").write_text(header + block * 10)
    for name, side in (("small.png", 1000), ("big.png", 4900)):
        im = Image.new("RGBA", (side, side), (255, 255, 255, 0))
        ImageDraw.Draw(im).line([(side * 0.3, side * 0.2), (side * 0.7, side * 0.2), (side * 0.4, side * 0.85)],
                                fill=(0, 0, 0, 255), width=side // 15)
        im.save(tmp / name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if args.data_dir:
        env["MNIST_LOGREG_DATA"] = str(Path(args.data_dir).resolve())
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from mnist_logreg import TrainConfig, train_run

    tmp = Path(tempfile.mkdtemp(prefix="hostile-"))
    run = train_run(TrainConfig(dry_run=True, data_dir=args.data_dir), tmp, "r", report=False, log=None)
    good = run.path / "checkpoint.pt"
    with_opcodes(good, tmp / "sets.pt", b"\x8f" * (32 * 2**20))
    with_opcodes(good, tmp / "lists.pt", b"]" * (2 * 2**20))
    (tmp / "dotted32k.toml").write_text("a" + ".a" * 16_000 + " = 1\n")
    (tmp / "dotted400k.toml").write_text("a" + ".a" * 200_000 + " = 1\n")
    (tmp / "honest.toml").write_text(TrainConfig().to_toml())
    _more_files(tmp, run.path)
    cases = [("honest checkpoint", ["predict", good, "--index", "0"]),
             ("+ 32 MiB of EMPTY_SET", ["predict", tmp / "sets.pt", "--index", "0"]),
             ("+ 2 MiB of EMPTY_LIST", ["predict", tmp / "lists.pt", "--index", "0"]),
             ("honest config.toml", ["train", "--config", tmp / "honest.toml", "--print-config"]),
             ("32 kB of dotted keys", ["train", "--config", tmp / "dotted32k.toml", "--print-config"]),
             ("400 kB of dotted keys", ["train", "--config", tmp / "dotted400k.toml", "--print-config"]),
             ("runs: honest status.json", ["runs", tmp / "honest-runs"]),
             ("runs: FIFO, 300 MB, deep", ["runs", tmp / "odd-runs"]),
             ("Kaggle CSV, 8,000 rows", ["predict", good, "--csv", tmp / "small.csv", "--submission", tmp / "s1.csv"]),
             ("Kaggle CSV, 80,000 rows", ["predict", good, "--csv", tmp / "big.csv", "--submission", tmp / "s2.csv"]),
             ("PNG, 1000 x 1000", ["predict", good, "--image", tmp / "small.png"]),
             ("PNG, 4900 x 4900 RGBA", ["predict", good, "--image", tmp / "big.png"]),
             ("predict --index x 20,000", ["predict", good, "--index", *range(20_000)])]
    print(f"{'file':26s} {'exit':>4s} {'CPU s':>7s} {'peak RSS MB':>12s}  message")
    t0 = time.time()
    for name, argv in cases:
        code, cpu, rss, err = measure(argv, env)
        print(f"{name:26s} {code:4d} {cpu:7.2f} {rss:12.0f}  {err.strip().splitlines()[-1][:90] if err.strip() else ''}")
    print(f"total {time.time() - t0:.0f} s; peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
