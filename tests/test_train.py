"""Training maths against independent references, determinism, resume and accuracy."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mnist_logreg import MnistModel, accuracy, evaluate, fit, predict_image, split
from mnist_logreg.engines import _native
from mnist_logreg.errors import ConfigError, TrainingDiverged
from mnist_logreg.optim import make_optimizer
from mnist_logreg.train import History, epoch_generator

needs_native = pytest.mark.skipif(_native.load() is None, reason="no C compiler: the native engine cannot be built")


def _closed_form_grad(W, b, x, y):
    """What fit computes per batch, in numpy float64 (an independent implementation)."""
    z = x @ W.T + b
    z = z - z.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y]).mean()
    p[np.arange(len(y)), y] -= 1
    p /= len(y)
    return loss, p.T @ x, p.sum(0)


def test_loss_and_gradient_match_autograd_and_numpy(mnist_train):
    torch.manual_seed(0)
    m = MnistModel().double()
    x = mnist_train.features(torch.float64)[:300]
    y = mnist_train.labels[:300]
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    l_np, gW, gb = _closed_form_grad(m.linear.weight.detach().numpy(), m.linear.bias.detach().numpy(),
                                     x.numpy(), y.numpy())
    assert loss.item() == pytest.approx(l_np, rel=1e-12)
    np.testing.assert_allclose(m.linear.weight.grad.numpy(), gW, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(m.linear.bias.grad.numpy(), gb, rtol=1e-10, atol=1e-14)


def _autograd_reference(model, x, y, epochs, lr, batch_size, seed, opt_name="adam", loss=None):
    """The notebook's loop: autograd + a stock torch.optim optimizer, same batch order.
    ``loss(logits, idx)`` replaces the cross-entropy against ``y[idx]`` where given."""
    loss = loss or (lambda logits, idx: F.cross_entropy(logits, y[idx]))
    opt = {"adam": lambda p: torch.optim.Adam(p, lr=lr),
           "adamw": lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=0.01),
           "sgd": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9)}[opt_name](model.parameters())
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(y), generator=epoch_generator(seed, epoch))
        for i in range(0, len(y), batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            loss(model(x[idx]), idx).backward()
            opt.step()


@pytest.mark.parametrize("opt_name,lr,engine", [
    pytest.param("adam", 1e-3, "native", marks=needs_native),
    pytest.param("adamw", 1e-3, "native", marks=needs_native),
    ("adam", 1e-3, "torchscript"),
    ("adam", 1e-3, "python"),
    ("adamw", 1e-3, "python"),
    ("sgd", 0.05, "auto"),
])
def test_fast_fit_equals_autograd_loop(mnist_train, opt_name, lr, engine):
    sub = mnist_train.subset(slice(0, 6000))
    x, y = sub.features(), sub.labels
    torch.manual_seed(1)
    ref = MnistModel()
    ours = MnistModel()
    ours.load_state_dict(ref.state_dict())
    _autograd_reference(ref, x, y, epochs=2, lr=lr, batch_size=128, seed=5, opt_name=opt_name)
    opt = make_optimizer(ours.parameters(), opt_name, lr, weight_decay=0.01 if opt_name == "adamw" else 0.0)
    h = fit(ours, sub, None, epochs=2, optimizer=opt, batch_size=128, seed=5, engine=engine, log=None)
    assert h.engine == (engine if engine != "auto" else "python")
    torch.testing.assert_close(ours.linear.weight, ref.linear.weight, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(ours.linear.bias, ref.linear.bias, atol=2e-5, rtol=1e-4)
    assert not torch.equal(ours.linear.weight, MnistModel().linear.weight)


def test_train_loss_is_mean_batch_cross_entropy(mnist_train):
    sub = mnist_train.subset(slice(0, 1000))
    torch.manual_seed(0)
    m = MnistModel()
    m0 = MnistModel()
    m0.load_state_dict(m.state_dict())
    h = fit(m, sub, sub, epochs=1, lr=1e-3, batch_size=1000, seed=0, log=None)
    # one batch = the whole set: the epoch's train loss is the loss before its single step
    assert h[1]["train_loss"] == pytest.approx(F.cross_entropy(m0(sub.features()), sub.labels).item(), rel=1e-5)
    assert h[0]["epoch"] == 0 and h[0]["val_loss"] == pytest.approx(h[1]["train_loss"], rel=1e-5)


def test_same_seed_bit_identical_and_other_seed_differs(mnist_train):
    sub = mnist_train.subset(slice(0, 5000))

    def run(seed):
        torch.manual_seed(seed)
        m = MnistModel()
        fit(m, sub, None, epochs=2, seed=seed, log=None)
        return m.linear.weight.detach().clone()

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_resume_reaches_the_same_weights(mnist_train):
    sub = mnist_train.subset(slice(0, 5000))
    torch.manual_seed(0)
    full = MnistModel()
    init = {k: v.clone() for k, v in full.state_dict().items()}
    fit(full, sub, None, epochs=4, seed=3, log=None)

    part = MnistModel()
    part.load_state_dict(init)
    opt = make_optimizer(part.parameters())
    hist = History()
    fit(part, sub, None, epochs=2, optimizer=opt, seed=3, history=hist, log=None)
    state = opt.state_dict()
    resumed = MnistModel()
    resumed.load_state_dict(part.state_dict())
    opt2 = make_optimizer(resumed.parameters())
    opt2.load_state_dict(state)
    fit(resumed, sub, None, epochs=2, optimizer=opt2, seed=3, start_epoch=2, history=hist, log=None)
    assert torch.equal(resumed.linear.weight, full.linear.weight)
    assert [r["epoch"] for r in hist] == [0, 1, 2, 3, 4]


def test_divergence_is_reported_with_epoch(mnist_train):
    sub = mnist_train.subset(slice(0, 2000))
    m = MnistModel()
    with torch.no_grad():
        m.linear.weight.mul_(1e38)
    with pytest.raises(TrainingDiverged, match="diverged in epoch 1.*smaller learning rate"):
        fit(m, sub, None, epochs=3, lr=1e38, optimizer="sgd", log=None)


def test_weights_no_checkpoint_may_hold_are_divergence(tmp_path, data_dir):
    """sgd at lr 1e6: finite losses, weights past checkpoint.MAX_WEIGHT. It was "wrote
    checkpoint.pt" and exit 0, and then every command refused that checkpoint (issue 27)."""
    from mnist_logreg import TrainConfig, train_run
    with pytest.raises(TrainingDiverged, match="weights grew beyond 1e\\+06.*no run folder is left"):
        train_run(TrainConfig(optimizer="sgd", lr=1e6, epochs=3, dry_run=True, data_dir=str(data_dir)), tmp_path,
                  "big", log=None)
    assert not (tmp_path / "big").exists()


def test_evaluate_and_accuracy_against_direct_computation(mnist_test):
    torch.manual_seed(0)
    m = MnistModel()
    r = evaluate(m, mnist_test)
    logits = m(mnist_test.features())
    assert r["loss"] == pytest.approx(F.cross_entropy(logits, mnist_test.labels).item(), rel=1e-5)
    assert r["accuracy"] == pytest.approx(accuracy(logits, mnist_test.labels).item())


def test_notebook_parity_reaches_92_percent(mnist_train, mnist_test):
    """The notebook's run: 50k/10k split, Adam 1e-3, batch 128, 20 epochs (4 rounds of 5)."""
    train, val = split(mnist_train, 10_000, seed=0)
    torch.manual_seed(0)
    model = MnistModel()
    lines = []
    opt = make_optimizer(model.parameters(), "adam", 1e-3)
    history = History()
    for round_ in range(4):  # the notebook's fit(5, ...) x 4, continuing the history
        fit(model, train, val, epochs=5, optimizer=opt, start_epoch=5 * round_, history=history,
            log=lines.append)
    assert lines[0].startswith("Epoch [0], val_loss: ") and 0.0 < history[0]["val_acc"] < 0.3
    assert lines[-1].startswith("Epoch [20], val_loss: 0.")
    test = evaluate(model, mnist_test)
    assert test["accuracy"] >= 0.92
    img, label = mnist_test[0]
    assert predict_image(img, model) == label == 7


@pytest.mark.parametrize("engine", [pytest.param("native", marks=needs_native), "torchscript"])
@pytest.mark.parametrize("n,batch_size,epochs,transform", [
    (4000, 128, 2, "none"),
    (9000, 100, 1, "none"),   # a batch size that does not divide the kernel's chunk: same batches
    (1001, 64, 1, "none"),    # a last batch of 41: odd, so the C kernel's one-image path runs
    (3000, 128, 1, "deskew"),  # float features (the transform's output) instead of uint8 pixels
])
def test_kernel_engines_equal_python_loop(mnist_train, engine, n, batch_size, epochs, transform):
    sub = mnist_train.subset(slice(0, n))
    val = mnist_train.subset(slice(n, n + 777))
    out = []
    for eng in (engine, "python"):
        torch.manual_seed(0)
        m = MnistModel(transform=transform)
        h = fit(m, sub, val, epochs=epochs, batch_size=batch_size, seed=1, engine=eng, log=None)
        assert h.engine == eng
        out.append((m.linear.weight.detach().clone(), m.linear.bias.detach().clone(), h))
    torch.testing.assert_close(out[0][0], out[1][0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out[0][1], out[1][1], atol=1e-6, rtol=1e-5)
    for r0, r1 in zip(out[0][2], out[1][2]):  # train loss, and validation by each engine's own code
        for key in ("train_loss", "val_loss"):
            assert r0[key] == pytest.approx(r1[key], rel=1e-5)
        assert r0["val_acc"] == pytest.approx(r1["val_acc"], abs=1.5 / 777)


def test_engine_fallback_and_refusal(mnist_train, monkeypatch):
    """Without a C compiler, auto runs TorchScript; asking for native says why it cannot run."""
    sub = mnist_train.subset(slice(0, 500))
    monkeypatch.setattr(_native, "_loaded", {"lib": None})
    assert fit(MnistModel(), sub, None, epochs=1, log=None).engine == "torchscript"
    with pytest.raises(ConfigError, match="^engine native cannot run here: no C compiler"):
        fit(MnistModel(), sub, None, epochs=1, engine="native", log=None)
    with pytest.raises(ConfigError, match="^engine native cannot run here: it runs Adam and AdamW only"):
        fit(MnistModel(), sub, None, epochs=1, optimizer="sgd", engine="native", log=None)
    with pytest.raises(ConfigError, match="^engine must be one of auto, native, torchscript, python"):
        fit(MnistModel(), sub, None, epochs=1, engine="fast", log=None)


def test_mismatched_shapes_are_refused_before_the_kernel_reads_them(mnist_train):
    sub = mnist_train.subset(slice(0, 300))
    x, y = sub.features(), sub.labels
    for engine in ("auto", "python"):
        with pytest.raises(ConfigError, match="300 images, 400 labels"):
            fit(MnistModel(), (x, torch.cat([y, y[:100]])), None, epochs=1, engine=engine, log=None)
        with pytest.raises(ConfigError, match="training images have 783 features per image, the model expects 784"):
            fit(MnistModel(), (x[:, :783].contiguous(), y), None, epochs=1, engine=engine, log=None)
        with pytest.raises(ConfigError, match="validation images and labels differ in number: 300 and 299"):
            fit(MnistModel(), (x, y), (x, y[:299]), epochs=1, engine=engine, log=None)


def test_labels_out_of_range_are_refused_before_training(mnist_train):
    sub = mnist_train.subset(slice(0, 300))
    x, y = sub.features(), sub.labels.clone()
    y[7] = 10
    for engine in ("auto", "python"):
        with pytest.raises(ConfigError, match=r"^training labels must lie in 0\.\.9, found 0\.\.10"):
            fit(MnistModel(), (x, y), None, epochs=1, engine=engine, log=None)
        with pytest.raises(ConfigError, match=r"^validation labels must lie in 0\.\.9, found 0\.\.10"):
            fit(MnistModel(), sub, (x, y), epochs=1, engine=engine, log=None)


def test_cosine_schedule_sets_each_epochs_rate_and_restores_it(mnist_train):
    sub = mnist_train.subset(slice(0, 1000))
    seen = []
    model = MnistModel()
    opt = make_optimizer(model.parameters(), "adam", 2e-3)
    fit(model, sub, None, epochs=3, optimizer=opt, lr_schedule="cosine", log=None,
        on_epoch=lambda e, row, o: seen.append(o.lr))
    fit(model, sub, None, epochs=2, optimizer=opt, start_epoch=3, lr_schedule="cosine", log=None,
        on_epoch=lambda e, row, o: seen.append(o.lr))
    expected = [2e-3 * 0.5 * (1 + np.cos(np.pi * (e - 1) / 3)) for e in (1, 2, 3)]
    expected += [2e-3 * 0.5 * (1 + np.cos(np.pi * (e - 1) / 5)) for e in (4, 5)]  # resumed: E = 5
    assert seen == pytest.approx(expected)
    assert opt.lr == 2e-3
    with pytest.raises(ConfigError, match="^lr_schedule must be one of constant, cosine"):
        fit(model, sub, None, epochs=1, lr_schedule="step", log=None)


@pytest.mark.parametrize("engine", [pytest.param("native", marks=needs_native), "torchscript"])
def test_cosine_schedule_same_weights_in_every_engine(mnist_train, engine):
    sub = mnist_train.subset(slice(0, 3000))
    out = []
    for eng in (engine, "python"):
        torch.manual_seed(0)
        m = MnistModel()
        fit(m, sub, None, epochs=3, lr=3e-3, seed=2, engine=eng, lr_schedule="cosine", log=None)
        out.append(m.linear.weight.detach().clone())
    torch.testing.assert_close(out[0], out[1], atol=1e-6, rtol=1e-5)


def test_soft_targets_equal_autograd_soft_cross_entropy(mnist_train):
    """Distillation's loss: cross-entropy against soft targets, same weights as autograd."""
    sub = mnist_train.subset(slice(0, 3000))
    x, y = sub.features(), sub.labels
    g = torch.Generator().manual_seed(0)
    soft = 0.5 * F.one_hot(y, 10).float() + 0.5 * torch.softmax(torch.randn(len(y), 10, generator=g), 1)
    torch.manual_seed(1)
    ref, ours = MnistModel(), MnistModel()
    ours.load_state_dict(ref.state_dict())
    _autograd_reference(ref, x, y, epochs=2, lr=1e-3, batch_size=128, seed=5,
                        loss=lambda logits, idx: -(soft[idx] * F.log_softmax(logits, 1)).sum(1).mean())
    h = fit(ours, sub, None, epochs=2, seed=5, soft_targets=soft, log=None)
    assert h.engine == "torchscript"  # auto: the native kernel reads hard labels only
    torch.testing.assert_close(ours.linear.weight, ref.linear.weight, atol=2e-5, rtol=1e-4)
    with pytest.raises(ConfigError, match="soft_targets must have shape"):
        fit(MnistModel(), sub, None, epochs=1, soft_targets=soft[:10], log=None)


@pytest.mark.parametrize("engine", [pytest.param("native", marks=needs_native), "python"])
def test_weight_averaging_is_the_mean_of_epoch_end_weights(mnist_train, engine):
    train, val = mnist_train.subset(slice(0, 3000)), mnist_train.subset(slice(3000, 4000))
    seen = []
    torch.manual_seed(0)
    m = MnistModel()
    lines = []
    h = fit(m, train, val, epochs=4, seed=0, average_from=2, engine=engine, log=lines.append,
            on_epoch=lambda e, row, o: seen.append(m.linear.weight.detach().clone()))
    torch.testing.assert_close(m.linear.weight.detach(), torch.stack(seen[1:]).mean(0), atol=1e-7, rtol=1e-6)
    assert h.average["from"] == 2 and h.average["to"] == 4 and h.average["epochs"] == 3
    assert h.average["val_acc"] == pytest.approx(evaluate(m, val)["accuracy"])
    assert lines[-1].startswith("Averaged weights of epochs 2-4, val_loss: ")
    with pytest.raises(ConfigError, match=r"^average_from must be an epoch of this run \(1\.\.4\)"):
        fit(MnistModel(), train, None, epochs=4, average_from=5, log=None)


@pytest.mark.parametrize("engine,soft,q", [
    pytest.param("native", False, 0.0, marks=needs_native), pytest.param("native", False, 0.5, marks=needs_native),
    ("torchscript", False, 0.0), ("torchscript", False, 0.5), ("python", False, 0.0), ("python", False, 0.5),
    ("torchscript", True, 0.0), ("python", True, 0.0)])
def test_robust_losses_equal_autograd(mnist_train, engine, soft, q):
    """--loss-cap and --loss-q: every engine minimises the mean of the generalised cross-entropy
    (1 - exp(-q CE_i)) / q (CE_i itself for q = 0) with CE_i capped, as autograd does."""
    sub = mnist_train.subset(slice(0, 3000))
    x, y = sub.features(), sub.labels
    targets = F.one_hot(y, 10).float()
    if soft:
        g = torch.Generator().manual_seed(0)
        targets = 0.7 * targets + 0.3 * torch.softmax(torch.randn(len(y), 10, generator=g), 1)
    torch.manual_seed(1)
    start = MnistModel()
    fit(start, sub, None, epochs=3, lr=1e-2, seed=3, log=None)  # past the flat start: CE ~2.3 > cap
    cap = 2.5 if soft else 1.0  # soft targets: the loss cannot fall below their entropy (~1.3-2)
    with torch.no_grad():
        per_image = -(targets * F.log_softmax(start(x), 1)).sum(1)
    assert 0.05 < (per_image > cap).float().mean() < 0.5  # the cap binds on some images, not all
    ref, ours, plain = MnistModel(), MnistModel(), MnistModel()
    for m in (ref, ours, plain):
        m.load_state_dict(start.state_dict())

    def robust_loss(logits, idx):
        ce = (-(targets[idx] * F.log_softmax(logits, 1)).sum(1)).clamp(max=cap)
        return ((1 - torch.exp(-q * ce)) / q if q else ce).mean()
    _autograd_reference(ref, x, y, epochs=2, lr=1e-3, batch_size=128, seed=5, loss=robust_loss)
    kw = dict(epochs=2, seed=5, engine=engine, log=None, soft_targets=targets if soft else None)
    h = fit(ours, sub, None, loss_cap=cap, loss_q=q, **kw)
    fit(plain, sub, None, **kw)
    assert h.engine == engine
    torch.testing.assert_close(ours.linear.weight, ref.linear.weight, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(ours.linear.bias, ref.linear.bias, atol=2e-5, rtol=1e-4)
    assert (ours.linear.weight - plain.linear.weight).abs().max() > 1e-3  # the loss changed the result


def test_robust_loss_settings_are_checked(mnist_train):
    sub = mnist_train.subset(slice(0, 300))
    with pytest.raises(ConfigError, match="^loss_cap must be a positive number, got 0.0"):
        fit(MnistModel(), sub, None, epochs=1, loss_cap=0, log=None)
    with pytest.raises(ConfigError, match="^loss_q must be between 0 and 1, got 1.5"):
        fit(MnistModel(), sub, None, epochs=1, loss_q=1.5, log=None)
    with pytest.raises(ConfigError, match="^loss_q works with hard labels only"):
        fit(MnistModel(), sub, None, epochs=1, loss_q=0.5, soft_targets=torch.full((300, 10), 0.1), log=None)


@pytest.mark.parametrize("engine,q", [pytest.param("native", 0.0, marks=needs_native),
                                      pytest.param("native", 0.5, marks=needs_native),
                                      ("torchscript", 0.0), ("torchscript", 0.5), ("python", 0.0), ("python", 0.5)])
def test_sample_weights_equal_autograd_weighted_loss(mnist_train, engine, q):
    """sample_weight: every engine minimises the weighted mean sum_i w_i L_i / sum_i w_i, by
    batches whose loss is mean_i (w_i / mean w) L_i, as autograd does (with a robust loss too)."""
    sub = mnist_train.subset(slice(0, 3000))
    x, y = sub.features(), sub.labels
    w = torch.rand(len(y), generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 3
    w[::7] = 0  # zero weights leave their images out
    torch.manual_seed(1)
    ref, ours, plain = MnistModel(), MnistModel(), MnistModel()
    for m in (ours, plain):
        m.load_state_dict(ref.state_dict())
    scaled = (w * len(w) / w.sum()).float()

    def weighted_loss(logits, idx):
        ce = F.cross_entropy(logits, y[idx], reduction="none")
        return (scaled[idx] * ((1 - torch.exp(-q * ce)) / q if q else ce)).mean()
    _autograd_reference(ref, x, y, epochs=2, lr=1e-3, batch_size=100, seed=5, loss=weighted_loss)
    kw = dict(epochs=2, seed=5, batch_size=100, engine=engine, loss_q=q, log=None)
    h = fit(ours, sub, None, sample_weight=w, **kw)
    fit(plain, sub, None, **kw)
    assert h.engine == engine
    torch.testing.assert_close(ours.linear.weight, ref.linear.weight, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(ours.linear.bias, ref.linear.bias, atol=2e-5, rtol=1e-4)
    assert (ours.linear.weight - plain.linear.weight).abs().max() > 1e-3  # the weights changed the result


@pytest.mark.parametrize("bad", [[1.0] * 10, [-1.0] + [1.0] * 299, [float("nan")] * 300, [0.0] * 300])
def test_bad_sample_weights_are_refused(mnist_train, bad):
    with pytest.raises(ConfigError, match="^sample_weight must be 300 finite non-negative numbers"):
        fit(MnistModel(), mnist_train.subset(slice(0, 300)), None, epochs=1, sample_weight=bad, log=None)
