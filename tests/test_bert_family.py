"""MISA, MMIM, Self-MM and BERT-MAG: parameter counts, learning, BERT mode."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # deep tests skip cleanly without torch

import pickle
import subprocess
import sys

import numpy as np
import torch

from simsbench.estimators import MISA, MMIM, BertMAG, SelfMM
from simsbench.estimators._deep import count_parameters
from simsbench.estimators.modules._misa import cmd_loss, diff_loss

# The reference's non-BERT trainable parameters with CH-SIMS shapes
# (reference-facts §5.1).
REFERENCE_COUNTS = {MISA: 21_664_749, MMIM: 373_449, SelfMM: 381_380}
MAG_GATE, MAG_HEAD = 2_323_968, 769


@pytest.mark.parametrize("cls", list(REFERENCE_COUNTS), ids=lambda c: c.__name__)
def test_reference_parameter_count(cls):
    module = cls().build_module(feature_dims=(768, 33, 709), seq_lens=(39, 400, 55))
    assert count_parameters(module) == REFERENCE_COUNTS[cls]


@pytest.mark.parametrize("est, expected", [
    (MISA(hidden_size=64), 1_774_589),
    (SelfMM(post_audio_dim=32), 245_748),
], ids=["MISA", "SelfMM"])
def test_reference_parameter_count_simsv2(est, expected):
    # The reference's SIMSv2 configs (differing in these widths) and shapes.
    module = est.build_module(feature_dims=(768, 25, 177), seq_lens=(50, 925, 232))
    assert count_parameters(module) == expected


def test_bert_mag_gate_count():
    pytest.importorskip("transformers")  # the optional [bert] extra
    from transformers import BertConfig, BertModel

    from simsbench.estimators._bert_mag import BertMAGModule

    cfg = BertConfig(vocab_size=16, hidden_size=768, num_hidden_layers=0,
                     num_attention_heads=12, intermediate_size=8,
                     max_position_embeddings=8)
    bert = BertModel(cfg)
    module = BertMAGModule(bert, {"text": 768, "audio": 33, "vision": 709}, 1.0, 0.1)
    assert count_parameters(module) - count_parameters(bert) == MAG_GATE + MAG_HEAD


def _fit_eval(est, ds, text_bert=False):
    est.fit(ds.X("train", text_bert=text_bert), ds.y("train"),
            X_valid=ds.X("valid", text_bert=text_bert), y_valid=ds.y("valid"))
    y = ds.y("test")
    p = est.predict(ds.X("test", text_bert=text_bert))
    return np.abs(p - y).mean(), np.abs(ds.y("train").mean() - y).mean(), np.corrcoef(p, y)[0, 1]


@pytest.mark.parametrize("est", [
    SelfMM(max_epochs=20),
    MMIM(max_epochs=10),
    MISA(max_epochs=10, hidden_size=32),
], ids=lambda e: type(e).__name__)
def test_beats_mean_predictor(est, small):
    est.set_params(random_state=0, n_threads=1)
    mae, mae_mean, corr = _fit_eval(est, small)
    assert mae < mae_mean
    assert corr > 0.3


def test_misa_auxiliary_losses():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    assert float(cmd_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(cmd_loss(x, x + 1.0)) == pytest.approx(np.sqrt(8), rel=1e-5)
    # Rows are L2-normalised after centring: scale-free, zero for a constant
    # input, and n^2 for a single column with itself (each row becomes +-1).
    y = torch.randn(64, 5, generator=g)
    assert float(diff_loss(x, torch.ones(64, 5))) == 0.0
    assert float(diff_loss(x, 3.0 * y)) == pytest.approx(float(diff_loss(x, y)), rel=1e-4)
    col = torch.randn(64, 1, generator=g)
    assert float(diff_loss(col, col)) == pytest.approx(64.0 ** 2, rel=1e-4)


def test_self_mm_label_generation(tiny):
    est = SelfMM(**SelfMM._tiny_params).set_params(max_epochs=1, random_state=0)
    y = tiny.y("train")
    est.fit(tiny.X("train"), y, X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    labels = {k: v.numpy() for k, v in est.net_.ulgm_labels_.items()}
    np.testing.assert_allclose(labels["fusion"], y, rtol=1e-6)
    for mode in ("text", "audio", "vision"):  # epoch 1 never updates them
        np.testing.assert_array_equal(labels[mode], labels["fusion"])
    est.set_params(max_epochs=3, early_stop=5).fit(
        tiny.X("train"), y, X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    labels = {k: v.numpy() for k, v in est.net_.ulgm_labels_.items()}
    np.testing.assert_allclose(labels["fusion"], y, rtol=1e-6)
    for mode in ("text", "audio", "vision"):
        assert not np.allclose(labels[mode], y)
        assert np.all(np.abs(labels[mode]) <= est.H + 1e-6)
    X_test = tiny.X("test", ("text", "vision"))
    est.set_params(modalities=("text", "vision")).fit(
        tiny.X("train", ("text", "vision")), y, X_valid=tiny.X("valid", ("text", "vision")),
        y_valid=tiny.y("valid"))
    all_heads = est.predict_all(X_test)
    np.testing.assert_array_equal(all_heads[:, 0], est.predict(X_test))
    assert np.isnan(all_heads[:, 2]).all() and np.isfinite(all_heads[:, [1, 3]]).all()
    assert sorted(est.get_representations(X_test)) == ["text", "vision"]


def test_self_mm_rows_keyed_by_index_with_internal_split(tiny):
    est = SelfMM(**SelfMM._tiny_params).set_params(max_epochs=1, random_state=0)
    y = tiny.y("train")
    est.fit(tiny.X("train"), y)  # internal holdout: valid rows never enter the table
    table = est.net_.ulgm_labels_["fusion"].numpy()
    seen = ~np.isnan(table)
    assert 0 < seen.sum() < len(y)
    np.testing.assert_allclose(table[seen], y[seen], rtol=1e-6)


def test_mmim_two_stage_history(tiny):
    est = MMIM(**MMIM._tiny_params).set_params(random_state=0)
    est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    stage1 = est.net_.history[:, "mmilb_loss"]
    assert len(stage1) == est.n_epochs_ and np.all(np.isfinite(stage1))
    # Text-less variant: no MMILB pair, no stage 1, still trains.
    est.set_params(modalities=("audio", "vision"))
    est.fit(tiny.X("train", ("audio", "vision")), tiny.y("train"),
            X_valid=tiny.X("valid", ("audio", "vision")), y_valid=tiny.y("valid"))
    assert est.net_.optimizer_mmilb_ is None


# ---------------------------------------------------------------------------
# "bert" mode with a tiny randomly initialised BERT checkpoint

@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    pytest.importorskip("transformers")  # the optional [bert] extra
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=21128, hidden_size=32, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=37)
    path = tmp_path_factory.mktemp("tiny_bert")
    BertModel(cfg).save_pretrained(path)
    return str(path)


@pytest.mark.parametrize("cls", [MISA, MMIM, SelfMM, BertMAG], ids=lambda c: c.__name__)
def test_bert_mode_fine_tunes(cls, tiny_bert, tiny):
    from transformers import BertModel

    est = cls(**cls._tiny_params).set_params(
        text_encoder="bert", pretrained=tiny_bert, max_epochs=1, random_state=0)
    assert est.check_runnable(tiny) == (True, "")
    X = tiny.X("train", text_bert=True)
    est.fit(X, tiny.y("train"), X_valid=tiny.X("valid", text_bert=True),
            y_valid=tiny.y("valid"))
    Xt = tiny.X("test", text_bert=True)
    p = est.predict(Xt)
    assert p.shape == (tiny["test"].n_samples,) and np.all(np.isfinite(p))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict(Xt), p)
    # BERT was fine-tuned: its weights moved away from the checkpoint's.
    start = BertModel.from_pretrained(tiny_bert, local_files_only=True).state_dict()
    module = est.net_.module_
    bert = module.bert if cls is BertMAG else module.text_encoder.bert
    now = bert.state_dict()
    key = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(start[key], now[key])
    if cls is not BertMAG:
        # Post-BERT layers are sized from the BERT config (hidden 32): the
        # non-BERT part equals the features variant with 32-d text.
        feat = cls(**cls._tiny_params).build_module(
            feature_dims=(32, *tiny.feature_dims[1:]), seq_lens=tiny.seq_lens)
        assert est.n_params_ - count_parameters(bert) == count_parameters(feat)


@pytest.mark.parametrize("cls", [MISA, MMIM, SelfMM, BertMAG], ids=lambda c: c.__name__)
def test_common_checks_in_bert_mode(cls, tiny_bert, tiny):
    """The full common checks (clone, pickling, seeding, modality subsets...)
    with a local tiny BERT checkpoint; BERT-MAG has no other mode."""
    from simsbench.utils.estimator_checks import check_estimator

    est = cls(**cls._tiny_params).set_params(text_encoder="bert", pretrained=tiny_bert,
                                             max_epochs=1)
    check_estimator(est, dataset=tiny)


def test_bert_mode_errors(tiny_bert, tiny, tmp_path):
    X, y = tiny.X("train", text_bert=True), tiny.y("train")
    with pytest.raises(ValueError, match="pretrained=PATH"):
        SelfMM(text_encoder="bert").fit(X, y)
    with pytest.raises(ValueError, match="not a local BERT checkpoint"):
        MMIM(text_encoder="bert", pretrained=str(tmp_path / "missing")).fit(X, y)
    with pytest.raises(ValueError, match="text_bert"):
        MISA(text_encoder="bert", pretrained=tiny_bert).fit(tiny.X("train"), y)
    with pytest.raises(ValueError, match="The 'text_encoder' parameter of MISA must be"):
        MISA(text_encoder="roberta").fit(X, y)
    with pytest.raises(ValueError, match="only with text_encoder='bert'"):
        BertMAG(text_encoder="features", pretrained=tiny_bert).fit(X, y)
    ok, reason = BertMAG().check_runnable(tiny)
    assert not ok and "pretrained" in reason
    assert SelfMM().check_runnable(tiny) == (True, "")


def test_features_mode_does_not_import_transformers():
    code = (
        "import sys\n"
        "from simsbench.estimators import MISA, MMIM, SelfMM\n"
        "from simsbench.utils.estimator_checks import tiny_dataset\n"
        "ds = tiny_dataset()\n"
        "for cls in (MISA, MMIM, SelfMM):\n"
        "    cls(**cls._tiny_params).set_params(max_epochs=1).fit(ds.X('train'), ds.y('train'))\n"
        "assert 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _mag_module():
    pytest.importorskip("transformers")  # the optional [bert] extra
    from transformers import BertConfig, BertModel

    from simsbench.estimators._bert_mag import BertMAGModule

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=8, max_position_embeddings=16)
    module = BertMAGModule(BertModel(cfg), {"text": 16, "audio": 3, "vision": 5}, 1.0, 0.1)
    torch.nn.init.ones_(module.classifier.weight)  # a readable output scale
    return module.eval()


def _mag_inputs(L=6, n_real=4, B=2):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (B, L), generator=g)
    mask = torch.zeros(B, L)
    mask[:, :n_real] = 1
    text_bert = torch.stack([ids.float(), mask, torch.zeros(B, L)], dim=1)
    return (text_bert, torch.randn(B, L, 3, generator=g), torch.randn(B, L, 5, generator=g))


def test_bert_mag_gate_shifts_embeddings_under_the_attention_mask():
    # The gate sits on BERT's embedding output (a forward hook, public API only:
    # transformers releases change the private mask helpers).  The output must
    # depend on audio/vision at real tokens, not at padded ones (BERT's own
    # attention mask hides them from [CLS]), and the hook must be gone after
    # the call, leaving plain BERT untouched.
    module = _mag_module()
    text_bert, audio, vision = _mag_inputs()
    with torch.no_grad():
        out = module(text_bert=text_bert, audio=audio, vision=vision)
        a_pad, v_pad = audio.clone(), vision.clone()
        a_pad[:, 4:] += 10.0
        v_pad[:, 4:] -= 10.0
        out_pad = module(text_bert=text_bert, audio=a_pad, vision=v_pad)
        a_real = audio.clone()
        a_real[:, :4] += 10.0
        out_real = module(text_bert=text_bert, audio=a_real, vision=vision)
    assert out.shape == (2,)
    torch.testing.assert_close(out_pad, out, rtol=1e-5, atol=1e-6)
    assert (out_real - out).abs().max() > 1e-3
    assert not module.bert.embeddings._forward_hooks


def test_bert_mag_gate_equals_manual_composition():
    # Embeddings -> gate -> BERT encoder/pooler, composed by hand with a
    # constant replacement of the embedding output.
    module = _mag_module()
    text_bert, audio, vision = _mag_inputs()
    ids, mask = text_bert[:, 0].long(), text_bert[:, 1].long()
    with torch.no_grad():
        emb = module.bert.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
        fused = module.mag(emb, vision, audio)
        handle = module.bert.embeddings.register_forward_hook(lambda m, a, o: fused)
        try:
            pooled = module.bert(input_ids=ids, attention_mask=mask).pooler_output
        finally:
            handle.remove()
        expected = module.classifier(pooled).reshape(-1)
        got = module(text_bert=text_bert, audio=audio, vision=vision)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
