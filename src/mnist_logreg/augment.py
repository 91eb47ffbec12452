"""Training-time augmentation on tensors, vectorised over the whole batch (no per-item PIL):
random shifts, rotations, scaling (one affine ``grid_sample`` for all images) and elastic
distortion (a smooth random displacement field, after Simard et al. 2003, drawn on a coarse
grid and upsampled).

The random draws come from a ``torch.Generator`` the caller seeds, so an augmented run is as
reproducible, and as resumable, as a plain one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Strength of each distortion; 0 turns it off. ``shift`` in pixels, ``rotate`` in
    degrees, ``scale`` as a fraction (0.1 = +-10%), ``elastic`` as the largest displacement in
    pixels, smooth over about ``elastic_sigma`` pixels."""

    shift: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0
    elastic: float = 0.0
    elastic_sigma: float = 4.0

    @property
    def active(self) -> bool:
        return any(v > 0 for v in (self.shift, self.rotate, self.scale, self.elastic))


def augment_images(images: torch.Tensor, aug: Augment, generator: torch.Generator, chunk: int = 2048) -> torch.Tensor:
    """Distort float images in [0, 1], shape (n, 28, 28) or (n, 784); returns the same shape.

    Examples
    --------
    >>> img = torch.zeros(2, 28, 28); img[:, 10:18, 12:16] = 1
    >>> out = augment_images(img, Augment(shift=2), torch.Generator().manual_seed(0))
    >>> out.shape, bool((out - img).abs().sum() > 0), round(float(out.sum() / img.sum()), 1)
    (torch.Size([2, 28, 28]), True, 1.0)
    """
    shape = images.shape
    x = images.reshape(-1, 1, 28, 28)
    n = x.shape[0]
    if n == 0 or not aug.active:
        return images
    if n > chunk:  # in chunks: small buffers are reused, huge ones cost page faults every epoch
        out = torch.empty_like(x)
        for i in range(0, n, chunk):
            out[i:i + chunk] = augment_images(x[i:i + chunk], aug, generator, chunk)
        return out.reshape(shape)
    dt = x.dtype

    def uniform(limit):
        return (torch.rand(n, generator=generator, dtype=dt) * 2 - 1) * limit

    # -- affine: rotation and scale about the centre, then a shift (all in pixels) -----------
    angle = uniform(math.radians(aug.rotate))
    zoom = 1 + uniform(aug.scale)
    tx, ty = uniform(aug.shift), uniform(aug.shift)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output coords to input coords in [-1, 1] units (14 pixels = 1 unit)
    theta = torch.stack([torch.stack([cos, -sin, -tx / 14], 1), torch.stack([sin, cos, -ty / 14], 1)], 1)
    grid = F.affine_grid(theta, (n, 1, 28, 28), align_corners=False)
    # -- elastic: a smooth random displacement field added to the sampling grid -------------
    if aug.elastic > 0:
        # random displacements on a coarse control grid, upsampled smoothly (bicubic) to 28x28:
        # the same smooth field a Gaussian-filtered noise gives, at a fraction of the cost
        cells = max(2, round(28 / aug.elastic_sigma))
        field = torch.rand(n, 2, cells, cells, generator=generator, dtype=dt) * 2 - 1
        field = F.interpolate(field, size=(28, 28), mode="bicubic", align_corners=True)
        field = field / field.abs().amax((2, 3), keepdim=True).clamp_min(1e-6) * (aug.elastic / 14)
        grid = grid + field.permute(0, 2, 3, 1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp_(0, 1).reshape(shape)
