"""Which fixed per-pixel transform helps a linear layer most (issue 7), on the validation split
only: Adam, cosine schedule, 60 epochs, lr 2e-3, seed 0, 50k/10k split. The winner became
``--transform cbrt``; its test figures (3 seeds, refit) are in bench/accuracy.md.

    python bench/transform_probe.py [--datasets fashion-mnist mnist] [--data-dir DIR]
"""
import argparse

import torch

from mnist_logreg import MnistModel, evaluate, fit, load_dataset, split


def standardise(x):
    x = x - x.mean(1, keepdim=True)
    return x / (x.std(1, keepdim=True) + 1e-3)


TRANSFORMS = {
    "none": lambda x: x,
    "gamma 0.25": lambda x: x.pow(0.25),
    "gamma 1/3 (cbrt)": lambda x: x.pow(1 / 3),
    "gamma 0.5 (sqrt)": lambda x: x.pow(0.5),
    "gamma 0.7": lambda x: x.pow(0.7),
    "gamma 2": lambda x: x.pow(2),
    "per-image standardisation": standardise,
    "cbrt + standardisation": lambda x: standardise(x.pow(1 / 3)),
    "per-image L2 normalisation": lambda x: x / (x.norm(dim=1, keepdim=True) + 1e-3) * 10,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["fashion-mnist", "mnist"])
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.datasets:
        train, val = split(load_dataset(name, "train", args.data_dir, download=False), 10_000, 0)
        x, xv = train.features(), val.features()
        for label, f in TRANSFORMS.items():
            torch.manual_seed(0)
            m = MnistModel()
            fit(m, (f(x), train.labels), None, epochs=60, lr=2e-3, seed=0, lr_schedule="cosine", log=None)
            print(f"| {name} | {label} | {evaluate(m, (f(xv), val.labels))['val_acc'] * 100:.2f} |", flush=True)


if __name__ == "__main__":
    main()
