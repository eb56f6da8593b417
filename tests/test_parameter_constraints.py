"""Declared hyperparameter constraints: a bad value is a one-line error naming
the parameter, raised by ``fit`` before any training (scikit-learn's
``_parameter_constraints`` idiom, shared by every deep estimator)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from simsbench.estimators._constraints import constraints_of  # noqa: E402
from simsbench.utils.discovery import all_estimators  # noqa: E402

DEEP = [cls for _name, cls in all_estimators()
        if "n_threads" in cls().get_params() and cls.__name__ != "BertMAG"]

BAD_SHARED = [
    ("learning_rate", math.inf), ("learning_rate", 0.0), ("learning_rate", "fast"),
    ("tol", math.nan), ("weight_decay", -1.0), ("batch_size", 0), ("batch_size", "32"),
    ("batch_size", True), ("early_stop", False),
    ("max_epochs", 2.5), ("early_stop", 0), ("selection", "best"),
    ("validation_fraction", 1.0), ("n_threads", 0),
]


@pytest.mark.parametrize("cls", DEEP, ids=lambda c: c.__name__)
def test_every_deep_estimator_declares_the_shared_parameters(cls):
    declared = constraints_of(cls)
    for name in ("batch_size", "learning_rate", "weight_decay", "max_epochs", "early_stop",
                 "tol", "selection", "validation_fraction", "n_threads", "random_state"):
        if name in cls().get_params():
            assert name in declared, (cls.__name__, name)


@pytest.mark.parametrize("param, value", BAD_SHARED, ids=lambda v: repr(v))
@pytest.mark.parametrize("cls", DEEP, ids=lambda c: c.__name__)
def test_bad_shared_values_fail_before_training_naming_the_parameter(cls, param, value, tiny):
    if param not in cls().get_params():
        pytest.skip(f"{cls.__name__} has no {param}")
    est = cls(**cls._tiny_params).set_params(**{param: value})
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of {cls.__name__} must be"):
        est.fit(tiny.X("train"), tiny.y("train"))


@pytest.mark.parametrize("params, name", [
    ({"hidden_dims": (8, -1, 8)}, "hidden_dims"),
    ({"hidden_dims": 8}, "hidden_dims"),
    ({"text_out": "8"}, "text_out"),
    ({"dropouts": (0.1, 0.2)}, "dropouts"),
    ({"dropouts": (0.1, 0.2, 1.0, 0.3)}, "dropouts"),
    ({"pooling": "mean"}, "pooling"),
    ({"text_state_dropout": "yes"}, "text_state_dropout"),
])
def test_lf_dnn_model_parameters(params, name, tiny):
    from simsbench.estimators import LFDNN

    est = LFDNN(**LFDNN._tiny_params).set_params(**params)
    with pytest.raises(ValueError, match=rf"The '{name}' parameter of LFDNN must be"):
        est.fit(tiny.X("train"), tiny.y("train"))


# ---------------------------------------------------------------------------
# every estimator: every constructor parameter declared, bad values named


def _estimator_classes():
    import simsbench.estimators as est

    found = {cls for _name, cls in all_estimators()}
    for name in est.__all__:
        obj = getattr(est, name)
        if isinstance(obj, type) and obj._get_param_names():
            found.add(obj)
    return sorted(found, key=lambda c: c.__name__)


ESTIMATORS = _estimator_classes()
NAN = math.nan

#: At least two bad values per model (negative or zero sizes, wrong-length
#: tuples, bools for ints, NaN for floats, unknown options); every model
#: must have an entry.
BAD_VALUES = {
    "EFLSTM": [("hidden_dim", 0), ("num_layers", True), ("dropout", 1.0),
               ("alignment", "mean"), ("modalities", ("text", "smell"))],
    "LFDNN": [("hidden_dims", (8, -1, 8)), ("dropouts", (0.1, 0.2)), ("pooling", "mean"),
              ("modalities", ())],
    "TFN": [("hidden_dims", (8, -1, 8)), ("text_out", 2.5), ("dropouts", (0.1, 0.1, 0.1, NAN)),
            ("text_state_dropout", "yes"), ("post_fusion_dim", True)],
    "LMF": [("rank", 0), ("factor_lr", 0.0), ("freeze_fusion_weights", 1),
            ("hidden_dims", (8, 4)), ("hidden_dims", (1, 4, 4)), ("dropouts", (0.2, 0.2, 0.2))],
    "MFN": [("nn1", (8,)), ("memsize", -1), ("window", 0), ("gamma2", (8, 1.5)),
            ("out", (True, 0.2)), ("alignment", "nope")],
    "GraphMFN": [("inner_node_dim", 0), ("freeze_node_nets", "no"), ("out", 8),
                 ("alignment", "mean"), ("hidden_dims", (8, 4, 8, 8))],
    "MulT": [("d_model", -1), ("num_heads", True), ("kernel_sizes", (5, 1)),
             ("attn_dropout", NAN), ("key_padding_mask", "yes"), ("lr_patience", -1),
             ("clip_per", "always"), ("grad_clip", -0.5), ("accumulation_steps", 0)],
    "MLFDNN": [("post_vision_dim", 0), ("weight_decay_text", -1e-3), ("tasks", ("T", "X")),
               ("loss_weights", (1.0, 1.0, 1.0)), ("post_dropouts", (0.5, 0.5, 0.5))],
    "MTFN": [("post_dropouts", (0.2, 0.2, 0.2)), ("weight_decay_vision", NAN),
             ("post_text_dim", True), ("loss_weights", (0.6, 0.4, NAN, 1.0))],
    "MLMF": [("post_dropouts", (0.4, 0.4, 0.4, 0.4)), ("weight_decay_audio", -1.0),
             ("tasks", "Q"), ("rank", 1.5)],
    "AVMC": [("encoder", "cnn"), ("post_dims", (8, 8)), ("mixup_level", "frame"),
             ("mixup_alpha", 0.0), ("learning_rate_vision", -1.0), ("mixup_audio", None),
             ("output_range", NAN)],
    "AVMCSemi": [("unlabelled_batches", "always"), ("reconstruction_heads", "yes"),
                 ("output_range", 0.0), ("dropouts", (0.1, 0.1, 0.1)),
                 ("weight_decay_vision", -1e-5)],
    "MISA": [("hidden_size", 7), ("rnncell", "rnn"), ("av_lengths", "both"),
             ("update_epochs", 0), ("text_encoder", "gpt"), ("diff_weight", NAN),
             ("accumulation_tail", "keep")],
    "MMIM": [("d_aout", 3), ("final_state_layer", "middle"), ("dropout_prj", 1.0),
             ("when", 0), ("alpha", -0.1), ("entropy_guard", None),
             ("learning_rate_mmilb", 0.0), ("pretrained", 3)],
    "SelfMM": [("vision_out", 0), ("post_vision_dropout", 1.0), ("H", 0.0),
               ("learning_rate_vision", NAN), ("exclude_zero", "yes"),
               ("weight_decay_bert", -1.0)],
    "BertMAG": [("beta_shift", 0.0), ("dropout_prob", 1.0), ("text_encoder", "gpt"),
                ("pretrained", 3)],
    "PooledSVR": [("C", -1.0), ("kernel", "cubic"), ("pooling", "max"), ("modalities", ()),
                  ("text_pooling", "first")],
    "ModalityPooler": [("text_pooling", "first"), ("modalities", "smell"),
                       ("pooling", "median")],
}

BAD_CASES = [(cls, p, v) for cls in ESTIMATORS for p, v in BAD_VALUES.get(cls.__name__, ())]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_constructor_parameter_is_declared(cls):
    missing = sorted(set(cls._get_param_names()) - set(constraints_of(cls)))
    assert not missing, f"{cls.__name__} declares no constraint for {missing}"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_model_has_bad_values_under_test(cls):
    assert len(BAD_VALUES.get(cls.__name__, ())) >= 2, cls.__name__
    for param, _ in BAD_VALUES[cls.__name__]:
        assert param in cls._get_param_names(), (cls.__name__, param)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_defaults_and_corrections_satisfy_the_constraints(cls):
    from simsbench.estimators._constraints import validate_params
    from simsbench.estimators._fidelity import corrections

    validate_params(cls())
    for corr in corrections(cls):
        validate_params(cls().set_params(**corr.reference()))
        validate_params(cls().set_params(**corr.corrected()))


@pytest.mark.parametrize("cls, param, value", BAD_CASES,
                         ids=[f"{c.__name__}-{p}={v!r}" for c, p, v in BAD_CASES])
def test_bad_model_values_fail_in_fit_before_torch_naming_the_parameter(
        cls, param, value, tiny, monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError(f"{cls.__name__}.fit went past parameter validation")

    # nothing may be built (no module, no net) before the parameters are valid
    for hook in ("_fit", "_build_module", "_prepare_inputs"):
        if hasattr(cls, hook):
            monkeypatch.setattr(cls, hook, reached)
    est = cls(**getattr(cls, "_tiny_params", {})).set_params(**{param: value})
    with pytest.raises(ValueError, match=rf"^The '{param}' parameter of {cls.__name__} must be"):
        est.fit(tiny.X("train"), tiny.y("train"))


def test_accepted_values_are_plain_python_or_numpy():
    import numpy as np

    from simsbench.estimators import MFN, TFN
    from simsbench.estimators._constraints import validate_params

    validate_params(TFN(hidden_dims=[8, np.int64(4), 8], text_out=np.int32(8),
                        dropouts=np.array([0.1, 0.0, 0.2, 0.3]), text_state_dropout=np.True_))
    validate_params(MFN(nn1=[8, np.float32(0.5)], memsize=np.int64(3)))


def test_cross_parameter_checks_name_both_parameters(tiny):
    from simsbench.estimators import MulT

    with pytest.raises(ValueError, match=r"^MulT: d_model \(10\) must be divisible by "
                                         r"num_heads \(3\)"):
        MulT(**{**MulT._tiny_params, "d_model": 10, "num_heads": 3}).fit(
            tiny.X("train"), tiny.y("train"))


def test_every_spec_satisfies_the_constraints():
    # (the [search] draws: tests/test_tune.py)
    from simsbench.estimators._constraints import validate_params
    from simsbench.specs import load_specs

    for spec in load_specs().estimators.values():
        for kind in ("sims", "simsv2"):
            validate_params(spec.build(kind))
