"""The run as a library: TrainConfig (one table of settings, TOML, presets), train_run and Run
(what `mnist-logreg train` does, from Python), tune, and the CLI generated from the config."""
import dataclasses
import json

import pytest
import torch
from test_golden import weights_hash

from helpers import SHARED_DATA, listing
from mnist_logreg import (
    PRESETS,
    CheckpointError,
    ConfigError,
    Run,
    TrainConfig,
    TuneConfig,
    load_checkpoint,
    train_run,
    tune,
)
from mnist_logreg.cli import build_parser, flag

#: what `mnist-logreg train` wrote before the run library (checked on commit 252a7f1), plus config.toml
#: and status.json (how the last session ended, for `mnist-logreg runs`)
RUN_FILES = {"accuracy.png", "checkpoint.pt", "confusion.png", "curves.png", "history.csv", "history.json",
             "metrics.json", "mistakes.png", "predictions.png", "reliability.png", "report.html", "report.json",
             "samples.png", "weights.png", "config.toml", "status.json"}


def _strip_times(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_train_run_writes_what_the_cli_writes(tmp_path, run_cli):
    code, out, err = run_cli("train", "--dry-run", "--seed", 3, "--lr", "2e-3", "--runs-dir", tmp_path / "cli",
                             "--name", "r")
    assert code == 0, err
    run = train_run(TrainConfig(dry_run=True, seed=3, lr=2e-3), runs_dir=tmp_path / "lib", name="r", log=None)
    cli_dir, lib_dir = tmp_path / "cli" / "r", tmp_path / "lib" / "r"
    assert run.path == lib_dir
    assert set(listing(cli_dir)) == set(listing(lib_dir)) == RUN_FILES
    a, b = load_checkpoint(cli_dir), load_checkpoint(lib_dir)
    assert weights_hash(a.model) == weights_hash(b.model)
    assert a.config == b.config == run.config.to_dict()
    assert (cli_dir / "config.toml").read_text() == (lib_dir / "config.toml").read_text()
    assert _strip_times(a.history) == _strip_times(run.history)
    drop = lambda m: {k: v for k, v in m.items() if k != "train_seconds"}  # noqa: E731
    assert drop(a.metrics) == drop(run.metrics) and run.metrics["test_acc"] > 0.5
    assert TrainConfig.load(lib_dir / "config.toml") == run.config


def test_resume_equals_an_uninterrupted_run(tmp_path):
    # 5,000 training images: 40 batches an epoch, and a run's end (calibration, likeness, the
    # test set's answers) a third of the 59,000's, which made this test three times longer
    cfg = TrainConfig(epochs=4, seed=2, val_size=1000, train_size=5000, data_dir=str(SHARED_DATA))
    full = train_run(cfg, runs_dir=tmp_path, name="full", report=False, log=None)
    part = train_run(cfg.replace(epochs=2), runs_dir=tmp_path, name="part", report=False, log=None)
    lines = []
    resumed = Run.open(part.path).resume(epochs=2, report=False, log=lines.append)
    assert resumed.path == part.path and resumed.epoch == 4 and resumed.config.epochs == 4
    assert weights_hash(resumed.model) == weights_hash(full.model)
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3, 4]
    assert _strip_times(resumed.history) == _strip_times(full.history)
    assert lines[-1].startswith("wrote ") and any(ln.startswith("Epoch [3]") for ln in lines)
    assert TrainConfig.load(part.path / "config.toml").epochs == 4  # config.toml follows the run


def test_train_size_trains_on_a_seeded_sample_of_the_split(tmp_path, run_cli):
    """train_size: the first N images of the seed's training split (a seeded sample), recorded
    with the run, kept on resume, read back by evaluate --split train; too many is one line."""
    from mnist_logreg import load_dataset, split

    lines = []
    cfg = TrainConfig(train_size=1500, val_size=1000, seed=3, epochs=1, data_dir=str(SHARED_DATA))
    run = train_run(cfg, runs_dir=tmp_path, name="s", report=False, log=lines.append)
    assert "data: 1,500 train, 1,000 validation, 10,000 test (mnist)" in lines, lines[:3]
    assert run.config.train_size == 1500 and TrainConfig.load(run.path / "config.toml").train_size == 1500
    code, out, err = run_cli("evaluate", run.path, "--split", "train", "--data-dir", SHARED_DATA, "--json")
    train, _ = split(load_dataset("mnist", "train", SHARED_DATA), 1000, 3)
    sample = train.subset(slice(0, 1500))
    assert code == 0 and json.loads(out)["n"] == 1500, err
    from mnist_logreg import evaluate
    assert json.loads(out)["accuracy"] == pytest.approx(evaluate(run.model, sample)["accuracy"])
    with pytest.raises(ConfigError, match="^train_size cannot change when a run is resumed"):
        run.resume(epochs=1, train_size=2000, log=None)
    with pytest.raises(ConfigError, match="^train_size is 60,000, but the training split holds 59,000 images"):
        train_run(cfg.replace(train_size=60_000), runs_dir=tmp_path, name="big", log=None)
    code, _, err = run_cli("train", "--train-size", 60_000, "--val-size", 1000, "--runs-dir", tmp_path)
    assert code == 2 and err == "error: --train-size is 60,000, but the training split holds 59,000 images\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # nothing written for the refused ones


def test_resume_refuses_settings_that_change_the_maths(tmp_path, run_cli):
    run = train_run(TrainConfig(dry_run=True), runs_dir=tmp_path, name="r", report=False, log=None)
    with pytest.raises(ConfigError, match=r"^lr cannot change when a run is resumed"):
        run.resume(epochs=1, lr=0.5, log=None)
    code, _, err = run_cli("train", "--resume", run.path, "--epochs", 1, "--lr", "0.5")
    assert code == 2 and err.startswith("error: --lr cannot change when a run is resumed")
    # the same value, or a setting of how it runs, is fine
    assert run.resume(epochs=1, seed=0, threads=1, report=False, log=None).epoch == 2


def test_an_older_checkpoint_still_loads_and_resumes(tmp_path):
    """Checkpoints written before this config existed: fewer keys, a split_seed beside them."""
    run = train_run(TrainConfig(dry_run=True), runs_dir=tmp_path, name="old", report=False, log=None)
    ckpt = torch.load(run.path / "checkpoint.pt", weights_only=True)
    for key in ("lr_schedule", "loss_cap", "loss_q", "average_from", "distill_epochs", "distill_temperature",
                "distill_alpha", "augment_shift", "augment_rotate", "augment_scale", "augment_elastic", "transform"):
        del ckpt["config"][key]
    ckpt["split_seed"] = 0
    torch.save(ckpt, run.path / "checkpoint.pt")
    (run.path / "config.toml").unlink()
    old = Run.open(run.path)
    assert old.config.loss_q == 0.0 and old.config.lr_schedule == "constant"
    assert old.resume(epochs=1, report=False, log=None).epoch == 2


def test_a_bad_config_in_a_checkpoint_is_a_one_line_error(tmp_path, run_cli):
    run = train_run(TrainConfig(dry_run=True), runs_dir=tmp_path, name="r", report=False, log=None)
    ckpt = torch.load(run.path / "checkpoint.pt", weights_only=True)
    ckpt["config"]["lr"] = "fast"
    torch.save(ckpt, run.path / "checkpoint.pt")
    code, _, err = run_cli("train", "--resume", run.path, "--epochs", 1)
    assert code == 2 and len(err.splitlines()) == 1
    assert "checkpoint.pt: config: lr must be a number, got 'fast'" in err
    with pytest.raises(CheckpointError, match="config: lr must be a number"):  # on load, by every command
        load_checkpoint(run.path)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_round_trip_through_toml(name):
    cfg = TrainConfig.preset(name)
    assert TrainConfig.from_toml(cfg.to_toml()) == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    if name == "notebook":
        assert cfg == TrainConfig()


def test_the_presets_are_the_measured_recipes():
    digits, fashion = TrainConfig.preset("digits"), TrainConfig.preset("fashion")
    assert (digits.transform, digits.loss_cap, digits.loss_q, digits.lr_schedule, digits.val_size) == \
        ("deskew", 5.0, 0.5, "cosine", 0)
    assert (fashion.dataset, fashion.transform, fashion.loss_q, fashion.epochs) == ("fashion-mnist", "cbrt", 0.5, 60)
    with pytest.raises(ConfigError, match="unknown preset 'best'; choose from: notebook, digits, fashion"):
        TrainConfig.preset("best")


def test_toml_round_trip_of_every_kind_of_value():
    cfg = TrainConfig(data_dir='a "quoted" path\\with\tescapes\x7f and ünïcode', loss_cap=1e-300,
                      lr=1.5e-7, no_download=True, average_from=3, threads=2)
    assert TrainConfig.from_toml(cfg.to_toml()) == cfg
    search = TuneConfig(lams=(1, 2.5e-9), refit=True)
    assert TuneConfig.from_toml(search.to_toml()) == search and search.lams == (1.0, 2.5e-9)


def test_config_is_frozen_and_validated_on_replace():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0
    with pytest.raises(ConfigError, match=r"^batch_size must be at least 1, got 0$"):
        cfg.replace(batch_size=0)
    with pytest.raises(ConfigError, match=r"^unknown setting 'learning_rate'"):
        cfg.replace(learning_rate=1.0)
    with pytest.raises(ConfigError, match=r"^epochs must be a whole number, got True$"):
        TrainConfig(epochs=True)
    with pytest.raises(ConfigError, match=r"^lr must be a finite number, got inf$"):
        TrainConfig(lr=float("inf"))
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


@pytest.mark.parametrize("text,message", [
    ("lr = ", "not valid TOML"),
    ("learning_rate = 0.1", "unknown setting 'learning_rate'"),
    ("lr = -1", "lr must be a positive number, got -1.0"),
    ('lr = "abc"', "lr must be a number, got 'abc'"),
    ("epochs = 1.5", "epochs must be a whole number, got 1.5"),
    ("[lr]\nx = 1", "line 1: expected a setting as name = value"),
    ('solver = "newton"\nloss_cap = 5.0', "loss_cap and loss_q apply to solver minibatch"),
])
def test_a_bad_config_file_is_one_line_naming_the_file_and_key(tmp_path, run_cli, text, message):
    f = tmp_path / "my.toml"
    f.write_text(text)
    before = listing(tmp_path)
    code, out, err = run_cli("train", "--config", f, "--runs-dir", tmp_path / "runs")
    assert code == 2 and err.startswith(f"error: {f}: ") and message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert listing(tmp_path) == before


def test_print_config_read_back_with_config_gives_the_same_run(tmp_path, run_cli, capsys):
    args = ["--dry-run", "--seed", 5, "--lr", "3e-3", "--loss-cap", 4, "--lr-schedule", "cosine"]
    before = listing(tmp_path)
    code, out, _ = run_cli("train", *args, "--print-config")
    assert code == 0 and listing(tmp_path) == before  # nothing written
    (tmp_path / "c.toml").write_text(out)
    cfg = TrainConfig.load(tmp_path / "c.toml")
    assert (cfg.seed, cfg.lr, cfg.loss_cap, cfg.epochs) == (5, 3e-3, 4.0, 1)
    for name, extra in (("flags", args), ("file", ["--config", tmp_path / "c.toml"])):
        code, _, err = run_cli("train", *extra, "--no-report", "--runs-dir", tmp_path / "runs", "--name", name)
        assert code == 0, err
    a, b = (load_checkpoint(tmp_path / "runs" / n) for n in ("flags", "file"))
    assert weights_hash(a.model) == weights_hash(b.model) and a.config == b.config


def test_flags_override_the_config_file_and_the_preset(tmp_path, run_cli):
    (tmp_path / "c.toml").write_text("lr = 0.003\nepochs = 7\n")
    code, out, _ = run_cli("train", "--config", tmp_path / "c.toml", "--lr", "0.01", "--print-config")
    cfg = TrainConfig.from_toml(out)
    assert code == 0 and (cfg.lr, cfg.epochs) == (0.01, 7)
    code, out, _ = run_cli("train", "--preset", "fashion", "--epochs", "3", "--print-config")
    cfg = TrainConfig.from_toml(out)
    assert code == 0 and cfg == TrainConfig.preset("fashion").replace(epochs=3)
    code, _, err = run_cli("train", "--preset", "digits", "--config", tmp_path / "c.toml")
    assert code == 2 and "not allowed with argument" in err


def test_every_setting_is_an_option_and_reaches_the_config():
    """The train options are generated from TrainConfig: each field's flag parses to the field."""
    from mnist_logreg.cli import _given
    changed = {"dataset": "fashion-mnist", "data_dir": "d", "no_download": True, "train_csv": "t.csv",
               "val_size": 5, "train_size": 300, "seed": 7, "dry_run": True, "calibration_holdout": 100,
               "transform": "cbrt", "solver": "minibatch", "epochs": 3,
               "extra_images": "mine", "extra_weight": 5,
               "lr": 0.5, "batch_size": 64, "optimizer": "adamw", "lr_schedule": "cosine", "momentum": 0.5,
               "weight_decay": 0.25, "loss_cap": 4.0, "loss_q": 0.25, "average_from": 2, "augment_shift": 1.0,
               "augment_rotate": 2.0, "augment_scale": 0.125, "augment_elastic": 1.5, "distill_epochs": 0,
               "distill_temperature": 3.0, "distill_alpha": 0.75, "lam": 0.5, "tol": 0.25, "max_iter": 9,
               "threads": 2, "engine": "python", "device": "cpu", "checkpoint_every": 4, "tensorboard": "tb"}
    assert set(changed) == set(TrainConfig.names())
    argv = ["train"]
    for k, v in changed.items():
        argv += [flag(k)] if v is True else [flag(k), str(v)]
    args = build_parser().parse_args(argv)
    assert TrainConfig().replace(**_given(args, TrainConfig.names())) == TrainConfig(**changed)
    assert _given(build_parser().parse_args(["train"]), TrainConfig.names()) == {}


def test_help_names_each_setting_with_its_default(run_cli):
    code, out, _ = run_cli("train", "--help")
    text = " ".join(out.split())
    for f in dataclasses.fields(TrainConfig):
        assert flag(f.name) in text
        if f.default not in (None, False):
            assert f"(default: {f.default})" in text, f.name
    assert "digits deskew + robust loss" in text  # the presets, described


def test_library_errors_name_the_setting_and_the_cli_the_flag(run_cli):
    with pytest.raises(ConfigError, match=r"^distill_alpha must be between 0 and 1, got 2.0$") as e:
        TrainConfig(distill_alpha=2)
    assert e.value.settings == ("distill_alpha",)
    code, _, err = run_cli("train", "--distill-alpha", "2")
    assert code == 2 and err == "error: --distill-alpha must be between 0 and 1, got 2.0\n"


def test_tune_newton_chooses_on_validation_and_writes_a_runnable_config(tmp_path, run_cli):
    cfg = TrainConfig(dry_run=True, data_dir=str(SHARED_DATA))
    lines = []
    result = tune(cfg, TuneConfig(lams=(1e-2, 1e-3)), runs_dir=tmp_path, name="t", log=lines.append)
    assert [r["lam"] for r in result.grid] == [1e-2, 1e-3]  # strongest first: each warm-starts the next
    best = max(result.grid, key=lambda r: (r["accuracy"], -r["loss"]))
    assert result.config.solver == "newton" and result.config.lam == best["lam"]
    assert {"tune.json", "checkpoint.pt", "config.toml"} <= set(listing(tmp_path / "t"))
    assert json.loads((tmp_path / "t" / "tune.json").read_text())["winner"] == {"solver": "newton", "lam": best["lam"]}
    assert lines[0].startswith("tune: 2 values of lam") and lines[1].startswith("lam  1.00e-02  C ")
    assert 0.5 < result.test_acc <= 1
    # the winner's config.toml trains the winner
    code, _, err = run_cli("train", "--config", tmp_path / "t" / "config.toml", "--no-report", "--runs-dir",
                           tmp_path / "runs", "--name", "w")
    assert code == 0, err
    assert load_checkpoint(tmp_path / "runs" / "w").metrics["solver"]["lam"] == best["lam"]


def test_tune_minibatch_from_the_cli(tmp_path, run_cli):
    code, out, err = run_cli("tune", "--solver", "minibatch", "--lrs", "1e-3", "3e-3", "--max-epochs", 2,
                             "--dry-run", "--refit", "--runs-dir", tmp_path, "--name", "m", "--json")
    assert code == 0, err
    r = json.loads(out)  # stdout is the JSON alone; the grid's lines went to stderr
    assert "winner: " in err
    assert len(r["grid"]) == 4 and r["refit"] and r["winner"]["solver"] == "minibatch"
    assert r["n_train"] == 2000  # a dry run's refit: train + validation, still dry-run sized
    assert TrainConfig.load(tmp_path / "m" / "config.toml").val_size == 0
    code, _, err = run_cli("tune", "--lams", "-1")
    assert code == 2 and err.startswith("error: --lams must be a positive number, got -1.0")
