"""Whatever the command line holds, every subcommand ends with exit 0 or one line and exit 2,
never a traceback (issue 14, item 7): hypothesis draws each subcommand's own options (from
its parser) with values of every kind: wrong types, huge and non-finite numbers, paths to
special files, folders, existing files, missing ones."""
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnist_logreg.cli import build_parser

SUBCOMMANDS = ["data", "train", "report", "show", "tune", "evaluate", "predict", "export", "serve"]


@pytest.fixture(scope="module")
def places(tmp_path_factory, data_dir, dry_run_dir):
    root = tmp_path_factory.mktemp("argv")
    run = dry_run_dir
    (root / "file.txt").write_text("not a checkpoint, not an image\n")
    os.mkfifo(root / "fifo")
    (root / "folder").mkdir()
    return {"run": str(run), "file": str(root / "file.txt"), "fifo": str(root / "fifo"), "folder": str(root / "folder"),
            "missing": str(root / "missing.pt"), "under_file": str(root / "file.txt" / "x"), "zero": "/dev/zero",
            "data": str(data_dir)}


def _options(sub):
    parser = build_parser()
    sp = next(a for a in parser._actions if a.dest == "command").choices[sub]
    return [a for a in sp._actions if a.option_strings and a.dest not in ("help", "print_config", "download")]


VALUES = ["0", "1", "-1", "3", "1e308", "-1e308", "nan", "inf", "99999999999999999999999", "0.5", "x", "",
          "mnist", "fashion-mnist", "{run}", "{file}", "{fifo}", "{folder}", "{missing}", "{under_file}", "{zero}"]


def _argv(draw, sub, places):
    argv = [sub]
    if sub in ("report", "evaluate", "predict", "export", "serve"):
        argv.append(draw(st.sampled_from(["{run}", "{file}", "{fifo}", "{folder}", "{missing}", "{zero}"])))
    for action in draw(st.lists(st.sampled_from(_options(sub)), max_size=4, unique_by=lambda a: a.dest)):
        flag = action.option_strings[-1]
        if action.nargs == 0:
            argv.append(flag)
            continue
        pool = list(action.choices) + VALUES if action.choices else VALUES
        n = draw(st.integers(1, 2)) if action.nargs in ("+", "*") else 1
        argv += [flag] + [draw(st.sampled_from(pool)) for _ in range(n)]
    if sub == "train":
        argv.append("--print-config")  # everything up to training: parse, config, file, preset, resolve
    if sub in ("train", "tune", "show", "data", "evaluate", "predict", "report") and "--data-dir" not in argv:
        argv += ["--data-dir", "{data}"]
    return [a.format(**places) for a in argv]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_any_command_line_is_exit_0_or_one_line(sub, places, run_cli, monkeypatch, tmp_path):
    import uvicorn

    import mnist_logreg.tuning as tuning
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # serve: everything up to listening
    real_tune = tuning.tune
    # tune: the settings as given, run small (a dry run, one grid point, 2 epochs, no more threads
    # than cores, a tolerance Newton reaches in a few steps): the test is the command line
    monkeypatch.setattr(tuning, "tune", lambda cfg, search, *a, **k: real_tune(
        cfg.replace(dry_run=True, threads=None, tol=max(cfg.tol, 1e-4)),
        search.replace(max_epochs=min(search.max_epochs, 2), lams=search.lams[:1], lrs=search.lrs[:1]),
        tmp_path / "tune", log=None))
    # tune --search optuna: the same, one trial of a dry run (it ran whole studies on MNIST, the
    # suite's slowest test); --best and --refit read and train what that trial left
    import mnist_logreg.sweep as sweep
    real_sweep = sweep.sweep
    monkeypatch.setattr(sweep, "sweep", lambda cfg, study, storage=None, *, trials=20, **k: real_sweep(
        cfg.replace(dry_run=True, threads=None), study, storage, trials=min(trials, 1), **k))

    @settings(max_examples=int(os.environ.get("ARGV_EXAMPLES", 15)), deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        argv = _argv(data.draw, sub, places)
        code, out, err = run_cli(*argv)
        assert code in (0, 2), (argv, err[-2000:])
        if code == 2:
            assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, (argv, err[-2000:])
        assert "Traceback" not in err, argv

    check()
