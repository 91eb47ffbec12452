"""One prediction, honestly: what the answer is, how sure the tool is, and why.

Every place that shows a prediction (``predict``, the REST API, the drawing page, the static
site) gives one of five answer states, declared here once (``serve/static/mnist.js`` mirrors
them from the values ``model.js`` carries; ``tests/test_web.py`` checks the two agree):

=============  ==============================================================================
``digit``      the top class, sure enough: its calibrated probability is at least ``SURE_AT``
``unsure``     the top class's calibrated probability is under ``SURE_AT``: "a or b?"; or the
               input is unusual (digit-likeness under ``UNUSUAL_BELOW``): the 5% least
               digit-like held-out digits are answered right only 60-76% of the time, whatever
               the model's confidence (bench/honesty.py), so such an answer is a guess
``not-a-digit``  unlike the images the model learned: digit-likeness under ``NOT_A_DIGIT_BELOW``
               (for a dataset of other things, "unlike its training images")
``too-small``  the ink's extent is under ``MIN_INK_SIDE`` of the picture's longer side
``blank``      no ink at all
=============  ==============================================================================

The probabilities are calibrated (:class:`mnist_logreg.trust.Calibrator`) and the likeness is
:class:`mnist_logreg.trust.Likeness`'s, both fitted at training time. A checkpoint without them
(written before they existed, or a notebook ``state_dict``) answers with the plain softmax and
``likeness`` None: it cannot say "not a digit", and says so in its messages.

*Why*: for a linear model the difference of two logits is exactly a sum over pixels,
``z_a - z_b = sum_i (W_a,i - W_b,i) * x_i + (b_a - b_b)`` with ``x`` the input the model read
(after its transform). :meth:`Predictor.explain` returns that map; the page draws it over
"what the model saw".

Examples
--------
>>> import numpy as np
>>> from mnist_logreg import MnistModel
>>> p = Predictor(MnistModel())
>>> p.answer(np.zeros((28, 28), np.float32)).state
'blank'
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

STATES = ("digit", "unsure", "not-a-digit", "too-small", "blank")
SURE_AT = 0.7              # calibrated probability of the top class for a definite answer (bench/honesty.py)
NOT_A_DIGIT_BELOW = 0.01   # digit-likeness under which the answer is "not a digit" (1% of real digits)
UNUSUAL_BELOW = 0.05       # digit-likeness under which an answer is a guess at best: "unsure"
MIN_INK_SIDE = 0.15        # ink extent (longer side) under this fraction of the picture: too small
BLANK_CONTRAST = 0.08      # an input whose pixels span less than this holds no ink (preprocess's rule)
DIGIT_DATASETS = ("mnist", "kaggle-csv", "emnist-digits", "qmnist", "usps")
RULES = {"states": list(STATES), "sure_at": SURE_AT, "not_a_digit_below": NOT_A_DIGIT_BELOW,
         "unusual_below": UNUSUAL_BELOW, "min_ink_side": MIN_INK_SIDE, "blank_contrast": BLANK_CONTRAST}


@dataclass
class Answer:
    """One answer. ``label`` is the top class (for ``not-a-digit``: the closest one), None for
    ``blank`` and ``too-small``; ``probabilities`` are calibrated; ``likeness`` is None when the
    model has no likeness model; ``input`` is the 28x28 the model read (before its transform)."""

    state: str
    label: int | None = None
    runner_up: int | None = None
    probabilities: list | None = None
    likeness: float | None = None
    classes: tuple = tuple(str(i) for i in range(10))
    noun: str = "digit"
    input: np.ndarray | None = field(default=None, repr=False)

    @property
    def probability(self) -> float | None:
        return None if self.label is None else self.probabilities[self.label]

    @property
    def message(self) -> str:
        """One line for a person."""
        c = self.classes
        if self.state == "blank":
            return "blank: no ink found"
        if self.state == "too-small":
            return f"too small to read: draw or crop the {self.noun} larger"
        if self.state == "not-a-digit":
            what = "not a digit" if self.noun == "digit" else "unlike the images it learned"
            return (f"{what}: stranger than {100 * (1 - self.likeness):.1f}% of real {self.noun}s "
                    f"(closest: {c[self.label]})")
        top = f"{c[self.label]} ({100 * self.probability:.1f}%)"
        if self.state == "unsure":
            why = f" (unusual for a {self.noun})" if self.likeness is not None and self.likeness < UNUSUAL_BELOW else ""
            return f"unsure{why}: {top} or {c[self.runner_up]} ({100 * self.probabilities[self.runner_up]:.1f}%)"
        return top

    def to_dict(self) -> dict:
        """The JSON form (``predict --json``, the REST API)."""
        c = self.classes
        return {"state": self.state, "label": self.label, "class_name": None if self.label is None else c[self.label],
                "probability": None if self.label is None else round(self.probability, 6),
                "runner_up": self.runner_up, "probabilities": None if self.probabilities is None
                else [round(p, 6) for p in self.probabilities],
                "likeness": None if self.likeness is None else round(self.likeness, 4), "message": self.message}


def decide(probabilities, likeness=None, top: int | None = None) -> tuple[str, int, int]:
    """The state of an input with ink, from its calibrated probabilities and likeness:
    (state, top class, runner-up). ``top``: the class of the largest logit (the calibration
    keeps it on top, at worst tied with the runner-up); by default the most probable class."""
    states, tops, seconds = decide_all(torch.as_tensor(np.asarray(probabilities, dtype=np.float64))[None],
                                       None if likeness is None else [likeness], None if top is None else [top])
    return states[0], int(tops[0]), int(seconds[0])


def decide_all(probabilities: torch.Tensor, likeness=None, top=None) -> tuple[list, torch.Tensor, torch.Tensor]:
    """:func:`decide` for each row of ``probabilities`` (n, K) at once: (states, tops,
    runner-ups); ``likeness`` and ``top``: one per row, or None. The runner-up is the most
    probable other class, the lower index on a tie (a report's 10,000 images, one at a time,
    took 3 s of per-row sorting)."""
    p = torch.as_tensor(probabilities, dtype=torch.float64)
    p = p.reshape(-1, p.shape[-1])
    top = p.argmax(1) if top is None else torch.as_tensor(top).long().reshape(-1)
    others = p.clone()
    others[torch.arange(len(p)), top] = -math.inf
    second = others.argmax(1) if p.shape[1] > 1 else top.clone()
    unsure = p.gather(1, top[:, None])[:, 0] < SURE_AT
    not_a_digit = torch.zeros(len(p), dtype=torch.bool)
    if likeness is not None:
        like = torch.as_tensor(likeness, dtype=torch.float64).reshape(-1)
        not_a_digit, unsure = like < NOT_A_DIGIT_BELOW, unsure | (like < UNUSUAL_BELOW)
    states = ["not-a-digit" if n else "unsure" if u else "digit" for n, u in zip(not_a_digit.tolist(), unsure.tolist())]
    return states, top, second


@dataclass
class Evidence:
    """Why ``label`` and not ``against``: ``map[r, c] = (W_label - W_against)[r, c] * x[r, c]``
    over the input the model read; ``map.sum() + bias == logit_difference``."""

    label: int
    against: int
    map: np.ndarray
    bias: float
    logit_difference: float
    seen: np.ndarray = field(default=None, repr=False)  # the 28x28 input the model read (after its transform)


def noun_for(dataset: str) -> str:
    """What the model's inputs are, in its messages: "digit" for the digit datasets."""
    return "digit" if dataset in DIGIT_DATASETS else "image"


class Predictor:
    """A model with its calibration and digit-likeness, answering for images.

    ``Predictor.load(path)`` takes a run folder, a checkpoint or a notebook ``state_dict``;
    :meth:`answer` takes any image (a path, bytes, a PIL image, or a 2-D array: 28x28 arrays are
    taken as already in MNIST form, anything else is preprocessed the way MNIST was)."""

    def __init__(self, model, trust=None, classes=None, dataset: str = "mnist"):
        from .trust import Calibrator

        self.model = model.eval()
        self.calibrator = trust.calibrator if trust is not None else Calibrator()
        self.likeness_model = trust.likeness if trust is not None else None
        self.classes = tuple(classes) if classes else tuple(str(i) for i in range(10))
        self.noun = noun_for(dataset)

    @classmethod
    def from_checkpoint(cls, ckpt) -> "Predictor":
        return cls(ckpt.model, ckpt.trust, ckpt.classes, ckpt.dataset)

    @classmethod
    def load(cls, path) -> "Predictor":
        from .checkpoint import load_checkpoint
        return cls.from_checkpoint(load_checkpoint(path))

    @property
    def calibrated(self) -> bool:
        return self.likeness_model is not None

    # -- answers -------------------------------------------------------------------------------
    def answer(self, image, name: str | None = None) -> Answer:
        """The answer for one image: blank, too small, or the model's (see :data:`STATES`)."""
        from .errors import ImageError
        from .preprocess import preprocess_with_extent

        if isinstance(image, (np.ndarray, torch.Tensor)) and tuple(image.shape[-2:]) == (28, 28):
            return self.answers(torch.as_tensor(np.asarray(image, dtype=np.float32)).reshape(1, 784))[0]
        try:
            x, extent = preprocess_with_extent(image, name)
        except ImageError as e:
            if "blank" not in str(e):
                raise
            return Answer("blank", classes=self.classes, noun=self.noun)
        if extent < MIN_INK_SIDE:
            return Answer("too-small", classes=self.classes, noun=self.noun, input=x)
        return self.answers(torch.from_numpy(x).reshape(1, 784))[0]

    def answers(self, x: torch.Tensor) -> list[Answer]:
        """Answers for inputs already in MNIST form: (n, 784) or (n, 28, 28), uint8 or float in
        [0, 1]. An input whose pixels span less than BLANK_CONTRAST is blank."""
        return self._answers_and_probabilities(x)[0]

    def assess(self, x: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict:
        """How the answers fare on labelled images: the calibrated probabilities' reliability
        (``calibration``: ECE, NLL, bins), the share of each state, and the accuracy of the
        ``digit`` answers (the test-set figures of a run and of its report)."""
        from .metrics import calibration

        _, probs, _, states, tops, _ = self._decisions(x)
        sure = [t == y for s, t, y in zip(states, tops.tolist(), labels.tolist()) if s == "digit"]
        return {"calibration": calibration(probs, labels, n_bins),
                "states": {s: states.count(s) / max(len(states), 1) for s in STATES},
                "sure_accuracy": sum(sure) / max(len(sure), 1)}

    @torch.no_grad()
    def _decisions(self, x: torch.Tensor):
        """One pass of the model and the likeness model (the costly part) over ``x``: the inputs
        as (n, 784) floats, the calibrated probabilities, the likeness, and each row's state,
        top class and runner-up (:func:`decide_all`; "blank" where the pixels hold no ink)."""
        x = x.reshape(len(x), 784)
        x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
        likes = self.likeness(x)
        logits = self.model(x)
        probs = self.calibrator(logits, likes)
        states, tops, seconds = decide_all(probs, likes, logits.argmax(1))
        blank = ((x.amax(1) - x.amin(1)).double() < BLANK_CONTRAST).tolist()  # as float(x.max() - x.min())
        return x, probs, likes, ["blank" if b else s for b, s in zip(blank, states)], tops, seconds

    def _answers_and_probabilities(self, x: torch.Tensor):
        """The answers and the calibrated probabilities."""
        x, probs, likes, states, tops, seconds = self._decisions(x)
        out = []
        for i, state in enumerate(states):
            xi = x[i].reshape(28, 28).numpy()
            if state == "blank":
                out.append(Answer("blank", classes=self.classes, noun=self.noun, input=xi))
                continue
            like = None if likes is None else float(likes[i])
            out.append(Answer(state, int(tops[i]), int(seconds[i]), probs[i].tolist(), like, self.classes,
                              self.noun, xi))
        return out, probs

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities, (n, K) float64, for (n, 784) inputs in [0, 1]."""
        x = x.reshape(len(x), 784).float()
        return self.calibrator(self.model(x), self.likeness(x) if self.calibrator.c else None)

    @torch.no_grad()
    def likeness(self, x: torch.Tensor):
        """The digit-likeness of each input in [0, 1], or None without a likeness model."""
        if self.likeness_model is None:
            return None
        return self.likeness_model.likeness(x.reshape(len(x), 784).float())

    # -- why -----------------------------------------------------------------------------------
    @torch.no_grad()
    def explain(self, x, label: int | None = None, against: int | None = None) -> Evidence:
        """The evidence map of ``label`` (default: the top class) against ``against`` (default:
        the runner-up) for one input in MNIST form (28x28 or 784 values in [0, 1])."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(1, 784)
        logits = self.model(x)[0]
        order = logits.argsort(descending=True).tolist()
        label = order[0] if label is None else int(label)
        against = next(c for c in order if c != label) if against is None else int(against)
        if label == against:
            raise ValueError("label and against must be two different classes")
        seen = _model_input(self.model, x)[0]
        W, b = self.model.linear.weight, self.model.linear.bias
        emap = ((W[label] - W[against]).double() * seen.double()).reshape(28, 28).numpy()
        return Evidence(label, against, emap, float(b[label] - b[against]), float(logits[label] - logits[against]),
                        seen.reshape(28, 28).numpy())


def _model_input(model, x: torch.Tensor) -> torch.Tensor:
    """What the linear layer reads: ``x`` after the model's transform."""
    from .transforms import apply
    return apply(getattr(model, "transform", "none"), x.reshape(len(x), 784))
