"""The table of known datasets: where their files live, how to check them, what the classes are.

Adding an MNIST-format dataset (KMNIST, EMNIST-digits, ...) is one ``DatasetSpec`` entry.
"""
from __future__ import annotations

from dataclasses import dataclass

INPUT_SIZE = 28 * 28  # every dataset here: 28x28 grey images ...
NUM_CLASSES = 10      # ... of 10 classes (the model is 784 -> 10)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the loader needs to find, download and check one dataset."""

    name: str                      # CLI name, e.g. "fashion-mnist"
    folder: str                    # torchvision's class name: ROOT/<folder>/raw/
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]       # base URLs, tried in order
    files: dict[str, str]          # role -> file name of the .gz download
    md5: dict[str, str]            # role -> md5 of the .gz download
    system_dirs: tuple[str, ...] = ()  # where an OS package installs the files
    image_shape: tuple[int, int] = (28, 28)


ROLES = ("train-images", "train-labels", "test-images", "test-labels")

_STANDARD_FILES = {
    "train-images": "train-images-idx3-ubyte.gz",
    "train-labels": "train-labels-idx1-ubyte.gz",
    "test-images": "t10k-images-idx3-ubyte.gz",
    "test-labels": "t10k-labels-idx1-ubyte.gz",
}

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        folder="MNIST",
        classes=tuple(str(i) for i in range(10)),
        # LeCun's host has failed (403/404) since 2024: the S3 mirror goes first.
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        files=_STANDARD_FILES,
        md5={
            "train-images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test-images": "9fb629c4189551a2d022fa330f9573f3",
            "test-labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        folder="FashionMNIST",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        files=_STANDARD_FILES,
        md5={
            "train-images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test-images": "bef4ecab320f06d8554ea6380940ec79",
            "test-labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian: dataset-fashion-mnist
    ),
    "kmnist": DatasetSpec(
        name="kmnist",
        folder="KMNIST",
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        files=_STANDARD_FILES,
        md5={
            "train-images": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels": "e144d726b3acfaa3e44228e80efcd344",
            "test-images": "5c965bf0a639b31b8f53240b1b52f4d7",
            "test-labels": "7320c461ea6c1c855c0b718fb2a4b134",
        },
    ),  # Kuzushiji-MNIST, CC BY-SA 4.0
}


ENV_EXTRA = "MNIST_LOGREG_DATASETS"  # a JSON file of extra entries, same fields as DatasetSpec


def _extra_specs() -> dict[str, DatasetSpec]:
    """Entries from ``$MNIST_LOGREG_DATASETS``: a JSON list of objects with the fields of
    DatasetSpec (name, folder, classes, mirrors, files, md5), for MNIST-format datasets this
    table does not know (or a local mirror with its own checksums)."""
    import json
    import os

    from .errors import ConfigError

    path = os.environ.get(ENV_EXTRA)
    if not path:
        return {}
    try:
        from ._files import read_input
        entries = json.loads(read_input(path, 2**20, ConfigError))
        if not isinstance(entries, list):
            raise ValueError("expected a JSON list of dataset objects")
        specs = {}
        for e in entries:
            spec = _declared_spec(dict(e))
            specs[spec.name] = spec
        return specs
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"{path} (${ENV_EXTRA}): not a valid dataset list: {err}") from None


def _declared_spec(e: dict) -> DatasetSpec:
    """One entry of $MNIST_LOGREG_DATASETS, checked: a plain name that redefines a built-in one
    only with ``"override": true``; http(s) mirrors only (a file:// mirror would copy any local
    file into the data folder); a folder and file names that stay inside the data folder."""
    import re

    override = e.pop("override", False) is True
    if "system_dirs" in e:
        raise ValueError(f"{e.get('name')}: system_dirs is for built-in datasets only")
    for key in ("classes", "mirrors"):
        e[key] = tuple(e[key])
    e.setdefault("files", dict(_STANDARD_FILES))
    spec = DatasetSpec(**e)
    if not isinstance(spec.name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", spec.name):
        raise ValueError(f"{spec.name!r}: a dataset name is lower-case letters, digits, '.', '_' and '-'")
    if spec.name in DATASETS and not override:
        raise ValueError(f"{spec.name}: redefines the built-in dataset; add \"override\": true to mean it")
    if len(spec.classes) != 10 or not all(isinstance(c, str) and c.strip() and c.isprintable() and len(c) <= 40
                                          for c in spec.classes):
        raise ValueError(f"{spec.name}: classes must be 10 printable names of at most 40 characters (the model "
                         f"is nn.Linear(784, 10)), got {len(spec.classes)}")  # 11 trained every epoch, then failed
    for url in spec.mirrors:
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"{spec.name}: mirror {url!r} is not an http(s) URL")
    names = [spec.folder, *spec.files.values()] if isinstance(spec.files, dict) else [spec.folder]
    for n in names:
        if not isinstance(n, str) or n in ("", ".", "..") or "/" in n or "\\" in n or "\0" in n:
            raise ValueError(f"{spec.name}: {n!r} is not a plain file or folder name (it must stay in the data folder)")
    if not isinstance(spec.files, dict) or set(spec.files) != set(ROLES) or not isinstance(spec.md5, dict) \
            or set(spec.md5) != set(ROLES):
        raise ValueError(f"{spec.name}: files and md5 need the keys {', '.join(ROLES)}")
    return spec


def all_specs() -> dict[str, DatasetSpec]:
    return {**DATASETS, **_extra_specs()}


def get_spec(name: str) -> DatasetSpec:
    from .errors import ConfigError

    key = name.lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist"}.get(key, key)
    specs = all_specs()
    if key not in specs:
        raise ConfigError(f"unknown dataset {name!r}; choose from: {', '.join(specs)}")
    return specs[key]
