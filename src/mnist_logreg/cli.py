"""The ``mnist-logreg`` command line. Heavy modules (torch, matplotlib) are imported inside
the commands that need them, so ``--help`` answers at once."""
from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import sys
from pathlib import Path

from .errors import ConfigError, MnistLogregError

NOTEBOOK_INDICES = [0, 10, 200, 1839]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error of the tool."""

    def error(self, message):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every real default; flags (default off) and "not set" (None) say so in their text."""

    def _get_help_string(self, action):
        # identity, not ==: a default of 0 or 0.0 is a real default to show (0 == False)
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _number(cast, low, strict: bool, rule: str):
    """An argparse type: a finite number of type ``cast`` that is > low (strict) or >= low."""
    noun = "a whole number" if cast is int else "a number"

    def parse(text):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if v != v or v in (float("inf"), float("-inf")) or (v <= low if strict else v < low):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return v

    return parse


_positive_int = _number(int, 1, False, "at least 1")
_nonneg_int = _number(int, 0, False, "0 or more")
_positive_float = _number(float, 0.0, True, "a positive number")
_nonneg_float = _number(float, 0.0, False, "0 or a positive number")


def _add_data_args(p, dataset=True):
    if dataset:
        p.add_argument("--dataset", default="mnist", metavar="NAME",
                       help="dataset: mnist, fashion-mnist or kmnist")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="folder searched first for the data (torchvision layout ROOT/MNIST/raw/ or "
                        "the four files flat); then $MNIST_LOGREG_DATA, then ./data")
    p.add_argument("--no-download", action="store_true",
                   help="never download; fail with the list of expected files instead")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mnist-logreg", formatter_class=_Formatter,
        description="Train, evaluate and use a multinomial logistic-regression classifier "
                    "(one nn.Linear(784, 10)) on MNIST-like data.",
        epilog="Examples:\n"
               "  mnist-logreg train                      # 20 epochs, Adam 1e-3, batch 128\n"
               "  mnist-logreg train --resume runs/NAME --epochs 5\n"
               "  mnist-logreg evaluate runs/NAME --split test\n"
               "  mnist-logreg predict runs/NAME --index 0 10 200 1839\n"
               "Data is looked for in --data-dir, $MNIST_LOGREG_DATA, ./data (in that order).")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"mnist-logreg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    # ---- data --------------------------------------------------------------------------
    p = sub.add_parser("data", formatter_class=_Formatter, help="show which datasets are found where",
                       description="Show, for each known dataset, where its files were found "
                                   "(or where they were looked for).")
    p.add_argument("--dataset", default=None, metavar="NAME", help="only this dataset (default: all)")
    p.add_argument("--data-dir", metavar="DIR", default=None, help="folder searched first")
    p.add_argument("--check", action="store_true", help="also read every file and check it")
    p.add_argument("--download", action="store_true", help="download what is missing")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_data)

    # ---- train -------------------------------------------------------------------------
    p = sub.add_parser("train", formatter_class=_Formatter, help="train a model and write a run folder",
                       description="Train on the training split (minus a seeded validation split), "
                                   "print the notebook's per-epoch line, evaluate on the test set and "
                                   "write runs/NAME/: checkpoint.pt, history.csv/.json, metrics.json, "
                                   "accuracy.png, samples.png and the report (report.html with its figures).")
    _add_data_args(p)
    p.add_argument("--train-csv", metavar="FILE", default=None,
                   help="train on a Kaggle Digit Recognizer train.csv instead (no test set)")
    p.add_argument("--epochs", type=_positive_int, default=20, help="epochs to train (with --resume: more epochs)")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate")
    p.add_argument("--batch-size", type=_positive_int, default=128, help="mini-batch size")
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam", help="optimizer")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                   help="learning rate per epoch: constant (the notebook's), or cosine: from --lr down to "
                        "nearly 0 along a half cosine over the run's epochs")
    p.add_argument("--momentum", type=_nonneg_float, default=0.9, help="momentum (sgd only)")
    p.add_argument("--weight-decay", type=_nonneg_float, default=0.0, help="weight decay (L2)")
    p.add_argument("--seed", type=_nonneg_int, default=0,
                   help="seed of the initial weights, the split and the shuffling")
    p.add_argument("--val-size", type=_nonneg_int, default=10_000, help="validation images held out of train")
    p.add_argument("--transform", choices=["none", "deskew", "cbrt"], default="none",
                   help="fixed input transform ahead of the linear layer, applied in training, evaluation, "
                        "predict, serve and export: deskew straightens each digit by its image moments "
                        "(best for digits); cbrt takes each pixel's cube root (best for clothing)")
    p.add_argument("--augment-shift", type=_nonneg_float, default=0.0, metavar="PX",
                   help="augmentation: random shifts up to PX pixels (each epoch a new draw)")
    p.add_argument("--augment-rotate", type=_nonneg_float, default=0.0, metavar="DEG",
                   help="augmentation: random rotations up to DEG degrees")
    p.add_argument("--augment-scale", type=_nonneg_float, default=0.0, metavar="FRAC",
                   help="augmentation: random scaling by up to +-FRAC (0.1 = 10%%)")
    p.add_argument("--augment-elastic", type=_nonneg_float, default=0.0, metavar="PX",
                   help="augmentation: smooth elastic distortion of up to PX pixels")
    p.add_argument("--loss-cap", type=_positive_float, default=None, metavar="NATS",
                   help="robust loss: cap each image's cross-entropy at NATS (e.g. 5), so that images the "
                        "linear model gets hopelessly wrong (p(true) < e^-NATS) stop pulling on the weights "
                        "(default: no cap, the notebook's plain cross-entropy)")
    p.add_argument("--loss-q", type=_nonneg_float, default=0.0, metavar="Q",
                   help="robust loss: generalised cross-entropy (1 - p(true)^Q) / Q, between 0 and 1; each "
                        "image's gradient is weighted by p(true)^Q (0: the cross-entropy; not with "
                        "--distill-epochs)")
    p.add_argument("--average-from", type=_positive_int, default=None, metavar="EPOCH",
                   help="weight averaging: the final model is the mean of the weights at the end of each "
                        "epoch from EPOCH on (still one linear layer; off by default)")
    p.add_argument("--distill-epochs", type=_nonneg_int, default=0, metavar="N",
                   help="distillation: train a small CNN teacher for N epochs (0: off) and train the linear "
                        "model on a mix of the true labels and the teacher's softened probabilities; the "
                        "teacher is a training aid only and is not saved")
    p.add_argument("--distill-temperature", type=_positive_float, default=2.0, metavar="T",
                   help="softmax temperature of the teacher's probabilities")
    p.add_argument("--distill-alpha", type=_nonneg_float, default=0.5, metavar="A",
                   help="weight of the true labels in the targets (1 - A on the teacher's), between 0 and 1")
    p.add_argument("--solver", choices=["minibatch", "newton"], default="minibatch",
                   help="minibatch: the notebook's mini-batch training (--optimizer, --lr, ...); newton: "
                        "the exact optimum of mean cross-entropy + lam/2 ||W||^2 on the training split")
    p.add_argument("--lam", type=_positive_float, default=1e-4,
                   help="L2 strength for --solver newton (scikit-learn's C = 1 / (lam * n_train))")
    p.add_argument("--tol", type=_positive_float, default=1e-5, help="gradient-norm tolerance for --solver newton")
    p.add_argument("--max-iter", type=_positive_int, default=100, help="Newton iterations at most")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads (default: 1 for minibatch, whose small products lose with more "
                        "threads on a busy machine, see bench/train_speed.py; all cores for newton)")
    p.add_argument("--engine", choices=["auto", "native", "torchscript", "python"], default="auto",
                   help="how minibatch Adam/AdamW epochs run, all the same maths: native (a C kernel "
                        "built on first use with the system C compiler, CPU), torchscript, python; auto "
                        "picks the first that applies (the run's config records which ran)")
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when present)")
    p.add_argument("--runs-dir", metavar="DIR", default="runs", help="where run folders are created")
    p.add_argument("--name", default=None, help="run folder name (default: DATASET-YYYYmmdd-HHMMSS)")
    p.add_argument("--resume", metavar="RUN", default=None,
                   help="continue the run in folder RUN from its last checkpoint (data, split, seed "
                        "and optimizer settings come from the checkpoint; --epochs more are run)")
    p.add_argument("--checkpoint-every", type=_positive_int, default=1,
                   help="write checkpoint.pt every N epochs (atomically)")
    p.add_argument("--dry-run", action="store_true",
                   help="a quick check: 1 epoch on 2,000 training images, 1,000 validation images")
    p.add_argument("--no-report", action="store_true", help="do not write report.html and its figures")
    p.set_defaults(func=cmd_train)

    # ---- report ------------------------------------------------------------------------
    p = sub.add_parser("report", formatter_class=_Formatter, help="figures and report.html for a run",
                       description="Write, into the run folder (or --out), the figures (training curves, "
                                   "confusion matrix, weight templates, reliability diagram, most confident "
                                   "mistakes, sample predictions), report.json and a self-contained "
                                   "report.html, all on the test set.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    _add_data_args(p)
    p.set_defaults(dataset=None)
    p.add_argument("--out", metavar="DIR", default=None, help="output folder (default: the run folder)")
    p.set_defaults(func=cmd_report)

    # ---- show --------------------------------------------------------------------------
    p = sub.add_parser("show", formatter_class=_Formatter, help="draw dataset images, or print a pixel patch",
                       description="Draw a grid of dataset images with their labels, or with --index and "
                                   "--patch print the pixel values of a crop (0 = black, 1 = white) and draw it.")
    _add_data_args(p)
    p.add_argument("--split", choices=["train", "test"], default="train", help="which split")
    p.add_argument("--index", type=_nonneg_int, nargs="+", default=None,
                   help="image indices (default: the first --count)")
    p.add_argument("--count", type=_positive_int, default=16, help="images in the grid")
    p.add_argument("--patch", metavar="R0:R1,C0:C1", default=None,
                   help="print and draw rows R0..R1-1, columns C0..C1-1 of the first --index image (e.g. 5:10,5:10)")
    p.add_argument("-o", "--output", metavar="FILE", default="show.png", help="where the picture is written")
    p.set_defaults(func=cmd_show)

    # ---- tune --------------------------------------------------------------------------
    p = sub.add_parser("tune", formatter_class=_Formatter, help="choose lam (or lr and epochs) on the validation split",
                       description="Grid search by validation accuracy. newton: one exact optimum per lam "
                                   "(warm-started from the previous one); minibatch: per lr, the best epoch. "
                                   "Prints the table, evaluates the winner on the test set once, and writes "
                                   "runs/NAME/ (tune.json, checkpoint.pt). --refit retrains the winner on "
                                   "train+validation first.")
    _add_data_args(p)
    p.add_argument("--solver", choices=["newton", "minibatch"], default="newton", help="what to tune")
    p.add_argument("--lams", type=_positive_float, nargs="+", default=[1e-3, 3e-4, 1e-4, 3e-5, 1e-5],
                   help="lam grid for newton")
    p.add_argument("--lrs", type=_positive_float, nargs="+", default=[3e-4, 1e-3, 3e-3], help="lr grid for minibatch")
    p.add_argument("--max-epochs", type=_positive_int, default=40, help="epochs tried for minibatch (every epoch is a candidate)")
    p.add_argument("--refit", action="store_true", help="retrain the winner on train+validation before testing")
    p.add_argument("--transform", choices=["none", "deskew", "cbrt"], default="none", help="input transform (see train)")
    p.add_argument("--tol", type=_positive_float, default=1e-5, help="gradient-norm tolerance for newton")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the split, the weights and the shuffling")
    p.add_argument("--val-size", type=_nonneg_int, default=10_000, help="validation images held out of train")
    p.add_argument("--threads", type=_positive_int, default=None, help="CPU threads (default: as in train)")
    p.add_argument("--runs-dir", metavar="DIR", default="runs", help="where run folders are created")
    p.add_argument("--name", default=None, help="run folder name (default: DATASET-tune-TIMESTAMP)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_tune)

    # ---- evaluate ----------------------------------------------------------------------
    p = sub.add_parser("evaluate", formatter_class=_Formatter, help="loss, accuracy and confusion matrix",
                       description="Evaluate a run folder, an mnist-logreg checkpoint or a notebook "
                                   "state_dict (.pth) on a split: loss, accuracy, per-class accuracy and "
                                   "the confusion matrix.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    _add_data_args(p)
    p.set_defaults(dataset=None)
    p.add_argument("--split", choices=["test", "val", "train"], default="test", help="which images")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)

    # ---- predict -----------------------------------------------------------------------
    p = sub.add_parser("predict", formatter_class=_Formatter, help="predict dataset images, image files or a CSV",
                       description="Predict with a trained model: dataset images by index (label, "
                                   "prediction, top probabilities), 28x28 grayscale image files, or a "
                                   "Kaggle test.csv (writing submission.csv).")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--index", type=_nonneg_int, nargs="+", default=None,
                   help=f"dataset image indices (the notebook's: {' '.join(map(str, NOTEBOOK_INDICES))})")
    p.add_argument("--split", choices=["test", "train"], default="test", help="split that --index refers to")
    p.add_argument("--image", nargs="+", metavar="FILE_OR_DIR", default=None,
                   help="image files or folders of them (PNG, JPEG, BMP, GIF, WebP, ...): photos and drawings "
                        "are preprocessed the way MNIST was (see --no-preprocess)")
    p.add_argument("--no-preprocess", action="store_true",
                   help="use --image files as they are: 28x28 grey, light digit on dark, like MNIST")
    p.add_argument("--show-preprocessed", metavar="PNG", default=None,
                   help="save a picture of what the model saw for each --image")
    p.add_argument("--csv", metavar="FILE", default=None, help="a Kaggle test.csv to predict")
    p.add_argument("--submission", metavar="FILE", default="submission.csv",
                   help="where --csv writes ImageId,Label")
    p.add_argument("--top", type=_positive_int, default=3, help="how many probabilities to show")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_data_args(p)
    p.set_defaults(dataset=None)
    p.set_defaults(func=cmd_predict)
    # ---- serve -------------------------------------------------------------------------
    p = sub.add_parser("serve", formatter_class=_Formatter, help="the drawing web app and REST API",
                       description="Serve a drawing page (GET /) and a REST API (POST /api/predict, GET "
                                   "/api/health, GET /api/model) for one model, loaded once at start.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (only this one)")
    p.add_argument("--port", type=_nonneg_int, default=8000, help="port to bind")
    p.add_argument("--max-body-mb", type=_positive_float, default=10.0, help="larger request bodies get 413")
    p.set_defaults(func=cmd_serve)

    # ---- export ------------------------------------------------------------------------
    p = sub.add_parser("export", formatter_class=_Formatter, help="write the model as ONNX or TorchScript",
                       description="ONNX: one file with the weights inside, input 'pixels' float32 "
                                   "(batch, 1, 28, 28) in [0, 1] with a dynamic batch, outputs 'logits' and "
                                   "'probabilities' (batch, 10). TorchScript: the same input, logits out.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="file format")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="file to write")
    p.set_defaults(func=cmd_export)
    return parser


def cmd_serve(args):
    import torch
    import uvicorn

    from .serve import create_app

    torch.set_num_threads(1)  # many small requests: one thread each, served concurrently
    app = create_app(args.checkpoint, max_body_bytes=int(args.max_body_mb * 1024 * 1024))
    print(f"serving {args.checkpoint} on http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    except OSError as e:
        raise ConfigError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    return 0


def cmd_export(args):
    from .checkpoint import load_checkpoint
    from .export import export

    ckpt = load_checkpoint(args.checkpoint)
    path = export(ckpt.model, args.output, args.format)
    print(f"wrote {path} ({args.format}, {path.stat().st_size:,} bytes)")
    if args.format == "onnx":
        print("input 'pixels': float32 (batch, 1, 28, 28) in [0, 1]; outputs 'logits', 'probabilities': (batch, 10)")
    return 0


# ======================================================================================
# commands
# ======================================================================================
def _out(args, obj, text: str):
    if getattr(args, "json", False):
        print(json.dumps(obj, indent=2))
    else:
        print(text)


def cmd_data(args):
    from .data import candidate_roots, download, find_files, load_dataset, searched_dirs
    from .datasets import all_specs, get_spec

    names = [get_spec(args.dataset).name] if args.dataset else list(all_specs())
    report = []
    for name in names:
        found = find_files(name, args.data_dir)
        if not found and args.download:
            download(name, candidate_roots(args.data_dir)[0])
            found = find_files(name, args.data_dir)
        entry = {"dataset": name, "found": bool(found),
                 "files": {k: str(v) for k, v in (found or {}).items()},
                 "searched": [str(d) for d in searched_dirs(name, args.data_dir)]}
        if found and args.check:
            for split_name in ("train", "test"):
                s = load_dataset(name, split_name, args.data_dir, download=False)
                entry[split_name] = len(s)
        report.append(entry)
    lines = []
    for e in report:
        if e["found"]:
            where = Path(e["files"]["train-images"]).parent
            counts = f" ({e['train']:,} train, {e['test']:,} test, checked)" if "train" in e else ""
            lines.append(f"{e['dataset']:14s} found in {where}{counts}")
        else:
            lines.append(f"{e['dataset']:14s} not found (searched: {', '.join(e['searched'])})")
    _out(args, report, "\n".join(lines))
    return 0


def _device(name):
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu)")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"--device must be cpu, cuda or auto, not {name!r}")
    return name


def _new_run_dir(runs_dir, name, dataset) -> Path:
    import datetime as dt

    root = Path(runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{root}: cannot create the runs folder: {e.strerror}") from None
    base = name or f"{dataset}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    for k in range(1000):
        cand = root / (base if k == 0 else f"{base}-{k + 1}")
        try:
            cand.mkdir()  # atomic: two runs never get the same folder
            return cand
        except FileExistsError:
            if name:
                raise ConfigError(f"{cand}: run folder exists (use --resume {cand} to continue it, "
                                  f"or another --name)") from None
        except OSError as e:
            raise ConfigError(f"{cand}: cannot create the run folder: {e.strerror}") from None
    raise ConfigError(f"{root}: too many runs named {base}")


def _load_training_data(cfg, log):
    from .data import load_dataset, load_kaggle_csv, split, KAGGLE_LEAK_WARNING

    if cfg.get("train_csv"):
        full = load_kaggle_csv(cfg["train_csv"], labelled=True)
        if full.labels.min() < 0:
            raise ConfigError(f"{cfg['train_csv']}: has no label column; training needs train.csv")
        test = None
        classes = full.classes
    else:
        full = load_dataset(cfg["dataset"], "train", cfg.get("data_dir"), download=not cfg.get("no_download"), log=log)
        test = load_dataset(cfg["dataset"], "test", cfg.get("data_dir"), download=False, log=log)
        classes = full.classes
    train, val = split(full, cfg["val_size"], cfg["seed"])
    if cfg.get("dry_run"):
        train = train.subset(slice(0, 2000))
        val = val.subset(slice(0, 1000))
        test = test.subset(slice(0, 1000)) if test is not None else None
    return train, val, test, classes


def cmd_train(args):
    import torch

    from .checkpoint import atomic_write_text, load_checkpoint, save
    from .model import MnistModel
    from .plots import accuracy_plot, image_grid
    from .train import History, TrainingDiverged, TrainingInterrupted, evaluate, fit, make_optimizer

    log = functools.partial(print, flush=True)  # epoch lines show up at once, even through a pipe
    resumed = None
    if args.resume:
        resumed = load_checkpoint(args.resume)
        if not resumed.config or resumed.optimizer_state is None:
            raise ConfigError(f"{args.resume}: not a training checkpoint of this tool (no config or "
                              f"optimizer state); evaluate or predict accept it, --resume does not")
        cfg = dict(resumed.config)
        cfg.update(epochs=args.epochs, threads=args.threads, device=args.device, engine=args.engine,
                   checkpoint_every=args.checkpoint_every)
        if args.data_dir:
            cfg["data_dir"] = args.data_dir
        run_dir = resumed.path.parent
    else:
        cfg = {k: getattr(args, k) for k in (
            "dataset", "data_dir", "no_download", "train_csv", "epochs", "lr", "lr_schedule", "batch_size", "optimizer",
            "momentum", "weight_decay", "seed", "val_size", "threads", "engine", "device", "checkpoint_every", "dry_run",
            "solver", "lam", "tol", "max_iter", "transform", "average_from", "loss_cap", "loss_q",
            "distill_epochs", "distill_temperature", "distill_alpha",
            "augment_shift", "augment_rotate", "augment_scale", "augment_elastic")}
        from .datasets import get_spec
        cfg["dataset"] = "kaggle-csv" if args.train_csv else get_spec(args.dataset).name
        if cfg["train_csv"]:
            cfg["train_csv"] = str(Path(cfg["train_csv"]).resolve())
        if cfg["dry_run"]:
            cfg["epochs"] = 1
    device = _device(cfg["device"])
    if cfg["solver"] == "minibatch":  # settings that cannot run are refused before anything is read or written
        from .train import check_engine, check_robust_loss
        check_engine(cfg.get("engine", "auto"), cfg["optimizer"], device, soft=bool(cfg.get("distill_epochs")))
        check_robust_loss(cfg.get("loss_cap"), cfg.get("loss_q", 0.0), soft=bool(cfg.get("distill_epochs")))
        if cfg.get("distill_epochs") and not 0 <= cfg["distill_alpha"] <= 1:
            raise ConfigError(f"--distill-alpha must be between 0 and 1, got {cfg['distill_alpha']}")
        last_epoch = (resumed.epoch if resumed is not None else 0) + cfg["epochs"]
        if cfg.get("average_from") and cfg["average_from"] > last_epoch:
            raise ConfigError(f"--average-from {cfg['average_from']} is after the run's last epoch ({last_epoch})")
    elif cfg.get("loss_cap") is not None or cfg.get("loss_q"):
        raise ConfigError("--loss-cap and --loss-q apply to --solver minibatch; newton solves the plain "
                          "L2-regularised cross-entropy exactly")

    # -- data (read and checked before anything is written) ----------------------------------
    train, val, test, classes = _load_training_data(cfg, log)
    if len(val) == 0:
        val = None

    # -- model and optimizer -----------------------------------------------------------------
    torch.manual_seed(cfg["seed"])
    model = MnistModel(transform=cfg.get("transform", "none")).to(device)
    opt = make_optimizer(model.parameters(), cfg["optimizer"], cfg["lr"], cfg["weight_decay"], cfg["momentum"])
    history = History()
    start_epoch = 0
    if resumed is not None:
        model.load_state_dict(resumed.model.state_dict())
        try:
            opt.load_state_dict(resumed.optimizer_state)
        except (ValueError, KeyError, RuntimeError, TypeError) as e:
            raise ConfigError(f"{resumed.path}: optimizer state does not fit: {e}") from None
        history.rows = list(resumed.history)
        start_epoch = resumed.epoch
    n_params = model.num_parameters()
    log(f"MnistModel: {n_params:,} parameters (linear.weight 10x784 + linear.bias 10)")
    log(f"data: {len(train):,} train, {len(val) if val else 0:,} validation"
        + (f", {len(test):,} test" if test is not None else "") + f" ({cfg['dataset']})")

    run_dir = run_dir if resumed is not None else _new_run_dir(args.runs_dir, args.name, cfg["dataset"])
    ckpt_path = run_dir / "checkpoint.pt"
    log(f"run folder: {run_dir}")

    def write_checkpoint(epoch, metrics=None):
        save(model, ckpt_path, optimizer=opt, epoch=epoch, config=cfg, dataset=cfg["dataset"],
             classes=classes, metrics=metrics or {}, history=history.rows, split_seed=cfg["seed"])

    # The last complete epoch is kept in memory (7,850 weights and the optimizer state), so
    # Ctrl-C or divergence between checkpoints can still save it.
    last = {"written": start_epoch, "snapshot": None}

    def on_epoch(epoch, row, _opt):
        if epoch % cfg["checkpoint_every"] == 0:
            write_checkpoint(epoch)
            last["written"], last["snapshot"] = epoch, None
        else:
            last["snapshot"] = (epoch, copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()),
                                list(history.rows))

    def save_snapshot():
        if last["snapshot"] is None:
            return
        epoch, model_sd, opt_sd, rows = last["snapshot"]
        model.load_state_dict(model_sd)
        opt.load_state_dict(opt_sd)
        history.rows[:] = rows
        write_checkpoint(epoch)
        last["written"] = epoch

    distill_info = None
    if cfg.get("solver") == "newton":
        if resumed is not None:
            raise ConfigError("--resume continues mini-batch training; a newton run is already at its optimum")
        from .solver import solve
        from .train import evaluate as _evaluate

        result = solve(train, cfg["lam"], tol=cfg["tol"], max_iter=cfg["max_iter"],
                       threads=cfg["threads"] or os.cpu_count(), transform=cfg.get("transform", "none"), log=log)
        log(result.summary())
        model.load_state_dict(result.model.state_dict())
        row = {"epoch": result.iterations, "train_loss": result.objective,
               **(_evaluate(model, val) if val is not None else {}), "seconds": result.seconds}
        history.rows.append(row)
        if val is not None:
            log(f"val_loss: {row['val_loss']:.4f}, val_acc: {row['val_acc']:.4f}")
        solver_info = {"objective": result.objective, "grad_norm": result.grad_norm, "iterations": result.iterations,
                       "hessian_products": result.hessian_products, "converged": result.converged,
                       "seconds": round(result.seconds, 3), "lam": cfg["lam"], "tol": cfg["tol"],
                       "sklearn_C": 1.0 / (cfg["lam"] * len(train))}
    else:
        solver_info = None
        from .augment import Augment
        augment = Augment(shift=cfg.get("augment_shift", 0.0), rotate=cfg.get("augment_rotate", 0.0),
                          scale=cfg.get("augment_scale", 0.0), elastic=cfg.get("augment_elastic", 0.0))
        soft = None
        if cfg.get("distill_epochs"):
            from .distill import soft_targets, train_teacher
            log(f"distillation: training the teacher CNN for {cfg['distill_epochs']} epochs")
            with torch.no_grad():
                xt = train.features().to(device)
            teacher = train_teacher(xt, train.labels.to(device), cfg["distill_epochs"], seed=cfg["seed"], log=log)
            soft = soft_targets(teacher, xt, train.labels.to(device), cfg["distill_temperature"], cfg["distill_alpha"])
            distill_info = {"teacher_epochs": cfg["distill_epochs"], "temperature": cfg["distill_temperature"],
                            "alpha": cfg["distill_alpha"]}
            if val is not None:
                with torch.no_grad():
                    distill_info["teacher_val_acc"] = float((teacher(val.features().to(device)).argmax(1)
                                                             == val.labels.to(device)).float().mean())
                log(f"teacher val_acc: {distill_info['teacher_val_acc']:.4f}")
            del teacher, xt
        try:
            fit(model, train, val, epochs=cfg["epochs"], optimizer=opt, batch_size=cfg["batch_size"], augment=augment,
                soft_targets=soft, average_from=cfg.get("average_from"),
                loss_cap=cfg.get("loss_cap"), loss_q=cfg.get("loss_q", 0.0),
                seed=cfg["seed"], threads=(cfg["threads"] or 1) if device == "cpu" else None,
                start_epoch=start_epoch, history=history, on_epoch=on_epoch, engine=cfg.get("engine", "auto"),
                lr_schedule=cfg.get("lr_schedule", "constant"),
                log=log)
        except (TrainingInterrupted, KeyboardInterrupt) as e:
            e = e if isinstance(e, TrainingInterrupted) else TrainingInterrupted("interrupted")
            save_snapshot()
            if ckpt_path.exists():
                print(f"{e}; saved the last complete epoch ({last['written']}) in {ckpt_path}; continue with: "
                      f"mnist-logreg train --resume {run_dir} --epochs N", file=sys.stderr)
            else:
                print(f"{e} before the first epoch ended: nothing to resume", file=sys.stderr)
            return 130
        except TrainingDiverged as e:
            save_snapshot()
            kept = (f"; the last good checkpoint (epoch {last['written']}) is kept in {ckpt_path}"
                    if ckpt_path.exists() else "")
            raise TrainingDiverged(f"{e}{kept}") from None

    # -- test evaluation, final checkpoint and run files -------------------------------------
    final_epoch = history.rows[-1]["epoch"]
    metrics = {"val_loss": history.rows[-1].get("val_loss"), "val_acc": history.rows[-1].get("val_acc"),
               "epochs": final_epoch,
               "train_seconds": round(sum(r.get("seconds", 0) for r in history.rows), 3)}
    if solver_info is not None:
        metrics["solver"] = solver_info
    elif history.engine:
        metrics["engine"] = history.engine  # which of --engine's kernels ran (auto picks one)
    if distill_info is not None:
        metrics["distillation"] = distill_info
    if history.average is not None:  # the model is the average: its validation is the run's
        metrics["weight_average"] = dict(history.average)
        if "val_acc" in history.average:
            metrics.update(val_loss=history.average["val_loss"], val_acc=history.average["val_acc"])
    if test is not None:
        r = evaluate(model, test)
        metrics.update(test_loss=r["val_loss"], test_acc=r["val_acc"])
        log(f"test_loss: {r['val_loss']:.4f}, test_acc: {r['val_acc']:.4f}")
    write_checkpoint(final_epoch, metrics)
    _write_history(run_dir, history.rows, atomic_write_text)
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if len(history.rows) > 1:
        accuracy_plot(history.rows, run_dir / "accuracy.png")
    image_grid(train.images[:16], train.labels[:16], run_dir / "samples.png", classes=classes,
               title=f"{cfg['dataset']}: training images")
    log(f"wrote {ckpt_path}, history.csv, history.json, metrics.json, "
        + ("accuracy.png, " if len(history.rows) > 1 else "") + "samples.png")
    if not args.no_report:
        if test is None:
            log("no report: a Kaggle CSV run has no test set of its own (run mnist-logreg report "
                f"{run_dir} --dataset mnist to report on MNIST's test set, which Kaggle's images overlap)")
        else:
            from .report import build_report
            build_report(run_dir, data_dir=cfg.get("data_dir"), download=False, log=log)
    return 0


def cmd_tune(args):
    import datetime as dt

    import torch

    from .checkpoint import atomic_write_text, save
    from .data import ImageSet, load_dataset, split
    from .datasets import get_spec
    from .model import MnistModel
    from .train import History, evaluate, fit

    name = get_spec(args.dataset).name
    full = load_dataset(name, "train", args.data_dir, download=not args.no_download)
    test = load_dataset(name, "test", args.data_dir, download=False)
    train, val = split(full, args.val_size, args.seed)
    if len(val) == 0:
        raise ConfigError("tune needs a validation split: --val-size must be at least 1")
    run_dir = _new_run_dir(args.runs_dir, args.name or f"{name}-tune-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}", name)
    rows = []
    if args.solver == "newton":
        from .solver import solve

        threads = args.threads or os.cpu_count()
        prev = None
        for lam in sorted(args.lams, reverse=True):  # strongest first: each warm-starts the next
            r = solve(train, lam, tol=args.tol, threads=threads, init=prev, transform=args.transform, log=None)
            prev = r.model
            ev = evaluate(r.model, val)
            rows.append({"lam": lam, "C": 1.0 / (lam * len(train)), **ev, "iterations": r.iterations,
                         "converged": r.converged, "seconds": round(r.seconds, 2)})
            print(f"lam {lam:9.2e}  C {rows[-1]['C']:9.3g}  val_loss {ev['val_loss']:.4f}  val_acc {ev['val_acc']:.4f}"
                  f"  {r.iterations:3d} it  {r.seconds:6.2f}s{'' if r.converged else '  NOT converged'}", flush=True)
        best = max(rows, key=lambda r: (r["val_acc"], -r["val_loss"]))
        winner = {"solver": "newton", "lam": best["lam"]}
    else:
        threads = args.threads or 1
        for lr in args.lrs:
            torch.manual_seed(args.seed)
            h = fit(MnistModel(transform=args.transform), train, val, epochs=args.max_epochs, lr=lr, seed=args.seed,
                    threads=threads, log=None)
            for r in h.rows[1:]:
                rows.append({"lr": lr, "epochs": r["epoch"], "val_loss": r["val_loss"], "val_acc": r["val_acc"]})
            b = max((r for r in rows if r["lr"] == lr), key=lambda r: (r["val_acc"], -r["val_loss"]))
            print(f"lr {lr:9.2e}  best epoch {b['epochs']:3d}  val_loss {b['val_loss']:.4f}  val_acc {b['val_acc']:.4f}", flush=True)
        best = max(rows, key=lambda r: (r["val_acc"], -r["val_loss"]))
        winner = {"solver": "minibatch", "lr": best["lr"], "epochs": best["epochs"]}
    print(f"winner: {winner} (val_acc {best['val_acc']:.4f})")

    # -- the winner: optionally retrained on train+validation, then tested once -------------
    fit_on = train
    if args.refit:
        fit_on = ImageSet(torch.cat([train.images, val.images]), torch.cat([train.labels, val.labels]),
                          train.classes, f"{name}/train+val")
    if winner["solver"] == "newton":
        from .solver import solve
        r = solve(fit_on, winner["lam"], tol=args.tol, threads=args.threads or os.cpu_count(),
                  transform=args.transform, log=None)
        model = r.model
    else:
        torch.manual_seed(args.seed)
        model = MnistModel(transform=args.transform)
        fit(model, fit_on, None, epochs=winner["epochs"], lr=winner["lr"], seed=args.seed,
            threads=args.threads or 1, log=None)
    t = evaluate(model, test)
    print(f"{'refit on train+val' if args.refit else 'winner'}: test_loss: {t['val_loss']:.4f}, test_acc: {t['val_acc']:.4f}")
    result = {"dataset": name, "grid": rows, "winner": winner, "refit": args.refit,
              "test_loss": t["val_loss"], "test_acc": t["val_acc"], "n_train": len(fit_on)}
    cfg = {"command": "tune", "dataset": name, "seed": args.seed, "val_size": args.val_size,
           "transform": args.transform, **winner}
    save(model, run_dir / "checkpoint.pt", config=cfg, dataset=name, classes=full.classes,
         metrics={"test_loss": t["val_loss"], "test_acc": t["val_acc"], "tune": result})
    atomic_write_text(run_dir / "tune.json", json.dumps(result, indent=2) + "\n")
    print(f"wrote {run_dir / 'tune.json'}, {run_dir / 'checkpoint.pt'}")
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


def cmd_report(args):
    from .report import build_report

    build_report(args.checkpoint, data_dir=args.data_dir, download=not args.no_download, out_dir=args.out,
                 dataset=args.dataset)
    return 0


def _parse_patch(text):
    try:
        rows, cols = text.split(",")
        (r0, r1), (c0, c1) = (map(int, rows.split(":")), map(int, cols.split(":")))
    except ValueError:
        raise ConfigError(f"--patch must look like R0:R1,C0:C1 (e.g. 5:10,5:10), got {text!r}") from None
    if not (0 <= r0 < r1 <= 28 and 0 <= c0 < c1 <= 28):
        raise ConfigError(f"--patch {text}: rows and columns must satisfy 0 <= start < end <= 28")
    return r0, r1, c0, c1


def cmd_show(args):
    from .data import load_dataset
    from .datasets import get_spec
    from .plots import image_grid, patch_plot

    patch = _parse_patch(args.patch) if args.patch else None
    data = load_dataset(get_spec(args.dataset).name, args.split, args.data_dir, download=not args.no_download)
    index = args.index or list(range(min(args.count, len(data))))
    bad = [i for i in index if i >= len(data)]
    if bad:
        raise ConfigError(f"--index {bad[0]} is out of range: {data.name} has {len(data):,} images")
    if patch:
        r0, r1, c0, c1 = patch
        i = index[0]
        img, label = data[i]
        crop = img[0, r0:r1, c0:c1]
        print(f"{data.name}[{i}], label {data.classes[label]}: pixels [{r0}:{r1}, {c0}:{c1}] (0 = black, 1 = white)")
        for row in crop.tolist():
            print("  " + " ".join(f"{v:.4f}" for v in row))
        print(f"max {float(crop.max()):.4f}, min {float(crop.min()):.4f}")
        patch_plot(crop, args.output, f"{data.name}[{i}] pixels [{r0}:{r1}, {c0}:{c1}]")
    else:
        image_grid(data.images[index], data.labels[index], args.output, classes=data.classes,
                   title=f"{data.name}: images {', '.join(map(str, index[:6]))}{', ...' if len(index) > 6 else ''}")
    print(f"wrote {args.output}")
    return 0


def _write_history(run_dir, rows, write_text):
    cols = ["epoch", "train_loss", "val_loss", "val_acc", "seconds"]
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join("" if r.get(c) is None else (str(r[c]) if c == "epoch" else f"{r[c]:.6f}")
                              for c in cols))
    write_text(run_dir / "history.csv", "\n".join(lines) + "\n")
    write_text(run_dir / "history.json", json.dumps(rows, indent=2) + "\n")


def _dataset_for(ckpt, args):
    """The dataset a checkpoint was trained on (a notebook .pth: --dataset, default mnist)."""
    name = args.dataset or ckpt.dataset or "mnist"
    if name == "kaggle-csv":
        raise ConfigError("this model was trained on a Kaggle CSV; pass --dataset mnist to use MNIST images")
    return name


def cmd_evaluate(args):
    import torch

    from .checkpoint import load_checkpoint
    from .data import load_dataset, split
    from .metrics import confusion_matrix, format_confusion, per_class_accuracy
    from .train import evaluate, predict

    ckpt = load_checkpoint(args.checkpoint)
    name = _dataset_for(ckpt, args)
    if args.split == "test":
        data = load_dataset(name, "test", args.data_dir, download=not args.no_download)
    else:
        full = load_dataset(name, "train", args.data_dir, download=not args.no_download)
        cfg = ckpt.config
        tr, va = split(full, cfg.get("val_size", 10_000), cfg.get("seed", 0))
        data = va if args.split == "val" else tr
    r = evaluate(ckpt.model, data)
    preds = predict(ckpt.model, data.images).argmax(1)
    cm = confusion_matrix(data.labels, preds, len(data.classes))
    per_class = per_class_accuracy(cm)
    result = {"checkpoint": str(ckpt.path), "dataset": name, "split": args.split, "n": len(data),
              "loss": r["val_loss"], "accuracy": r["val_acc"],
              "per_class_accuracy": dict(zip(data.classes, per_class)), "confusion_matrix": cm.tolist()}
    text = [f"{name}/{args.split}: {len(data):,} images",
            f"loss: {r['val_loss']:.4f}, accuracy: {r['val_acc']:.4f}", "", "per-class accuracy:"]
    text += [f"  {c:>12s}: {a:.4f}" for c, a in zip(data.classes, per_class)]
    text += ["", format_confusion(cm, data.classes)]
    _out(args, result, "\n".join(text))
    return 0


def _load_image_28(path):
    """A 28x28 grayscale image file used as it is, as a float tensor in [0, 1]."""
    import numpy as np
    import torch

    from .errors import ImageError
    from .preprocess import load_image

    im = load_image(path)
    if im.size != (28, 28):
        raise ImageError(f"{path}: image is {im.size[0]}x{im.size[1]}; --no-preprocess takes 28x28 images "
                         f"(drop it to preprocess any image the way MNIST was)")
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)


def _top(probs, classes, k):
    vals, idx = probs.topk(min(k, len(probs)))
    return [{"class": classes[int(i)], "label": int(i), "probability": round(float(v), 6)}
            for v, i in zip(vals, idx)]


def cmd_predict(args):
    import torch

    from .checkpoint import atomic_write_text, load_checkpoint
    from .data import KAGGLE_LEAK_WARNING, load_dataset, load_kaggle_csv
    from .train import predict

    if args.show_preprocessed and not args.image:
        raise ConfigError("--show-preprocessed needs --image")
    if not (args.index or args.image or args.csv):
        raise ConfigError("nothing to predict: give --index, --image or --csv")
    ckpt = load_checkpoint(args.checkpoint)
    classes = ckpt.classes or tuple(str(i) for i in range(10))
    results, lines = [], []
    if args.index:
        data = load_dataset(_dataset_for(ckpt, args), args.split, args.data_dir, download=not args.no_download)
        bad = [i for i in args.index if i >= len(data)]
        if bad:
            raise ConfigError(f"--index {bad[0]} is out of range: {data.name} has {len(data):,} images")
        probs = predict(ckpt.model, data.images[args.index])
        for i, p in zip(args.index, probs):
            label = int(data.labels[i])
            pred = int(p.argmax())
            top = _top(p, classes, args.top)
            results.append({"index": i, "label": label, "predicted": pred, "top": top})
            lines.append(f"[{i}] Label: {classes[label]}, Predicted: {classes[pred]}  "
                         + "  ".join(f"{t['class']}: {t['probability']:.3f}" for t in top))
    if args.image:
        from .preprocess import expand_image_args, preprocess

        files = expand_image_args(args.image)
        if args.no_preprocess:
            images = torch.stack([_load_image_28(f) for f in files])
        else:
            images = torch.stack([torch.from_numpy(preprocess(f, str(f))) for f in files])
        probs = predict(ckpt.model, images)
        if args.show_preprocessed:
            from .plots import gallery_plot
            gallery_plot((images * 255).round().byte(), [f"{Path(f).name[:14]}→{classes[int(p.argmax())]}" for f, p in zip(files, probs)],
                         ["black"] * len(files), args.show_preprocessed, cols=min(8, len(files)),
                         title="What the model saw (28x28, after preprocessing)")
        for f, p in zip(map(str, files), probs):
            top = _top(p, classes, args.top)
            results.append({"file": f, "predicted": int(p.argmax()), "top": top})
            lines.append(f"{f}: Predicted: {classes[int(p.argmax())]}  "
                         + "  ".join(f"{t['class']}: {t['probability']:.3f}" for t in top))
    if args.csv:
        data = load_kaggle_csv(args.csv)
        if ckpt.dataset == "mnist" or ckpt.config.get("dataset") == "mnist":
            print(KAGGLE_LEAK_WARNING, file=sys.stderr)
        preds = predict(ckpt.model, data.images).argmax(1).tolist()
        atomic_write_text(args.submission, "ImageId,Label\n" + "".join(f"{i},{p}\n" for i, p in enumerate(preds, 1)))
        results.append({"csv": args.csv, "submission": args.submission, "rows": len(preds)})
        lines.append(f"wrote {args.submission}: {len(preds):,} predictions (ImageId from 1)")
    _out(args, results, "\n".join(lines))
    return 0


# ======================================================================================
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MnistLogregError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
