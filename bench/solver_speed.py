"""Time to the exact optimum: mnist_logreg's Newton-CG against scikit-learn's
LogisticRegression (lbfgs) at the same C, on the full MNIST training set (60,000 images).

Both minimise mean cross-entropy + lam/2 ||W||^2 with C = 1 / (lam * n). scikit-learn's
``tol`` bounds the largest gradient component, so it is run with tol = 1e-5 / sqrt(7850),
which guarantees gradient norm <= 1e-5; the gradient norm each reached is printed.

    python bench/solver_speed.py [--data-dir DIR] [--C 0.1 1] [--dataset mnist] [--threads 2]
"""
import argparse
import os
import time

import numpy as np
import torch

from mnist_logreg import evaluate, load_dataset
from mnist_logreg.solver import solve


def objective_and_grad(W, b, x, y, lam):
    z = x @ W.T + b
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    n = len(y)
    f = (-np.log(p[np.arange(n), y])).mean() + 0.5 * lam * (W ** 2).sum()
    p[np.arange(n), y] -= 1
    gW = p.T @ x / n + lam * W
    gb = p.sum(0) / n
    return f, float(np.sqrt((gW ** 2).sum() + (gb ** 2).sum()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--C", type=float, nargs="+", default=[0.1, 1.0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    from sklearn import __version__ as skv
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    train = load_dataset(args.dataset, "train", args.data_dir, download=False)
    test = load_dataset(args.dataset, "test", args.data_dir, download=False)
    x = train.features(torch.float64).numpy()
    y = train.labels.numpy()
    xt = test.features(torch.float64).numpy()
    n = len(y)
    print(f"{args.dataset}: {n:,} train, {len(xt):,} test; {os.cpu_count()} cores, threads {args.threads}; "
          f"torch {torch.__version__}, scikit-learn {skv}; {time.strftime('%Y-%m-%d')}")
    print(f"\n{'C':>6s} {'lam':>9s} | {'ours s':>7s} {'|g|':>8s} {'test acc':>8s} | {'sklearn s':>9s} {'|g|':>8s} "
          f"{'test acc':>8s} | {'speed-up':>8s} {'obj rel diff':>12s}")
    for C in args.C:
        lam = 1.0 / (C * n)
        r = solve(train, lam, tol=1e-5, threads=args.threads, log=None)
        th = r.model.double_theta.numpy()
        f_o, g_o = objective_and_grad(th[:, :-1], th[:, -1], x, y, lam)
        acc_o = evaluate(r.model, test)["accuracy"]
        with threadpool_limits(args.threads):
            t0 = time.perf_counter()
            clf = LogisticRegression(C=C, tol=1e-5 / np.sqrt(7850), max_iter=10_000).fit(x, y)
            t_sk = time.perf_counter() - t0
        f_s, g_s = objective_and_grad(clf.coef_, clf.intercept_, x, y, lam)
        acc_s = (clf.predict(xt) == test.labels.numpy()).mean()
        print(f"{C:6g} {lam:9.2e} | {r.seconds:7.2f} {g_o:8.1e} {acc_o:8.4f} | {t_sk:9.2f} {g_s:8.1e} {acc_s:8.4f} | "
              f"{t_sk / r.seconds:7.1f}x {abs(f_o - f_s) / f_s:12.1e}", flush=True)


if __name__ == "__main__":
    main()
