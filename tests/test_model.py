"""The model and checkpoints: notebook compatibility, safe loading."""
import pytest
import torch
from torch import nn

from mnist_logreg import CheckpointError, MnistModel, load, load_checkpoint, save


class NotebookModel(nn.Module):
    """The tutorial's class, verbatim in substance."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 10)

    def forward(self, x):
        return self.linear(x.reshape(-1, 784))


def test_parameter_count():
    m = MnistModel()
    assert m.num_parameters() == 7850 == 784 * 10 + 10
    assert set(m.state_dict()) == {"linear.weight", "linear.bias"}


def test_notebook_state_dict_loads_with_same_predictions(tmp_path, mnist_test):
    torch.manual_seed(3)
    nb = NotebookModel()
    path = tmp_path / "mnist-logistic.pth"
    torch.save(nb.state_dict(), path)  # exactly what the notebook does
    ours = load(path)
    x = mnist_test.features()[:500]
    assert torch.equal(ours(x).argmax(1), nb(x).argmax(1))
    assert torch.allclose(ours(x), nb(x))


def test_plain_linear_state_dict_loads(tmp_path):
    lin = nn.Linear(784, 10)
    torch.save(lin.state_dict(), tmp_path / "lin.pth")
    assert torch.equal(load(tmp_path / "lin.pth").linear.weight, lin.weight)


def test_save_load_roundtrip_keeps_metadata(tmp_path):
    m = MnistModel()
    save(m, tmp_path / "c.pt", epoch=7, config={"lr": 0.1}, metrics={"test_acc": 0.5}, dataset="fashion-mnist",
         classes=["a"] * 10)
    c = load_checkpoint(tmp_path / "c.pt")
    assert c.epoch == 7 and c.config == {"lr": 0.1} and c.dataset == "fashion-mnist"
    assert torch.equal(c.model.linear.bias, m.linear.bias)
    assert "torch" in c.meta["versions"]


@pytest.mark.parametrize("state,message", [
    ({"linear.weight": torch.zeros(10, 100), "linear.bias": torch.zeros(10)}, r"linear.weight has shape \(10, 100\), expected \(10, 784\)"),
    ({"linear.weight": torch.zeros(10, 784)}, "missing key 'linear.bias'"),
    ({"linear.weight": torch.full((10, 784), float("nan")), "linear.bias": torch.zeros(10)}, "NaN or infinite"),
    ({"linear.weight": torch.zeros(10, 784), "linear.bias": torch.tensor([float("inf")] * 10)}, "linear.bias contains NaN"),
    ({"fc1.weight": torch.zeros(3)}, "missing key 'linear.weight'"),
])
def test_bad_checkpoints_refused_by_name(tmp_path, state, message):
    p = tmp_path / "bad.pt"
    torch.save(state, p)
    with pytest.raises(CheckpointError, match=message):
        load(p)


def test_garbage_file_refused(tmp_path):
    p = tmp_path / "x.pt"
    p.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load(p)


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    p = tmp_path / "evil.pt"
    torch.save({"linear.weight": Evil()}, p)
    with pytest.raises(CheckpointError, match="refused"):
        load(p)
    assert not marker.exists()
