"""SoftmaxClassifier against scikit-learn's LogisticRegression (the reference), and inside
scikit-learn's tools: Pipeline, GridSearchCV, cross_val_score, skops."""
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data

from mnist_logreg.sklearn import Cbrt, Deskew, SoftmaxClassifier


def objective(clf, X, y, C, sample_weight=None):
    """LogisticRegression's objective, C * sum_i s_i CE_i + ||W||^2 / 2, from probabilities."""
    s = np.ones(len(y)) if sample_weight is None else sample_weight
    p = clf.predict_proba(X)[np.arange(len(y)), np.searchsorted(clf.classes_, y)]
    return C * (s * -np.log(p)).sum() + 0.5 * (clf.coef_ ** 2).sum()


def reference(X, y, C, **kw):
    return LogisticRegression(C=C, tol=1e-10, max_iter=100_000, **kw).fit(X, y)


def test_exact_optimum_matches_logistic_regression_synthetic():
    # on MNIST: tests/test_solver.py::test_optimum_matches_scikit_learn
    X, y = make_classification(10_000, 120, n_informative=40, n_classes=7, random_state=0)
    ours, theirs = SoftmaxClassifier(C=0.1, tol=1e-8).fit(X, y), reference(X, y, 0.1)
    assert objective(ours, X, y, 0.1) == pytest.approx(objective(theirs, X, y, 0.1), rel=1e-5)
    assert (ours.predict(X) == theirs.predict(X)).mean() >= 0.999
    np.testing.assert_allclose(ours.predict_proba(X).sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)


def test_binary_weighted_and_no_intercept_match_logistic_regression():
    """Two classes: coef_ is LogisticRegression's single row; class weights and sample weights
    enter the objective as in scikit-learn; labels can be strings."""
    X, y = make_classification(600, 8, random_state=1)
    labels = np.array(["no", "yes"])[y]
    w = np.random.default_rng(0).uniform(0.1, 3, len(y))
    for kw in ({}, {"class_weight": "balanced"}, {"fit_intercept": False}, {"class_weight": {"no": 1, "yes": 5}}):
        ours = SoftmaxClassifier(C=0.5, tol=1e-10, **kw).fit(X, labels, sample_weight=w)
        theirs = reference(X, labels, 0.5, **kw).fit(X, labels, sample_weight=w)
        assert ours.coef_.shape == (1, 8) and list(ours.classes_) == ["no", "yes"]
        np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-6)
        np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-6)
        np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X), atol=1e-5)


def test_sample_weight_is_repetition_at_a_strict_tolerance():
    # at the default tol the check is an expected failure (see SoftmaxClassifier._expected_failures)
    check_sample_weight_equivalence_on_dense_data("SoftmaxClassifier", SoftmaxClassifier(tol=1e-10))


def test_pipeline_grid_search_and_cross_validation():
    X, y = make_classification(1500, 30, n_informative=10, n_classes=4, random_state=2)
    search = GridSearchCV(make_pipeline(StandardScaler(), SoftmaxClassifier()),
                          {"softmaxclassifier__C": [0.01, 0.1, 1]}, cv=3).fit(X, y)
    assert search.best_params_["softmaxclassifier__C"] in (0.01, 0.1, 1)
    scores = cross_val_score(make_pipeline(StandardScaler(), SoftmaxClassifier(C=0.1, tol=1e-8)), X, y, cv=3)
    theirs = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(C=0.1, tol=1e-10)), X, y, cv=3)
    np.testing.assert_allclose(scores, theirs, atol=1 / 500)  # the same folds, the same optimum


def test_convergence_warning_and_warm_start():
    X, y = make_classification(800, 20, n_classes=3, n_informative=6, random_state=3)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        SoftmaxClassifier(C=10, max_iter=1).fit(X, y)
    clf = SoftmaxClassifier(C=10, tol=1e-8, warm_start=True).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = clf.fit(X, y).n_iter_[0]
    assert again <= 1  # it starts at the optimum


def test_adam_solver_robust_recipe_on_mnist(mnist_train, mnist_test):
    sub = mnist_train.subset(slice(0, 6000))
    X, y = sub.features().numpy(), sub.labels.numpy()
    clf = SoftmaxClassifier(solver="adam", epochs=8, lr=2e-3, lr_schedule="cosine", loss_cap=5, loss_q=0.5,
                            random_state=0).fit(X, y)
    again = SoftmaxClassifier(solver="adam", epochs=8, lr=2e-3, lr_schedule="cosine", loss_cap=5, loss_q=0.5,
                              random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.coef_, again.coef_)  # a seed reproduces the fit
    assert clf.n_iter_[0] == 8 and clf.score(mnist_test.features().numpy(), mnist_test.labels.numpy()) > 0.85
    # sample weights: a class weighed 5x is predicted more often, and the weighted objective is
    # lower than the unweighted fit's (not below Newton's exact weighted optimum at the same C)
    w = np.where(y == 3, 5.0, 1.0)
    heavy = SoftmaxClassifier(solver="adam", epochs=8, lr=2e-3, C=1.0, random_state=0).fit(X, y, sample_weight=w)
    plain = SoftmaxClassifier(solver="adam", epochs=8, lr=2e-3, C=1.0, random_state=0).fit(X, y)
    assert (heavy.predict(X) == 3).sum() > (plain.predict(X) == 3).sum() * 1.1
    exact = SoftmaxClassifier(C=1.0, tol=1e-6).fit(X, y, sample_weight=w)

    def objective(clf):  # LogisticRegression's, divided by C * sum(w)
        logp = clf.predict_log_proba(X)[np.arange(len(y)), y]
        return -(w * logp).sum() / w.sum() + (clf.coef_ ** 2).sum() / 2 / w.sum()
    assert objective(exact) <= objective(heavy) < objective(plain)


def test_parameters_are_validated_by_scikit_learn():
    from sklearn.utils._param_validation import InvalidParameterError

    for bad in ({"C": 0}, {"solver": "lbfgs"}, {"lr": -1}, {"loss_q": 2}, {"lr_schedule": "step"}, {"epochs": 0}):
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            SoftmaxClassifier(**bad).fit([[0.0], [1.0]], [0, 1])


def test_deskew_pipeline_is_the_tools_deskew_model(mnist_train):
    """make_pipeline(Deskew(), SoftmaxClassifier(C)) is train --solver newton --transform deskew
    --lam 1 / (C n): the same transform, the same optimum."""
    from mnist_logreg.solver import solve

    sub = mnist_train.subset(slice(0, 3000))
    X, y = sub.features(torch.float64).numpy(), sub.labels.numpy()
    lam = 1e-3
    pipe = make_pipeline(Deskew(), SoftmaxClassifier(C=1 / (lam * len(y)), tol=1e-7)).fit(X, y)
    model = solve(sub, lam, tol=1e-7, transform="deskew", log=None).model
    with torch.no_grad():
        ours = model(torch.from_numpy(X).float()).argmax(1).numpy()
    assert (pipe.predict(X) == ours).mean() >= 0.999
    np.testing.assert_allclose(Cbrt().fit_transform(np.array([[0.0, 0.125, 1.0, -1.0]])), [[0, 0.5, 1, 0]])
    with pytest.raises(ValueError, match="square"):
        Deskew().fit(np.zeros((2, 785)))


def test_persistence_skops_and_checkpoint(mnist_train, tmp_path):
    skops_io = pytest.importorskip("skops.io")
    from mnist_logreg.checkpoint import load, save

    sub = mnist_train.subset(slice(0, 2000))
    X, y = sub.features(torch.float64).numpy(), sub.labels.numpy()
    clf = make_pipeline(Deskew(), SoftmaxClassifier(C=0.5)).fit(X, y)
    skops_io.dump(clf, tmp_path / "clf.skops")
    from mnist_logreg.sklearn import load as load_skops
    back = load_skops(tmp_path / "clf.skops")
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))

    plain = SoftmaxClassifier(C=0.5).fit(X, y)
    save(plain.to_model(), tmp_path / "model.pt")
    model = load(tmp_path / "model.pt")
    with torch.no_grad():
        assert (model(torch.from_numpy(X).float()).argmax(1).numpy() == plain.predict(X)).mean() >= 0.999
    with pytest.raises(ValueError, match="784 features"):
        SoftmaxClassifier().fit(X[:, :10], y).to_model()


def test_sparse_float32_unpenalised_and_weighted_fits_agree_with_their_dense_float64_twins():
    """Issue 26's drop-in contract beyond scikit-learn's own tests: a CSR fit is the dense fit
    (both solvers), float32 stays float32, C=inf matches LogisticRegression's probabilities,
    and several classes' coef_ columns sum to zero."""
    import scipy.sparse as sp
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(400, 30, n_informative=10, n_redundant=0, n_classes=4, random_state=1)
    X[np.abs(X) < 1] = 0
    w = np.random.default_rng(0).uniform(0, 2, len(y))
    dense, csr = SoftmaxClassifier(C=0.3, tol=1e-9).fit(X, y, w), SoftmaxClassifier(C=0.3, tol=1e-9).fit(
        sp.csr_matrix(X), y, w)
    np.testing.assert_allclose(csr.coef_, dense.coef_, atol=1e-9)
    np.testing.assert_allclose(csr.predict_proba(sp.csc_matrix(X)), dense.predict_proba(X), atol=1e-9)
    assert np.abs(dense.coef_.sum(0)).max() < 1e-12
    adam = dict(solver="adam", epochs=5, batch_size=64, lr=0.01, random_state=0)
    np.testing.assert_array_equal(SoftmaxClassifier(**adam).fit(sp.csr_matrix(X), y, w).coef_,
                                  SoftmaxClassifier(**adam).fit(X, y, w).coef_)
    f32 = SoftmaxClassifier(C=0.3).fit(X.astype(np.float32), y)
    assert {f32.coef_.dtype, f32.intercept_.dtype, f32.predict_proba(X.astype(np.float32)).dtype} == {np.dtype(np.float32)}
    inf = SoftmaxClassifier(C=np.inf, tol=1e-8, max_iter=500).fit(X[:, :5], y)
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(X[:, :5], y)
    np.testing.assert_allclose(inf.predict_proba(X[:, :5]), ref.predict_proba(X[:, :5]), atol=1e-6)
