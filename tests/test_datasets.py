"""The data layer: synthetic generator, MMSA loading, validation, cache."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest

from simsbench.datasets import (
    LABELS,
    MMSAFormatError,
    MultimodalX,
    UnsafePickleError,
    label_statistics,
    load_dataset,
    load_mmsa,
    make_synthetic,
    make_synthetic_mmsa,
    parse_data_spec,
    safe_load_pickle,
    split_table,
    write_mmsa,
)

# -- synthetic ----------------------------------------------------------------

def test_synthetic_shapes_and_determinism():
    kw = dict(n_samples=(40, 10, 12), seq_lens=(6, 20, 9), feature_dims=(16, 5, 7))
    a = make_synthetic(random_state=1, **kw)
    b = make_synthetic(random_state=1, **kw)
    c = make_synthetic(random_state=2, **kw)
    assert a["train"].text.shape == (40, 6, 16)
    assert a["valid"].audio.shape == (10, 20, 5)
    assert a["test"].vision.shape == (12, 9, 7)
    assert a["train"].text.dtype == np.float32
    np.testing.assert_array_equal(a["train"].audio, b["train"].audio)
    np.testing.assert_array_equal(a.y("test", LABELS), b.y("test", LABELS))
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert not np.array_equal(a["train"].audio, c["train"].audio)


def test_synthetic_padding_and_lengths(tiny):
    sp = tiny["train"]
    for m in ("text", "audio", "vision"):
        x, lengths = sp.features(m), sp.lengths(m)
        L = x.shape[1]
        assert lengths.min() >= 1 and lengths.max() <= L
        for i in range(5):
            assert np.all(x[i, lengths[i]:] == 0)
            assert np.any(x[i, : lengths[i]] != 0)


def test_synthetic_raw_has_audio_minus_inf_and_loader_cleans_it():
    sup, _ = make_synthetic_mmsa(n_samples=(300, 10, 10), seq_lens=(5, 30, 6),
                                 feature_dims=(8, 4, 5), random_state=0)
    assert np.isneginf(sup["train"]["audio"][:, :, 0]).any()
    ds = make_synthetic(n_samples=(300, 10, 10), seq_lens=(5, 30, 6),
                        feature_dims=(8, 4, 5), random_state=0)
    assert np.all(np.isfinite(ds["train"].audio))
    assert any("non-finite" in line for line in ds.cleanup_report)


def test_synthetic_default_is_sims_shaped():
    sup, unl = make_synthetic_mmsa(n_samples=(13, 5, 5), random_state=0)
    assert unl is None
    assert sup["train"]["text"].shape[1:] == (39, 768)
    assert sup["train"]["audio"].shape[1:] == (400, 33)
    assert sup["train"]["vision"].shape[1:] == (55, 709)
    assert sup["train"]["text_bert"].shape[1:] == (3, 39)


def test_synthetic_split_table_matches_paper_table3():
    ds = make_synthetic(seq_lens=(4, 4, 4), feature_dims=(4, 4, 4), random_state=0)
    table = split_table(ds)
    assert table.loc["Train"].tolist() == [1368, 452, 290, 207, 208, 211]
    assert table.loc["Valid"].tolist() == [456, 151, 97, 69, 69, 70]
    assert table.loc["Test"].tolist() == [457, 151, 97, 69, 69, 71]


def test_synthetic_v2_has_unlabelled_part_and_paper_splits():
    ds = make_synthetic("simsv2", seq_lens=(4, 4, 4), feature_dims=(4, 4, 4),
                        n_unlabelled=37, random_state=0)
    assert split_table(ds)["Total"].tolist() == [2722, 647, 1034]
    assert ds.has_unlabelled and ds["unlabelled"].n_samples == 37
    X, y = ds.X_semi(), ds.y_semi()
    assert X.shape == (2722 + 37,) and y.shape == (2722 + 37, 4)
    assert np.isnan(y[2722:]).all() and not np.isnan(y[:2722]).any()


def test_synthetic_label_discrepancy_pattern():
    """Figure 2 of the CH-SIMS paper: A closest to M, V-T farthest."""
    ds = make_synthetic(seq_lens=(4, 4, 4), feature_dims=(4, 4, 4), random_state=0)
    D = label_statistics(ds)["difference"]
    to_m = {lab: D.loc["M", lab] for lab in ("T", "A", "V")}
    assert min(to_m, key=to_m.get) == "A"
    off = {(i, j): D.loc[i, j] for i in LABELS for j in LABELS if i < j}
    assert max(off, key=off.get) == ("T", "V")
    hist = label_statistics(ds)["histograms"]
    assert hist.sum().tolist() == [2281] * 4


def test_synthetic_fingerprints_change_only_with_the_preset_data():
    # The v2 preset's data did not change in generator 3: its fingerprint (and
    # every cached v2 run) must stay generator 2's; the sims preset's moved on.
    kw = dict(n_samples=(30, 10, 10), seq_lens=(4, 6, 5), feature_dims=(6, 3, 4),
              random_state=0)
    v2 = make_synthetic("simsv2", **kw)
    assert v2.fingerprint == (
        "d7c46f34676ac968e95e21c92894dce99c5e2a30ef4cb8627205d5c0384def16")
    sims = make_synthetic("sims", **kw)
    # generator 2's fingerprint of the same call: the cache must not reuse it
    assert sims.fingerprint != (
        "61e88745f0938ef78d078a4fd8b028a032eaa061e7bf4103305ebb097eba6ea8")
    old_sims = make_synthetic("sims", label_spread={"T": 0.30, "A": 0.18, "V": 0.34},
                              ambiguity={"text": 0.6, "audio": 1.0, "vision": 0.75}, **kw)
    assert not np.array_equal(sims.y("train", LABELS), old_sims.y("train", LABELS))


def test_synthetic_features_carry_their_own_label(small):
    """Pooled features of a modality correlate more with its own label than
    with M (what makes the unimodal tasks informative)."""
    from sklearn.linear_model import Ridge

    from simsbench.estimators import ModalityPooler

    for mod, lab in (("vision", "V"), ("text", "T")):
        pool = ModalityPooler(modalities=(mod,))
        Xtr = pool.fit_transform(small.X("train"))
        Xte = pool.transform(small.X("test"))
        r_own = np.corrcoef(Ridge(10).fit(Xtr, small.y("train", lab)).predict(Xte),
                            small.y("test", lab))[0, 1]
        r_m = np.corrcoef(Ridge(10).fit(Xtr, small.y("train", "M")).predict(Xte),
                          small.y("test", "M"))[0, 1]
        assert r_own > r_m > 0.2


# -- container ---------------------------------------------------------------

def test_multimodal_x_slicing_and_errors(tiny):
    X = tiny.X("train")
    assert isinstance(X, MultimodalX) and X.shape == (48,)
    sub = X[np.array([0, 3, 5])]
    assert sub.shape == (3,) and sub["audio"].shape == (3, 12, 5)
    assert X[2:4]["text_lengths"].tolist() == X["text_lengths"][2:4].tolist()
    with pytest.raises(ValueError, match="integer"):
        X[0]
    with pytest.raises(ValueError, match="same number of samples"):
        MultimodalX(a=np.zeros(3), b=np.zeros(4))


def test_x_and_y_selection(tiny):
    X = tiny.X("test", modalities=("audio",))
    assert set(X) == {"audio", "audio_lengths"}
    assert tiny.y("test").shape == (16,)
    assert tiny.y("test", ("M", "V")).shape == (16, 2)
    with pytest.raises(ValueError, match="unknown modality"):
        tiny.X("test", modalities=("smell",))
    with pytest.raises(KeyError, match="no split"):
        tiny.X("dev")
    assert "text_bert" in tiny.X("train", text_bert=True)


# -- MMSA loading ------------------------------------------------------------------

def test_mmsa_roundtrip(mmsa_pickle, tmp_path):
    path, raw = mmsa_pickle
    ds = load_mmsa(path, cache_dir=tmp_path / "cache")
    assert ds.kind == "sims"
    assert ds.available_labels == ("M", "T", "A", "V")
    for split in ("train", "valid", "test"):
        for key in ("audio", "vision"):
            expected = np.nan_to_num(raw[split][key].astype(np.float32), neginf=0, posinf=0)
            np.testing.assert_array_equal(ds[split].features(key), expected)
        np.testing.assert_allclose(ds.y(split, "M"), raw[split]["regression_labels"])
        np.testing.assert_allclose(ds.y(split, "V"), raw[split]["regression_labels_V"])
        assert ds[split].ids.tolist() == raw[split]["id"].tolist()
    assert "sha256" in ds.description and len(ds.fingerprint) == 64


def test_mmsa_cache_is_used_and_fast(mmsa_pickle, tmp_path):
    path, _ = mmsa_pickle
    cache = tmp_path / "cache"
    first = load_mmsa(path, cache_dir=cache)
    assert any((cache / "mmsa").glob("*.json"))  # the committed entry
    second = load_mmsa(path, cache_dir=cache)
    assert isinstance(second["train"].audio, np.memmap)  # served from the cache
    np.testing.assert_array_equal(first["train"].audio, second["train"].audio)
    assert first.fingerprint == second.fingerprint
    # a changed file invalidates the cache
    sup, _ = make_synthetic_mmsa(n_samples=(30, 10, 12), seq_lens=(5, 9, 7),
                                 feature_dims=(12, 4, 6), random_state=4)
    time.sleep(0.01)
    write_mmsa(sup, path)
    third = load_mmsa(path, cache_dir=cache)
    assert third.fingerprint != first.fingerprint


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"train": Evil()}, fh)
    with pytest.raises(UnsafePickleError, match="refused") as info:
        load_mmsa(path, cache=False)
    assert str(path) in str(info.value) and "system" in str(info.value)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        safe_load_pickle(path)
    assert not marker.exists()


def test_truncated_file_one_line_error(mmsa_pickle, tmp_path):
    path, _ = mmsa_pickle
    data = path.read_bytes()
    bad = tmp_path / "truncated.pkl"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MMSAFormatError, match="truncated") as info:
        load_mmsa(bad, cache=False)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def _rewrite(raw, tmp_path, mutate):
    import copy

    data = copy.deepcopy(raw)
    mutate(data)
    return write_mmsa(data, tmp_path / "bad.pkl")


def test_missing_key_names_file_split_key(mmsa_pickle, tmp_path):
    _, raw = mmsa_pickle
    path = _rewrite(raw, tmp_path, lambda d: d["valid"].pop("vision"))
    with pytest.raises(MMSAFormatError, match=r"bad\.pkl: valid: lacks key\(s\) \['vision'\]"):
        load_mmsa(path, cache=False)
    path = _rewrite(raw, tmp_path, lambda d: d.pop("test"))
    with pytest.raises(MMSAFormatError, match=r"missing split\(s\) \['test'\]"):
        load_mmsa(path, cache=False)


def test_shape_mismatch_error(mmsa_pickle, tmp_path):
    _, raw = mmsa_pickle

    def cut(d):
        d["train"]["audio"] = d["train"]["audio"][:-2]

    path = _rewrite(raw, tmp_path, cut)
    with pytest.raises(MMSAFormatError, match=r"bad\.pkl: train/audio: has 28 samples"):
        load_mmsa(path, cache=False)

    def flat(d):
        d["test"]["vision"] = d["test"]["vision"][:, 0, :]

    path = _rewrite(raw, tmp_path, flat)
    with pytest.raises(MMSAFormatError, match=r"bad\.pkl: test/vision: expected a 3-D array"):
        load_mmsa(path, cache=False)


def test_label_range_error(mmsa_pickle, tmp_path):
    _, raw = mmsa_pickle

    def big(d):
        d["train"]["regression_labels_T"] = d["train"]["regression_labels_T"] * 0 + 2.5

    path = _rewrite(raw, tmp_path, big)
    with pytest.raises(MMSAFormatError,
                       match=r"bad\.pkl: train/regression_labels_T: labels outside"):
        load_mmsa(path, cache=False, kind="sims")


def test_nan_inf_features_are_replaced_and_reported(mmsa_pickle, tmp_path):
    _, raw = mmsa_pickle

    def poison(d):
        d["train"]["vision"][0, 0, :3] = [np.nan, np.inf, -np.inf]

    path = _rewrite(raw, tmp_path, poison)
    with pytest.warns(UserWarning, match="train/vision: replaced 3 non-finite"):
        ds = load_mmsa(path, cache=False)
    assert np.all(ds["train"].vision[0, 0, :3] == 0)


def test_lengths_are_clipped_and_reported(mmsa_pickle, tmp_path):
    _, raw = mmsa_pickle

    def longer(d):
        d["train"]["audio_lengths"] = d["train"]["audio_lengths"] * 0 + 1000

    path = _rewrite(raw, tmp_path, longer)
    with pytest.warns(UserWarning, match="clipped 30 lengths"):
        ds = load_mmsa(path, cache=False)
    assert ds["train"].audio_lengths.max() == 9


def test_v2_unlabelled_file_is_joined(tmp_path):
    sup, unl = make_synthetic_mmsa("simsv2", n_samples=(20, 8, 8), seq_lens=(5, 11, 7),
                                   feature_dims=(12, 4, 6), n_unlabelled=9, random_state=0)
    del unl["text"]  # the public release ships text_bert, not BERT features
    unl["audio"] = unl["audio"][:, :9]  # padded to another length
    p = write_mmsa(sup, tmp_path / "ch-simsv2s.pkl")
    u = write_mmsa(unl, tmp_path / "ch-simsv2u.pkl")
    with pytest.warns(UserWarning, match="no precomputed BERT features"):
        ds = load_mmsa(p, unlabelled=u, cache_dir=tmp_path / "c")
    assert ds.kind == "simsv2" and ds["unlabelled"].n_samples == 9
    assert ds["unlabelled"].audio.shape[1:] == (11, 4)
    assert ds.X_semi().shape == (29,)
    again = load_mmsa(p, unlabelled=u, cache_dir=tmp_path / "c")
    assert again["unlabelled"].n_samples == 9


def test_missing_file_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such feature file"):
        load_mmsa(tmp_path / "nope.pkl")


def test_data_spec_parsing():
    assert parse_data_spec("synthetic:sims") == ("synthetic", {"kind": "sims"})
    kind, opts = parse_data_spec("synthetic:simsv2?n_unlabelled=10&random_state=3")
    assert opts == {"kind": "simsv2", "n_unlabelled": 10, "random_state": 3}
    assert parse_data_spec("/x/a.pkl+/x/u.pkl") == (
        "file", {"path": "/x/a.pkl", "unlabelled": "/x/u.pkl"})
    with pytest.raises(ValueError, match="unknown synthetic dataset"):
        parse_data_spec("synthetic:mosi")
    with pytest.raises(ValueError, match="unknown synthetic option"):
        parse_data_spec("synthetic:sims?foo=1")


def test_load_dataset_file(mmsa_pickle, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "c"))
    path, _ = mmsa_pickle
    ds = load_dataset(str(path))
    assert ds["train"].n_samples == 30


def test_data_layer_does_not_import_torch():
    code = (
        "import sys, simsbench.datasets, simsbench.metrics, simsbench.estimators;"
        "simsbench.datasets.make_synthetic(n_samples=(5,2,2), seq_lens=(3,3,3),"
        " feature_dims=(3,3,3));"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_subsample_keeps_valid_test_and_is_deterministic(tiny_v2):
    sub = tiny_v2.subsample(max_train=10, max_unlabelled=5, random_state=0)
    again = tiny_v2.subsample(max_train=10, max_unlabelled=5, random_state=0)
    assert sub["train"].n_samples == 10 and sub["unlabelled"].n_samples == 5
    assert sub["test"].n_samples == tiny_v2["test"].n_samples
    np.testing.assert_array_equal(sub.y("train", LABELS), again.y("train", LABELS))
    assert sub.fingerprint != tiny_v2.fingerprint and "subsampled" in sub.description
    assert set(sub["train"].ids) <= set(tiny_v2["train"].ids)
    assert tiny_v2.subsample(max_train=10_000) is tiny_v2


def test_subsample_max_eval_caps_valid_and_test_only(tiny_v2):
    """--quick's evaluation cap: valid and test get seeded subsets, and the
    training subset is the one drawn without the cap."""
    n_valid, n_test = tiny_v2["valid"].n_samples, tiny_v2["test"].n_samples
    cap = min(n_valid, n_test) - 3
    sub = tiny_v2.subsample(max_train=10, max_unlabelled=5, random_state=0, max_eval=cap)
    plain = tiny_v2.subsample(max_train=10, max_unlabelled=5, random_state=0)
    assert sub["valid"].n_samples == cap == sub["test"].n_samples
    assert set(sub["test"].ids) <= set(tiny_v2["test"].ids)
    np.testing.assert_array_equal(sub["train"].ids, plain["train"].ids)
    assert "valid subsampled" in sub.description and "test subsampled" in sub.description
    assert sub.fingerprint != plain.fingerprint
