"""Shared fixtures: small seeded synthetic data, an MMSA pickle written to tmp."""

from __future__ import annotations

import random

import numpy as np
import pytest

from simsbench.datasets import make_synthetic, make_synthetic_mmsa, write_mmsa
from simsbench.utils.estimator_checks import tiny_dataset


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny():
    """48/16/16 clips, lengths 6/12/8, dims 16/5/7: for checks."""
    return tiny_dataset()


@pytest.fixture(scope="session")
def tiny_v2():
    return tiny_dataset(kind="simsv2")


@pytest.fixture(scope="session")
def small():
    """A small dataset with enough signal for 'beats the mean' tests."""
    return make_synthetic(
        n_samples=(400, 120, 150), seq_lens=(10, 40, 16), feature_dims=(32, 12, 24),
        n_latent=8, random_state=0,
    )


@pytest.fixture(scope="session")
def small_v2():
    return make_synthetic(
        "simsv2", n_samples=(400, 120, 150), seq_lens=(10, 40, 16),
        feature_dims=(32, 10, 20), n_unlabelled=400, n_latent=8, random_state=0,
    )


@pytest.fixture
def mmsa_pickle(tmp_path):
    """An MMSA-format pickle written by the fixture (no binary fixtures)."""
    sup, _ = make_synthetic_mmsa(
        n_samples=(30, 10, 12), seq_lens=(5, 9, 7), feature_dims=(12, 4, 6), random_state=3
    )
    return write_mmsa(sup, tmp_path / "unaligned_39.pkl"), sup


@pytest.fixture(scope="session")
def quick_results(tmp_path_factory):
    """Results of ``simsbench run table5 --quick --tiny`` on a tiny MMSA file
    (the real MLF-DNN, one seed, one epoch): ``(results_dir, data_spec)``.

    Shared by the figure and report tests; skips without torch.
    """
    pytest.importorskip("torch")
    from simsbench.cli import main

    d = tmp_path_factory.mktemp("quick_results")
    sup, _ = make_synthetic_mmsa("sims", n_samples=(48, 16, 16), seq_lens=(6, 10, 8),
                                 feature_dims=(16, 5, 7), random_state=2)
    data = str(write_mmsa(sup, d / "sims_tiny.pkl"))
    results = d / "results"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIMSBENCH_CACHE_DIR", str(d / "cache"))
        mp.delenv("SIMSBENCH_SPECS", raising=False)
        rc = main(["run", "table5", "--quick", "--tiny", "--quiet", "--data", data,
                   "--results", str(results)])
    assert rc == 0
    return results, data


@pytest.fixture
def torch_one_thread():
    """Direct module calls run on torch's global thread pool: one thread, so
    that float results compare at tight tolerances; the old count restored."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def sims_file(tmp_path, monkeypatch):
    """A 48/16/16-clip CH-SIMS-shaped MMSA pickle, with this test's own
    feature cache and no extra spec folders."""
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SIMSBENCH_SPECS", raising=False)
    sup, _ = make_synthetic_mmsa("sims", n_samples=(48, 16, 16), seq_lens=(6, 10, 8),
                                 feature_dims=(16, 5, 7), random_state=2)
    return str(write_mmsa(sup, tmp_path / "sims_tiny.pkl"))
