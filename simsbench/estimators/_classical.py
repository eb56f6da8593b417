"""Classical baselines: a pooling transformer and pooled-feature SVR."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.utils.validation import check_is_fitted

from simsbench.datasets import MODALITIES
from simsbench.estimators._constraints import Modalities, options, validate_params
from simsbench.estimators._inputs import check_X, check_y, lengths_of, masked_mean
from simsbench.utils.tags import as_simsbench_tags, declared_modalities

_POOLER_CONSTRAINTS = {
    "modalities": [Modalities()],
    "pooling": [options("mean", "padded_mean")],
    "text_pooling": [options("mean", "cls")],
}


class ModalityPooler(TransformerMixin, BaseEstimator):
    """Pool a dict of padded sequences into one 2-D feature matrix.

    Each chosen modality is averaged over its real frames (length-aware) and
    the results are concatenated in (text, audio, vision) order.

    Parameters
    ----------
    modalities : tuple of str, default=("text", "audio", "vision")
        Which modalities to pool.
    pooling : {"mean", "padded_mean"}, default="mean"
        ``"mean"`` averages the real frames only; ``"padded_mean"`` is the
        reference (MMSA) behaviour that averages the zero padding in.
    text_pooling : {"mean", "cls"}, default="cls"
        For text: the average token feature, or the first ([CLS]) position.

    Attributes
    ----------
    feature_dims_ : dict of str to int
        Feature dimension of each pooled modality.
    n_features_out_ : int
        Width of the output.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> ds = make_synthetic(n_samples=(30, 10, 10), seq_lens=(5, 8, 6),
    ...                     feature_dims=(12, 4, 6), random_state=0)
    >>> ModalityPooler().fit_transform(ds.X("train")).shape
    (30, 22)
    """

    _parameter_constraints = dict(_POOLER_CONSTRAINTS)

    def __init__(self, modalities=MODALITIES, pooling="mean", text_pooling="cls"):
        self.modalities = modalities
        self.pooling = pooling
        self.text_pooling = text_pooling

    def fit(self, X, y=None):
        validate_params(self)
        mods = _as_modalities(self.modalities)
        check_X(X, mods, type(self).__name__)
        self.modalities_ = mods
        self.feature_dims_ = {m: int(np.shape(X[m])[2]) for m in mods}
        self.n_features_out_ = sum(self.feature_dims_.values())
        return self

    def transform(self, X):
        check_is_fitted(self, "feature_dims_")
        check_X(X, self.modalities_, type(self).__name__)
        parts = []
        for m in self.modalities_:
            if np.shape(X[m])[2] != self.feature_dims_[m]:
                raise ValueError(
                    f"X[{m!r}] has {np.shape(X[m])[2]} features, "
                    f"fitted with {self.feature_dims_[m]}"
                )
            if m == "text" and self.text_pooling == "cls":
                parts.append(np.asarray(X[m][:, 0, :], dtype=np.float32))
            else:
                parts.append(
                    masked_mean(X[m], lengths_of(X, m), padded=self.pooling == "padded_mean")
                )
        return np.concatenate(parts, axis=1)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_dims_")
        return np.array(
            [f"{m}_{i}" for m in self.modalities_ for i in range(self.feature_dims_[m])],
            dtype=object,
        )

    def __sklearn_tags__(self):
        tags = as_simsbench_tags(super().__sklearn_tags__())
        tags.simsbench.modalities = declared_modalities(self)
        tags.input_tags.dict = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags


def _as_modalities(modalities) -> tuple[str, ...]:
    # (checked by the declared constraints in ``fit``)
    return (modalities,) if isinstance(modalities, str) else tuple(modalities)


class PooledSVR(RegressorMixin, BaseEstimator):
    """Support vector regression on time-pooled features.

    The SVR baseline of the benchmark: each chosen modality is pooled over
    its real frames (:class:`ModalityPooler`), the features are concatenated
    (early fusion when several modalities are chosen), standardised, and
    regressed with an RBF-kernel :class:`~sklearn.svm.SVR`.

    Parameters
    ----------
    modalities : tuple of str, default=("text", "audio", "vision")
        Modalities to use; one modality gives a unimodal baseline.
    C : float, default=1.0
        SVR regularisation.
    epsilon : float, default=0.1
        SVR epsilon-tube width.
    kernel : {"rbf", "linear", "poly", "sigmoid"}, default="rbf"
        SVR kernel.
    gamma : {"scale", "auto"} or float, default="scale"
        Kernel coefficient.
    pooling : {"mean", "padded_mean"}, default="mean"
        See :class:`ModalityPooler`.
    text_pooling : {"mean", "cls"}, default="cls"
        See :class:`ModalityPooler`.

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted pooler, scaler and SVR.

    Notes
    -----
    ``y`` may be the ``(n, 4)`` M/T/A/V matrix: only column M is used.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(5, 8, 6),
    ...                     feature_dims=(12, 4, 6), random_state=0)
    >>> model = PooledSVR().fit(ds.X("train"), ds.y("train"))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """

    # the pooler's parameters and scikit-learn's own declarations of SVR's
    _parameter_constraints = {
        **_POOLER_CONSTRAINTS,
        **{p: SVR._parameter_constraints[p] for p in ("C", "epsilon", "kernel", "gamma")},
    }

    def __init__(self, modalities=MODALITIES, C=1.0, epsilon=0.1, kernel="rbf",
                 gamma="scale", pooling="mean", text_pooling="cls"):
        self.modalities = modalities
        self.C = C
        self.epsilon = epsilon
        self.kernel = kernel
        self.gamma = gamma
        self.pooling = pooling
        self.text_pooling = text_pooling

    def fit(self, X, y):
        """Pool, standardise and fit the SVR.

        Parameters
        ----------
        X : dict of arrays
            ``dataset.X("train")`` or a plain dict with the same keys.
        y : array of shape (n,) or (n, k)
            M labels, or the M/T/A/V matrix (only M is used; it must be
            finite).

        Returns
        -------
        self
        """
        validate_params(self)
        name = type(self).__name__
        n = check_X(X, _as_modalities(self.modalities), name)
        y = check_y(y, n, name)
        if y.ndim == 2:
            y = y[:, 0]
        self.pipeline_ = make_pipeline(
            ModalityPooler(self.modalities, self.pooling, self.text_pooling),
            StandardScaler(),
            SVR(C=self.C, epsilon=self.epsilon, kernel=self.kernel, gamma=self.gamma),
        )
        self.pipeline_.fit(X, y)
        return self

    def predict(self, X):
        check_is_fitted(self, "pipeline_")
        check_X(X, self.pipeline_[0].modalities_, type(self).__name__)
        return self.pipeline_.predict(X).astype(np.float64)

    def score(self, X, y, sample_weight=None):
        y = np.asarray(y)
        return super().score(X, y[:, 0] if y.ndim == 2 else y, sample_weight)

    def __sklearn_tags__(self):
        tags = as_simsbench_tags(super().__sklearn_tags__())
        tags.simsbench.modalities = declared_modalities(self)
        tags.input_tags.dict = True
        tags.input_tags.two_d_array = False
        return tags
