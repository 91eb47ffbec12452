"""Reading, finding and splitting data: real MNIST and small generated IDX/CSV files."""
import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from helpers import make_idx_dataset
from mnist_logreg import DataError, load_dataset, read_idx, split
from mnist_logreg.data import load_kaggle_csv, locate, write_idx
from mnist_logreg.errors import ConfigError

# md5 of the decompressed files, from ../shared/data/README.md
MNIST_MD5 = {"train-images": "6bbc9ace898e44ae57da46a324031adb", "test-labels": "27ae3e4e09519cfbb04c329615203637"}


def test_real_mnist_loads_whole(mnist_train, mnist_test):
    assert mnist_train.images.shape == (60000, 28, 28) and mnist_train.images.dtype == torch.uint8
    assert mnist_test.images.shape == (10000, 28, 28)
    assert mnist_train.labels.dtype == torch.int64
    assert mnist_train.labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert torch.bincount(mnist_train.labels).tolist()[1] == 6742  # published class count of '1'
    # byte-exact: re-serialise and compare with the published checksum of the original file
    raw = bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 28, 28) + mnist_train.images.numpy().tobytes()
    assert hashlib.md5(raw).hexdigest() == MNIST_MD5["train-images"]
    img, label = mnist_test[0]  # notebook indexing: ToTensor-like (1, 28, 28) float in [0, 1]
    assert img.shape == (1, 28, 28) and label == 7 and 0 <= img.min() and img.max() <= 1


def test_fashion_mnist_has_class_names(data_dir):
    fm = load_dataset("fashion-mnist", "test", data_dir, download=False)
    assert len(fm) == 10000 and fm.classes[0] == "T-shirt/top" and fm.classes[9] == "Ankle boot"


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip(tmp_path, gz):
    arr = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    p = tmp_path / ("x.gz" if gz else "x")
    write_idx(p, arr)
    assert np.array_equal(read_idx(p, "images").numpy(), arr)


def _write_bytes(p, data, gz=False):
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


def _header(ndim_dims, dtype=8):
    return bytes([0, 0, dtype, len(ndim_dims)]) + struct.pack(f">{len(ndim_dims)}I", *ndim_dims)


@pytest.mark.parametrize("name,content,kind,message", [
    ("empty", b"", "images", "file is empty"),
    ("magic", b"\x12\x34\x56\x78" + b"\0" * 100, "images", "magic number 0x12345678"),
    ("float", _header((2,), dtype=0x0D) + b"\0" * 8, "labels", "not an unsigned-byte IDX"),
    ("images-as-labels", _header((1, 28, 28)) + b"\0" * 784, "labels", "expected a label file"),
    ("labels-as-images", _header((3,)) + b"\0\1\2", "images", "expected an image file"),
    ("not-28", _header((2, 32, 32)) + b"\0" * 2048, "images", "images are 32x32, expected 28x28"),
    ("truncated", _header((10, 28, 28)) + b"\0" * 100, "images", "truncated"),
    ("trailing", _header((1,)) + b"\1\2", "labels", "unexpected bytes"),
    ("short-header", b"\0\0\x08\x03\0\0", "images", "truncated IDX header"),
])
def test_bad_idx_files_are_named(tmp_path, name, content, kind, message):
    p = _write_bytes(tmp_path / name, content)
    with pytest.raises(DataError) as e:
        read_idx(p, kind)
    assert str(p) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_truncated_gzip(tmp_path):
    good = gzip.compress(_header((100, 28, 28)) + bytes(78400))
    p = tmp_path / "cut.gz"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="truncated or corrupt gzip|truncated"):
        read_idx(p, "images")


def test_huge_header_claim_fails_fast(tmp_path):
    # 10^9 images claimed by a 1 kB file: refused from the header, nothing allocated
    p = _write_bytes(tmp_path / "bomb.gz", _header((10**9, 28, 28)) + bytes(1000), gz=True)
    with pytest.raises(DataError, match="header claims"):
        read_idx(p, "images")


def test_label_out_of_range(tmp_path):
    p = _write_bytes(tmp_path / "labels", _header((4,)) + bytes([1, 2, 10, 3]))
    with pytest.raises(DataError, match="label 10 at index 2 is out of range 0..9"):
        read_idx(p, "labels", num_classes=10)


def test_count_mismatch(tmp_path):
    d = make_idx_dataset(tmp_path / "d")
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(63, np.uint8))
    with pytest.raises(DataError, match="63 labels for 64 images"):
        load_dataset("mnist", "train", d, download=False)


@pytest.mark.parametrize("layout", ["flat", "torchvision", "torchvision-uncompressed"])
def test_layouts_found(tmp_path, layout):
    folder = {"flat": tmp_path, "torchvision": tmp_path / "MNIST" / "raw",
              "torchvision-uncompressed": tmp_path / "MNIST" / "raw"}[layout]
    make_idx_dataset(folder, gz=layout != "torchvision-uncompressed")
    ds = load_dataset("mnist", "train", tmp_path, download=False)
    assert len(ds) == 64


def test_search_order(tmp_path, monkeypatch):
    a, b = make_idx_dataset(tmp_path / "a", n_train=11), make_idx_dataset(tmp_path / "b", n_train=22)
    monkeypatch.setenv("MNIST_LOGREG_DATA", str(b))
    assert len(load_dataset("mnist", "train", a, download=False)) == 11   # --data-dir first
    assert len(load_dataset("mnist", "train", None, download=False)) == 22  # then the env var
    monkeypatch.delenv("MNIST_LOGREG_DATA")
    make_idx_dataset(tmp_path / "data", n_train=33)                          # then ./data
    assert len(load_dataset("mnist", "train", None, download=False)) == 33


def test_missing_data_offline_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LOGREG_DATA", str(tmp_path / "nothing"))
    with pytest.raises(DataError) as e:
        locate("mnist", None, download_missing=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "nothing" / "MNIST" / "raw") in msg


def test_split_seeded_and_disjoint(mnist_train):
    a1, v1 = split(mnist_train, 10_000, seed=0)
    a2, v2 = split(mnist_train, 10_000, seed=0)
    _, v3 = split(mnist_train, 10_000, seed=1)
    assert len(a1) == 50_000 and len(v1) == 10_000
    assert torch.equal(v1.images, v2.images) and torch.equal(a1.labels, a2.labels)
    assert not torch.equal(v1.labels, v3.labels)


def test_split_rejects_bad_size(mnist_test):
    with pytest.raises(ConfigError, match="^val_size must be between 0 and"):
        split(mnist_test, 10_000)


# ---- Kaggle CSV ----------------------------------------------------------------------------
def write_kaggle(path, images, labels=None):
    cols = (["label"] if labels is not None else []) + [f"pixel{i}" for i in range(784)]
    rows = [",".join(cols)]
    for k, img in enumerate(images):
        vals = ([str(int(labels[k]))] if labels is not None else []) + [str(int(v)) for v in img.reshape(-1)]
        rows.append(",".join(vals))
    path.write_text("\n".join(rows) + "\n")
    return path


def test_kaggle_train_and_test_csv(tmp_path, mnist_test):
    imgs, labs = mnist_test.images[:20], mnist_test.labels[:20]
    tr = load_kaggle_csv(write_kaggle(tmp_path / "train.csv", imgs, labs))
    assert torch.equal(tr.images, imgs) and torch.equal(tr.labels, labs)
    te = load_kaggle_csv(write_kaggle(tmp_path / "test.csv", imgs))
    assert torch.equal(te.images, imgs) and (te.labels == -1).all()


@pytest.mark.parametrize("case,message", [
    ("missing-column", "header has 784 columns, expected 785"),
    ("extra-column", "rows have 786 columns|header has 786"),
    ("non-numeric", "could not convert|row"),
    ("pixel-range", "pixel value outside 0..255"),
    ("header-only", "header only"),
    ("ragged", "columns|row"),
    ("label-range", "label 12 outside 0..9"),
])
def test_bad_kaggle_csv(tmp_path, case, message):
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    row = "3," + ",".join(["0"] * 784)
    text = {
        "missing-column": "label," + ",".join(f"pixel{i}" for i in range(783)) + "\n" + "3," + ",".join(["0"] * 783),
        "extra-column": header + ",x\n" + row + ",0",
        "non-numeric": header + "\n" + row.replace(",0,", ",abc,", 1),
        "pixel-range": header + "\n" + row[:-1] + "256",
        "header-only": header + "\n",
        "ragged": header + "\n" + row + "\n" + row + ",0",
        "label-range": header + "\n" + "12" + row[1:],
    }[case]
    p = tmp_path / "train.csv"
    p.write_text(text + "\n")
    with pytest.raises(DataError, match=message) as e:
        load_kaggle_csv(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)



def test_extra_datasets_from_a_json_file(tmp_path, monkeypatch):
    from mnist_logreg.datasets import get_spec
    d = make_idx_dataset(tmp_path / "Mine" / "raw", n_train=20, n_test=10)
    spec = tmp_path / "extra.json"
    spec.write_text('[{"name": "mine", "folder": "Mine", "classes": ["a","b","c","d","e","f","g","h","i","j"], '
                    '"mirrors": [], "md5": {"train-images": "0", "train-labels": "0", "test-images": "0", "test-labels": "0"}}]')
    monkeypatch.setenv("MNIST_LOGREG_DATASETS", str(spec))
    assert get_spec("mine").classes[0] == "a"
    assert len(load_dataset("mine", "train", tmp_path, download=False)) == 20 and d.is_dir()
    spec.write_text("[{\"name\": \"broken\"}]")
    with pytest.raises(ConfigError, match="not a valid dataset list"):
        get_spec("broken")


def test_subset_by_positions_slices_masks_and_negatives_are_the_rows_indexing_gives():
    """subset takes positions through index_select (faster); any index picks what indexing picks."""
    from mnist_logreg.data import ImageSet

    g = torch.Generator().manual_seed(0)
    s = ImageSet(torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8, generator=g), torch.arange(50) % 10,
                 tuple("0123456789"))
    for index in (torch.randperm(50, generator=g), torch.tensor([3, 3, 0], dtype=torch.int32), torch.tensor([-1, 2]),
                  torch.arange(50) % 3 == 0, slice(5, 20, 3), [4, 1], torch.tensor([], dtype=torch.long)):
        sub = s.subset(index)
        assert torch.equal(sub.images, s.images[index]) and torch.equal(sub.labels, s.labels[index]), index
