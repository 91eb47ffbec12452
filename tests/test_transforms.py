"""The deskew transform: what it does to images, and that it travels with the model through
training, checkpoints, prediction and export."""
import numpy as np
import pytest
import torch

from mnist_logreg import MnistModel, evaluate, fit, load_checkpoint, save, split
from mnist_logreg.transforms import deskew


def _moments(img):
    r, c = torch.meshgrid(torch.arange(28.), torch.arange(28.), indexing="ij")
    t = img.sum()
    r0, c0 = (img * r).sum() / t, (img * c).sum() / t
    return r0, c0, ((img * (r - r0) * (c - c0)).sum() / t) / ((img * (r - r0) ** 2).sum() / t)


def test_deskew_removes_slant_and_centres(mnist_test):
    imgs = mnist_test.images[:200].float() / 255
    out = deskew(imgs)
    assert out.shape == imgs.shape and out.min() >= 0 and out.max() <= 1.0001
    before = torch.stack([_moments(i)[2].abs() for i in imgs]).mean()
    after = torch.stack([_moments(i)[2].abs() for i in out]).mean()
    assert after < 0.25 * before  # the row/column shear is (mostly) gone
    r0, c0, _ = _moments(out[0])
    assert abs(r0 - 14) < 0.6 and abs(c0 - 14) < 0.6


def _deskew_on_full_grids(x):
    """deskew as first written: every coordinate computed on full (n, 28, 28) grids."""
    img = x.reshape(-1, 28, 28)
    n = len(img)
    r, c = torch.arange(28.).view(1, 28, 1), torch.arange(28.).view(1, 1, 28)
    total = img.sum((1, 2)).clamp_min(1e-6)
    r0, c0 = (img * r).sum((1, 2)) / total, (img * c).sum((1, 2)) / total
    dr = r - r0.view(-1, 1, 1)
    alpha = ((img * dr * (c - c0.view(-1, 1, 1))).sum((1, 2)) / total) / ((img * dr * dr).sum((1, 2)) / total).clamp_min(1e-6)
    rows, cols = r.expand(n, 28, 28), c.expand(n, 28, 28)
    src_r = rows + (r0 - 14).view(-1, 1, 1)
    src_c = cols + alpha.view(-1, 1, 1) * (rows - 14) + (c0 - 14).view(-1, 1, 1)
    grid = torch.stack([(src_c + 0.5) / 14 - 1, (src_r + 0.5) / 14 - 1], dim=-1)
    out = torch.nn.functional.grid_sample(img.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros",
                                          align_corners=False)
    return out.reshape(x.shape)


def test_deskew_is_the_full_grid_formula_bit_for_bit(mnist_test):
    """deskew computes the sampling rows and shears at (image, row) size and broadcasts them (1.5x
    faster): the very same float32 arithmetic, so the same bits, on every MNIST test image."""
    x = mnist_test.images.float() / 255
    assert torch.equal(torch.cat([deskew(x[i:i + 2048]) for i in range(0, len(x), 2048)]),
                       torch.cat([_deskew_on_full_grids(x[i:i + 2048]) for i in range(0, len(x), 2048)]))
    noise = torch.rand(64, 784, generator=torch.Generator().manual_seed(0))
    assert torch.equal(deskew(noise), _deskew_on_full_grids(noise))


def test_deskew_model_round_trip_and_accuracy(mnist_train, mnist_test, tmp_path):
    train, val = split(mnist_train.subset(slice(0, 12_000)), 2_000, 0)
    accs = {}
    for t in ("none", "deskew"):
        torch.manual_seed(0)
        m = MnistModel(transform=t)
        fit(m, train, val, epochs=3, log=None)
        accs[t] = evaluate(m, mnist_test)["accuracy"]
    assert accs["deskew"] > accs["none"] + 0.015  # the lever works, on the real test set
    save(m, tmp_path / "d.pt")
    loaded = load_checkpoint(tmp_path / "d.pt").model
    assert loaded.transform == "deskew" and loaded.num_parameters() == 7850
    x = mnist_test.images[:300].float() / 255
    manual = torch.softmax(m.linear(deskew(x).reshape(300, 784)), 1)
    torch.testing.assert_close(torch.softmax(loaded(x), 1), manual)  # predict applies the same transform
    assert evaluate(loaded, mnist_test)["accuracy"] == pytest.approx(accs["deskew"])


def test_deskew_in_onnx(mnist_test, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from mnist_logreg.export import export
    torch.manual_seed(0)
    m = MnistModel(transform="deskew")
    path = export(m, tmp_path / "d.onnx")
    x = (mnist_test.images[:500].float() / 255).unsqueeze(1).numpy()
    logits, _ = ort.InferenceSession(str(path)).run(None, {"pixels": x})
    ref = m(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(logits, ref, atol=2e-4)  # GridSample's arithmetic differs in the last bits
    assert (logits.argmax(1) == ref.argmax(1)).all()


def test_train_cli_deskew(tmp_path, run_cli):
    code, out, err = run_cli("train", "--dry-run", "--no-report", "--transform", "deskew", "--runs-dir", tmp_path, "--name", "d")
    assert code == 0, err
    c = load_checkpoint(tmp_path / "d")
    assert c.model.transform == "deskew" and c.config["transform"] == "deskew"


def test_cbrt_travels_with_the_model_into_onnx(mnist_test, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from mnist_logreg.export import export
    from mnist_logreg.transforms import cbrt
    torch.manual_seed(0)
    m = MnistModel(transform="cbrt")
    x = (mnist_test.images[:500].float() / 255).unsqueeze(1)
    manual = m.linear(x.reshape(500, 784) ** (1 / 3))
    torch.testing.assert_close(m(x), manual)
    assert torch.equal(cbrt(torch.tensor([0.0, 1.0, 0.125])), torch.tensor([0.0, 1.0, 0.5]))
    path = export(m, tmp_path / "c.onnx")
    logits, _ = ort.InferenceSession(str(path)).run(None, {"pixels": x.numpy()})
    np.testing.assert_allclose(logits, manual.detach().numpy(), atol=1e-5)
    save(m, tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt").model.transform == "cbrt"


def test_train_cli_cbrt_cosine_recorded(tmp_path, run_cli):
    code, out, err = run_cli("train", "--dry-run", "--no-report", "--transform", "cbrt", "--lr-schedule", "cosine",
                             "--dataset", "fashion-mnist", "--runs-dir", tmp_path, "--name", "c")
    assert code == 0, err
    c = load_checkpoint(tmp_path / "c")
    assert c.model.transform == "cbrt" and c.config["transform"] == "cbrt" and c.config["lr_schedule"] == "cosine"
