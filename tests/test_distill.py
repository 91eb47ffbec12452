"""Distillation: the teacher learns, the soft targets are what the docs say, and the CLI runs
it end to end with the student still one linear layer."""
import pytest
import torch

from mnist_logreg import load_checkpoint
from mnist_logreg.distill import soft_targets, train_teacher
from mnist_logreg.errors import ConfigError


def test_teacher_learns_and_targets_mix_labels_and_teacher(mnist_train, mnist_test):
    sub = mnist_train.subset(slice(0, 6000))
    teacher = train_teacher(sub.features(), sub.labels, epochs=2, seed=0, log=None)
    x, y = mnist_test.features()[:1000], mnist_test.labels[:1000]
    with torch.no_grad():
        assert (teacher(x).argmax(1) == y).float().mean() > 0.85  # 98% on the full set; here 6,000 images
    t = soft_targets(teacher, x, y, temperature=2.0, alpha=0.3)
    torch.testing.assert_close(t.sum(1), torch.ones(1000))
    with torch.no_grad():
        expected = 0.3 * torch.nn.functional.one_hot(y, 10) + 0.7 * torch.softmax(teacher(x) / 2.0, 1)
    torch.testing.assert_close(t, expected)
    assert torch.equal(soft_targets(teacher, x, y, alpha=1.0), torch.nn.functional.one_hot(y, 10).float())
    with pytest.raises(ConfigError, match="^distill_temperature must be positive"):
        soft_targets(teacher, x, y, temperature=0)


def test_teacher_is_the_torch_optim_adam_loop_bit_for_bit(mnist_train):
    """train_teacher steps with our Adam (fused=False) to spare torch.optim's import of
    torch._dynamo: the teacher is the one torch.optim.Adam trains on the same batches, exactly."""
    from mnist_logreg.distill import make_teacher

    sub = mnist_train.subset(slice(0, 640))
    x, y = sub.features(), sub.labels
    ours = train_teacher(x, y, epochs=2, seed=4, batch_size=64, log=None)
    torch.manual_seed(4)
    ref = make_teacher()
    opt = torch.optim.Adam(ref.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(4)
    for _ in range(2):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(ref(x[perm[i:i + 64]]), y[perm[i:i + 64]]).backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values()))


def test_cli_distillation_and_averaging_recorded(tmp_path, run_cli):
    code, out, err = run_cli("train", "--dry-run", "--no-report", "--distill-epochs", "1", "--distill-alpha", "0.5",
                             "--average-from", "1", "--runs-dir", tmp_path, "--name", "d")
    assert code == 0, err
    assert "teacher val_acc: " in out and "Averaged weights of epochs 1-1" in out
    c = load_checkpoint(tmp_path / "d")
    assert c.model.num_parameters() == 7850  # the student; the teacher is not saved
    assert c.config["distill_epochs"] == 1 and c.config["average_from"] == 1
    assert c.metrics["distillation"]["alpha"] == 0.5 and 0 < c.metrics["distillation"]["teacher_val_acc"] <= 1
    assert c.metrics["weight_average"]["epochs"] == 1 and c.metrics["engine"] == "torchscript"
