"""``LogisticRegression`` as scikit-learn's own tests call it, fitted by our SoftmaxClassifier.

test_logistic.py beside this file is scikit-learn 1.9.1's ``sklearn/linear_model/tests/
test_logistic.py`` (BSD-3-Clause, (c) the scikit-learn developers), unchanged but for the line
that imports ``LogisticRegression``: it imports this class instead. Every parameter with an
equivalent is mapped (C, ``penalty=None`` as ``C=np.inf``, tol, fit_intercept, class_weight,
random_state, max_iter, verbose, warm_start; every L2 solver is our exact Newton solver, and a
ConvergenceWarning is worded as the solver asked for words it). A fit that asks for a feature
with no equivalent (an L1 or elastic-net penalty, liblinear, the dual formulation) is skipped,
saying which; tests of other classes, of scikit-learn's private functions or of a limit of one
of its solvers are skipped by name in conftest.py, each with its reason. A failing test is never
skipped.
"""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as _Theirs

from mnist_logreg.sklearn import SoftmaxClassifier

#: the fitted state a LogisticRegression has, copied from the SoftmaxClassifier that computed it
FITTED = ("classes_", "coef_", "intercept_", "n_iter_", "n_features_in_", "feature_names_in_", "_theta",
          "objective_")
#: how each of scikit-learn's solvers words running out of iterations (their test matches it)
THEIR_WORDING = {"lbfgs": "lbfgs failed to converge.", "newton-cg": "newton-cg failed to converge. Increase the "
                 "number of iterations.", "newton-cholesky": "Newton solver did not converge after {n} iterations.",
                 "sag": "The max_iter was reached which means the coef_ did not converge.",
                 "saga": "The max_iter was reached which means the coef_ did not converge."}


class LogisticRegression(SoftmaxClassifier):
    """LogisticRegression's parameters (and its validation of them), our solver."""

    _parameter_constraints = dict(_Theirs._parameter_constraints)

    def __init__(self, penalty="deprecated", *, C=1.0, l1_ratio=0.0, dual=False, tol=1e-4, fit_intercept=True,
                 intercept_scaling=1, class_weight=None, random_state=None, solver="lbfgs", max_iter=100,
                 verbose=0, warm_start=False, n_jobs=None):
        self.penalty, self.C, self.l1_ratio, self.dual, self.tol = penalty, C, l1_ratio, dual, tol
        self.fit_intercept, self.intercept_scaling, self.class_weight = fit_intercept, intercept_scaling, class_weight
        self.random_state, self.solver, self.max_iter, self.verbose = random_state, solver, max_iter, verbose
        self.warm_start, self.n_jobs = warm_start, n_jobs

    def fit(self, X, y, sample_weight=None):
        self._validate_params()
        penalty = self._penalty()
        self._skip_without_equivalent(penalty)
        ours = SoftmaxClassifier(C=np.inf if penalty is None else self.C, fit_intercept=self.fit_intercept,
                                 tol=self.tol, max_iter=self.max_iter, class_weight=self.class_weight,
                                 warm_start=self.warm_start, random_state=self.random_state, verbose=self.verbose)
        if self.warm_start and hasattr(self, "_theta"):
            ours._theta = self._theta
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            ours.fit(X, y, sample_weight=sample_weight)
        for w in caught:
            text = THEIR_WORDING[self.solver].format(n=self.max_iter) + " " if w.category is ConvergenceWarning else ""
            warnings.warn(w.category(text + str(w.message)), stacklevel=2)
        for name in FITTED:
            if hasattr(ours, name):
                setattr(self, name, getattr(ours, name))
            elif hasattr(self, name):
                delattr(self, name)
        return self

    def _penalty(self):
        """The penalty LogisticRegression 1.9 fits for these parameters, with its warnings."""
        if self.penalty == "deprecated":
            penalty = "l2" if self.l1_ratio in (0, None) else "l1" if self.l1_ratio == 1 else "elasticnet"
            return None if self.C == np.inf else penalty
        warnings.warn("'penalty' was deprecated in version 1.8 and will be removed in 1.10.", FutureWarning)
        if (self.penalty == "l2" and self.l1_ratio != 0) or (self.penalty == "l1" and self.l1_ratio != 1):
            warnings.warn(f"Inconsistent values: penalty={self.penalty} with l1_ratio={self.l1_ratio}. penalty is "
                          f"deprecated. Please use l1_ratio only.")
        if self.penalty is None and (self.C != 1.0 or self.l1_ratio not in (0.0, None)):
            warnings.warn("Setting penalty=None will ignore the C and l1_ratio parameters", UserWarning)
        return self.penalty

    def _skip_without_equivalent(self, penalty):
        why = ("an L1 or elastic-net penalty (SoftmaxClassifier fits L2 or none)" if penalty in ("l1", "elasticnet") else
               "solver='liblinear' (one-vs-rest; SoftmaxClassifier is multinomial)" if self.solver == "liblinear" else
               "dual=True (liblinear's dual formulation)" if self.dual else None)
        if why:
            pytest.skip(f"no equivalent: {why}")
