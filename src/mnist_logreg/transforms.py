"""Fixed input transforms that run ahead of the linear layer (no parameters of their own).

``deskew`` straightens each digit by its second-order image moments, as in LeCun et al.
(1998), where it cut a linear classifier's test error from 12.0% to 8.4%: the shear that
makes the digit's principal axis vertical is undone, and the centre of mass is moved to the
image centre. It is written with plain tensor ops (sums and ``grid_sample``), vectorised over
the batch, so the very same function runs in training, evaluation, ``predict``, the web app
and the exported ONNX graph (GridSample, opset 16+).

``cbrt`` takes the cube root of every pixel (0 stays 0, 1 stays 1, 0.1 becomes 0.46): it
stretches the dark and mid greys, where clothing keeps its texture and outline, so a linear
layer can weigh them; on Fashion-MNIST it was the best fixed transform measured on the
validation split (gamma 0.25-0.7, per-image standardisation, L2 normalisation: see
bench/accuracy.md). One ``Pow`` op in ONNX.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import TRANSFORMS  # declared once, with the setting (config.py imports no torch)


def deskew(x: torch.Tensor, size: tuple = (28, 28)) -> torch.Tensor:
    """Deskew images in [0, 1]; any shape (..., 784) or (..., 28, 28) (other image sizes: pass
    ``size``, (rows, columns)); returns the same shape.

    For each image with centre of mass (r0, c0), row variance v and row-column covariance
    k, the output pixel (R, C) samples the input at (R + r0 - 14, C + (k / v)(R - 14) + c0 - 14)
    (bilinear): the shear is removed and the centre of mass lands at (14, 14).

    Examples
    --------
    >>> img = torch.zeros(1, 28, 28)
    >>> for r in range(6, 22): img[0, r, 8 + (r - 6) // 2] = 1.0   # a slanted stroke
    >>> out = deskew(img)
    >>> cols = out[0].argmax(1)[8:20]                              # its column on each row
    >>> int(cols.max() - cols.min()) <= 1                          # now (nearly) vertical
    True
    """
    shape, (h, w) = x.shape, size
    img = x.reshape(-1, h, w)
    n = img.shape[0]
    r = torch.arange(h, dtype=img.dtype, device=img.device).view(1, h, 1)
    c = torch.arange(w, dtype=img.dtype, device=img.device).view(1, 1, w)
    hr, hc = h / 2, w / 2  # the image centre (14, 14 for MNIST)
    total = img.sum((1, 2)).clamp_min(1e-6)
    r0 = (img * r).sum((1, 2)) / total
    c0 = (img * c).sum((1, 2)) / total
    dr = r - r0.view(-1, 1, 1)  # each row's distance from r0
    weighted = img * dr
    var_r = (weighted * dr).sum((1, 2)) / total
    cov = (weighted * (c - c0.view(-1, 1, 1))).sum((1, 2)) / total
    alpha = cov / var_r.clamp_min(1e-6)
    # where each output pixel samples, in grid_sample's normalised coordinates (align_corners=False:
    # pixel i -> (2i + 1) / 28 - 1). The source row and the shear's offset depend on (image, row)
    # only: computed at that size and broadcast, they are the same arithmetic element for element as
    # on full (n, 28, 28) grids, which took half of deskew's time (20 of 40 ms per 2,048 images)
    src_r = r + (r0 - hr).view(-1, 1, 1)                                   # (n, h, 1)
    src_c = c + alpha.view(-1, 1, 1) * (r - hr) + (c0 - hc).view(-1, 1, 1)  # (n, h, w)
    grid = torch.stack([(src_c + 0.5) / hc - 1, ((src_r + 0.5) / hr - 1).expand(n, h, w)], dim=-1)
    out = F.grid_sample(img.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(shape)


def cbrt(x: torch.Tensor) -> torch.Tensor:
    """The cube root of each pixel in [0, 1] (negative inputs are clipped to 0 first).

    >>> cbrt(torch.tensor([0.0, 0.001, 0.125, 1.0]))
    tensor([0.0000, 0.1000, 0.5000, 1.0000])
    """
    return x.clamp_min(0).pow(1.0 / 3.0)


FUNCTIONS = {"deskew": deskew, "cbrt": cbrt}


def apply(name: str, x: torch.Tensor) -> torch.Tensor:
    """Apply transform ``name`` to float images in [0, 1] (in chunks, to bound memory)."""
    if name in (None, "none"):
        return x
    if name not in FUNCTIONS:
        from .errors import ConfigError
        raise ConfigError(f"unknown transform {name!r}; choose from: {', '.join(TRANSFORMS)}")
    fn = FUNCTIONS[name]
    with torch.no_grad():
        return torch.cat([fn(x[i:i + 8192]) for i in range(0, len(x), 8192)]) if len(x) else x
