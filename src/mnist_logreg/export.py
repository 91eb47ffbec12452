"""Export a trained model for use without this package.

ONNX (one self-contained file, weights embedded):
    input  ``pixels``        float32, shape (batch, 1, 28, 28), values in [0, 1], light digit on
                             dark (MNIST form: run outside images through ``preprocess`` first);
                             the batch dimension is dynamic
    output ``logits``        float32, shape (batch, 10)
    output ``probabilities`` float32, shape (batch, 10), softmax of the logits

TorchScript: a ``torch.jit`` module with the same input, returning the logits.

A model trained with ``--transform deskew`` carries the deskewing into both files as a few
ops (moments, GridSample) ahead of the one linear layer.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from .checkpoint import atomic_write
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


def export(model: MnistModel, path, fmt: str = "onnx") -> Path:
    """Write ``model`` to ``path`` as ONNX (opset 17) or TorchScript, atomically."""
    model = model.float().eval()
    example = torch.zeros(2, 1, 28, 28)
    if fmt == "onnx":
        import warnings

        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the TorchScript-based exporter: one file, no onnxscript needed, enough for 2 ops
            torch.onnx.export(_Exported(model), (example,), buf, input_names=["pixels"],
                              output_names=["logits", "probabilities"], opset_version=17,
                              dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"},
                                            "probabilities": {0: "batch"}}, dynamo=False)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))
    elif fmt == "torchscript":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, example)
        atomic_write(path, lambda tmp: traced.save(tmp))
    else:
        raise ConfigError(f"unknown export format {fmt!r}; choose from: {', '.join(FORMATS)}")
    return Path(path)
