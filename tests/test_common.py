"""Every discovered estimator passes sklearn's data-free checks and the
simsbench dict-X checks (simsbench.utils.estimator_checks)."""

from __future__ import annotations

import pytest

from simsbench.utils.discovery import all_estimators
from simsbench.utils.estimator_checks import yield_checks
from simsbench.utils.tags import get_simsbench_tags

# Checks that fit: an estimator whose tags say it needs BERT (a local checkpoint and
# X['text_bert']) cannot run them on features (tests/test_bert_family.py runs such
# models with a tiny BERT).
FITTING_CHECKS = (
    "check_fit_returns_self", "check_predict_shape_dtype", "check_pickle_roundtrip",
    "check_seed_reproducible", "check_modality_subsets", "check_multitask_target",
)
_NEEDS_BERT = ("needs_bert tag: fit needs a local BERT checkpoint (pretrained=PATH) and "
               "X['text_bert']; tests/test_bert_family.py runs it with a tiny BERT")


def expected_failed(estimator) -> dict[str, str]:
    """{check name: reason} of the checks ``estimator`` is expected to fail."""
    if get_simsbench_tags(estimator).needs_bert:
        return dict.fromkeys(FITTING_CHECKS, _NEEDS_BERT)
    return {}


def _instance(cls):
    return cls(**getattr(cls, "_tiny_params", {}))


def _cases():
    for name, cls in all_estimators():
        est = _instance(cls)
        for check_name, check in yield_checks(est):
            marks = []
            reason = expected_failed(est).get(check_name)
            if reason:
                marks.append(pytest.mark.xfail(reason=reason, strict=True))
            yield pytest.param(est, check, id=f"{name}-{check_name}", marks=marks)


@pytest.mark.parametrize("estimator, check", list(_cases()))
def test_common(estimator, check, tiny):
    check(estimator, tiny)
