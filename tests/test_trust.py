"""Calibration, digit-likeness and answer states (trust.py, answers.py), checked against
independent implementations: scikit-learn's logistic regression for the Platt step, a brute
grid for the temperature, scipy's multivariate normal for the likeness density, the closed form
of a linear model's logit difference for the evidence maps."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_logreg import MnistModel, TrainConfig, load_checkpoint, save, split, train_run
from mnist_logreg.answers import NOT_A_DIGIT_BELOW, STATES, SURE_AT, UNUSUAL_BELOW, Predictor, decide
from mnist_logreg.errors import CheckpointError
from mnist_logreg.trust import LEVELS, Calibrator, _rarity, extent_features


@pytest.fixture(scope="module")
def run(notebook_run):
    """The notebook's recipe for 5 epochs: calibrated on its validation split (conftest.py)."""
    return notebook_run


def test_a_run_is_calibrated_and_its_answers_are_honest_on_the_test_set(run, mnist_test):
    m = run.metrics
    assert m["calibration"]["heldout"] == "the validation split (10,000 images)"
    assert m["test_ece_calibrated"] < m["test_ece"] and m["test_ece_calibrated"] <= 0.012
    assert m["test_not_a_digit"] <= 0.02  # the default threshold flags about 1% of real digits
    pred = Predictor.from_checkpoint(run.checkpoint)
    answers = pred.answers(mnist_test.features()[:3000])
    sure = [a.label == int(y) for a, y in zip(answers, mnist_test.labels) if a.state == "digit"]
    unsure = [a.label == int(y) for a, y in zip(answers, mnist_test.labels) if a.state == "unsure"]
    assert np.mean(sure) > 0.95 > 0.8 > np.mean(unsure)  # "sure" answers are right far more often


def test_temperature_is_the_cross_entropy_minimum_and_platt_is_logistic_regression(run, mnist_train):
    """Calibrator.fit's Newton steps against a brute grid over T and scikit-learn's unpenalised
    LogisticRegression on the same three columns."""
    from sklearn.linear_model import LogisticRegression

    _, val = split(mnist_train, 10_000, 0)
    with torch.no_grad():
        z = run.model(val.features()).double()
    like = run.checkpoint.trust.likeness.likeness(val.features())
    c = Calibrator.fit(z, val.labels, like)
    grid = np.linspace(0.5, 2.0, 1501)
    nll = [float(torch.nn.functional.cross_entropy(z / t, val.labels)) for t in grid]
    assert abs(c.temperature - grid[int(np.argmin(nll))]) <= 1e-3
    zt = z / c.temperature
    top = zt.argmax(1, keepdim=True)
    log_odds = zt.gather(1, top).squeeze(1) - torch.logsumexp(zt.scatter(1, top, -np.inf), 1)
    X = np.stack([log_odds.numpy(), _rarity(like).numpy()], 1)
    right = (top.squeeze(1) == val.labels).numpy()
    lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(X, right)
    np.testing.assert_allclose([c.a, c.c, c.b], [*lr.coef_[0], lr.intercept_[0]], rtol=1e-4, atol=1e-4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-60, 60), min_size=10, max_size=10), st.floats(0.2, 5), st.floats(0.01, 3),
       st.floats(-5, 5), st.floats(-3, 3), st.floats(0, 1))
def test_calibrated_rows_sum_to_one_and_keep_the_top_class(z, t, a, b, c, like):
    logits = torch.tensor([z], dtype=torch.float64)
    p = Calibrator(t, a, b, c)(logits, torch.tensor([like]))
    assert torch.isfinite(p).all() and (p >= 0).all() and abs(float(p.sum()) - 1) < 1e-9
    top = int(logits.argmax())
    assert float(p[0, top]) >= float(p[0].max()) - 1e-12  # the top class stays on top (at worst tied)
    assert torch.allclose(Calibrator()(logits), torch.softmax(logits, 1))  # the default is the softmax


def test_likeness_density_is_scipys_multivariate_normal(run, mnist_test):
    """Likeness.score from its stored parameters, against scipy's Gaussian log density of each
    class on the components and extents, plus the outside term: the same up to the constant."""
    from scipy.stats import multivariate_normal

    from mnist_logreg.trust import likeness_features

    lk = run.checkpoint.trust.likeness
    x = mnist_test.features()[:40]
    d = likeness_features(x) - lk.mean
    z = d @ lk.basis
    outside = ((d * d).sum(1) - (z * z).sum(1)).numpy()
    z = torch.cat([z, extent_features(x)], 1).numpy()
    dens = np.stack([multivariate_normal(lk.centres[c].numpy(), np.linalg.inv(lk.whiten[c].numpy().T @ lk.whiten[c].numpy()),
                                         allow_singular=True).logpdf(z) for c in range(10)], 1)
    k = z.shape[1]
    expected = dens.max(1) + 0.5 * k * np.log(2 * np.pi) - 0.5 * outside / lk.noise
    # log_det is stored in float16 (as the page receives it): a few hundredths of a nat apart
    np.testing.assert_allclose(lk.score(x).numpy(), expected, atol=0.3)


def test_likeness_is_a_held_out_rank(run, mnist_train, mnist_test):
    """The table is the held-out scores at every 0.1%: on the validation split the likeness is
    uniform; on unseen test digits, about 1% fall under the threshold."""
    _, val = split(mnist_train, 10_000, 0)
    lk = run.checkpoint.trust.likeness
    on_val = lk.likeness(val.features()).numpy()
    assert abs(np.mean(on_val < 0.01) - 0.01) < 0.002 and abs(np.mean(on_val < 0.5) - 0.5) < 0.002
    assert len(lk.table) == LEVELS and np.all(np.diff(lk.table.numpy()) >= 0)
    assert np.mean(lk.likeness(mnist_test.features()).numpy() < NOT_A_DIGIT_BELOW) <= 0.02


def test_extent_features_count_rows_columns_and_ink():
    img = torch.zeros(1, 28, 28)
    img[0, 13:16, 4:24] = 1.0   # a horizontal bar: 3 rows, 20 columns
    img[0, 2, 2] = 0.2          # faint: not ink, but counted in the total
    assert extent_features(img).tolist() == [[3.0, 20.0, pytest.approx(60.2)]]
    assert extent_features(torch.zeros(1, 784)).tolist() == [[0.0, 0.0, 0.0]]


@pytest.mark.parametrize("p,like,state", [
    ([0.9] + [0.1 / 9] * 9, 0.5, "digit"), ([0.6, 0.4] + [0.0] * 8, 0.5, "unsure"),
    ([0.99] + [0.01 / 9] * 9, 0.03, "unsure"),          # unusual: a guess at best, however confident
    ([0.99] + [0.01 / 9] * 9, 0.005, "not-a-digit"), ([0.99] + [0.01 / 9] * 9, None, "digit"),
    ([SURE_AT] + [(1 - SURE_AT) / 9] * 9, UNUSUAL_BELOW, "digit")])
def test_answer_states_from_probabilities_and_likeness(p, like, state):
    assert decide(p, like)[0] == state


def test_decide_all_is_the_rule_row_by_row():
    """decide_all (the whole test set at once) against the rule as written for one row: the
    runner-up is the next class in a stable descending sort, ties and thresholds included."""
    from mnist_logreg.answers import decide_all

    def one(p, like, top):
        order = [int(i) for i in np.argsort(-np.asarray(p), kind="stable")]
        top = order[0] if top is None else top
        second = next((i for i in order if i != top), top)
        state = ("not-a-digit" if like is not None and like < NOT_A_DIGIT_BELOW else
                 "unsure" if p[top] < SURE_AT or (like is not None and like < UNUSUAL_BELOW) else "digit")
        return state, top, second

    rng = np.random.default_rng(0)
    for k in (1, 2, 10):
        p = rng.choice([0.0, 0.15, 0.3, SURE_AT - 1e-9, SURE_AT, 1.0], size=(400, k))  # ties on purpose
        like = rng.choice([0.0, NOT_A_DIGIT_BELOW, 0.03, UNUSUAL_BELOW, 1.0], size=400)
        top = rng.integers(0, k, 400)
        for likes, tops in ((like, top), (None, None)):
            states, t, second = decide_all(torch.tensor(p), likes, tops)
            want = [one(p[i], None if likes is None else likes[i], None if tops is None else int(tops[i]))
                    for i in range(400)]
            assert list(zip(states, t.tolist(), second.tolist())) == want


def test_blank_and_too_small_pictures_are_states(run, tmp_path):
    pred = Predictor.from_checkpoint(run.checkpoint)
    page = Image.new("L", (400, 400), 255)
    assert pred.answer(np.asarray(page)).state == "blank"
    page.paste(0, (195, 190, 205, 215))  # a dot on a big page: under 15% of its side
    assert pred.answer(np.asarray(page)).state == "too-small"
    page.paste(0, (190, 60, 210, 340))   # a stroke as tall as most of the page: a 1
    a = pred.answer(np.asarray(page))
    assert a.state in ("digit", "unsure") and a.label == 1 and a.likeness is not None
    d = a.to_dict()
    assert set(d) >= {"state", "label", "probability", "probabilities", "likeness", "message"}
    assert json.loads(json.dumps(d)) == d


@pytest.mark.parametrize("transform", ["none", "deskew", "cbrt"])
def test_evidence_map_sums_to_the_logit_difference(transform, mnist_test):
    torch.manual_seed(1)
    m = MnistModel(transform=transform)
    pred = Predictor(m)
    for i in range(5):
        x = mnist_test.features()[i]
        for against in (None, (int(m(x[None]).argmax()) + 3) % 10):
            e = pred.explain(x, against=against)
            with torch.no_grad():
                logits = m(x[None])[0].double()
            assert e.against != e.label
            assert abs(e.map.sum() + e.bias - float(logits[e.label] - logits[e.against])) < 1e-5
            assert abs(e.logit_difference - float(logits[e.label] - logits[e.against])) < 1e-5


def test_a_checkpoint_without_trust_still_answers_and_says_so(tmp_path, run_cli, mnist_test):
    """A checkpoint written before calibration existed (or a notebook state_dict): the plain
    softmax, no likeness, no "not a digit"; predict says so in one note."""
    torch.manual_seed(0)
    save(MnistModel(), tmp_path / "old.pt")
    torch.save(MnistModel().state_dict(), tmp_path / "nb.pth")
    for path in (tmp_path / "old.pt", tmp_path / "nb.pth"):
        ckpt = load_checkpoint(path)
        assert ckpt.trust is None
        a = Predictor.from_checkpoint(ckpt).answers(mnist_test.features()[:3])[0]
        assert a.likeness is None and a.state in ("digit", "unsure")
        code, out, err = run_cli("predict", path, "--index", "0", "--json")
        assert code == 0 and "no calibration or digit-likeness" in err
        assert json.loads(out)[0]["likeness"] is None


def test_tampered_trust_is_one_line(run, tmp_path):
    obj = torch.load(run.path / "checkpoint.pt", weights_only=True)
    cases = {"nan temperature": ("temperature", float("nan")), "c without likeness": ("likeness", None),
             "basis shape": ("likeness", {**obj["trust"]["likeness"], "basis": torch.zeros(784, 3)}),
             "format": ("format", 99)}
    for name, (key, value) in cases.items():
        bad = {**obj, "trust": {**obj["trust"], key: value}}
        if name == "c without likeness":
            bad["trust"]["c"] = 1.0
        torch.save(bad, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=r"^.*bad.pt: trust: ") as e:
            load_checkpoint(tmp_path / "bad.pt")
        assert "\n" not in str(e.value), name


def test_states_are_declared_once_and_carried_to_the_page(run):
    from mnist_logreg.web import model_js
    script = model_js(run.checkpoint)
    data = json.loads(script[len("window.MNIST_MODEL = "):-2])
    assert data["rules"]["states"] == list(STATES) and data["rules"]["sure_at"] == SURE_AT
    assert data["trust"]["likeness"]["k"] == run.checkpoint.trust.likeness.basis.shape[1]


def test_calibration_holdout_trains_a_first_model_without_the_held_out_images(tmp_path):
    """val_size 0: a first model is trained without calibration_holdout images to calibrate on
    them; the final model is the same as without calibration, bit for bit."""
    cfg = TrainConfig(dry_run=True, val_size=0, calibration_holdout=300)
    a = train_run(cfg, tmp_path, "a", report=False, log=None)
    b = train_run(cfg.replace(calibration_holdout=0), tmp_path, "b", report=False, log=None)
    assert a.checkpoint.trust.heldout == "300 images held out of a first model's training"
    assert b.checkpoint.trust is None and "calibration" not in b.metrics
    assert torch.equal(a.model.linear.weight, b.model.linear.weight)


def test_predict_prints_states_and_explains(run, tmp_path, run_cli):
    """predict's text and JSON carry the state; --explain draws what the model saw and why."""
    from mnist_logreg import probes
    pics = {"three.png": probes.drawn_digits(4, seed=7)[3].image, "hash.png": probes.drawn_shapes(3, seed=5)[2].image,
            "blank.png": np.full((60, 60), 255, np.uint8)}
    for name, img in pics.items():
        Image.fromarray(img).save(tmp_path / name)
    code, out, err = run_cli("predict", run.path, "--image", *(tmp_path / n for n in pics), "--explain",
                             tmp_path / "why.png")
    assert code == 0, err
    lines = dict(line.split(": ", 1) for line in out.splitlines() if line.startswith(str(tmp_path)))
    assert lines[str(tmp_path / "three.png")].startswith("3 (") and lines[str(tmp_path / "blank.png")] == "blank: no ink found"
    assert lines[str(tmp_path / "hash.png")].startswith(("not a digit", "unsure"))
    why = Image.open(tmp_path / "why.png")
    assert why.size[0] > 4 * 84  # two inputs with answers, each seen + evidence
    code, out, _ = run_cli("predict", run.path, "--index", "0", "1839", "--json")
    r = json.loads(out)
    assert code == 0 and {x["state"] for x in r} <= set(STATES) and r[0]["likeness"] is not None


def test_the_likeness_is_fitted_once_per_process_for_the_same_images(mnist_test, monkeypatch, tmp_path):
    """fit_trust reuses the process's last likeness fit when the images, labels and held-out
    images are the same bytes: each result equals a fresh Likeness.fit_scoring of those images,
    and a change of one pixel or one label fits again."""
    from mnist_logreg import trust

    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(tmp_path))  # an empty disk cache: every miss fits
    fit_set, held = mnist_test.subset(slice(0, 3000)), mnist_test.subset(slice(3000, 4000))
    calls = []
    fit_scoring = trust.Likeness.fit_scoring
    monkeypatch.setattr(trust.Likeness, "fit_scoring", lambda *a: calls.append(1) or fit_scoring(*a))
    model = MnistModel()
    trust._last_likeness.clear()

    def check(fit_set, held, fits):
        got = trust.fit_trust(model, fit_set, held)
        assert len(calls) == fits
        fresh, _ = fit_scoring(fit_set.features(), fit_set.labels, held.features())
        for name in ("mean", "basis", "centres", "whiten", "log_det", "table"):
            assert torch.equal(getattr(got.likeness, name), getattr(fresh, name)), name
        assert got.likeness.noise == fresh.noise
        return got

    first = check(fit_set, held, 1)
    first.likeness.table.zero_()  # what a caller does with its copy stays there
    check(fit_set, held, 1)
    images = fit_set.images.clone()
    images[7, 14, 14] ^= 1
    check(type(fit_set)(images, fit_set.labels, fit_set.classes), held, 2)
    labels = fit_set.labels.clone()
    labels[0] = (labels[0] + 1) % 10
    check(type(fit_set)(fit_set.images, labels, fit_set.classes), held, 3)
    images = held.images.clone()
    images[0, 0, 0] ^= 1
    check(fit_set, type(held)(images, held.labels, held.classes), 4)


@pytest.fixture
def disk_cache(tmp_path, monkeypatch):
    """A fresh likeness cache on disk for fits of 1,000 images or more; the process's entry cleared."""
    from mnist_logreg import trust

    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(trust, "DISK_MIN_IMAGES", 1000)
    trust._last_likeness.clear()
    calls = []
    fit_scoring = trust.Likeness.fit_scoring
    monkeypatch.setattr(trust.Likeness, "fit_scoring", lambda *a: calls.append(1) or fit_scoring(*a))
    yield trust, calls, tmp_path / "cache" / "likeness"
    trust._last_likeness.clear()


def _same_likeness(a, b) -> bool:
    return a.noise == b.noise and all(torch.equal(getattr(a, n), getattr(b, n))
                                      for n in ("mean", "basis", "centres", "whiten", "log_det", "table"))


def test_a_likeness_fit_is_read_back_from_disk_bit_for_bit(disk_cache, mnist_test):
    """Another process (here: the process's own entry cleared) reads a large fit back from this
    user's cache instead of fitting again: the same trust, bit for bit, in a private file."""
    trust, calls, folder = disk_cache
    fit_set, held = mnist_test.subset(slice(0, 2000)), mnist_test.subset(slice(2000, 2500))
    model = MnistModel()
    first = trust.fit_trust(model, fit_set, held)
    (entry,) = folder.iterdir()
    assert entry.stat().st_mode & 0o777 == 0o600 and folder.stat().st_mode & 0o777 == 0o700
    trust._last_likeness.clear()
    again = trust.fit_trust(model, fit_set, held)
    assert len(calls) == 1 and _same_likeness(first.likeness, again.likeness)
    assert first.calibrator == again.calibrator  # the held-out scores came back too
    trust._last_likeness.clear()  # below DISK_MIN_IMAGES: fitted again, nothing written
    trust.DISK_MIN_IMAGES = 2001
    trust.fit_trust(model, fit_set, held)
    assert len(calls) == 2 and len(list(folder.iterdir())) == 1


DAMAGE = {
    "truncated": lambda b: b[:len(b) // 2],
    "empty": lambda b: b"",
    "noise": lambda b: bytes(np.random.default_rng(0).integers(0, 256, len(b), dtype=np.uint8)),
    "a byte changed in the data": lambda b: b[:len(b) // 3] + bytes([b[len(b) // 3] ^ 0x01]) + b[len(b) // 3 + 1:],
}


@pytest.mark.parametrize("damage", [*DAMAGE, "wrong shapes", "not finite", "world-writable", "a pickle"])
def test_a_damaged_or_foreign_cache_entry_is_fitted_again(disk_cache, mnist_test, damage):
    """Whatever the cache file holds, the fit is the true one: a file that is damaged (zip's
    CRC-32), holds wrong shapes or values (checked as a checkpoint's trust is), can be written
    by others or needs pickle is fitted again and rewritten, never an error nor its numbers."""
    trust, calls, folder = disk_cache
    fit_set, held = mnist_test.subset(slice(0, 1500)), mnist_test.subset(slice(1500, 1800))
    want = trust.fit_trust(MnistModel(), fit_set, held)
    (entry,) = folder.iterdir()
    with np.load(entry) as f:
        arrays = dict(f)
    if damage in DAMAGE:
        entry.write_bytes(DAMAGE[damage](entry.read_bytes()))
    elif damage == "wrong shapes":
        _resave(entry, {**arrays, "basis": arrays["basis"][:, :5]})
    elif damage == "not finite":
        _resave(entry, {**arrays, "scores": np.full_like(arrays["scores"], np.nan)})
    elif damage == "world-writable":
        entry.chmod(0o666)
    else:
        _resave(entry, {**arrays, "table": np.array([object()] * 3)})
    trust._last_likeness.clear()
    got = trust.fit_trust(MnistModel(), fit_set, held)
    assert len(calls) == 2 and _same_likeness(got.likeness, want.likeness)
    trust._last_likeness.clear()
    trust.fit_trust(MnistModel(), fit_set, held)
    assert len(calls) == 2  # the entry was written again, and is read now


def _resave(entry, arrays):
    with open(entry, "wb") as f:
        np.savez(f, **arrays)


def test_the_cache_keeps_the_most_recent_fits(disk_cache, mnist_test, monkeypatch):
    trust, calls, folder = disk_cache
    monkeypatch.setattr(trust, "DISK_ENTRIES", 2)
    held = mnist_test.subset(slice(5000, 5200))
    for start in (0, 1000, 2000):
        trust.fit_trust(MnistModel(), mnist_test.subset(slice(start, start + 1000)), held)
    assert len(list(folder.iterdir())) == 2 and len(calls) == 3
    trust._last_likeness.clear()
    trust.fit_trust(MnistModel(), mnist_test.subset(slice(2000, 3000)), held)  # the newest: still there
    assert len(calls) == 3


def test_a_large_scoring_is_done_once_for_the_same_model_and_images(run, mnist_test, monkeypatch):
    """A run's test set is scored for its metrics and again by its report: the second time is
    the first one's result (a copy), and a changed pixel or a changed model scores afresh."""
    from mnist_logreg import trust

    lk = run.checkpoint.trust.likeness
    x = mnist_test.features()[:3000]
    trust._last_scores.clear()
    calls = []
    features = trust.likeness_features
    monkeypatch.setattr(trust, "likeness_features", lambda *a: calls.append(1) or features(*a))
    first = lk.score(x)
    n = len(calls)
    first[:10] = 0  # the caller's copy
    again = lk.score(x)
    assert len(calls) == n and not torch.equal(again[:10], first[:10])
    trust._last_scores.clear()
    fresh = lk.score(x)
    assert torch.equal(again, fresh) and len(calls) > n
    x2 = x.clone()
    x2[5, 300] = 1 - x2[5, 300]
    lk.score(x2)
    assert len(calls) > n + 3
    other = trust.Likeness(**{**lk.__dict__, "noise": lk.noise * 2})
    m = len(calls)
    assert not torch.equal(other.score(x), again) and len(calls) > m


def test_no_fit_is_kept_where_the_code_cannot_be_read(disk_cache, mnist_test, monkeypatch):
    """A frozen or zipped install, whose sources the key cannot hash: nothing goes to disk."""
    trust, calls, folder = disk_cache
    monkeypatch.setattr(trust, "_code_and_machine", lambda: None)
    trust.fit_trust(MnistModel(), mnist_test.subset(slice(0, 1000)), mnist_test.subset(slice(1000, 1200)))
    assert len(calls) == 1 and not folder.exists()
