"""Accuracy of each lever alone and combined, MNIST and Fashion-MNIST, mean +- std over seeds.

Honesty: every setting is chosen on the validation split (the seed's own 50k/10k split);
the test set is touched once per reported figure; nothing trains on test images.

Levers built (issue 7): the deskew and cube-root input transforms (--transform deskew|cbrt),
the exact L2-regularised optimum (--solver newton, lam chosen on validation), augmentation
(--augment-*, the setting chosen on validation), a cosine learning-rate schedule over longer
training (--lr-schedule cosine, epochs and lr chosen on validation), the final refit on
train+validation (--val-size 0) with the settings chosen on validation, distillation from a
small CNN teacher (--distill-*, temperature and label weight chosen on validation), weight
averaging (--average-from, the first averaged epoch chosen on validation) and robust losses
(--loss-cap, --loss-q: a cap on each image's cross-entropy and the generalised cross-entropy,
with the cosine schedule; cap, q and lr chosen on validation, plain cross-entropy included).

    python bench/accuracy.py [--data-dir DIR] [--seeds 0 1 2] [--out bench/accuracy.md]
    python bench/accuracy.py --smoke        # 1 seed, 1 epoch, tiny grid, 6,000 images: what the tests run
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from mnist_logreg import MnistModel, evaluate, fit, load_dataset, split
from mnist_logreg.tuning import choose, lam_path


def run_adam(train, val, test, transform, epochs, seed):
    torch.manual_seed(seed)
    m = MnistModel(transform=transform)
    h = fit(m, train, val, epochs=epochs, seed=seed, log=None)
    return evaluate(m, test)["accuracy"], h[-1]["val_acc"]


AUGMENT_GRID = [dict(shift=1), dict(shift=1, rotate=8), dict(rotate=8, scale=0.05), dict(elastic=1, rotate=5)]


def run_augmented(train, val, test, epochs, seed, choose_seed_val=None):
    """Adam with augmentation; the setting is chosen on validation (by the caller's first seed)."""
    from mnist_logreg.augment import Augment
    torch.manual_seed(seed)
    m = MnistModel()
    fit(m, train, val, epochs=epochs, seed=seed, augment=Augment(**choose_seed_val), log=None)
    return evaluate(m, test)["accuracy"], evaluate(m, val)["accuracy"]


COSINE_GRID = [(30, 1e-3), (60, 1e-3), (60, 2e-3)]  # (epochs, lr), chosen on validation


def run_cosine(train, val, test, transform, epochs, lr, seed, loss_cap=None, loss_q=0.0, schedule="cosine"):
    """(test accuracy, validation accuracy) of Adam with the cosine schedule (or another);
    either set may be None (the refit on train + validation has no validation split)."""
    torch.manual_seed(seed)
    m = MnistModel(transform=transform)
    fit(m, train, None, epochs=epochs, lr=lr, seed=seed, lr_schedule=schedule, log=None,
        loss_cap=loss_cap, loss_q=loss_q)
    return tuple(evaluate(m, d)["accuracy"] if d is not None else None for d in (test, val))


# robust losses with the cosine schedule, 60 epochs: (loss cap, q, lr), chosen on validation;
# (None, 0) is the plain cross-entropy, so validation may also choose no robust loss
ROBUST_GRID = [(cap, q, lr) for lr in (1e-3, 2e-3)
               for cap, q in ((None, 0.0), (4.0, 0.0), (5.0, 0.0), (6.0, 0.0), (None, 0.3), (None, 0.5),
                              (None, 0.7), (5.0, 0.5))]


def robust_note(cap, q, lr, epochs=60):
    loss = ("cross-entropy" if cap is None and not q else
            " + ".join(([f"q {q:g}"] if q else []) + ([f"cap {cap:g}"] if cap is not None else [])))
    return f"{epochs} epochs, lr {lr:g}, {loss}"


DISTILL_GRID = [(2.0, 0.5), (1.0, 0.5), (2.0, 0.0)]  # (temperature, alpha), chosen on validation
AVERAGE_GRID = [6, 11, 16]  # first averaged epoch of 20, chosen on validation
# combined: distillation + cosine (60 epochs, lr 1e-3); alpha 1 = true labels only, so
# validation may also choose no distillation
COMBO_GRID = [(1.0, 0.5), (2.0, 0.5), (1.0, 1.0)]


_TEACHERS = {}


def teacher_targets(train, seed, threads, epochs=2):
    """The CNN teacher's logits for ``train`` (and its features). Training is deterministic,
    so a teacher for the same images, seed and epochs is trained once and its logits reused
    (the raw and cbrt rows, the choice on validation and seed 0's row share them; the logits,
    not the CNN: its forward pass over the images cost as much as a temperature's fit)."""
    import hashlib

    from mnist_logreg.distill import teacher_logits, train_teacher
    with torch.no_grad():
        x = train.features()
    key = (hashlib.sha1(train.images.numpy().tobytes() + train.labels.numpy().tobytes()).hexdigest(), seed, epochs)
    if key in _TEACHERS:
        return _TEACHERS[key], x
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _TEACHERS[key] = teacher_logits(train_teacher(x, train.labels, epochs=epochs, seed=seed, log=None), x)
        return _TEACHERS[key], x
    finally:
        torch.set_num_threads(old)


def run_distilled(train, val, test, epochs, seed, logits, x, temperature, alpha, transform="none", cosine=False):
    from mnist_logreg.distill import soft_targets
    soft = soft_targets(logits, x, train.labels, temperature, alpha) if alpha < 1 else None
    torch.manual_seed(seed)
    m = MnistModel(transform=transform)
    fit(m, train, None, epochs=epochs, seed=seed, soft_targets=soft, log=None,
        lr_schedule="cosine" if cosine else "constant")
    return tuple(evaluate(m, d)["accuracy"] if d is not None else None for d in (test, val))


def run_averaged(train, val, test, epochs, seed, average_from):
    torch.manual_seed(seed)
    m = MnistModel()
    fit(m, train, None, epochs=epochs, seed=seed, average_from=average_from, log=None)
    return tuple(evaluate(m, d)["accuracy"] if d is not None else None for d in (test, val))


def run_newton(train, val, test, transform, lams, seed, threads):
    """The exact optimum with lam chosen on validation (the warm-started path of ``tune``)."""
    best = choose(lam_path(train, val, lams, tol=1e-5, threads=threads, transform=transform))
    return evaluate(best["model"], test)["accuracy"], best["accuracy"], best["lam"]


def pick(label, grid, score, describe=str):
    """The grid entry with the best validation accuracy (``score(entry)``), printed with every
    entry's score; a grid of one entry (the smoke run's) is taken as it is, unscored."""
    if len(grid) == 1:
        print(f"{label}: one setting, nothing to choose: {describe(grid[0])}", flush=True)
        return grid[0]
    scores = [(score(g), i) for i, g in enumerate(grid)]
    best = grid[max(scores)[1]]
    print(f"{label}: chosen on validation: {describe(best)} "
          f"({', '.join(f'{grid[i]}: {v:.4f}' for v, i in scores)})", flush=True)
    return best


def _t_alpha(g):
    return f"T {g[0]}, alpha {g[1]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lams", type=float, nargs="+", default=[1e-3, 3e-4, 1e-4, 3e-5])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="1 seed, 1 epoch, 2 lams, 4k training images (6k to refit)")
    ap.add_argument("--out", default=None, help="also write the table as markdown here")
    ap.add_argument("--levers", nargs="+", default=["adam", "newton", "deskew-adam", "deskew-newton", "augment",
                                                    "cosine", "cbrt-cosine", "deskew-cosine", "distill", "average",
                                                    "combo", "cbrt-combo", "robust-adam", "robust", "cbrt-robust",
                                                    "deskew-robust"],
                    help="which rows to run")
    args = ap.parse_args()
    if args.smoke:  # one thread: the test suite runs it beside other tests (2 threads lose on a busy machine)
        args.seeds, args.epochs, args.lams, args.threads = [0], 1, [1e-3, 3e-4], 1
    rows = []
    for name in args.datasets:
        full = load_dataset(name, "train", args.data_dir, download=False)
        test = load_dataset(name, "test", args.data_dir, download=False)
        if args.smoke:
            full = full.subset(slice(0, 6_000))
        levers = [("raw pixels, Adam (notebook)", "adam", "none", "adam"),
                  ("raw pixels, exact optimum", "newton", "none", "newton"),
                  ("deskew, Adam", "adam", "deskew", "deskew-adam"),
                  ("deskew, exact optimum", "newton", "deskew", "deskew-newton"),
                  ("raw pixels, Adam + augmentation", "augment", "none", "augment"),
                  ("raw pixels, Adam + cosine", "cosine", "none", "cosine"),
                  ("cbrt, Adam + cosine", "cosine", "cbrt", "cbrt-cosine"),
                  ("deskew, Adam + cosine", "cosine", "deskew", "deskew-cosine"),
                  ("raw pixels, Adam + distillation", "distill", "none", "distill"),
                  ("raw pixels, Adam + weight averaging", "average", "none", "average"),
                  ("raw pixels, distillation + cosine", "combo", "none", "combo"),
                  ("cbrt, distillation + cosine", "combo", "cbrt", "cbrt-combo"),
                  ("raw pixels, Adam + robust loss", "robust-adam", "none", "robust-adam"),
                  ("raw pixels, robust loss + cosine", "robust", "none", "robust"),
                  ("cbrt, robust loss + cosine", "robust", "cbrt", "cbrt-robust"),
                  ("deskew, robust loss + cosine", "robust", "deskew", "deskew-robust")]
        for label, kind, transform, key in levers:
            if key not in args.levers:
                continue
            accs, secs, notes = [], [], []
            if kind == "augment":  # choose the augmentation on the first seed's validation split
                train, val = split(full, 2_000 if args.smoke else 10_000, args.seeds[0])
                grid = AUGMENT_GRID[:1] if args.smoke else AUGMENT_GRID
                chosen = pick("augmentation", grid, lambda g: run_augmented(train, val, val, args.epochs, args.seeds[0], g)[1])
            if kind == "cosine":  # choose (epochs, lr) on the first seed's validation split
                train, val = split(full, 2_000 if args.smoke else 10_000, args.seeds[0])
                grid = [(1, 1e-3)] if args.smoke else COSINE_GRID
                chosen_e, chosen_lr = pick(label, grid, lambda g: run_cosine(train, val, None, transform, *g, args.seeds[0])[1],
                                           lambda g: f"{g[0]} epochs, lr {g[1]:g}")
                refit_accs, refit_secs = [], []
            if kind in ("robust", "robust-adam"):  # (loss cap, q, lr) on the first seed's validation split
                train, val = split(full, 2_000 if args.smoke else 10_000, args.seeds[0])
                if kind == "robust":  # with the cosine schedule over 60 epochs, plain cross-entropy included
                    robust_epochs, schedule, grid = (1 if args.smoke else 60), "cosine", ROBUST_GRID
                else:  # alone: the notebook's epochs at a constant lr 1e-3; its plain cross-entropy is the notebook's row
                    robust_epochs, schedule = args.epochs, "constant"
                    grid = [g for g in ROBUST_GRID if g[2] == 1e-3 and (g[0] is not None or g[1])]
                if args.smoke:
                    grid = ROBUST_GRID[1:2]
                chosen_robust = pick(label, grid, lambda g: run_cosine(train, val, None, transform, robust_epochs, g[2],
                                                                       args.seeds[0], g[0], g[1], schedule)[1],
                                     lambda g: robust_note(*g, epochs=robust_epochs))
                refit_accs, refit_secs = [], []
            if kind == "distill":  # (temperature, alpha) on the first seed's validation split
                train, val = split(full, 2_000 if args.smoke else 10_000, args.seeds[0])
                logits, x = teacher_targets(train, args.seeds[0], args.threads, 1 if args.smoke else 2)
                grid = DISTILL_GRID[:1] if args.smoke else DISTILL_GRID
                chosen_t, chosen_a = pick(label, grid, lambda g: run_distilled(train, val, None, args.epochs, args.seeds[0],
                                                                               logits, x, *g)[1], _t_alpha)
            if kind == "combo":  # (temperature, alpha) with the cosine schedule, on validation
                combo_epochs = 1 if args.smoke else 60
                train, val = split(full, 2_000 if args.smoke else 10_000, args.seeds[0])
                logits, x = teacher_targets(train, args.seeds[0], args.threads, 1 if args.smoke else 2)
                grid = COMBO_GRID[:1] if args.smoke else COMBO_GRID
                chosen_t, chosen_a = pick(label, grid, lambda g: run_distilled(train, val, None, combo_epochs, args.seeds[0],
                                                                               logits, x, *g, transform=transform,
                                                                               cosine=True)[1], _t_alpha)
                refit_accs, refit_secs = [], []
            if kind == "average":
                train, val = split(full, 2_000 if args.smoke else 10_000, args.seeds[0])
                grid = [1] if args.smoke else AVERAGE_GRID
                chosen_avg = pick(label, grid, lambda a: run_averaged(train, val, None, args.epochs, args.seeds[0], a)[1],
                                  lambda a: f"average from epoch {a}")
            for seed in args.seeds:
                train, val = split(full, 2_000 if args.smoke else 10_000, seed)
                t0 = time.perf_counter()
                if kind == "adam":
                    acc, v = run_adam(train, val, test, transform, args.epochs, seed)
                    notes.append(f"{args.epochs} epochs")
                elif kind == "augment":
                    acc, v = run_augmented(train, val, test, args.epochs, seed, chosen)
                    notes.append(", ".join(f"{k} {v}" for k, v in chosen.items()))
                elif kind == "distill":  # each seed trains its own teacher on its own split
                    logits, x = teacher_targets(train, seed, args.threads, 1 if args.smoke else 2)
                    acc, v = run_distilled(train, val, test, args.epochs, seed, logits, x, chosen_t, chosen_a)
                    notes.append(f"teacher CNN {1 if args.smoke else 2} epochs, T {chosen_t}, alpha {chosen_a}")
                elif kind == "combo":  # on the seed's split, then refitted on train + validation
                    logits, x = teacher_targets(train, seed, args.threads, 1 if args.smoke else 2)
                    acc, v = run_distilled(train, val, test, combo_epochs, seed, logits, x, chosen_t, chosen_a,
                                           transform=transform, cosine=True)
                    notes.append(f"{combo_epochs} epochs, lr 0.001, T {chosen_t}, alpha {chosen_a}")
                    t1 = time.perf_counter()
                    logits, x = teacher_targets(full, seed, args.threads, 1 if args.smoke else 2)
                    refit_accs.append(run_distilled(full, None, test, combo_epochs, seed, logits, x, chosen_t,
                                                    chosen_a, transform=transform, cosine=True)[0])
                    refit_secs.append(time.perf_counter() - t1)
                elif kind == "average":
                    acc, v = run_averaged(train, val, test, args.epochs, seed, chosen_avg)
                    notes.append(f"{args.epochs} epochs, averaged from epoch {chosen_avg}")
                elif kind == "cosine":
                    acc, v = run_cosine(train, val, test, transform, chosen_e, chosen_lr, seed)
                    notes.append(f"{chosen_e} epochs, lr {chosen_lr:g}")
                    # the same settings refitted on train + validation (no images held out), tested once
                    t1 = time.perf_counter()
                    refit_accs.append(run_cosine(full, None, test, transform, chosen_e, chosen_lr, seed)[0])
                    refit_secs.append(time.perf_counter() - t1)
                elif kind in ("robust", "robust-adam"):
                    cap, q, lr = chosen_robust
                    acc, v = run_cosine(train, val, test, transform, robust_epochs, lr, seed, cap, q, schedule)
                    notes.append(robust_note(cap, q, lr, robust_epochs))
                    if kind == "robust":  # the same settings refitted on train + validation, tested once
                        t1 = time.perf_counter()
                        refit_accs.append(run_cosine(full, None, test, transform, robust_epochs, lr, seed, cap, q)[0])
                        refit_secs.append(time.perf_counter() - t1)
                else:
                    acc, v, lam = run_newton(train, val, test, transform, args.lams, seed, args.threads)
                    notes.append(f"lam {lam:g}")
                secs.append(time.perf_counter() - t0)
                accs.append(acc)
            mean = statistics.mean(accs) * 100
            std = statistics.stdev(accs) * 100 if len(accs) > 1 else 0.0
            rows.append((name, label, mean, std, statistics.mean(secs), ", ".join(sorted(set(notes)))))
            print(f"{name:14s} {label:30s} {mean:6.2f} +- {std:4.2f}  {statistics.mean(secs):7.1f}s  {rows[-1][5]}",
                  flush=True)
            if kind in ("cosine", "combo", "robust"):
                secs = [s - r for s, r in zip(secs, refit_secs)]  # the refit is timed on its own
                rows[-1] = rows[-1][:4] + (statistics.mean(secs),) + rows[-1][5:]
                m, sd = statistics.mean(refit_accs) * 100, (statistics.stdev(refit_accs) * 100 if len(refit_accs) > 1 else 0.0)
                rows.append((name, label + ", refit on train+val", m, sd, statistics.mean(refit_secs),
                             rows[-1][5] + f", {len(full):,} images"))
                print(f"{name:14s} {rows[-1][1]:30s} {m:6.2f} +- {sd:4.2f}  {rows[-1][4]:7.1f}s  {rows[-1][5]}", flush=True)
    seeds = f"{len(args.seeds)} seed{'s' if len(args.seeds) > 1 else ''}"
    table = [f"| dataset | lever | test accuracy % (mean ± std, {seeds}) | training time | setting chosen on validation |",
             "|---|---|---|---|---|"]
    table += [f"| {d} | {ln} | {m:.2f} ± {s:.2f} | {t:.1f} s | {n} |" for d, ln, m, s, t, n in rows]
    print("\n" + "\n".join(table))
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"# Accuracy levers ({time.strftime('%Y-%m-%d')}, `python bench/accuracy.py`)\n\n"
                    + "\n".join(table) + "\n\n" + (__doc__.split("\n\n")[2]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
