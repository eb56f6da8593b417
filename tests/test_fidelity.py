"""Reference configuration and named corrections (torch-free parts), and the
corrections table from hand-made records."""

from __future__ import annotations

import csv

import pytest
from sklearn.base import BaseEstimator

from simsbench.corrections import build_corrections_table
from simsbench.estimators._fidelity import (
    Correction,
    apply_variant,
    corrected_params,
    corrections,
    parse_variant,
    reference_params,
    variant_of,
)
from simsbench.tables import render


class _Base(BaseEstimator):
    _corrections = (
        Correction("selection", "base rule", {"selection": ("reference", "weighted")}),
        Correction("cap", "base cap", {"max_epochs": (None, 100)}),
    )


class _Model(_Base):
    _corrections = (
        Correction("pooling", "model pooling", {"pooling": ("padded", "length_aware")}),
        Correction("cap", "the model's own cap", {"max_epochs": (None, 50)}),
    )

    def __init__(self, pooling="padded", max_epochs=None, selection="reference", width=8):
        self.pooling = pooling
        self.max_epochs = max_epochs
        self.selection = selection
        self.width = width


class _NoSelection(_Base):
    def __init__(self, max_epochs=None):
        self.max_epochs = max_epochs


def test_corrections_are_inherited_and_overridden_by_name():
    names = [c.name for c in corrections(_Model)]
    assert names == ["selection", "cap", "pooling"]
    assert {c.name: c.summary for c in corrections(_Model())}["cap"] == "the model's own cap"
    # a base correction whose parameter the class lacks does not apply
    assert [c.name for c in corrections(_NoSelection)] == ["cap"]


def test_reference_and_corrected_params_and_variants():
    est = _Model()
    assert reference_params(est) == {"selection": "reference", "max_epochs": None,
                                     "pooling": "padded"}
    assert corrected_params(est) == {"selection": "weighted", "max_epochs": 50,
                                     "pooling": "length_aware"}
    assert variant_of(est) == "reference"
    assert variant_of(apply_variant(_Model(), "corrected")) == "corrected"
    one = apply_variant(_Model(pooling="length_aware"), "reference+cap")
    assert one.pooling == "padded" and one.max_epochs == 50
    assert variant_of(one) == "reference+cap"
    assert variant_of(_Model(pooling="mean")) == "custom"
    assert apply_variant(_Model(width=3), "corrected").width == 3  # others untouched


@pytest.mark.parametrize("bad", ["fixed", "corrected+pooling", "reference+", ""])
def test_bad_variant_names_are_one_line_errors(bad):
    with pytest.raises(ValueError, match="variant must be"):
        parse_variant(bad)


def test_unknown_correction_names_the_estimator_and_its_corrections():
    with pytest.raises(ValueError, match=r"_Model has no correction 'nope'; its corrections: "
                                         r"selection, cap, pooling"):
        corrected_params(_Model(), ["nope"])


def _rec(est, variant, seed, mae, task="sims_multimodal", created="2026-01-01T00:00:00"):
    scores = dict(acc2=0.7, acc3=0.6, acc5=0.3, f1=0.7, mae=mae, corr=0.5)
    return {"schema": 1, "key": f"{est}-{variant}-{seed}", "estimator": est, "task": task,
            "seed": seed, "status": "ok", "scores": scores,
            "mode": "full", "variant": variant, "requested_variant": variant,
            "created": created, "data": {"fingerprint": "fp", "slug": "synthetic-sims",
                                         "synthetic": True,
                                         "description": "synthetic:sims -- simulated"}}


def test_corrections_table_from_records():
    seeds = (1, 12, 123, 1234, 12345)
    noise = (0.0001, -0.0002, 0.00015, 0.0, -0.0001)
    recs = [_rec("lf_dnn", "reference", s, 0.40 + e) for s, e in zip(seeds, noise)]
    recs += [_rec("lf_dnn", "corrected", s, 0.38 + 0.5 * e) for s, e in zip(seeds, noise)]
    recs += [_rec("lf_dnn", "reference+pooling", s, 0.40 + e) for s, e in zip(seeds, noise)]
    recs += [_rec("tfn", "reference", 1, 0.5), _rec("tfn", "corrected", 1, 0.45)]
    docs = {"lf_dnn": [("pooling", "P."), ("selection", "S.")], "tfn": [("selection", "S.")]}
    md = render(build_corrections_table("sims", recs, corrections=docs), "markdown")
    lines = md.splitlines()
    delta = next(ln for ln in lines if ln.startswith("| LF-DNN ") and "Δ corrected" in ln)
    assert "-2.00**" in delta  # MAE x100: 38 - 40, a constant shift with small noise
    p_row = next(ln for ln in lines if ln.startswith("| LF-DNN ") and "p (paired t, n=5)" in ln)
    assert "| 1 " in p_row  # identical Acc-2 in every seed: p = 1
    abl = next(ln for ln in lines if "Δ pooling - reference" in ln)
    assert "+0.00" in abl
    tfn_p = next(ln for ln in lines if ln.startswith("| TFN ") and "p (paired" in ln)
    assert "n=1" in tfn_p and "no test: fewer than 2 paired seeds" in tfn_p
    assert "> every model / selection: S." in md and "> LF-DNN / pooling: P." in md
    assert "SIMULATED DATA" in md
    text = render(build_corrections_table("sims", recs, corrections=docs), "csv")
    rows = list(csv.DictReader(ln for ln in text.splitlines() if not ln.startswith("#")))
    p_row = next(r for r in rows if r["model"] == "LF-DNN"
                 and r["configuration"] == "p (paired t, n=5)")
    assert 0 < float(p_row["mae"]) < 0.01 and len(p_row["mae"]) > 6  # exact, not rounded
