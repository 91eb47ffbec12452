"""mnist-logreg: multinomial logistic regression on MNIST-like data, fast, exact and explained.

A whole run, as ``mnist-logreg train`` does it (run folder, checkpoints, report)::

    from mnist_logreg import TrainConfig, train_run, Run
    run = train_run(TrainConfig.preset("digits"), runs_dir="runs")
    run.metrics["test_acc"]; Run.open(run.path).resume(epochs=5)

The notebook's vocabulary, from Python::

    from mnist_logreg import load_dataset, split, MnistModel, fit, evaluate, save, load
    train, val = split(load_dataset("mnist", "train"), val_size=10_000, seed=0)
    model = MnistModel()
    history = fit(model, train, val, epochs=20, lr=1e-3, batch_size=128)
    print(evaluate(model, load_dataset("mnist", "test")))

Names are imported lazily so that ``mnist-logreg --help`` does not pay for importing torch.
"""
__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "data", "split": "data", "ImageSet": "data", "read_idx": "data",
    "load_kaggle_csv": "data", "download": "data",
    "MnistModel": "model",
    "fit": "train", "evaluate": "metrics", "predict_image": "model", "predict": "model",
    "History": "train",
    "accuracy": "metrics", "confusion_matrix": "metrics",
    "save": "checkpoint", "load": "checkpoint", "load_checkpoint": "checkpoint",
    "MnistLogregError": "errors", "DataError": "errors", "CheckpointError": "errors",
    "ConfigError": "errors", "ImageError": "errors",
    "load_image": "preprocess", "solve": "solver", "make_optimizer": "optim",
    # preprocess() lives in a module of the same name: `from mnist_logreg import preprocess` gives
    # the module, which is callable (preprocess(img)); export() likewise: mnist_logreg.export.export
    "build_report": "report", "Predictor": "answers", "Answer": "answers",
    "TrainConfig": "config", "TuneConfig": "config", "PRESETS": "config",
    "train_run": "run", "Run": "run", "tune": "tuning", "TrainingInterrupted": "errors", "TrainingDiverged": "errors",
}

# written out (a literal list), so static tools read the public API; a test keeps it equal to _EXPORTS
__all__ = ["Answer", "CheckpointError", "ConfigError", "DataError", "History", "ImageError", "ImageSet",
    "MnistLogregError", "MnistModel", "PRESETS", "Predictor", "Run", "TrainConfig", "TrainingDiverged",
    "TrainingInterrupted", "TuneConfig", "accuracy", "build_report", "confusion_matrix", "download",
    "evaluate", "fit", "load", "load_checkpoint", "load_dataset", "load_image", "load_kaggle_csv",
    "make_optimizer", "predict", "predict_image", "read_idx", "save", "solve", "split", "train_run", "tune",
    "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'mnist_logreg' has no attribute {name!r}")


def __dir__():
    return __all__
