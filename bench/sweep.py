"""Optuna against the hand-found recipes: one study per problem, N trials shared by two
processes through one SQLite file (each trial single-threaded, one per core), chosen on
validation; the best settings are then retrained on train+validation with 3 seeds and tested
once each, beside the hand-found recipe of bench/accuracy.md (93.49 / 95.94 / 86.43%).

    python bench/sweep.py [--data-dir DIR] [--trials 100] [--only mnist-raw]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnist_logreg import train_run
from mnist_logreg.sweep import best_config

PROBLEMS = {  # name: (the fixed settings, the hand-found recipe's test accuracy, bench/accuracy.md)
    "mnist-raw": ({"dataset": "mnist", "transform": "none"}, 93.49),
    "mnist-deskew": ({"dataset": "mnist", "transform": "deskew"}, 95.94),
    "fashion-cbrt": ({"dataset": "fashion-mnist", "transform": "cbrt"}, 86.43),
}


def study(name, fixed, trials, data_dir, runs):
    storage = f"sqlite:///{runs}/{name}.db"
    cmd = [sys.executable, "-m", "mnist_logreg.cli", "tune", "--search", "optuna", "--study", name, "--storage",
           storage, "--runs-dir", str(runs), "--trials", str(trials // 2), "--no-download"]
    cmd += ["--dataset", fixed["dataset"], "--transform", fixed["transform"]]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        sys.exit("a study process failed:\n" + "\n".join(o[-2000:] for o in outs))
    pruned = sum(o.count("pruned at epoch") for o in outs)
    return storage, time.perf_counter() - t0, pruned


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    print(f"{args.trials} trials per study, 2 processes sharing one SQLite study; {time.strftime('%Y-%m-%d')}, "
          f"{os.cpu_count()} cores")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        for name, (fixed, hand) in PROBLEMS.items():
            if args.only and args.only != name:
                continue
            storage, wall, pruned = study(name, fixed, args.trials, args.data_dir, runs)
            cfg, trial = best_config(name, storage)
            accs = []
            for seed in (0, 1, 2):
                run = train_run(cfg.replace(val_size=0, seed=seed, data_dir=args.data_dir), runs / "refit",
                                f"{name}-{seed}", report=False, log=None, progress=False)
                accs.append(100 * run.metrics["test_acc"])
            mean, std = statistics.mean(accs), statistics.stdev(accs)
            verdict = "better" if mean - hand > 2 * std + 0.02 else "worse" if hand - mean > 2 * std + 0.02 else "equal"
            rows.append((name, mean, std, hand, verdict, wall, pruned, trial.value, cfg))
            print(f"{name}: study {wall:.0f} s ({pruned} pruned), best val_acc {trial.value:.4f}; refit test "
                  f"{mean:.2f} +- {std:.2f}% vs hand-found {hand:.2f}%: {verdict}", flush=True)
            print("  " + ", ".join(f"{k}={getattr(cfg, k)}" for k in ("lr", "epochs", "lr_schedule", "loss_cap",
                                                                      "loss_q", "weight_decay", "batch_size")))
    print("\n| problem | sweep: test % (3 seeds) | hand-found | verdict | study wall time | pruned |")
    print("|---|---|---|---|---|---|")
    for name, mean, std, hand, verdict, wall, pruned, _, _ in rows:
        print(f"| {name} | {mean:.2f} ± {std:.2f} | {hand:.2f} | {verdict} | {wall:.0f} s | {pruned} |")


if __name__ == "__main__":
    main()
