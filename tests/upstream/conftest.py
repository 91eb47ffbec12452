"""scikit-learn's own test_logistic.py (1.9.1) run against SoftmaxClassifier (logistic_adapter.py).

The tests skipped here by name test something SoftmaxClassifier has no equivalent of; each
names what. Tests whose fits ask for L1, elastic-net, liblinear or the dual are skipped by the
adapter at that fit. Nothing is skipped because it fails.
"""
import sys
from pathlib import Path

import pytest
import sklearn

sys.path.insert(0, str(Path(__file__).resolve().parent))

UPSTREAM_VERSION = "1.9"

_CV = "tests LogisticRegressionCV (scikit-learn's own cross-validation class; ours is GridSearchCV around it)"
_PATH = "tests a private function of scikit-learn's LogisticRegression (_logistic_regression_path)"
_DEPRECATION = "tests a deprecation warning of LogisticRegression's own parameters"
_ARRAY_API = "tests the array API (torch/cupy arrays through scikit-learn); SoftmaxClassifier takes numpy and scipy"
_CALLBACK = "tests scikit-learn's experimental callback API, which SoftmaxClassifier does not implement"
NO_EQUIVALENT = {
    "test_logistic_cv": _CV, "test_logistic_cv_refit_false_non_elasticnet": _CV, "test_logistic_cv_mock_scorer": _CV,
    "test_logistic_cv_multinomial_score": _CV, "test_multinomial_cv_iris": _CV,
    "test_logistic_cv_folds_with_classes_missing": _CV, "test_logistic_cv_sparse": _CV,
    "test_logistic_regressioncv_class_weights": _CV, "test_logistic_regression_cv_refit": _CV,
    "test_LogisticRegressionCV_GridSearchCV_elastic_net": _CV, "test_LogisticRegressionCV_no_refit": _CV,
    "test_LogisticRegressionCV_elasticnet_attribute_shapes": _CV, "test_LogisticRegressionCV_on_folds": _CV,
    "test_scores_attribute_layout_elasticnet": _CV, "test_lr_cv_scores_differ_when_sample_weight_is_requested": _CV,
    "test_lr_cv_scores_without_enabling_metadata_routing": _CV, "test_logisticregressioncv_warns_with_use_legacy_attributes": _CV,
    "test_lr_scoring_warns": _CV, "test_get_default_scorer": _CV,
    "test_consistency_path": _PATH, "test_logistic_regression_path_convergence_fail": _PATH,
    "test_logistic_regression_path_coefs_multinomial": _PATH, "test_logistic_regression_path_init_coefs": _PATH,
    "test_penalty_deprecated": _DEPRECATION, "test_l1_ratio_None_deprecated": _DEPRECATION,
    "test_logisticregression_warns_with_n_jobs": _DEPRECATION,
    "test_logistic_regression_array_api_compliance": _ARRAY_API, "test_logistic_regression_array_api_warm_start": _ARRAY_API,
    "test_logistic_regression_callback_support": _CALLBACK, "test_logistic_regression_callback_fitted_estimator": _CALLBACK,
    "test_logistic_regression_callback_support_warning": _CALLBACK,
    "test_sparsify": "sparsify()/densify() store an L1 fit's mostly zero coef_ as a scipy matrix; no L1 here",
    "test_logreg_predict_proba_multinomial": "calls LogisticRegression's private _predict_proba_lr",
    "test_newton_cholesky_fallback_to_lbfgs": "tests newton-cholesky's fallback to lbfgs on a rank-deficient "
                                              "Hessian, a mechanism of scikit-learn's solver",
}


def pytest_configure(config):
    # the copy parametrizes two array-API tests (skipped) with generators, which pytest 9 warns of
    config.addinivalue_line("filterwarnings", "ignore:Passing a non-Collection iterable:pytest.PytestRemovedIn10Warning")


def pytest_ignore_collect(collection_path, config):
    """The copy imports scikit-learn's private helpers of its own release: another release is not run."""
    if collection_path.name == "test_logistic.py" and not sklearn.__version__.startswith(UPSTREAM_VERSION):
        return True
    return None


#: (test, solver) pairs that check a limit of that scikit-learn solver, which ours does not have
SOLVER_LIMITS = {("test_large_sparse_matrix", s): f"expects {s}'s refusal of sparse matrices with 64-bit indices; "
                 "SoftmaxClassifier fits them" for s in ("sag", "saga")}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "upstream" not in item.nodeid:
            continue
        solver = getattr(item, "callspec", None) and item.callspec.params.get("solver")
        why = NO_EQUIVALENT.get(item.originalname) or SOLVER_LIMITS.get((item.originalname, solver))
        if why:
            item.add_marker(pytest.mark.skip(reason=f"no equivalent: {why}"))


@pytest.fixture
def global_random_seed():
    """scikit-learn's fixture, at its default (SKLEARN_TESTS_GLOBAL_RANDOM_SEED unset: 42)."""
    return 42
