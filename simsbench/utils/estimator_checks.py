"""Estimator checks for dict-X multimodal regressors.

scikit-learn yields no checks for an estimator whose input is a dict, so
:func:`check_estimator` runs sklearn's data-free checks directly and adds
dict-X versions of the behaviour checks:

* fit returns self; predict before fit raises ``NotFittedError``;
* ``predict`` returns ``(n,)`` float64;
* pickling round-trips with identical predictions;
* the same ``random_state`` gives identical predictions, another differs;
* a subset of modalities works (each single modality);
* the ``(n, 4)`` M/T/A/V target is accepted.

A check never passes vacuously: an estimator without ``modalities`` fails
:func:`check_modality_subsets`, one without ``random_state`` must be
deterministic to pass :func:`check_seed_reproducible`, and each fit is made
once (with ``X_valid`` exactly when ``fit``'s signature takes it), so an error
is never retried another way.  Name a check in ``expected_failed`` (with the
reason) to skip it.

Use it on your own estimator before putting it into the tables.
"""

from __future__ import annotations

import inspect
import pickle

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as skc

from simsbench.datasets import LABELS, make_synthetic

SKLEARN_CHECKS = (
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_parameters_default_constructible",
    "check_do_not_raise_errors_in_init_or_set_params",
)


def tiny_dataset(random_state=0, kind="sims"):
    """A small synthetic dataset for checks (seconds to fit on)."""
    return make_synthetic(
        kind,
        n_samples=(48, 16, 16),
        seq_lens=(6, 12, 8),
        feature_dims=(16, 5, 7),
        n_unlabelled=16 if kind == "simsv2" else 0,
        n_latent=8,  # few latent factors suit the few feature dims
        random_state=random_state,
    )


def _X(ds, split, modalities=None):
    """Features of ``split``, with ``text_bert`` whenever the data has it
    (BERT-mode estimators need it; every other estimator ignores it)."""
    kw = {} if modalities is None else {"modalities": modalities}
    return ds.X(split, text_bert=ds[split].text_bert is not None, **kw)


def _accepts_validation(est) -> bool:
    """Whether ``est.fit`` takes ``X_valid``/``y_valid`` (by its signature,
    never by trying)."""
    try:
        params = inspect.signature(est.fit).parameters
    except (TypeError, ValueError):
        return False
    return "X_valid" in params and "y_valid" in params


def _fit_any(est, ds, y_labels="M", modalities=None):
    """Fit on train (with valid as ``X_valid``/``y_valid`` when ``fit`` takes
    them).  Exactly one fit: an error propagates, it is never retried another
    way."""
    X = _X(ds, "train", modalities)
    y = ds.y("train", y_labels)
    if _accepts_validation(est):
        return est.fit(X, y, X_valid=_X(ds, "valid", modalities),
                       y_valid=ds.y("valid", y_labels))
    return est.fit(X, y)


def check_fit_returns_self(est, ds):
    e = clone(est)
    assert _fit_any(e, ds) is e, "fit must return self"


def check_not_fitted(est, ds):
    try:
        clone(est).predict(_X(ds, "test"))
    except NotFittedError:
        return
    raise AssertionError("predict before fit must raise NotFittedError")


def check_predict_shape_dtype(est, ds):
    p = _fit_any(clone(est), ds).predict(_X(ds, "test"))
    n = ds["test"].n_samples
    assert p.shape == (n,), f"predict returned shape {p.shape}, expected ({n},)"
    assert p.dtype == np.float64, f"predict returned {p.dtype}, expected float64"
    assert np.all(np.isfinite(p)), "predictions must be finite"


def check_pickle_roundtrip(est, ds):
    e = _fit_any(clone(est), ds)
    p1 = e.predict(_X(ds, "test"))
    e2 = pickle.loads(pickle.dumps(e))
    np.testing.assert_array_equal(p1, e2.predict(_X(ds, "test")))


def check_seed_reproducible(est, ds):
    """The same ``random_state`` gives identical predictions, another one
    different ones.  An estimator without ``random_state`` must be
    deterministic (two fits, identical predictions); otherwise it fails."""
    params = est.get_params()
    if "random_state" not in params:
        a = _fit_any(clone(est), ds).predict(_X(ds, "test"))
        b = _fit_any(clone(est), ds).predict(_X(ds, "test"))
        assert np.array_equal(a, b), (
            f"{type(est).__name__} has no random_state parameter, and two fits gave "
            "different predictions: add random_state (the runner sets it per seed)"
        )
        return
    a = _fit_any(clone(est).set_params(random_state=0), ds).predict(_X(ds, "test"))
    b = _fit_any(clone(est).set_params(random_state=0), ds).predict(_X(ds, "test"))
    np.testing.assert_array_equal(a, b, err_msg="same random_state, different predictions")
    c = _fit_any(clone(est).set_params(random_state=1), ds).predict(_X(ds, "test"))
    assert not np.array_equal(a, c), "different random_state gave identical predictions"


def check_modality_subsets(est, ds, subsets=(("text",), ("audio",), ("vision",))):
    """Each single modality (with the ones the estimator requires) works via
    the ``modalities`` parameter; an estimator without it fails."""
    assert "modalities" in est.get_params(), (
        f"{type(est).__name__} has no 'modalities' parameter: the unimodal tasks "
        "(CH-SIMS Table 4, CH-SIMS v2 Table 3) set it; add it, or name this check in "
        "expected_failed with the reason"
    )
    # an estimator may need some modality (BERT-MAG's gate sits in BERT's text
    # path): each subset is then taken together with the required ones
    required = set(getattr(est, "_required_modalities", ()))
    order = ("text", "audio", "vision")
    subsets = dict.fromkeys(
        tuple(m for m in order if m in set(s) | required) for s in subsets
    )
    for mods in subsets:
        e = _fit_any(clone(est).set_params(modalities=mods), ds, modalities=mods)
        p = e.predict(_X(ds, "test", mods))
        assert p.shape == (ds["test"].n_samples,), f"modalities={mods}: bad shape {p.shape}"


def check_multitask_target(est, ds):
    e = _fit_any(clone(est), ds, LABELS)
    p = e.predict(_X(ds, "test"))
    assert p.shape == (ds["test"].n_samples,)


DICT_CHECKS = (
    check_fit_returns_self,
    check_not_fitted,
    check_predict_shape_dtype,
    check_pickle_roundtrip,
    check_seed_reproducible,
    check_modality_subsets,
    check_multitask_target,
)


def yield_checks(estimator):
    """Yield ``(name, callable(estimator, dataset))`` for every check."""
    for name in SKLEARN_CHECKS:
        fn = getattr(skc, name)
        yield name, (lambda est, ds, fn=fn: fn(type(est).__name__, est))
    for fn in DICT_CHECKS:
        yield fn.__name__, fn


def check_estimator(estimator, dataset=None, expected_failed=None):
    """Run every check on ``estimator``; raise on the first unexpected failure.

    Parameters
    ----------
    estimator : estimator instance
        Use small hyperparameters: each check fits on a tiny dataset.
    dataset : MultimodalDataset, default=None
        :func:`tiny_dataset` when None.
    expected_failed : dict of str to str, default=None
        Check name -> reason, for checks this estimator is known to fail.
    """
    ds = dataset if dataset is not None else tiny_dataset()
    expected_failed = expected_failed or {}
    for name, check in yield_checks(estimator):
        if name in expected_failed:
            continue
        check(estimator, ds)
