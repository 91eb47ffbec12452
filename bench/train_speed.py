"""Training speed, side by side in one process on the same data and settings
(Adam 1e-3, batch 128, 20 epochs, validation after every epoch):

  (a) the notebook's pipeline, replicated faithfully: a Dataset that builds a PIL image per
      item and converts it like torchvision's ToTensor, a DataLoader with shuffle=True, the
      notebook's fit/evaluate (timed on 2 epochs and scaled to 20);
  (b) a plain in-memory autograd loop (tensors, F.cross_entropy, torch.optim.Adam);
  (c) mnist_logreg.fit, with its default engine (the C kernel where a C compiler is
      present) and, for comparison, with its TorchScript engine (no compiler needed).

Prints seconds per epoch, the ratios, the test accuracy of each, and peak memory.

    python bench/train_speed.py [--data-dir DIR] [--notebook-epochs 2] [--threads 1] [--smoke]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, random_split

from mnist_logreg import MnistModel, evaluate, fit, load_dataset, split


class NotebookMNIST(Dataset):
    """torchvision.datasets.MNIST + transforms.ToTensor, per item, as the notebook ran it."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i].numpy(), mode="L")          # torchvision MNIST
        t = torch.from_numpy(np.array(img, np.uint8, copy=True))          # ToTensor
        t = t.view(img.size[1], img.size[0], 1).permute((2, 0, 1)).contiguous()
        return t.to(dtype=torch.get_default_dtype()).div(255), int(self.labels[i])


def notebook_epochs(train_set, epochs, seed):
    torch.manual_seed(seed)
    ds = NotebookMNIST(train_set.images, train_set.labels)
    train_df, val_df = random_split(ds, [len(ds) - len(ds) // 6, len(ds) // 6])  # 50,000 and 10,000
    train_loader = DataLoader(train_df, 128, shuffle=True)
    val_loader = DataLoader(val_df, 128)
    model = MnistModel()
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def evaluate_nb():
        outs = []
        with torch.no_grad():
            for images, labels in val_loader:
                out = model(images)
                outs.append((F.cross_entropy(out, labels), (out.argmax(1) == labels).float().mean()))
        return torch.stack([o[0] for o in outs]).mean().item(), torch.stack([o[1] for o in outs]).mean().item()

    t0 = time.perf_counter()
    for _ in range(epochs):
        for images, labels in train_loader:
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            opt.step()
            opt.zero_grad()
        evaluate_nb()
    return (time.perf_counter() - t0) / epochs, model


def autograd_epochs(train, val, epochs, seed):
    torch.manual_seed(seed)
    x, y = train.features(), train.labels
    model = MnistModel()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 128):
            idx = perm[i:i + 128]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        evaluate(model, val)
    return (time.perf_counter() - t0) / epochs, model


def ours(train, val, epochs, seed, threads, engine="auto"):
    torch.manual_seed(seed)
    model = MnistModel()
    fit(model, train, val, epochs=1, seed=seed, threads=threads, engine=engine, log=None)  # build/load, warm
    torch.manual_seed(seed)
    model = MnistModel()
    t0 = time.perf_counter()
    h = fit(model, train, val, epochs=epochs, lr=1e-3, batch_size=128, seed=seed, threads=threads,
            engine=engine, log=None)
    return (time.perf_counter() - t0) / epochs, model, h.engine


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--notebook-epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads for (b) and (c) (default: 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true",
                    help="only that the script runs to its last line: 6,000 images, 1 epoch each, the CLI run a "
                         "--dry-run (the figures mean nothing)")
    args = ap.parse_args()
    if args.smoke:
        args.epochs = args.notebook_epochs = 1
    torch.set_num_threads(args.threads)

    full = load_dataset("mnist", "train", args.data_dir, download=False)
    test = load_dataset("mnist", "test", args.data_dir, download=False)
    if args.smoke:
        full = full.subset(slice(0, 6_000))
    train, val = split(full, len(full) // 6, args.seed)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {args.threads}, {time.strftime('%Y-%m-%d')}")

    rows = []
    s, m = notebook_epochs(full, args.notebook_epochs, args.seed)
    rows.append(("(a) notebook pipeline", s, evaluate(m, test)["accuracy"], f"{args.notebook_epochs} epochs, scaled"))
    s, m = autograd_epochs(train, val, min(args.epochs, 5), args.seed)
    rows.append(("(b) in-memory autograd loop", s, evaluate(m, test)["accuracy"], "5 epochs, scaled"))
    s, m, engine = ours(train, val, args.epochs, args.seed, args.threads)
    acc_ours = evaluate(m, test)["accuracy"]
    rows.append((f"(c) mnist_logreg.fit ({engine})", s, acc_ours, f"{args.epochs} epochs"))
    if engine != "torchscript":
        s_ts, m_ts, _ = ours(train, val, args.epochs, args.seed, args.threads, engine="torchscript")
        rows.append(("(c') fit, engine torchscript", s_ts, evaluate(m_ts, test)["accuracy"], f"{args.epochs} epochs"))

    # accuracy at equal epochs: the notebook pipeline's maths is (b)'s; train (b) for the full run
    s_b, m_b = autograd_epochs(train, val, args.epochs, args.seed)
    acc_b = evaluate(m_b, test)["accuracy"]

    print(f"\n{'pipeline':34s} {'s/epoch':>9s} {'20 epochs':>10s} {'test acc':>9s}  note")
    for name, sec, acc, note in rows:
        print(f"{name:34s} {sec:9.4f} {sec * 20:9.2f}s {acc:9.4f}  {note}")
    a, b, c = rows[0][1], s_b, rows[2][1]
    print(f"\nspeed-up per epoch: ours vs notebook {a / c:.1f}x, ours vs autograd loop {b / c:.1f}x"
          + (f", engine {engine} vs torchscript {rows[3][1] / c:.1f}x" if len(rows) > 3 else ""))
    print(f"20 epochs incl. validation: ours {c * 20:.2f}s (target < 1 s)")
    print(f"test accuracy after {args.epochs} epochs: ours {acc_ours:.4f}, autograd loop {acc_b:.4f}, "
          f"difference {abs(acc_ours - acc_b) * 100:.2f} points (target <= 0.3)")
    # a full CLI training run on its own (20 epochs, test evaluation, run folder): its peak
    # memory is read from /proc/self/status (VmHWM) as it exits; getrusage of a child would
    # also count the moment between fork and exec, when the child is a copy of this process
    import subprocess
    import tempfile
    # (read after main() returns: the installed command ends with os._exit, which skips atexit)
    wrapper = ("import sys\n"
               "from mnist_logreg.cli import main\n"
               "code = main(sys.argv[1:])\n"
               "for l in open('/proc/self/status'):\n"
               "    if l.startswith('VmHWM:'): print('VMHWM', int(l.split()[1]) // 1024, file=sys.stderr)\n"
               "sys.exit(code)\n")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", wrapper, "train", "--no-report", "--runs-dir", tmp] + ["--dry-run"] * args.smoke
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    peak = next(int(ln.split()[1]) for ln in r.stderr.splitlines() if ln.startswith("VMHWM"))
    print(f"`mnist-logreg train` end to end (load, 20 epochs, test, run folder): {wall:.1f}s wall, "
          f"peak resident memory {peak} MB (target < 600 MB)")
    print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")


if __name__ == "__main__":
    sys.exit(main())
