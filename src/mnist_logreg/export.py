"""Export a trained model for use without this package.

ONNX (one self-contained file, weights embedded):
    input  ``pixels``        float32, shape (batch, 1, 28, 28), values in [0, 1], light digit on
                             dark (MNIST form: run outside images through ``preprocess`` first);
                             the batch dimension is dynamic
    output ``logits``        float32, shape (batch, 10)
    output ``probabilities`` shape (batch, 10): calibrated (trust.Calibrator, float64) when the
                             checkpoint has a calibration, else float32, the softmax of the logits
    and, for a checkpoint with calibration and digit-likeness (every run of this version):
    output ``likeness``      float64, shape (batch,): trust.Likeness's, in [0, 1]
    output ``state``         int64, shape (batch,): the answer state, an index into
                             answers.STATES (digit, unsure, not-a-digit, too-small, blank); a
                             graph sees pixels only, so "too-small" (which needs the original
                             picture) never comes out of it
    metadata: ``mnist_logreg.states`` and ``mnist_logreg.rules`` (JSON: the thresholds)

TorchScript: a ``torch.jit`` module with the same input, returning the logits.

A model trained with ``--transform deskew`` carries the deskewing into both files as a few
ops (moments, GridSample) ahead of the one linear layer.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from ._files import atomic_write
from .errors import ConfigError
from .model import MnistModel

FORMATS = ("onnx", "torchscript")


class _Exported(nn.Module):
    def __init__(self, model: MnistModel):
        super().__init__()
        self.model = model

    def forward(self, pixels):
        logits = self.model(pixels.reshape(pixels.shape[0], 784))  # the model's transform included
        return logits, torch.softmax(logits, dim=1)


class _Answering(nn.Module):
    """The model with its calibration, digit-likeness and answer states (answers.py, trust.py),
    as one graph: the very functions of the library, traced."""

    def __init__(self, model: MnistModel, trust):
        super().__init__()
        self.model, self.trust = model, trust

    def forward(self, pixels):
        from .answers import BLANK_CONTRAST, NOT_A_DIGIT_BELOW, STATES, SURE_AT, UNUSUAL_BELOW

        x = pixels.reshape(pixels.shape[0], 784)
        logits = self.model(x)
        like = self.trust.likeness.likeness(x)
        probs = self.trust.calibrator(logits, like)
        sure = probs.max(1).values >= SURE_AT
        state = torch.where(like < UNUSUAL_BELOW, 1, torch.where(sure, 0, 1))
        state = torch.where(like < NOT_A_DIGIT_BELOW, 2, state)
        state = torch.where(x.max(1).values - x.min(1).values < BLANK_CONTRAST, STATES.index("blank"), state)
        return logits, probs, like, state


def export(model: MnistModel, path, fmt: str = "onnx", trust=None) -> Path:
    """Write ``model`` to ``path`` as ONNX (opset 17) or TorchScript, atomically. With ``trust``
    (a checkpoint's :class:`~mnist_logreg.trust.Trust` with a likeness model), the ONNX graph
    also returns calibrated probabilities, the likeness and the answer state."""
    model = model.float().eval()
    example = torch.zeros(2, 1, 28, 28)
    if fmt == "onnx":
        answering = trust is not None and trust.likeness is not None
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(_onnx_bytes(model, trust if answering else None, example)))
    elif fmt == "torchscript":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, example)
        atomic_write(path, lambda tmp: traced.save(tmp))
    else:
        raise ConfigError(f"unknown export format {fmt!r}; choose from: {', '.join(FORMATS)}")
    return Path(path)


def _onnx_bytes(model, trust, example) -> bytes:
    import json
    import warnings

    import onnx

    from .answers import RULES, STATES

    module = _Answering(model, trust) if trust is not None else _Exported(model)
    names = ["logits", "probabilities"] + (["likeness", "state"] if trust is not None else [])
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # the TorchScript-based exporter: one file, no onnxscript needed
        torch.onnx.export(module, (example,), buf, input_names=["pixels"], output_names=names, opset_version=17,
                          dynamic_axes={n: {0: "batch"} for n in ["pixels", *names]}, dynamo=False)
    graph = onnx.load_from_string(buf.getvalue())
    for key, value in (("mnist_logreg.states", json.dumps(list(STATES))), ("mnist_logreg.rules", json.dumps(RULES))):
        graph.metadata_props.add(key=key, value=value)
    return graph.SerializeToString()
