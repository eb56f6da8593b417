"""The shared deep training shell, exercised through LF-DNN."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402

from simsbench.estimators import LFDNN  # noqa: E402
from simsbench.estimators._deep import (  # noqa: E402
    BatchIterator,
    HoldoutSplit,
    TaskLoss,
    TensorDictDataset,
)
from simsbench.metrics import corr, mae, scorer  # noqa: E402

TINY = LFDNN._tiny_params


def test_loss_falls_and_best_epoch_restored(small):
    model = LFDNN(hidden_dims=(16, 8, 16), text_out=16, post_fusion_dim=16,
                  max_epochs=15, early_stop=4, random_state=0)
    model.fit(small.X("train"), small.y("train"),
              X_valid=small.X("valid"), y_valid=small.y("valid"))
    curve = model.train_loss_curve_
    assert curve[-1] < curve[0]
    assert 1 <= model.best_epoch_ <= model.n_epochs_
    assert model.best_valid_loss_ == pytest.approx(min(model.valid_loss_curve_))
    # the restored weights are the best epoch's: recompute the validation L1
    pred = model.predict(small.X("valid"))
    assert np.mean(np.abs(pred - small.y("valid"))) == pytest.approx(
        model.best_valid_loss_, rel=0.05)


def test_lfdnn_beats_mean(small):
    model = LFDNN(random_state=0, max_epochs=30).fit(
        small.X("train"), small.y("train"), X_valid=small.X("valid"),
        y_valid=small.y("valid"))
    y, pred = small.y("test"), model.predict(small.X("test"))
    assert mae(y, pred) < mae(y, np.full_like(y, small.y("train").mean()))
    assert corr(y, pred) > 0.3


def test_early_stopping_patience(tiny):
    model = LFDNN(**{**TINY, "max_epochs": 200, "early_stop": 2}, random_state=0)
    model.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"),
              y_valid=tiny.y("valid"))
    assert model.n_epochs_ < 200
    assert model.n_epochs_ - model.best_epoch_ <= 2 + 1


def test_cross_val_score_and_grid_search(tiny):
    X, y = tiny.X("train"), tiny.y("train")
    scores = cross_val_score(LFDNN(**TINY, random_state=0), X, y, cv=3,
                             scoring=scorer("mae"))
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    search = GridSearchCV(LFDNN(**TINY, random_state=0),
                          {"post_fusion_dim": [4, 8]}, cv=2, scoring=scorer("acc2"))
    search.fit(X, y)
    assert search.best_params_["post_fusion_dim"] in (4, 8)
    assert search.best_estimator_.predict(tiny.X("test")).shape == (16,)


def test_multitask_target_ignored_by_single_task(tiny):
    a = LFDNN(**TINY, random_state=0).fit(tiny.X("train"), tiny.y("train"))
    b = LFDNN(**TINY, random_state=0).fit(tiny.X("train"),
                                          tiny.y("train", ("M", "T", "A", "V")))
    np.testing.assert_array_equal(a.predict(tiny.X("test")), b.predict(tiny.X("test")))


def test_clear_errors(tiny):
    with pytest.raises(ValueError, match="The .modalities. parameter of LFDNN must be a non-empty"):
        LFDNN(modalities=("smell",)).fit(tiny.X("train"), tiny.y("train"))
    with pytest.raises(ValueError, match="X has no 'audio'"):
        LFDNN(**TINY).fit(tiny.X("train", ("text",)), tiny.y("train"))
    with pytest.raises(ValueError, match="The 'batch_size' parameter of LFDNN must be an int"):
        LFDNN(batch_size=0).fit(tiny.X("train"), tiny.y("train"))
    with pytest.raises(ValueError, match="y must have shape"):
        LFDNN(**TINY).fit(tiny.X("train"), tiny.y("train")[:5])
    with pytest.raises(ValueError, match="pass both X_valid and y_valid"):
        LFDNN(**TINY).fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"))
    with pytest.raises(ValueError, match="(The 'pooling' parameter of LFDNN|pooling) must be"):
        LFDNN(**TINY, pooling="max").fit(tiny.X("train"), tiny.y("train"))
    fitted = LFDNN(**TINY).fit(tiny.X("train"), tiny.y("train"))
    bad = tiny.X("test")
    bad["audio"] = bad["audio"][:, :, :3]
    with pytest.raises(ValueError, match="has 3 features, but the model was fitted with 5"):
        fitted.predict(bad)


def test_task_loss_weights_and_nan_rows():
    loss = TaskLoss((0.5, 1.0, 0.0, 2.0))
    outs = (torch.zeros(3), torch.ones(3), torch.zeros(3), torch.zeros(3))
    y = torch.tensor([[1.0, 1.0, 5.0, float("nan")],
                      [1.0, 0.0, 5.0, 1.0],
                      [float("nan"), 1.0, 5.0, 1.0]])
    # M: rows 0,1 -> |0-1| mean 1 -> 0.5 ; T: mean(|1-1|,|1-0|,|1-1|)=1/3 ;
    # A: weight 0 ; V: rows 1,2 -> 1 -> 2
    assert loss(outs, y).item() == pytest.approx(0.5 + 1 / 3 + 2.0)
    assert TaskLoss()(torch.zeros(2), torch.tensor([1.0, -1.0])).item() == 1.0
    assert TaskLoss(kind="mse")(torch.zeros(2), torch.tensor([2.0, 0.0])).item() == 2.0


def test_batch_iterator_merges_single_tail():
    ds = TensorDictDataset({"a": torch.arange(9.0)[:, None]}, torch.arange(9.0))
    sizes = [len(y) for _, y in BatchIterator(ds, batch_size=4, shuffle=True)]
    assert sizes == [4, 5]
    sizes = [len(y) for _, y in BatchIterator(ds, batch_size=4)]
    assert sizes == [4, 4, 1]


def test_holdout_split_only_holds_out_labelled_rows():
    y = torch.tensor([0.1] * 10 + [float("nan")] * 5)
    ds = TensorDictDataset({"a": torch.arange(15.0)[:, None]}, y)
    train, valid = HoldoutSplit(0.2, seed=0)(ds)
    assert len(valid) == 2 and not torch.isnan(valid.y).any()
    assert len(train) == 13 and torch.isnan(train.y).sum() == 5


def test_gradient_accumulation_applies_tail(tiny):
    """With accumulation over more batches than an epoch has, the tail group
    is still applied (weights change after one epoch)."""
    model = LFDNN(**{**TINY, "max_epochs": 1, "batch_size": 8}, random_state=0)
    model._net_kwargs = lambda: {"accumulation_steps": 100}
    model.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"),
              y_valid=tiny.y("valid"))
    fresh = LFDNN(**TINY, random_state=0)
    torch.manual_seed(0)
    init = fresh.build_module(feature_dims=(16, 5, 7), seq_lens=(6, 12, 8))
    trained = model.net_.module_
    w0 = init.post_fusion.layer_3.weight
    assert not torch.equal(w0, trained.post_fusion.layer_3.weight)


def _fit_lfdnn(data, **params):
    model = LFDNN(**{**TINY, "max_epochs": 8, "early_stop": 3, **params}, random_state=0)
    return model.fit(data.X("train"), data.y("train"), X_valid=data.X("valid"),
                     y_valid=data.y("valid"))


def test_best_weights_spilled_to_disk_restore_the_same_model(tiny, monkeypatch, tmp_path):
    """Large weights go to a temporary file, not memory; the restored model is
    the same, and the file is gone after fit."""
    import simsbench.estimators._callbacks as callbacks

    in_memory = _fit_lfdnn(tiny)
    monkeypatch.setattr(callbacks, "SPILL_BYTES", 0)
    monkeypatch.setattr(callbacks.tempfile, "tempdir", str(tmp_path))
    spilled = _fit_lfdnn(tiny)
    assert spilled.best_epoch_ == in_memory.best_epoch_
    np.testing.assert_array_equal(spilled.predict(tiny.X("test")),
                                  in_memory.predict(tiny.X("test")))
    assert list(tmp_path.iterdir()) == []


def test_spill_file_removed_when_fit_fails(tiny, monkeypatch, tmp_path):
    import simsbench.estimators._callbacks as callbacks
    import simsbench.estimators._deep as deep

    monkeypatch.setattr(callbacks, "SPILL_BYTES", 0)
    monkeypatch.setattr(callbacks.tempfile, "tempdir", str(tmp_path))
    calls = []
    original = deep.SimsNet.run_single_epoch

    def fail_on_third_epoch(self, iterator, training, *args, **kwargs):
        if training:
            calls.append(1)
            if len(calls) == 3:  # two epochs done: a best-weights file exists
                assert len(list(tmp_path.iterdir())) == 1
                raise RuntimeError("boom")
        return original(self, iterator, training, *args, **kwargs)

    monkeypatch.setattr(deep.SimsNet, "run_single_epoch", fail_on_third_epoch)
    with pytest.raises(RuntimeError, match="boom"):
        _fit_lfdnn(tiny)
    assert list(tmp_path.iterdir()) == []


def test_fitted_model_keeps_no_training_state(tiny):
    """After fit: no gradients, no optimizer state, no second copy of the
    weights in the early-stopping callback (smaller memory and pickles)."""
    model = _fit_lfdnn(tiny)
    net = model.net_
    assert all(p.grad is None for p in net.module_.parameters())
    assert len(net.optimizer_.state) == 0
    stopper = dict(net.callbacks_)["early_stopping"]
    assert stopper.best_model_weights_ is None


def test_last_states_equal_a_packed_run():
    from torch.nn.utils.rnn import pack_padded_sequence

    from simsbench.estimators.modules._blocks import last_states

    torch.manual_seed(0)
    rnn = torch.nn.LSTM(6, 5, num_layers=2, batch_first=True)
    x = torch.randn(70, 11, 6)
    lengths = torch.randint(1, 12, (70,))
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    _, (h, _) = rnn(packed)
    for bucket in (8, 32, 100):
        out = last_states(rnn, x, lengths, bucket_size=bucket)
        torch.testing.assert_close(out, h[-1], rtol=1e-5, atol=1e-6)
    # gradients flow to the LSTM weights
    last_states(rnn, x, lengths).sum().backward()
    assert rnn.weight_ih_l0.grad is not None
    with pytest.raises(ValueError, match="unidirectional"):
        last_states(torch.nn.LSTM(6, 5, bidirectional=True, batch_first=True), x, lengths)
