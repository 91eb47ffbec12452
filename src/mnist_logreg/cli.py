"""The ``mnist-logreg`` command line. Heavy modules (torch, matplotlib) are imported inside
the commands that need them, so ``--help`` answers at once."""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path

from ._files import check_output
from .errors import ConfigError, MnistLogregError

NOTEBOOK_INDICES = [0, 10, 200, 1839]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error of the tool."""

    def error(self, message):
        self.exit(2, f"error: {message}{self._did_you_mean(message)} (see: {self._command()} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        import sys
        self._argv = [str(a) for a in (sys.argv[1:] if args is None else args)]
        return super().parse_known_args(args, namespace)

    def _subparser(self):
        """The subcommand's parser the arguments named, else this one."""
        sub = self._subparsers._group_actions[0].choices if self._subparsers else {}
        given = next((a for a in getattr(self, "_argv", []) if not a.startswith("-")), None)
        return sub.get(given, self)

    def _command(self) -> str:
        """The subcommand the arguments named (its --help lists its options), else the tool."""
        return self._subparser().prog

    def _did_you_mean(self, message: str) -> str:
        """--learning-rate: "did you mean --lr?" (a close spelling, or a flag whose words it holds)."""
        import difflib
        import re
        unknown = re.findall(r"(--[\w-]+)", message) if message.startswith("unrecognized arguments") else []
        flags = [o for a in self._subparser()._actions for o in a.option_strings if o.startswith("--")]
        for u in unknown:
            words = u[2:].split("-")
            close = difflib.get_close_matches(u, flags, n=1, cutoff=0.6) or [
                f for f in flags if f[2:] == "".join(w[0] for w in words) or f[2:] in words[:1]]
            if close:
                return f"; did you mean {close[0]}?"
        return ""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every real default; flags (default off) and "not set" (None) say so in their text."""

    def _get_help_string(self, action):
        # identity, not ==: a default of 0 or 0.0 is a real default to show (0 == False)
        if (action.default is None or action.default is False or action.default is argparse.SUPPRESS
                or "(default: " in (action.help or "")):  # said in its own words already
            return action.help
        return super()._get_help_string(action)


def _number(cast, low, strict: bool, rule: str, high=None):
    """An argparse type: a finite number of type ``cast`` that is > low (strict) or >= low, and
    at most ``high`` (for the options that are no settings of a config; settings are checked by
    their config)."""
    noun = "a whole number" if cast is int else "a number"

    def parse(text):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if (v != v or v in (float("inf"), float("-inf")) or (low is not None and (v <= low if strict else v < low))
                or (high is not None and v > high)):
            raise argparse.ArgumentTypeError(f"must be {rule or 'a finite number'}, got {text}")
        return v

    return parse


_positive_int = _number(int, 1, False, "at least 1")
_nonneg_int = _number(int, 0, False, "0 or more")
_PARSE = {int: _number(int, None, False, ""), float: _number(float, None, False, ""), str: str}


def flag(name: str) -> str:
    """The command-line flag of a setting: ``loss_cap`` -> ``--loss-cap``."""
    return "--" + name.replace("_", "-")


def add_settings(p, cls, names=None) -> list:
    """One option per setting of the config class ``cls`` (all, or those in ``names``),
    generated from its field table: type, choices and help with the default. Options that
    are not given stay out of the parsed namespace (the config's own default, a preset's or a
    config file's value applies). Returns the names added."""
    import dataclasses
    import typing

    from .config import setting_types

    hints, added = setting_types(cls), []
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names:
            continue
        m, hint = f.metadata, hints[f.name]
        shown = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        said = f.default is None or f.default is False or "(default: " in m["help"]  # nothing, or in its own words
        text = m["help"].replace("%", "%%") + ("" if said else f" (default: {shown})")
        kw = dict(default=argparse.SUPPRESS, help=text, dest=f.name)
        if hint is bool:
            p.add_argument(flag(f.name), action="store_true", **kw)
        else:
            base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
            if typing.get_origin(hint) is tuple:
                kw["nargs"], base = "+", typing.get_args(hint)[0]
            if m.get("const") is not None:
                kw.update(nargs="?", const=m["const"])
            p.add_argument(flag(f.name), type=_PARSE[base], choices=m["choices"], metavar=m["metavar"], **kw)
        added.append(f.name)
    return added


def _given(args, names) -> dict:
    """The settings among ``names`` that were given on the command line."""
    return {k: getattr(args, k) for k in names if hasattr(args, k)}


def _add_data_args(p, dataset=True):
    """--dataset, --data-dir and --no-download for the commands that read a dataset but train
    nothing; their help is TrainConfig's (declared once), their defaults the command's own."""
    import dataclasses

    from .config import TrainConfig

    help_of = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}
    if dataset:
        p.add_argument("--dataset", default="mnist", metavar="NAME", help=help_of["dataset"])
    p.add_argument("--data-dir", metavar="DIR", default=None, help=help_of["data_dir"])
    p.add_argument("--no-download", action="store_true", help=help_of["no_download"])


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
    for add in (_add_data, _add_train, _add_report, _add_show, _add_tune, _add_runs, _add_compare, _add_evaluate,
                _add_predict, _add_serve, _add_export):  # one function per subcommand, in --help's order
        add(sub)
    return parser


def _add_data(sub) -> None:
    p = sub.add_parser("data", formatter_class=_Formatter, help="show which datasets are found where",
                       description="Show, for each known dataset, where its files were found "
                                   "(or where they were looked for).")
    p.add_argument("--dataset", default=None, metavar="NAME", help="only this dataset (default: all)")
    p.add_argument("--data-dir", metavar="DIR", default=None, help="folder searched first")
    p.add_argument("--check", action="store_true", help="also read every file and check it")
    p.add_argument("--download", action="store_true", help="download what is missing")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_data)


def _add_train(sub) -> None:
    from .config import PRESETS, TrainConfig

    p = sub.add_parser("train", formatter_class=_Formatter, help="train a model and write a run folder",
                       description="Train on the training split (minus a seeded validation split), "
                                   "print the notebook's per-epoch line, evaluate on the test set and "
                                   "write runs/NAME/: checkpoint.pt, config.toml, history.csv/.json, "
                                   "metrics.json, status.json, accuracy.png, samples.png and the report "
                                   "(report.html with its figures). Settings come from --preset or --config, "
                                   "then the options "
                                   "given here.",
                       epilog="Presets:\n" + "\n".join(f"  {k:9s} {v[1]}" for k, v in PRESETS.items()))
    start = p.add_mutually_exclusive_group()
    start.add_argument("--preset", choices=list(PRESETS), default=None,
                       help="start from a named recipe (see below; default: notebook)")
    start.add_argument("--config", metavar="FILE", default=None,
                       help="start from a TOML file of settings (e.g. a run's config.toml or --print-config's "
                            "output); options given here override it")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved settings as TOML and exit (nothing is trained or written)")
    p.add_argument("--runs-dir", metavar="DIR", default="runs", help="where run folders are created")
    p.add_argument("--name", default=None, help="run folder name (default: DATASET-YYYYmmdd-HHMMSS)")
    p.add_argument("--resume", metavar="RUN", default=None,
                   help="continue the run in folder RUN from its last checkpoint (data, split, seed and "
                        "optimizer settings come from the checkpoint; --epochs more are run)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html and its figures")
    add_settings(p.add_argument_group("settings (TrainConfig)"), TrainConfig)
    p.set_defaults(func=cmd_train)


def _add_report(sub) -> None:
    p = sub.add_parser("report", formatter_class=_Formatter, help="figures and report.html for a run",
                       description="Write, into the run folder (or --out), the figures (training curves, "
                                   "confusion matrix, weight templates, reliability diagram, most confident "
                                   "mistakes, sample predictions), report.json and a self-contained "
                                   "report.html, all on the test set.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    _add_data_args(p)
    p.set_defaults(dataset=None)
    p.add_argument("--out", metavar="DIR", default=None, help="output folder (default: the run folder)")
    p.add_argument("--force", action="store_true",
                   help="with --out: replace a report already there (the run folder's own is always rewritten)")
    p.set_defaults(func=cmd_report)


def _add_show(sub) -> None:
    p = sub.add_parser("show", formatter_class=_Formatter, help="draw dataset images, or print a pixel patch",
                       description="Draw a grid of dataset images with their labels, or with --index and "
                                   "--patch print the pixel values of a crop (0 = black, 1 = white) and draw it.")
    _add_data_args(p)
    p.add_argument("--split", choices=["train", "test"], default="train", help="which split")
    p.add_argument("--index", type=_nonneg_int, nargs="+", default=None,
                   help="image indices (default: the first --count)")
    p.add_argument("--count", type=_number(int, 1, False, "between 1 and 1000", high=1000), default=16,
                   help="images in the grid (at most 1000)")
    p.add_argument("--patch", metavar="R0:R1,C0:C1", default=None,
                   help="print and draw rows R0..R1-1, columns C0..C1-1 of the first --index image (e.g. 5:10,5:10)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the picture to FILE (PNG); without it, only text is printed")
    p.add_argument("--force", action="store_true", help="replace an existing output file (never an input of the command)")
    p.set_defaults(func=cmd_show)


def _add_tune(sub) -> None:
    from .config import TUNE_TRAIN_SETTINGS, TrainConfig, TuneConfig

    p = sub.add_parser("tune", formatter_class=_Formatter, help="choose lam (or lr and epochs) on the validation split",
                       description="Grid search by validation accuracy. newton: one exact optimum per lam "
                                   "(warm-started from the previous one); minibatch: per lr, the best epoch. "
                                   "Prints the table, evaluates the winner on the test set once, and writes "
                                   "runs/NAME/ (tune.json, checkpoint.pt, config.toml with the winner's "
                                   "settings). --refit retrains the winner on train+validation first. "
                                   "--search optuna instead runs an Optuna study of the minibatch recipe, a run "
                                   "folder per trial, shared with every process (or machine) that runs the same "
                                   "--study on the same --storage; --best prints the study's best settings.")
    add_settings(p.add_argument_group("search (TuneConfig)"), TuneConfig)
    add_settings(p.add_argument_group("data and training (TrainConfig)"), TrainConfig, TUNE_TRAIN_SETTINGS)
    p.add_argument("--runs-dir", metavar="DIR", default="runs", help="where run folders are created")
    p.add_argument("--name", default=None, help="run folder name (default: DATASET-tune-TIMESTAMP)")
    p.add_argument("--best", action="store_true",
                   help="optuna: run no trials; print the best trial's settings as TOML (a config file for train "
                        "--config); with --refit, also retrain them on train+validation and test once")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_tune)


def _add_runs(sub) -> None:
    from .experiments import COLUMNS

    p = sub.add_parser("runs", formatter_class=_Formatter, help="list runs: status, differing settings, accuracy",
                       description="One row per run folder in RUNS_DIR (and per trial in a study's folder): its "
                                   "status (complete, interrupted, diverged, pruned, running, incomplete, "
                                   "unreadable), the settings that differ between the runs listed, epochs, "
                                   "validation and test accuracy, training time.")
    p.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR", help="the folder of runs (default: runs)")
    p.add_argument("--sort", default="name", metavar="COLUMN",
                   help=f"sort by a column: {', '.join(COLUMNS)} (accuracies best first) or a setting's name "
                        f"(default: name)")
    p.add_argument("--json", action="store_true", help="print JSON (every setting of every run)")
    p.set_defaults(func=cmd_runs)


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", formatter_class=_Formatter, help="one HTML page comparing runs",
                       description="Validation accuracy and loss per epoch overlaid, the settings side by side "
                                   "(those that differ highlighted), the metrics; the figures are inside the page.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the HTML file to write")
    p.add_argument("--force", action="store_true", help="replace an existing output file (never an input of the command)")
    p.set_defaults(func=cmd_compare)


def _add_evaluate(sub) -> None:
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


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", formatter_class=_Formatter, help="predict dataset images, image files or a CSV",
                       description="Predict with a trained model: dataset images by index, image files "
                                   "(photos and drawings, preprocessed the way MNIST was), or a Kaggle test.csv "
                                   "(writing submission.csv). Each answer has a state: digit (sure), unsure "
                                   "(between two classes), not a digit (unlike the training images), too small, "
                                   "blank; probabilities are calibrated on held-out images when the run has them.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--index", type=_nonneg_int, nargs="+", default=None,
                   help=f"dataset image indices (the notebook's: {' '.join(map(str, NOTEBOOK_INDICES))})")
    p.add_argument("--split", choices=["test", "train"], default="test", help="split that --index refers to")
    p.add_argument("--image", nargs="+", metavar="FILE_OR_DIR", default=None,
                   help="image files or folders of them (PNG, JPEG, BMP, GIF, WebP, ...): photos and drawings "
                        "are preprocessed the way MNIST was (see --no-preprocess); a folder with a labels.csv "
                        "(file,label: what serve --collect writes) is scored against its labels")
    p.add_argument("--no-preprocess", action="store_true",
                   help="use --image files as they are: 28x28 grey, light digit on dark, like MNIST")
    p.add_argument("--show-preprocessed", metavar="PNG", default=None,
                   help="save a picture of what the model saw for each --image")
    p.add_argument("--explain", metavar="PNG", default=None,
                   help="save, for each --image or --index input, what the model saw beside its evidence map: "
                        "(W_answer - W_runner_up) x pixel, red for the answer, blue for the runner-up; the map sums "
                        "to the logit difference less the bias difference")
    p.add_argument("--csv", metavar="FILE", default=None, help="a Kaggle test.csv to predict")
    p.add_argument("--submission", metavar="FILE", default="submission.csv",
                   help="where --csv writes ImageId,Label")
    p.add_argument("--top", type=_positive_int, default=3, help="how many (calibrated) probabilities to show")
    p.add_argument("--force", action="store_true", help="replace an existing output file (never an input of the command)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_data_args(p)
    p.set_defaults(dataset=None)
    p.set_defaults(func=cmd_predict)


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", formatter_class=_Formatter, help="the drawing web app and REST API",
                       description="Serve a drawing page (GET /) and a REST API (POST /api/predict, GET "
                                   "/api/health, GET /api/model, docs at /api/docs) for one model, loaded "
                                   "once at start. The app keeps no state between requests: --workers N "
                                   "runs N processes on one port, and any number of servers can stand "
                                   "behind a load balancer.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (only this one)")
    p.add_argument("--port", type=_number(int, 0, False, "a port number, 0 to 65535", high=65535), default=8000,
                   help="port to bind (0: any free port)")
    p.add_argument("--max-body-mb", type=_number(float, 0.0, True, "more than 0 and at most 1024", high=1024),
                   default=10.0, help="larger request bodies get 413 (at most 1024)")
    p.add_argument("--workers", type=_number(int, 1, False, "at least 1, at most 64", high=64), default=1,
                   help="server processes sharing the port (uvicorn's workers; each loads the model, ~150 MB)")
    p.add_argument("--header-timeout", type=_number(float, 0.0, True, "more than 0 and at most 600", high=600),
                   default=10.0, metavar="S", help="drop a connection whose request headers have not all arrived "
                                                   "within S seconds (slow or stalled clients)")
    p.add_argument("--collect", metavar="DIR", default=None,
                   help="offer \"Wrong? It was ...\" on the page and save each correction into DIR (the 28x28 "
                        "input, the label, the time: labels.csv + PNGs, for train --extra-images DIR); off by "
                        "default")
    p.add_argument("--collect-max", type=_number(int, 1, False, "at least 1, at most 1000000", high=10**6),
                   default=10_000, metavar="N", help="examples --collect keeps at most (then 507)")
    p.set_defaults(func=cmd_serve)


def _add_export(sub) -> None:
    p = sub.add_parser("export", formatter_class=_Formatter, help="write the model as ONNX, TorchScript or a web page",
                       description="ONNX: one file with the weights inside, input 'pixels' float32 "
                                   "(batch, 1, 28, 28) in [0, 1] with a dynamic batch, outputs 'logits' and "
                                   "'probabilities' (batch, 10). TorchScript: the same input, logits out. "
                                   "web: a folder with the drawing page and the model, which preprocesses and "
                                   "predicts in the browser: it works from disk (file://) or any static host.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--format", choices=["onnx", "torchscript", "web"], default="onnx", help="what to write")
    p.add_argument("-o", "--output", metavar="PATH", required=True, help="file to write (web: a folder)")
    p.add_argument("--force", action="store_true", help="replace an existing output file (never an input of the command)")
    p.set_defaults(func=cmd_export)


def cmd_serve(args):
    import torch
    import uvicorn

    from .serve import create_app

    torch.set_num_threads(1)  # many small requests: one thread each, served concurrently
    limit = int(args.max_body_mb * 1024 * 1024)
    if args.collect:
        _check_collect_folder(Path(args.collect), args.checkpoint)
    from .serve import LOOPBACK_HOSTS
    hosts = LOOPBACK_HOSTS if args.host in ("127.0.0.1", "localhost", "::1") else None  # else: a proxy's to check
    from .serve import snapshot_run
    source = snapshot_run(args.checkpoint) if args.workers > 1 else args.checkpoint  # workers: fixed bytes
    app = create_app(source, max_body_bytes=limit, collect=args.collect,  # loaded here first: a bad
                     collect_max=args.collect_max, allowed_hosts=hosts)   # checkpoint is one line
    workers = f", {args.workers} workers" if args.workers > 1 else ""
    print(f"serving {args.checkpoint} on http://{args.host}:{args.port}/{workers} (Ctrl-C stops)", flush=True)
    if args.workers > 1:  # uvicorn starts the processes; each builds its app from these
        os.environ["MNIST_LOGREG_SERVE_CHECKPOINT"] = str(source)
        os.environ["MNIST_LOGREG_SERVE_MAX_BODY"] = str(limit)
        os.environ["MNIST_LOGREG_SERVE_COLLECT"] = str(Path(args.collect).resolve()) if args.collect else ""
        os.environ["MNIST_LOGREG_SERVE_COLLECT_MAX"] = str(args.collect_max)
        os.environ["MNIST_LOGREG_SERVE_HOSTS"] = ",".join(hosts or ())
        app = "mnist_logreg.serve:app_from_environment"
    try:
        os.environ["MNIST_LOGREG_SERVE_HEADER_TIMEOUT"] = str(args.header_timeout)
        from .serve.protocol import quiet_repeats
        quiet_repeats()
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                    workers=args.workers, factory=args.workers > 1,
                    http="mnist_logreg.serve.protocol:HeaderDeadline",  # a deadline for each request's headers
                    limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=5)
    except OSError as e:
        raise ConfigError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    finally:
        if source != args.checkpoint:  # the workers' snapshot (the CLI ends with os._exit: no atexit)
            import shutil
            shutil.rmtree(source, ignore_errors=True)
    return 0


MAX_CONNECTIONS = 512  # per server process: past it, 503 at once (the open-file limit is 1,024 here)


def _check_collect_folder(folder: Path, checkpoint) -> None:
    """--collect DIR: a new or empty folder, or one of examples already (labels.csv), never
    the served run's folder or any other folder of files."""
    from .examples import INDEX

    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--collect {folder}: is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / INDEX).is_file():
        raise ConfigError(f"--collect {folder}: holds files but no {INDEX}; give a new or empty folder, or one "
                          f"that serve --collect wrote")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--collect {folder}: cannot create it: {e.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"--collect {folder}: not writable")


def cmd_export(args):
    from .checkpoint import load_checkpoint
    from .export import export

    if args.format == "web":
        from .web import export_site
        site = export_site(load_checkpoint(args.checkpoint), args.output, force=args.force)
        print(f"wrote {site}/ (index.html, model.js, static/): open {site / 'index.html'} in a browser, or put "
              f"the folder on any static host")
        return 0
    check_output(args.output, force=args.force, inputs=_checkpoint_files(args.checkpoint))
    ckpt = load_checkpoint(args.checkpoint)
    path = export(ckpt.model, args.output, args.format, trust=ckpt.trust)
    print(f"wrote {path} ({args.format}, {path.stat().st_size:,} bytes)")
    if args.format == "onnx":
        answering = ckpt.trust is not None and ckpt.trust.likeness is not None
        print("input 'pixels': float32 (batch, 1, 28, 28) in [0, 1]; outputs 'logits', 'probabilities': (batch, 10)"
              + (" (calibrated), 'likeness', 'state' (batch,): see the file's metadata" if answering else ""))
    return 0


# ======================================================================================
# commands
# ======================================================================================
def _checkpoint_files(arg) -> list:
    """The files a RUN_OR_CHECKPOINT argument reads: the file, or a run folder's checkpoint."""
    from .runfolder import CHECKPOINT
    return [Path(arg), Path(arg) / CHECKPOINT]


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


def cmd_train(args):
    from .config import TrainConfig
    from .run import Run, resolve, train_run

    log = functools.partial(print, flush=True)  # epoch lines show up at once, even through a pipe
    given = _given(args, TrainConfig.names())
    if args.resume:
        if args.preset or args.config:
            raise ConfigError("--preset and --config start a new run; --resume continues one with its own settings")
        run = Run.open(args.resume)
        if args.print_config:
            print(run.config.to_toml(), end="")
            return 0
        run.resume(given.pop("epochs", 20), report=not args.no_report, log=log, **given)
        return 0
    base = TrainConfig.load(args.config) if args.config else TrainConfig.preset(args.preset or "notebook")
    cfg = base.replace(**given)
    if args.print_config:
        print(resolve(cfg).to_toml(), end="")
        return 0
    train_run(cfg, args.runs_dir, args.name, report=not args.no_report, log=log)
    return 0


def cmd_tune(args):
    from .config import TUNE_TRAIN_SETTINGS, TrainConfig, TuneConfig
    from .tuning import tune

    given = _given(args, TUNE_TRAIN_SETTINGS)
    cfg = TrainConfig().replace(**given)
    search = TuneConfig().replace(**_given(args, TuneConfig.names()))
    if search.search == "optuna" or args.best:
        if "space" not in _given(args, ["space"]):  # what the command line fixes is not sampled
            search = search.replace(space=tuple(n for n in search.space if n not in given))
        return _cmd_sweep(args, cfg, search)
    # with --json, stdout is the JSON alone: the progress lines go to stderr
    log = functools.partial(print, flush=True, file=sys.stderr if args.json else sys.stdout)
    result = tune(cfg, search, args.runs_dir, args.name, log=log)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    return 0


def _cmd_sweep(args, cfg, search):
    """tune --search optuna (trials in this process), or --best (the study's best settings)."""
    from .datasets import get_spec
    from .sweep import best_config, refit_best, sweep

    study = search.study or f"{get_spec(cfg.dataset).name}-sweep"
    log = functools.partial(print, flush=True, file=sys.stderr if args.json or args.best else sys.stdout)
    if not args.best:
        s = sweep(cfg, study, search.storage, trials=search.trials, space=search.space, runs_dir=args.runs_dir,
                  timeout=search.timeout, log=log)
        log(f"study {study}: {len(s.trials)} trials in all; the best so far: trial {s.best_trial.number}, "
            f"val_acc {s.best_value:.4f}")
    best, trial = best_config(study, search.storage, runs_dir=args.runs_dir, base=cfg)  # paths: this command's
    result = {"study": study, "trial": trial.number, "val_acc": trial.value, "config": best.to_dict()}
    if search.refit:
        run = refit_best(study, search.storage, runs_dir=args.runs_dir, log=log, base=cfg)
        result.update(refit_run=str(run.path), test_acc=run.metrics["test_acc"])
        log(f"refit on train+validation: test_acc {run.metrics['test_acc']:.4f} ({run.path})")
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.best:
        print(f"# study {study}, trial {trial.number}: val_acc {trial.value:.4f}\n" + best.to_toml(), end="")
    return 0


def cmd_runs(args):
    from .experiments import list_runs, runs_table, sort_runs

    runs = list_runs(args.runs_dir)
    if args.json:
        print(json.dumps([r.to_dict() for r in sort_runs(runs, args.sort)], indent=2))
    elif not runs:
        print(f"no runs in {args.runs_dir}")
    else:
        print(runs_table(runs, args.sort))
    return 0


def cmd_compare(args):
    from .experiments import compare

    path = compare(args.runs, args.output, force=args.force)
    print(f"wrote {path} ({len(args.runs)} runs)")
    return 0


def cmd_report(args):
    from .plots import Painter

    painter = Painter()  # first: matplotlib loads in its helper while torch loads here
    from .report import build_report
    from .runfolder import REPORT

    if args.out is not None and (Path(args.out) / REPORT).exists() and not args.force:
        painter.close()
        raise ConfigError(f"--out {args.out}: already holds a report.html; add --force to replace it")
    build_report(args.checkpoint, data_dir=args.data_dir, download=not args.no_download, out_dir=args.out,
                 dataset=args.dataset, painter=painter)
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
    from .pictures import image_grid
    from .plots import patch_plot

    patch = _parse_patch(args.patch) if args.patch else None
    from .data import find_files
    if args.output is not None:
        check_output(args.output, force=args.force,
                     inputs=(find_files(get_spec(args.dataset).name, args.data_dir) or {}).values())
    data = load_dataset(get_spec(args.dataset).name, args.split, args.data_dir, download=not args.no_download)
    index = args.index or list(range(min(args.count, len(data))))
    if len(index) > 1000:  # one picture: 1000 images is already 4 MB of PNG
        raise ConfigError(f"--index: at most 1000 images in one picture, got {len(index)}")
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
        if args.output is not None:
            patch_plot(crop, args.output, f"{data.name}[{i}] pixels [{r0}:{r1}, {c0}:{c1}]")
    else:
        print(f"{data.name}: " + ", ".join(f"[{i}] {data.classes[int(data.labels[i])]}" for i in index))
        if args.output is not None:
            image_grid(data.images[index], data.labels[index], args.output, classes=data.classes,
                       title=f"{data.name}: images {', '.join(map(str, index[:6]))}{', ...' if len(index) > 6 else ''}")
    print(f"wrote {args.output}" if args.output is not None else "(add -o FILE.png to draw them)")
    return 0


def _dataset_for(ckpt, args):
    """The dataset a checkpoint was trained on (a notebook .pth: --dataset, default mnist)."""
    name = args.dataset or ckpt.dataset or "mnist"
    if name == "kaggle-csv":
        raise ConfigError("this model was trained on a Kaggle CSV; pass --dataset mnist to use MNIST images")
    return name


def cmd_evaluate(args):
    from .checkpoint import load_checkpoint
    from .config import TrainConfig
    from .data import load_dataset
    from .metrics import confusion_matrix, evaluate, format_confusion, per_class_accuracy
    from .model import predict
    from .run import config_of, run_split

    ckpt = load_checkpoint(args.checkpoint)
    name = _dataset_for(ckpt, args)
    if args.split == "test":
        data = load_dataset(name, "test", args.data_dir, download=not args.no_download)
    else:  # the run's own split (a notebook .pth: the default one)
        full = load_dataset(name, "train", args.data_dir, download=not args.no_download)
        cfg = config_of(ckpt) if ckpt.config else TrainConfig()
        tr, va = run_split(cfg, full)
        data = va if args.split == "val" else tr
    r = evaluate(ckpt.model, data)
    preds = predict(ckpt.model, data.images).argmax(1)
    cm = confusion_matrix(data.labels, preds, len(data.classes))
    per_class = per_class_accuracy(cm)
    result = {"checkpoint": str(ckpt.path), "dataset": name, "split": args.split, "n": len(data),
              "loss": r["loss"], "accuracy": r["accuracy"],
              "per_class_accuracy": dict(zip(data.classes, per_class)), "confusion_matrix": cm.tolist()}
    text = [f"{name}/{args.split}: {len(data):,} images",
            f"loss: {r['loss']:.4f}, accuracy: {r['accuracy']:.4f}", "", "per-class accuracy:"]
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


def cmd_predict(args):
    from .answers import Predictor
    from .checkpoint import load_checkpoint

    if args.show_preprocessed and not args.image:
        raise ConfigError("--show-preprocessed needs --image")
    if args.explain and not (args.image or args.index):
        raise ConfigError("--explain needs --image or --index")
    if not (args.index or args.image or args.csv):
        raise ConfigError("nothing to predict: give --index, --image or --csv")
    inputs = [*_checkpoint_files(args.checkpoint), args.csv, *(args.image or ())]
    files = []
    if args.image:
        from .preprocess import expand_image_args
        files = expand_image_args(args.image)
        inputs += files
    _check_counts(args, len(files))
    for out in (args.submission if args.csv else None, args.show_preprocessed, args.explain):
        if out is not None:  # refused before any work: never an input, an existing file only with --force
            check_output(out, force=args.force, inputs=inputs)
    ckpt = load_checkpoint(args.checkpoint)
    pred = Predictor.from_checkpoint(ckpt)
    results, lines, shown = [], [], []
    if not pred.calibrated:
        print("note: this checkpoint has no calibration or digit-likeness (a state_dict, a checkpoint written "
              "before they existed, or a run without a validation split and with calibration_holdout 0): "
              "probabilities are the plain softmax and 'not a digit' cannot be told", file=sys.stderr)
    if args.index:
        results, lines, shown = _predict_indices(args, ckpt, pred)
    if args.image:
        more = _predict_images(args, pred)
        results, lines, shown = results + more[0], lines + more[1], shown + more[2]
    if args.explain:
        _write_explanations(pred, shown, args.explain)
        lines.append(f"wrote {args.explain}: what the model saw and why, for each input")
    if args.csv:
        results.append(_predict_csv(args, ckpt))
        lines.append(f"wrote {args.submission}: {results[-1]['rows']:,} predictions (ImageId from 1)")
    _out(args, results, "\n".join(lines))
    return 0


MAX_PREDICT = 10_000   # inputs one predict call answers (200,000 indices took 1.6 GB); a CSV streams
MAX_PICTURE = 1_000    # inputs drawn in one --show-preprocessed / --explain picture (30,000: 2.2 GB, 319 MP)


def _check_counts(args, images: int) -> None:
    """Bounds on the work one predict call takes on, checked before any of it."""
    if len(args.index or ()) > MAX_PREDICT or images > MAX_PREDICT:
        what = "--index" if len(args.index or ()) > MAX_PREDICT else "--image"
        raise ConfigError(f"{what}: at most {MAX_PREDICT:,} inputs in one call, got "
                          f"{max(len(args.index or ()), images):,}; split them into several calls")
    drawn = len(args.index or ()) * bool(args.explain) + images * bool(args.show_preprocessed or args.explain)
    if drawn > MAX_PICTURE:
        raise ConfigError(f"--show-preprocessed / --explain: at most {MAX_PICTURE:,} inputs in one picture, "
                          f"got {drawn:,}")


def _answer_fields(a, k: int) -> dict:
    """An answer's JSON fields in ``predict --json``; ``top`` lists the k most probable classes."""
    d = a.to_dict()
    p = a.probabilities
    top = [] if p is None else sorted(range(len(p)), key=lambda i: (-p[i], i != a.label))[:k]  # a tie: the answer first
    return {"predicted": a.label, "state": a.state, "probability": d["probability"], "runner_up": a.runner_up,
            "likeness": d["likeness"], "message": d["message"],
            "top": [{"class": a.classes[i], "label": i, "probability": round(a.probabilities[i], 6)} for i in top]}


def _line(a, k: int) -> str:
    top = _answer_fields(a, k)["top"]
    return a.message + ("  [" + "  ".join(f"{t['class']}: {t['probability']:.3f}" for t in top) + "]" if top else "")


def _predict_indices(args, ckpt, pred):
    from .data import load_dataset

    data = load_dataset(_dataset_for(ckpt, args), args.split, args.data_dir, download=not args.no_download)
    bad = [i for i in args.index if i >= len(data)]
    if bad:
        raise ConfigError(f"--index {bad[0]} is out of range: {data.name} has {len(data):,} images")
    answers = pred.answers(data.images[args.index])
    results, lines = [], []
    for i, a in zip(args.index, answers):
        label = int(data.labels[i])
        results.append({"index": i, "label": label, **_answer_fields(a, args.top)})
        lines.append(f"[{i}] Label: {pred.classes[label]}, Predicted: "
                     f"{'-' if a.label is None else pred.classes[a.label]}  {_line(a, args.top)}")
    return results, lines, [(f"[{i}]", a) for i, a in zip(args.index, answers)]


def _predict_images(args, pred):
    import numpy as np

    from .preprocess import expand_image_args

    files = expand_image_args(args.image)
    answers = [pred.answer(_load_image_28(f).numpy()) if args.no_preprocess else pred.answer(f, str(f)) for f in files]
    if args.show_preprocessed:
        from .pictures import gallery_plot
        seen = [a.input if a.input is not None else np.zeros((28, 28), np.float32) for a in answers]
        gallery_plot((np.stack(seen) * 255).round().astype(np.uint8),
                     [f"{Path(f).name}→{_short(a, pred.classes)}" for f, a in zip(files, answers)],
                     ["black"] * len(files), args.show_preprocessed, cols=min(8, len(files)),
                     title="What the model saw (28x28, after preprocessing)")
    truth = _folder_labels(args.image, len(pred.classes))
    results = [{"file": str(f), **({"label": truth[f]} if f in truth else {}), **_answer_fields(a, args.top)}
               for f, a in zip(files, answers)]
    lines = [f"{f}: {'Label: ' + pred.classes[truth[f]] + ', ' if f in truth else ''}{_line(a, args.top)}"
             for f, a in zip(files, answers)]
    if truth:
        right = sum(a.label == truth[f] for f, a in zip(files, answers) if f in truth)
        lines.append(f"{right} of {len(truth)} labelled images right ({right / len(truth):.1%}; labels.csv)")
    return results, lines, [(Path(f).name, a) for f, a in zip(files, answers)]


def _folder_labels(paths, num_classes: int) -> dict:
    """{file: label} for the images of each folder given that has a labels.csv (examples.py's
    layout: what serve --collect writes)."""
    from .examples import INDEX, labels_of

    out = {}
    for p in map(Path, paths):
        if p.is_dir() and (p / INDEX).is_file():
            out.update({p / name: label for name, label in labels_of(p, num_classes).items()})
    return out


def _short(a, classes) -> str:
    """An answer in a few characters, for a caption."""
    if a.state in ("digit", "unsure"):
        return classes[a.label] + ("?" if a.state == "unsure" else "")
    return a.state.replace("-", " ")


def _write_explanations(pred, shown, path):
    """--explain: for each input with an answer, what the model saw and its evidence map."""
    from .pictures import evidence_plot

    usable = [(name, a) for name, a in shown if a.label is not None]
    if not usable:
        raise ConfigError("--explain: no input has an answer to explain (all blank or too small)")
    seen, maps, captions = [], [], []
    for name, a in usable:
        e = pred.explain(a.input)
        seen.append(e.seen)
        maps.append(e.map)
        captions.append((f"{name[:12]}→{_short(a, pred.classes)}",
                         f"{pred.classes[e.label]} vs {pred.classes[e.against]}: {e.logit_difference:+.1f}"))
    evidence_plot(seen, maps, captions, path,
                  title="What the model saw, and why: red pixels for the answer, blue for the runner-up")


def _predict_csv(args, ckpt):
    from ._files import atomic_write_text
    from .data import KAGGLE_LEAK_WARNING, load_kaggle_csv
    from .model import predict

    data = load_kaggle_csv(args.csv)
    if ckpt.dataset == "mnist" or ckpt.config.get("dataset") == "mnist":
        print(KAGGLE_LEAK_WARNING, file=sys.stderr)
    preds = predict(ckpt.model, data.images).argmax(1).tolist()
    atomic_write_text(args.submission, "ImageId,Label\n" + "".join(f"{i},{p}\n" for i, p in enumerate(preds, 1)))
    return {"csv": args.csv, "submission": args.submission, "rows": len(preds)}


# ======================================================================================
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import TrainingInterrupted

    try:
        return int(args.func(args) or 0)
    except TrainingInterrupted as e:  # the last complete epoch is saved; the message says how to go on
        print(e.render(flag), file=sys.stderr)
        return 130
    except MnistLogregError as e:  # settings named as this command line spells them: --loss-cap
        print(f"error: {e.render(flag)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``mnist-logreg`` program: main(), then exit without the interpreter's teardown.

    Every file is written (and synced) and every helper process waited for before main()
    returns; what remains at exit is tearing down torch's modules, about 0.6 s here (a third
    of a short command). In-process callers (tests, notebooks) call main() and keep their
    interpreter."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
