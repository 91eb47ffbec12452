"""The model: one affine map from 784 pixels to 10 class scores, exactly as in the notebook."""
from __future__ import annotations

import torch
from torch import nn

from .datasets import INPUT_SIZE, NUM_CLASSES  # noqa: F401 (the model's shape, from the data's)


class MnistModel(nn.Module):
    """Multinomial logistic regression: ``logits = x.reshape(-1, 784) @ W.T + b``.

    The attribute is named ``linear`` like the notebook's, so a notebook ``state_dict``
    (keys ``linear.weight``, ``linear.bias``) loads directly.

    Examples
    --------
    >>> model = MnistModel()
    >>> model.num_parameters()
    7850
    >>> torch.equal(MnistModel(seed=0).linear.weight, MnistModel(seed=0).linear.weight)  # train --seed 0's start
    True
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_size: int = INPUT_SIZE, num_classes: int = NUM_CLASSES, transform: str = "none",
                 seed: int | None = None):
        super().__init__()
        if seed is None:  # the notebook's: torch's global generator (seeded or not by the caller)
            self.linear = nn.Linear(input_size, num_classes)
        else:  # the initial weights `train --seed SEED` starts from, whatever the global generator holds
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.linear = nn.Linear(input_size, num_classes)
        # a fixed input transform ahead of the linear layer (see transforms.py); it has no
        # parameters, so the state_dict stays the notebook's two tensors
        self.transform = transform or "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, self.linear.in_features)
        if self.transform != "none":
            from .transforms import FUNCTIONS
            x = FUNCTIONS[self.transform](x)
        return self.linear(x)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


@torch.no_grad()
def predict_image(img: torch.Tensor, model: MnistModel) -> int:
    """The predicted label of one image tensor (1x28x28 or 28x28, values in [0, 1]).

    Examples
    --------
    >>> from mnist_logreg import MnistModel
    >>> isinstance(predict_image(torch.zeros(1, 28, 28), MnistModel()), int)
    True
    """
    return int(model(img.unsqueeze(0)).argmax(1)[0])


@torch.no_grad()
def predict(model: MnistModel, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities for a batch of images (uint8 0..255 or float in [0, 1])."""
    x = images.reshape(len(images), -1)
    x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
    return torch.softmax(model(x.to(model.linear.weight.device)), dim=1)
