"""Many runs at once: list them with their status and the settings that differ, and compare them
on one page.

A run's status is how its last session ended: ``complete``, ``interrupted`` (Ctrl-C),
``diverged`` (recorded in ``status.json`` by the run), ``pruned`` (an Optuna trial stopped
early), ``running`` (a process holds its lock),
``incomplete`` (killed, or written by an older version without metrics), ``unreadable`` (its
checkpoint does not load: the reason is shown). Folders that hold no run are skipped, and a
folder of runs (an Optuna study's trials) is listed run by run.

Example::

    from mnist_logreg.experiments import list_runs, runs_table, compare
    rows = list_runs("runs")                 # RunSummary per run folder, newest first
    print(runs_table(rows, sort="val_acc"))  # the table `mnist-logreg runs` prints
    compare(["runs/a", "runs/b"], "cmp.html")
"""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .runfolder import CHECKPOINT, CONFIG, STATUS

STATUSES = ("complete", "interrupted", "diverged", "pruned", "running", "incomplete", "unreadable")
COLUMNS = ("name", "dataset", "status", "epochs", "val_acc", "test_acc", "seconds")
MAX_DEPTH = 2  # runs/<run> and runs/<study>/<trial>


@dataclass
class RunSummary:
    """One run folder, as ``runs`` lists it."""

    path: Path
    name: str
    status: str
    dataset: str = ""
    epochs: int | None = None
    val_acc: float | None = None
    test_acc: float | None = None
    seconds: float | None = None
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict:
        return {"path": str(self.path), "name": self.name, "status": self.status, "dataset": self.dataset,
                "epochs": self.epochs, "val_acc": self.val_acc, "test_acc": self.test_acc, "seconds": self.seconds,
                "config": self.config, "message": self.message}


def _is_run(folder: Path) -> bool:
    return (folder / CHECKPOINT).is_file() or (folder / CONFIG).is_file()


def _folders(root: Path, depth: int):
    try:
        children = sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()), key=lambda p: p.name)
    except OSError:
        return
    for child in children:
        if _is_run(child):
            yield child
        elif depth > 1:
            yield from _folders(child, depth - 1)


def list_runs(runs_dir="runs") -> list:
    """A :class:`RunSummary` per run folder under ``runs_dir`` (two levels deep), by path."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such folder of runs")
    return [summarize(p, root) for p in _folders(root, MAX_DEPTH)]


def summarize(folder: Path, root: Path | None = None) -> RunSummary:
    """Read one run folder (its checkpoint, status.json); never raises for a broken run."""
    from .errors import CheckpointError

    name = _printable(str(folder.relative_to(root)) if root is not None else folder.name)  # a newline forged a row
    try:
        fields = _fields(folder / CHECKPOINT)
    except (CheckpointError, OSError, ValueError) as e:
        if (folder / CHECKPOINT).exists():
            return RunSummary(folder, name, "unreadable", message=_printable(str(e).splitlines()[0]))
        cfg = _config_toml(folder)  # no epoch saved yet: starting, or killed before its first
        status = "running" if _locked(folder) else "incomplete"
        return RunSummary(folder, name, status, dataset=cfg.get("dataset", ""), config=cfg,
                          message="" if status == "running" else "no checkpoint (killed before its first epoch?)")
    rows, metrics, cfg = _rows(fields.get("history")), dict(fields.get("metrics") or {}), dict(fields.get("config") or {})
    last = rows[-1] if rows else {}
    status, message = _status(folder, bool(metrics))
    return RunSummary(folder, name, status, dataset=_printable(str(cfg.get("dataset", fields.get("dataset", "mnist")))),
                      epochs=None if cfg.get("solver") == "newton" else _number(fields.get("epoch", 0)),  # newton: iterations
                      val_acc=_number(metrics.get("val_acc", last.get("val_acc"))),
                      test_acc=_number(metrics.get("test_acc")),
                      seconds=_number(metrics.get("train_seconds", round(sum(r.get("seconds") or 0 for r in rows), 3))),
                      config=cfg, history=rows, message=message)


def _fields(path: Path) -> dict:
    """The checkpoint's fields: read without torch (``runs`` on a folder of runs in a fraction of
    a second), or, when that reader cannot (a bare state_dict, a damaged file), by
    load_checkpoint, which says what is wrong."""
    from .checkpoint import load_checkpoint, read_fields
    from .errors import CheckpointError

    try:
        return read_fields(path)
    except CheckpointError:
        ckpt = load_checkpoint(path)
        return {"history": ckpt.history, "metrics": ckpt.metrics, "config": ckpt.config, "dataset": ckpt.dataset,
                "epoch": ckpt.epoch}


def _number(v):
    """A metric as a finite number, or None: a checkpoint may hold anything its schema allows
    (a string, a 400-digit integer, NaN), and `runs --json` must stay JSON."""
    import math
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        return v if math.isfinite(v) else None
    except OverflowError:
        return None


def _rows(history) -> list:
    """History rows that can be drawn: an integer epoch, numbers (or None) for the values."""
    out = []
    for r in history or []:
        if isinstance(r, dict) and _number(r.get("epoch")) is not None and isinstance(r["epoch"], int):
            out.append({k: _number(v) for k, v in r.items() if isinstance(k, str)})
    return out


def _config_toml(folder: Path) -> dict:
    from .config import TrainConfig

    try:
        return TrainConfig.load(folder / CONFIG).to_dict()
    except (ConfigError, OSError):
        return {}


MAX_STATUS_BYTES = 64 * 1024  # status.json is a few hundred bytes; a FIFO, /dev/zero or 300 MB is not one


def _status(folder: Path, has_metrics: bool):
    """How the run's last session ended. A process holding the folder's lock is running,
    whatever an older status.json says (it said "complete" during a resume); the file is read
    with the bounded reader (no FIFO, no device, at most 64 KiB) and its nesting is never parsed
    deeper than a status needs."""
    from ._files import read_input

    if _locked(folder):
        return "running", ""
    try:
        raw = read_input(folder / STATUS, MAX_STATUS_BYTES, ConfigError)
        recorded = json.loads(raw) if raw.count(b"{") + raw.count(b"[") <= 8 else None
        if isinstance(recorded, dict) and recorded.get("status") in STATUSES:
            return recorded["status"], _printable(str(recorded.get("message", "")))
    except (ConfigError, ValueError, RecursionError):
        pass
    if has_metrics:
        return "complete", ""
    return "incomplete", "ended without a status (killed?)"


def _printable(text: str, limit: int = 200) -> str:
    """A message or name for the terminal: control characters (escapes, newlines that forge a
    table row) shown as '?', at most ``limit`` characters."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _locked(folder: Path) -> bool:
    """Whether a process trains in ``folder`` now: runfolder.locked's lock is held."""
    from .runfolder import locked

    try:
        with locked(folder):
            return False
    except ConfigError:
        return True


def differing_settings(runs, *, columns=COLUMNS) -> list:
    """The settings whose values are not the same in every run listed; those that do not change
    results (the resumable ones: data_dir, threads, engine, ...) and those shown in ``columns``
    of their own (``runs``' dataset and epochs) are left out."""
    from .config import TrainConfig, resumable

    configs = [r.config for r in runs if r.config]
    names = [n for n in TrainConfig.names() if (n == "epochs" or not resumable(n)) and n not in columns]
    return [n for n in names if len({json.dumps(c.get(n), sort_keys=True) for c in configs}) > 1]


def _cell(value, column="") -> str:
    if value is None or value == "":
        return "-"
    if column == "seconds":
        return f"{value:.2f}"
    if column in ("val_acc", "test_acc"):
        return f"{value:.4f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def sort_runs(runs, column: str = "name") -> list:
    """``runs`` sorted by a column or a setting; accuracies best first, missing values last."""
    from .config import TrainConfig

    if column not in COLUMNS and column not in TrainConfig.names():
        raise ConfigError(f"cannot sort by {column!r}; the columns are: {', '.join(COLUMNS)}, or a setting's name")
    best_first = column in ("val_acc", "test_acc")
    present = [r for r in runs if _value(r, column) is not None]
    missing = [r for r in runs if _value(r, column) is None]
    return sorted(present, key=lambda r: _key(_value(r, column)), reverse=best_first) + missing


def _value(run, column):
    return getattr(run, column) if column in COLUMNS else run.config.get(column)


def _key(value):
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0, str(value))


def runs_table(runs, sort: str = "name") -> str:
    """The table ``mnist-logreg runs`` prints: the fixed columns, then the differing settings."""
    columns = list(COLUMNS) + differing_settings(runs)
    rows = sort_runs(runs, sort)
    table = [columns] + [[_cell(_value(r, c), c) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in table]
    notes = [f"{r.name}: {r.message}" for r in rows if r.message]
    return "\n".join(lines[:1] + ["  ".join("-" * w for w in widths)] + lines[1:] + notes)


# -- compare: one page ---------------------------------------------------------------------------
def compare(paths, out, *, force: bool = False, title: str = "Runs compared") -> Path:
    """Write an HTML page comparing runs: validation accuracy and loss per epoch overlaid,
    settings side by side (differing ones marked), metrics. Figures are PNGs inside the page.
    An existing ``out`` is replaced only with ``force``."""
    from ._files import atomic_write_text, check_output

    paths = [Path(p) for p in paths]
    runs = [summarize(p) for p in paths]
    bad = [r for r in runs if r.status == "unreadable" or not r.history]
    if bad:
        raise ConfigError(f"{bad[0].path}: not a run with a history to compare ({bad[0].message or bad[0].status})")
    out = check_output(out, force=force, inputs=[f for p in paths for f in p.iterdir()])  # every file of the runs
    figures = [_curves(runs, "val_acc", "validation accuracy"), _curves(runs, "val_loss", "validation loss"),
               _curves(runs, "train_loss", "training loss")]
    atomic_write_text(out, _page(runs, figures, title))
    return out


def _curves(runs, key, label) -> str:
    """A PNG (base64) of ``key`` per epoch, one line per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    colours = plt.get_cmap("tab10").colors
    for i, r in enumerate(runs):  # a run keeps its colour in every plot, drawn or not
        pts = [(row["epoch"], row[key]) for row in r.history if row.get(key) is not None]
        if pts:
            newton = r.config.get("solver") == "newton"
            ax.plot(*zip(*pts), marker="o" if len(pts) < 3 else None, color=colours[i % len(colours)],
                    label=r.name + (" (newton: one exact solve)" if newton else ""))
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")  # no clipped axis labels
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _page(runs, figures, title) -> str:
    from .config import TrainConfig

    esc, differ = html.escape, set(differing_settings(runs, columns=()))  # here every setting is a row: epochs too
    head = "".join(f"<th>{esc(r.name)}</th>" for r in runs)
    metric_rows = "".join(
        f"<tr><th>{c}</th>" + "".join(f"<td>{esc(_cell(getattr(r, c), c))}</td>" for r in runs) + "</tr>"
        for c in COLUMNS[1:])
    settings = "".join(
        f"<tr{' class=differ' if n in differ else ''}><th>{n}</th>"
        + "".join(f"<td>{esc(_cell(r.config.get(n)))}</td>" for r in runs) + "</tr>" for n in TrainConfig.names())
    imgs = "".join(f'<img alt="{esc(alt)}" src="data:image/png;base64,{b64}">'
                   for alt, b64 in zip(("validation accuracy per epoch", "validation loss per epoch",
                                        "training loss per epoch"), figures))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}}
h1{{margin:0;padding:18px 28px;background:#1d2330;color:#fff;font-size:22px}}main{{max-width:1180px;margin:0 auto;padding:20px}}
h2{{font-size:17px;margin:22px 0 8px}}table{{border-collapse:collapse;background:#fff;font-size:13px}}
td,th{{border-bottom:1px solid #e3e6ea;padding:5px 10px;text-align:left}}tr.differ{{background:#fff3c4}}
.curves{{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:14px}}
.curves img{{width:100%;background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002}}</style></head><body>
<h1>{esc(title)}</h1><main><h2>Curves</h2><div class="curves">{imgs}</div>
<h2>Metrics</h2><table><tr><th></th>{head}</tr>{metric_rows}</table>
<h2>Settings</h2><p>Highlighted: the settings that differ.</p><table><tr><th></th>{head}</tr>{settings}</table>
</main></body></html>
"""
