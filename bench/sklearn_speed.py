"""Time to the same optimum: mnist_logreg.sklearn.SoftmaxClassifier against scikit-learn's
LogisticRegression, same C, same threads, ratios measured in one run.

Two races per problem:
- strict: both to gradient norm <= 1e-5 of the mean objective (ours: tol=1e-5, the Euclidean
  norm; scikit-learn's tol bounds the largest component, so tol=1e-5 / sqrt(#parameters),
  which guarantees the same norm); lbfgs, and newton-cholesky where its dense Hessian of
  (classes x features)^2 entries is small enough to be a sensible choice.
- defaults: each side's default settings (ours tol=1e-4; scikit-learn tol=1e-4, max_iter=100);
  the column "ours <= theirs" says whether ours reached at least the objective theirs did.

Problems: MNIST (C = 0.1 and 1), Fashion-MNIST (C = 0.1), and two synthetic shapes from
make_classification: many samples / few features (200,000 x 20, 5 classes) and few samples /
many features (2,000 x 3,000, 4 classes).

    python bench/sklearn_speed.py [--data-dir DIR] [--threads 2] [--only mnist]
"""
import argparse
import os
import time
import warnings

import numpy as np
import torch

from mnist_logreg import load_dataset


def objective_and_grad(clf, X, y, lam):
    """Mean cross-entropy + lam/2 ||W||^2 and the norm of its gradient, from coef_/intercept_."""
    z = X @ clf.coef_.T + clf.intercept_
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    n = len(y)
    f = -np.log(p[np.arange(n), y]).mean() + 0.5 * lam * (clf.coef_ ** 2).sum()
    p[np.arange(n), y] -= 1
    gW, gb = p.T @ X / n + lam * clf.coef_, p.sum(0) / n
    return f, float(np.sqrt((gW ** 2).sum() + (gb ** 2).sum()))


def problems(args):
    from sklearn.datasets import make_classification

    def images(name):
        tr = load_dataset(name, "train", args.data_dir, download=False)
        return tr.features(torch.float64).numpy(), tr.labels.numpy()

    yield "MNIST C=0.1", 0.1, lambda: images("mnist")
    yield "MNIST C=1", 1.0, lambda: images("mnist")
    yield "Fashion C=0.1", 0.1, lambda: images("fashion-mnist")
    yield "200k x 20, 5 cl", 1.0, lambda: make_classification(200_000, 20, n_informative=15, n_classes=5,
                                                               random_state=0)
    yield "2k x 3000, 4 cl", 0.1, lambda: make_classification(2_000, 3_000, n_informative=100, n_classes=4,
                                                               random_state=0)


def timed(make, X, y, threads):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        clf = make().fit(X, y)
        return clf, time.perf_counter() - t0


def race(name, C, X, y, threads):
    from sklearn.linear_model import LogisticRegression

    from mnist_logreg.sklearn import SoftmaxClassifier

    lam, p = 1.0 / (C * len(y)), (X.shape[1] + 1) * len(np.unique(y))
    entrants = {
        "ours strict": lambda: SoftmaxClassifier(C=C, tol=1e-5, threads=threads, random_state=0),
        "lbfgs strict": lambda: LogisticRegression(C=C, tol=1e-5 / np.sqrt(p), max_iter=100_000),
        "ours default": lambda: SoftmaxClassifier(C=C, threads=threads, random_state=0),
        "lbfgs default": lambda: LogisticRegression(C=C),
    }
    if p <= 1500:
        entrants["n-chol strict"] = lambda: LogisticRegression(C=C, solver="newton-cholesky", tol=1e-5 / np.sqrt(p),
                                                               max_iter=1000)
        entrants["n-chol default"] = lambda: LogisticRegression(C=C, solver="newton-cholesky")
    out = {}
    for key, make in entrants.items():
        clf, sec = timed(make, X, y, threads)
        f, g = objective_and_grad(clf, X, y, lam)
        out[key] = (sec, f, g)
        print(f"  {name:16s} {key:15s} {sec:8.2f} s  objective {f:.9f}  |grad| {g:8.1e}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--only", default=None, help="run the problems whose name contains this")
    args = ap.parse_args()
    from sklearn import __version__ as skv

    print(f"{os.cpu_count()} cores, threads {args.threads}; torch {torch.__version__}, scikit-learn {skv}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    rows = []
    for name, C, load in problems(args):
        if args.only and args.only.lower() not in name.lower():
            continue
        r = race(name, C, *load(), args.threads)
        rows.append((name, r))
    print(f"\n{'problem':16s} | {'strict: ours':>12s} {'lbfgs':>8s} {'ratio':>6s} {'n-chol':>8s} | "
          f"{'default: ours':>13s} {'lbfgs':>8s} {'ratio':>6s} {'ours <= theirs':>14s}")
    for name, r in rows:
        (so, _, _), (sl, _, _) = r["ours strict"], r["lbfgs strict"]
        (do, dfo, _), (dl, dfl, _) = r["ours default"], r["lbfgs default"]
        chol = f"{r['n-chol strict'][0]:8.2f}" if "n-chol strict" in r else f"{'-':>8s}"
        better = "yes" if dfo <= dfl * (1 + 1e-12) else f"no ({(dfo - dfl) / dfl:.1e})"
        print(f"{name:16s} | {so:12.2f} {sl:8.2f} {sl / so:5.1f}x {chol} | {do:13.2f} {dl:8.2f} {dl / do:5.1f}x "
              f"{better:>14s}")


if __name__ == "__main__":
    main()
