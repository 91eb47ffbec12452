"""Augmentation: vectorised distortions that are seeded, mass-preserving and resumable."""
import torch

from mnist_logreg import MnistModel, fit, load_checkpoint
from mnist_logreg.augment import Augment, augment_images
from mnist_logreg.optim import make_optimizer
from mnist_logreg.train import History


def _com(x):
    r = torch.arange(28.).view(1, 28, 1)
    c = torch.arange(28.).view(1, 1, 28)
    t = x.sum((1, 2))
    return (x * r).sum((1, 2)) / t, (x * c).sum((1, 2)) / t


def test_distortions_are_seeded_and_bounded(mnist_test):
    x = mnist_test.images[:500].float() / 255
    a = Augment(shift=2)
    out1 = augment_images(x, a, torch.Generator().manual_seed(1))
    out2 = augment_images(x, a, torch.Generator().manual_seed(1))
    assert torch.equal(out1, out2) and not torch.equal(out1, x)
    (r0, c0), (r1, c1) = _com(x), _com(out1)
    assert (r1 - r0).abs().max() <= 2.05 and (c1 - c0).abs().max() <= 2.05  # a shift moves the mass by <= 2 px
    assert ((out1.sum((1, 2)) / x.sum((1, 2))) - 1).abs().max() < 0.1     # ink is kept
    full = augment_images(x, Augment(shift=1, rotate=10, scale=0.1, elastic=1.5), torch.Generator().manual_seed(0))
    assert full.shape == x.shape and full.min() >= 0 and full.max() <= 1
    assert torch.equal(augment_images(x, Augment(), torch.Generator()), x)  # all knobs at 0: untouched


def test_fit_with_augmentation_is_reproducible_and_resumable(mnist_train):
    sub = mnist_train.subset(slice(0, 3000))
    aug = Augment(shift=1, rotate=5)

    def run(epochs_list):
        torch.manual_seed(0)
        m = MnistModel()
        opt = make_optimizer(m.parameters())
        h, done = History(), 0
        for e in epochs_list:
            fit(m, sub, None, epochs=e, optimizer=opt, seed=2, start_epoch=done, history=h, augment=aug, log=None)
            done += e
        return m.linear.weight.detach().clone()

    full = run([4])
    assert torch.equal(full, run([4]))
    assert torch.equal(full, run([2, 2]))  # an augmented run resumes bit-identically
    torch.manual_seed(0)
    plain = MnistModel()
    fit(plain, sub, None, epochs=4, seed=2, log=None)
    assert not torch.equal(full, plain.linear.weight)


def test_cli_records_augmentation(tmp_path, run_cli):
    code, _, err = run_cli("train", "--dry-run", "--no-report", "--augment-shift", 1, "--augment-elastic", 1,
                           "--runs-dir", tmp_path, "--name", "a")
    assert code == 0, err
    cfg = load_checkpoint(tmp_path / "a").config
    assert cfg["augment_shift"] == 1.0 and cfg["augment_elastic"] == 1.0 and cfg["augment_rotate"] == 0.0
