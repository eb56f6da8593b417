"""``precision="bfloat16"``: the opt-in mixed precision of every deep model.

The forward passes run under ``torch.autocast`` (their matrix products in
bfloat16), while the loss, the predictions and the weights stay float32; the
default ``"float32"`` never enters autocast.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402

from simsbench.estimators._net import mixed_precision, to_float32  # noqa: E402
from simsbench.utils.discovery import all_estimators  # noqa: E402
from simsbench.utils.estimator_checks import _fit_any, _X  # noqa: E402
from simsbench.utils.tags import get_simsbench_tags  # noqa: E402


def _deep_cases():
    out = []
    for name, cls in all_estimators():
        est = cls(**getattr(cls, "_tiny_params", {}))
        if "precision" not in est.get_params() or get_simsbench_tags(est).needs_bert:
            continue
        out.append(pytest.param(est, id=name))
    return out


DEEP = _deep_cases()


def test_every_deep_model_has_the_parameter():
    names = {p.id for p in DEEP}
    # the 14 feature-mode deep models (BERT-MAG needs a checkpoint to fit)
    assert len(names) >= 14, names
    for p in DEEP:
        assert p.values[0].get_params()["precision"] == "float32"


class _LinearDtypes:
    """Records the output dtype of every ``nn.Linear`` call of a module."""

    def __init__(self):
        self.seen: list = []
        self._handles: list = []

    def attach(self, module):
        for sub in module.modules():
            if isinstance(sub, torch.nn.Linear):
                self._handles.append(sub.register_forward_hook(self._hook))

    def _hook(self, mod, args, out):
        if isinstance(out, torch.Tensor):
            self.seen.append(out.dtype)

    def detach(self):
        for h in self._handles:
            h.remove()


@pytest.mark.parametrize("estimator", DEEP)
def test_bfloat16_trains_in_bfloat16_and_predicts_float64(estimator, tiny, monkeypatch):
    """Training and prediction forward passes run in bfloat16; predictions
    are finite float64, the weights stay float32."""
    rec = _LinearDtypes()
    cls = type(estimator)
    original = cls._build_module

    def build(self, dims, seq_lens):
        module = original(self, dims, seq_lens)
        rec.attach(module)
        return module

    monkeypatch.setattr(cls, "_build_module", build)
    est = clone(estimator).set_params(precision="bfloat16", max_epochs=1, random_state=0)
    _fit_any(est, tiny)
    assert rec.seen and set(rec.seen) == {torch.bfloat16}, set(rec.seen)
    assert all(p.dtype == torch.float32 for p in est.net_.module_.parameters())
    rec.seen.clear()
    pred = est.predict(_X(tiny, "test"))
    rec.detach()
    assert set(rec.seen) == {torch.bfloat16}
    assert pred.dtype == np.float64 and pred.shape == (tiny["test"].n_samples,)
    assert np.all(np.isfinite(pred))
    assert all(np.isfinite(v) for v in est.train_loss_curve_ + est.valid_loss_curve_)


def test_float32_default_never_autocasts(tiny, monkeypatch):
    from simsbench.estimators import LFDNN

    seen = []
    original = torch.autocast.__init__

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("dtype"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(torch.autocast, "__init__", spy)
    est = LFDNN(max_epochs=1, random_state=0, hidden_dims=(8, 4, 8), text_out=8,
                post_fusion_dim=8)
    _fit_any(est, tiny)
    est.predict(_X(tiny, "test"))
    assert seen == []


def test_bfloat16_prediction_is_close_to_float32(small):
    """The same fitted weights predict within bfloat16's rounding whichever
    precision the forward runs in (the switch is read at predict time)."""
    from simsbench.estimators import LFDNN

    est = LFDNN(max_epochs=3, random_state=0, hidden_dims=(16, 8, 16), text_out=16,
                post_fusion_dim=16)
    _fit_any(est, small)
    X = _X(small, "test")
    p32 = est.predict(X)
    p16 = est.set_params(precision="bfloat16").predict(X)
    assert not np.array_equal(p32, p16)  # the switch does change the arithmetic
    scale = float(np.abs(p32).max())
    assert np.max(np.abs(p16 - p32)) < 0.05 * max(scale, 1.0)
    assert np.corrcoef(p16, p32)[0, 1] > 0.95


def test_bad_precision_is_one_line_error(tiny):
    from simsbench.estimators import TFN

    with pytest.raises(ValueError, match="'precision' parameter of TFN"):
        _fit_any(TFN(precision="float16"), tiny)


def test_to_float32_casts_nested_outputs():
    out = (torch.ones(2, dtype=torch.bfloat16),
           {"a": torch.ones(1, dtype=torch.bfloat16), "b": None, "i": torch.ones(1).long()},
           [torch.ones(1, dtype=torch.float64)])
    got = to_float32(out)
    assert got[0].dtype == torch.float32
    assert got[1]["a"].dtype == torch.float32 and got[1]["b"] is None
    assert got[1]["i"].dtype == torch.int64
    assert got[2][0].dtype == torch.float64  # only lower precisions are widened


def test_mixed_precision_context():
    lin = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with mixed_precision("float32"):
        assert lin(x).dtype == torch.float32
    with mixed_precision("bfloat16", "cpu"):
        assert lin(x).dtype == torch.bfloat16


def test_clone_and_params_keep_precision():
    from simsbench.estimators import MulT

    est = MulT(precision="bfloat16")
    assert clone(est).get_params()["precision"] == "bfloat16"


# ---------------------------------------------------------------------------
# the runner's --precision and --device

def _plan(sims_file, **kw):
    from simsbench.datasets import load_dataset
    from simsbench.runner import plan_runs, requests_for
    from simsbench.specs import load_specs

    specs = load_specs()
    reqs = requests_for([(specs.estimator("lf_dnn"), specs.task("sims_multimodal"))],
                        sims_file, seeds=(1,), quick=True, tiny=True, **kw)
    ds = load_dataset(sims_file)
    info = {"fingerprint": ds.fingerprint, "kind": ds.kind}
    [planned] = plan_runs(reqs, info)
    return planned


def test_precision_is_in_the_key_only_off_its_default(sims_file):
    default = _plan(sims_file)
    explicit = _plan(sims_file, precision="float32")
    bf16 = _plan(sims_file, precision="bfloat16")
    # records made before the parameter existed keep their keys
    assert "precision" not in default.params and default.key == explicit.key
    assert bf16.params["precision"] == "bfloat16" and bf16.key != default.key
    assert default.params["device"] == "cpu"


def test_run_tables_bfloat16_says_so_in_the_header(sims_file, tmp_path):
    from simsbench.suite import run_tables

    result = run_tables("table2", [sims_file], estimators=["lf_dnn", "svr"], quick=True,
                        tiny=True, precision="bfloat16", results=tmp_path / "res",
                        progress=False)
    assert result.failed == 0
    [rt] = result.tables
    header = "\n".join(rt.header)
    assert "Arithmetic: bfloat16 autocast" in header and "LF-DNN" in header
    line = next(ln for ln in rt.header if ln.startswith("Arithmetic"))
    assert "SVR" not in line  # the pooled SVR has no precision: float64 as always
    ref = run_tables("table2", [sims_file], estimators=["lf_dnn"], quick=True, tiny=True,
                     results=tmp_path / "res", progress=False)
    assert not any(ln.startswith("Arithmetic") for ln in ref.tables[0].header)
    # the float32 run is its own record, not the bfloat16 one read back
    assert ref.runs[0].grid.trained


def test_cli_rejects_unusable_device_and_precision(sims_file, tmp_path, capsys):
    from simsbench.cli import main

    if not torch.cuda.is_available():
        code = main(["run", "table2", "--data", sims_file, "--quick", "--device", "cuda",
                     "--results", str(tmp_path), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and "--device cuda: no CUDA device" in err
        assert len(err.strip().splitlines()) == 1
    code = main(["run", "table2", "--data", sims_file, "--quick", "--device", "gpu0",
                 "--results", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--device: 'gpu0' is not a torch device" in err
    with pytest.raises(SystemExit):
        main(["run", "table2", "--precision", "float16"])
    assert not (tmp_path / "runs").exists()
