"""Exports: ONNX through onnxruntime and TorchScript, checked against PyTorch on real MNIST."""
import shutil

import numpy as np
import pytest
import torch

from mnist_logreg import MnistModel, fit, save, split
from mnist_logreg.export import export

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model(mnist_train):
    torch.manual_seed(0)
    m = MnistModel()
    fit(m, split(mnist_train, 10_000, 0)[0], None, epochs=3, log=None)
    return m


def test_onnx_matches_pytorch_on_the_test_set(model, mnist_test, tmp_path):
    path = export(model, tmp_path / "model.onnx", "onnx")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.move(path, alone / "m.onnx")  # one file, nothing beside it
    assert [p.name for p in alone.iterdir()] == ["m.onnx"]
    sess = ort.InferenceSession(str(alone / "m.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "pixels" and inp.shape[1:] == [1, 28, 28] and isinstance(inp.shape[0], str)
    assert [o.name for o in sess.get_outputs()] == ["logits", "probabilities"]
    x = mnist_test.images.float().div(255).unsqueeze(1).numpy()
    logits, probs = sess.run(None, {"pixels": x})  # the whole test set as one batch
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    np.testing.assert_allclose(logits, ref.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(probs, torch.softmax(ref, 1).numpy(), atol=1e-5, rtol=0)
    one, _ = sess.run(None, {"pixels": x[:1]})  # dynamic batch: a batch of one works too
    np.testing.assert_allclose(one, ref[:1].numpy(), atol=1e-5)


def test_torchscript_matches_pytorch(model, mnist_test, tmp_path):
    path = export(model, tmp_path / "model.pt", "torchscript")
    loaded = torch.jit.load(str(path))
    x = mnist_test.images[:1000].float().div(255).unsqueeze(1)
    torch.testing.assert_close(loaded(x), model(x), atol=1e-6, rtol=0)


def test_export_cli(model, tmp_path, run_cli):
    save(model, tmp_path / "m.pt")
    code, out, _ = run_cli("export", tmp_path / "m.pt", "--format", "onnx", "-o", tmp_path / "m.onnx")
    assert code == 0 and "input 'pixels'" in out and (tmp_path / "m.onnx").stat().st_size > 30_000
    code, _, err = run_cli("export", tmp_path / "missing.pt", "-o", tmp_path / "x.onnx")
    assert code == 2 and "no such checkpoint" in err and not (tmp_path / "x.onnx").exists()


def test_onnx_answers_like_the_library(tmp_path, run_cli, mnist_test):
    """A calibrated run's ONNX file returns what Predictor returns: calibrated probabilities, the
    likeness and the answer state (an index into answers.STATES, named in the metadata)."""
    import json

    from mnist_logreg import TrainConfig, probes, train_run
    from mnist_logreg.answers import STATES, Predictor
    from mnist_logreg.preprocess import preprocess

    run = train_run(TrainConfig(dry_run=True), tmp_path, "r", report=False, log=None)
    code, out, _ = run_cli("export", run.path, "-o", tmp_path / "a.onnx")
    assert code == 0 and "'likeness', 'state'" in out
    sess = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["logits", "probabilities", "likeness", "state"]
    assert json.loads(sess.get_modelmeta().custom_metadata_map["mnist_logreg.states"]) == list(STATES)
    shapes = np.stack([preprocess(p.image).reshape(-1) for p in probes.drawn_shapes(13, seed=2)])
    x = np.concatenate([mnist_test.features()[:500].numpy(), shapes, np.zeros((1, 784), np.float32)])
    _, probs, like, state = sess.run(None, {"pixels": x.reshape(-1, 1, 28, 28)})
    answers = Predictor.from_checkpoint(run.checkpoint).answers(torch.from_numpy(x))
    assert [STATES[s] for s in state] == [a.state for a in answers]
    np.testing.assert_allclose(like[:-1], [a.likeness for a in answers[:-1]], atol=2 / 1001)
    np.testing.assert_allclose(probs[:-1], [a.probabilities for a in answers[:-1]], atol=1e-4)
