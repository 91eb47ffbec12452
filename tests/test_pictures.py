"""The figures drawn without matplotlib (pictures.py), and the decompressed-dataset cache:
both exist to make commands fast (issue 17); both must show and read exactly what they did."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import make_idx_dataset
from mnist_logreg import data as data_mod
from mnist_logreg import pictures


def test_a_grid_places_each_image_pixel_for_pixel(tmp_path):
    g = np.random.default_rng(0)
    images = g.integers(0, 256, (10, 28, 28)).astype(np.uint8)
    pictures.image_grid(images, np.arange(10), tmp_path / "g.png", cols=4, title="ten")
    img = np.asarray(Image.open(tmp_path / "g.png").convert("RGB"))
    s = pictures.SCALE
    big = np.kron(images[5], np.ones((s, s), dtype=np.uint8))
    # find image 5 (row 1, column 1) by its exact pixels: the enlarged digit sits in the picture unchanged
    hits = [(y, x) for y in range(img.shape[0] - big.shape[0]) for x in (pictures.MARGIN + 28 * s + pictures.GAP,)
            if np.array_equal(img[y:y + big.shape[0], x:x + big.shape[1], 0], big)]
    assert len(hits) == 1


def test_captions_take_their_colour(tmp_path):
    pictures.gallery_plot(np.zeros((2, 28, 28), np.uint8), ["7 / 7", "3 / 8"], ["tab:green", "tab:red"], tmp_path / "p.png")
    img = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).reshape(-1, 3)
    colours = {tuple(c) for c in img}
    assert pictures.COLOURS["tab:green"] in colours and pictures.COLOURS["tab:red"] in colours


def test_the_diverging_scale_is_matplotlibs_rdbu_r():
    """Reference test: our colour scale against matplotlib's own colormap."""
    import matplotlib
    t = np.linspace(-1, 1, 101)
    ours = pictures.diverging(t, 1.0).astype(int)
    ref = np.round(matplotlib.colormaps["RdBu_r"]((t + 1) / 2)[:, :3] * 255).astype(int)
    # matplotlib looks colours up in a 256-entry table: up to ~3.6 levels apart on the steepest
    # of its 10 segments (209 -> 146 over 25.5 entries); ours interpolates exactly
    assert np.abs(ours - ref).max() <= 4


def test_weights_and_accuracy_figures(tmp_path):
    w = torch.randn(10, 784)
    pictures.weights_plot(w, [str(i) for i in range(10)], tmp_path / "w.png")
    rows = [{"epoch": e, "val_acc": 0.1 + 0.08 * e} for e in range(11)]
    pictures.accuracy_plot(rows, tmp_path / "a.png")
    for f in ("w.png", "a.png"):
        with Image.open(tmp_path / f) as im:
            assert im.size[0] > 600 and len(np.unique(np.asarray(im.convert("L")))) > 20


@pytest.mark.parametrize("lo,hi", [(0, 20), (-1, 21), (0.9012, 0.9274), (0.05, 0.93), (3, 3.0001), (-5e-7, 2e-6)])
def test_ticks_are_round_evenly_spaced_and_inside(lo, hi):
    ticks = pictures._nice_ticks(lo, hi, 7)
    assert 2 <= len(ticks) <= 12
    assert all(lo - 1e-12 <= t <= hi + 1e-12 for t in ticks)
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert any(np.isclose(mantissa, m) for m in (1, 2, 5))


# -- the dataset cache ----------------------------------------------------------------------
@pytest.fixture
def cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data_mod, "_CACHE_MIN_BYTES", 0)
    folder = make_idx_dataset(tmp_path / "ds", n_train=50, n_test=10)
    return folder / "train-images-idx3-ubyte.gz"


def test_a_cached_dataset_reads_the_same_without_decompressing(cached, monkeypatch):
    first = data_mod.read_idx(cached, "images")
    assert len(list((cached.parents[1] / "cache" / "data").glob("idx-*.npy"))) == 1
    monkeypatch.setattr(data_mod, "_parse_idx", lambda *a: pytest.fail("decompressed again"))
    assert torch.equal(data_mod.read_idx(cached, "images"), first)


def test_a_changed_file_never_meets_a_stale_copy(cached, tmp_path):
    data_mod.read_idx(cached, "images")
    make_idx_dataset(tmp_path / "ds", n_train=50, n_test=10, seed=1)  # same name, other bytes
    fresh = data_mod._parse_idx(cached, "images", (28, 28))
    assert torch.equal(data_mod.read_idx(cached, "images"), fresh)
    assert len(list((tmp_path / "cache" / "data").glob("idx-*.npy"))) == 2


def test_a_damaged_copy_is_decompressed_again_and_rewritten(cached, tmp_path):
    good = data_mod.read_idx(cached, "images")
    copy = next((tmp_path / "cache" / "data").glob("idx-*.npy"))
    copy.write_bytes(copy.read_bytes()[:100])
    assert torch.equal(data_mod.read_idx(cached, "images"), good)
    assert np.array_equal(np.load(copy), good.numpy())
    # a copy of the wrong kind (labels where images are wanted) is not used either
    np.save(copy, np.zeros(7, np.uint8))
    assert torch.equal(data_mod.read_idx(cached, "images"), good)


def test_a_cache_folder_others_can_write_is_neither_read_nor_written(cached, tmp_path):
    folder = tmp_path / "cache" / "data"
    folder.mkdir(parents=True)
    os.chmod(folder, 0o775)  # group-writable
    data_mod.read_idx(cached, "images")
    assert list(folder.iterdir()) == []
    os.chmod(folder, 0o700)
    data_mod.read_idx(cached, "images")
    copy = next(folder.glob("idx-*.npy"))
    assert data_mod._load_cached(copy) is not None
    os.chmod(folder, 0o777)
    assert data_mod._load_cached(copy) is None  # world-writable now: someone else could have put it there
