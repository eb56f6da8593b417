"""LMF, MLMF, MFN and Graph-MFN in their reference configuration.

Each model's defaults must compute what the reference implementation (MMSA,
github thuiar/MMSA) computes.  The reference forward passes are written
again here, independently of simsbench, from a reading of

* ``src/MMSA/models/singleTask/LMF.py``, ``src/MMSA/models/multiTask/MLMF.py``,
  ``src/MMSA/models/subNets/FeatureNets.py`` (SubNet, TextSubNet),
* ``src/MMSA/models/singleTask/MFN.py``, ``src/MMSA/models/singleTask/Graph_MFN.py``,
* ``src/MMSA/models/subNets/AlignNets.py`` (``AlignSubNet('avg_pool')``) and
  ``src/MMSA/data_loader.py`` (``need_normalized``),

with the reference's parameter names, so that a fitted simsbench module's
weights load into them by name.  Also checked: the reference's trainable
parameter counts, the optimizer groups and the parameters the reference
never updates (``src/MMSA/trains/singleTask/LMF.py``,
``src/MMSA/trains/multiTask/MLMF.py``, the unregistered DFG node nets), the
text dropout being a no-op, and the corrections switching each of these off.
"""

from __future__ import annotations

import copy
import itertools

import pytest

pytest.importorskip("torch")  # deep tests skip cleanly without torch

import numpy as np
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback
from torch import nn

from simsbench.datasets import LABELS
from simsbench.estimators import LMF, MFN, MLMF, GraphMFN
from simsbench.estimators._deep import count_parameters
from simsbench.estimators._fidelity import apply_variant, corrections, variant_of

SIMS_DIMS, SIMS_LENS = (768, 33, 709), (39, 400, 55)
TINY_DIMS = (16, 5, 7)  # the ``tiny`` fixture's (text, audio, vision) dims


# ---------------------------------------------------------------------------
# the reference's inputs (MMSA data loader and model-side aligner)


def ref_normalize(x):
    """``need_normalized``: the mean over the whole padded time axis, NaN -> 0,
    keeping a singleton time axis (MMSA ``src/MMSA/data_loader.py``)."""
    m = np.mean(np.asarray(x, dtype=np.float32), axis=1, keepdims=True)
    m[m != m] = 0
    return torch.from_numpy(m)


def ref_align(x, target):
    """``AlignSubNet('avg_pool')`` on one modality (MMSA
    ``src/MMSA/models/subNets/AlignNets.py``): pad by repeating the last step
    up to a multiple of ``target``, then average consecutive windows."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    n, raw, d = x.shape
    if raw == target:
        return x
    if raw % target == 0:
        pad, pool = 0, raw // target
    else:
        pad, pool = target - raw % target, raw // target + 1
    x = torch.cat([x, x[:, -1:, :].expand(n, pad, d)], dim=1)
    return x.view(n, target, pool, d).mean(dim=2)


# ---------------------------------------------------------------------------
# reference modules (parameter names as in MMSA)


class RefSubNet(nn.Module):
    def __init__(self, d_in, h, p):
        super().__init__()
        self.norm = nn.BatchNorm1d(d_in)
        self.drop = nn.Dropout(p)
        self.linear_1 = nn.Linear(d_in, h)
        self.linear_2 = nn.Linear(h, h)
        self.linear_3 = nn.Linear(h, h)

    def forward(self, x):
        y = self.drop(self.norm(x))
        for lin in (self.linear_1, self.linear_2, self.linear_3):
            y = F.relu(lin(y))
        return y


class RefTextSubNet(nn.Module):
    def __init__(self, d_in, h, out, dropout):
        super().__init__()
        dropout = 0.0  # num_layers == 1 -> the reference zeroes the dropout
        self.rnn = nn.LSTM(d_in, h, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(h, out)

    def forward(self, x):
        _, (h_n, _) = self.rnn(x)  # over every padded step
        return self.linear_1(self.dropout(h_n[0]))


class RefLMF(nn.Module):
    def __init__(self, dims, hidden, rank, dropouts):
        super().__init__()
        d_t, d_a, d_v = dims
        h_t, h_a, h_v = hidden
        t_out = h_t // 2
        # registration order matters to the trainer: factors, fusion, subnets
        self.audio_factor = nn.Parameter(torch.empty(rank, h_a + 1, 1))
        self.video_factor = nn.Parameter(torch.empty(rank, h_v + 1, 1))
        self.text_factor = nn.Parameter(torch.empty(rank, t_out + 1, 1))
        self.fusion_weights = nn.Parameter(torch.empty(1, rank))
        self.fusion_bias = nn.Parameter(torch.zeros(1, 1))
        for p in (self.audio_factor, self.video_factor, self.text_factor,
                  self.fusion_weights):
            nn.init.xavier_normal_(p)
        self.audio_subnet = RefSubNet(d_a, h_a, dropouts[0])
        self.video_subnet = RefSubNet(d_v, h_v, dropouts[1])
        self.text_subnet = RefTextSubNet(d_t, h_t, t_out, dropouts[2])

    def encode(self, text, audio, video):
        return (self.text_subnet(text), self.audio_subnet(audio.squeeze(1)),
                self.video_subnet(video.squeeze(1)))

    def fuse(self, t, a, v):
        one = torch.ones(a.shape[0], 1)
        z = (torch.matmul(torch.cat([one, a], 1), self.audio_factor)
             * torch.matmul(torch.cat([one, v], 1), self.video_factor)
             * torch.matmul(torch.cat([one, t], 1), self.text_factor))  # (r, B, 1)
        out = torch.matmul(self.fusion_weights, z.permute(1, 0, 2)).squeeze() + self.fusion_bias
        return out.view(-1, 1)

    def forward(self, text, audio, video):
        return {"M": self.fuse(*self.encode(text, audio, video))}


class RefMLMF(RefLMF):
    def __init__(self, dims, hidden, rank, post_dims, dropouts, post_dropouts):
        super().__init__(dims, hidden, rank, dropouts)
        t_out, h_a, h_v = hidden[0] // 2, hidden[1], hidden[2]
        for name, d_in, d, p in (("text", t_out, post_dims[0], post_dropouts[0]),
                                 ("audio", h_a, post_dims[1], post_dropouts[1]),
                                 ("video", h_v, post_dims[2], post_dropouts[2])):
            setattr(self, f"post_{name}_dropout", nn.Dropout(p))
            setattr(self, f"post_{name}_layer_1", nn.Linear(d_in, d))
            setattr(self, f"post_{name}_layer_2", nn.Linear(d, d))
            setattr(self, f"post_{name}_layer_3", nn.Linear(d, 1))

    def _head(self, name, h):
        x = getattr(self, f"post_{name}_dropout")(h)
        x = F.relu(getattr(self, f"post_{name}_layer_1")(x))
        x = F.relu(getattr(self, f"post_{name}_layer_2")(x))
        return getattr(self, f"post_{name}_layer_3")(x)

    def forward(self, text, audio, video):
        t, a, v = self.encode(text, audio, video)
        return {"M": self.fuse(t, a, v), "T": self._head("text", t),
                "A": self._head("audio", a), "V": self._head("video", v)}


def _mlp(prefix, owner, d_in, h, d_out, p):
    setattr(owner, f"{prefix}_fc1", nn.Linear(d_in, h))
    setattr(owner, f"{prefix}_fc2", nn.Linear(h, d_out))
    setattr(owner, f"{prefix}_dropout", nn.Dropout(p))


def _run_mlp(owner, prefix, x):
    fc1, fc2 = getattr(owner, f"{prefix}_fc1"), getattr(owner, f"{prefix}_fc2")
    return fc2(getattr(owner, f"{prefix}_dropout")(F.relu(fc1(x))))


class RefMFN(nn.Module):
    def __init__(self, dims, hidden, mem, nn1, nn2, g1, g2, out):
        super().__init__()
        self.dh = hidden
        self.mem_dim = mem
        att_in = 2 * sum(hidden)  # window 2
        self.lstm_l = nn.LSTMCell(dims[0], hidden[0])
        self.lstm_a = nn.LSTMCell(dims[1], hidden[1])
        self.lstm_v = nn.LSTMCell(dims[2], hidden[2])
        _mlp("att1", self, att_in, nn1[0], att_in, nn1[1])
        _mlp("att2", self, att_in, nn2[0], mem, nn2[1])
        _mlp("gamma1", self, att_in + mem, g1[0], mem, g1[1])
        _mlp("gamma2", self, att_in + mem, g2[0], mem, g2[1])
        _mlp("out", self, sum(hidden) + mem, out[0], 1, out[1])

    def fusion(self, prev, new):
        c_star = torch.cat([prev[1][0], prev[1][1], prev[1][2],
                            new[1][0], new[1][1], new[1][2]], dim=1)
        return F.softmax(_run_mlp(self, "att1", c_star), dim=1) * c_star

    def forward(self, text, audio, video):
        xs = [x.permute(1, 0, 2) for x in (text, audio, video)]
        n = xs[0].shape[1]
        h = [torch.zeros(n, d) for d in self.dh]
        c = [torch.zeros(n, d) for d in self.dh]
        mem = torch.zeros(n, self.mem_dim)
        cells = (self.lstm_l, self.lstm_a, self.lstm_v)
        for i in range(xs[0].shape[0]):
            new = [cell(x[i], (hh, cc)) for cell, x, hh, cc in zip(cells, xs, h, c)]
            new_h, new_c = [s[0] for s in new], [s[1] for s in new]
            z = self.fusion((h, c), (new_h, new_c))
            c_hat = torch.tanh(_run_mlp(self, "att2", z))
            both = torch.cat([z, mem], dim=1)
            g1 = torch.sigmoid(_run_mlp(self, "gamma1", both))
            g2 = torch.sigmoid(_run_mlp(self, "gamma2", both))
            mem = g1 * mem + g2 * c_hat
            h, c = new_h, new_c
        return {"M": _run_mlp(self, "out", torch.cat([*h, mem], dim=1))}


class RefDFG(nn.Module):
    """The reference's DynamicFusionGraph: its multimodal node nets live in a
    plain dict, so they are not registered (not counted, not trained)."""

    def __init__(self, in_dims, out_dim, inner=100):
        super().__init__()
        k = len(in_dims)
        self.powerset = [s for r in range(1, k + 1) for s in itertools.combinations(range(k), r)]
        sizes = {(i,): d for i, d in enumerate(in_dims)}
        pattern = nn.Sequential(nn.Linear(inner, out_dim))  # deep-copied into each net
        self.networks = {}
        n_eff = 0
        for key in self.powerset[k:]:
            n_in = sum(sizes[s] for s in self._proper(key))
            n_eff += len(self._proper(key))
            sizes[key] = out_dim
            self.networks[key] = nn.Sequential(nn.Linear(n_in, inner), copy.deepcopy(pattern))
        n_eff += len(self.powerset)
        self.t_network = nn.Sequential(
            nn.Linear(sum(sizes[s] for s in self.powerset), inner), copy.deepcopy(pattern))
        self.efficacy_model = nn.Sequential(
            nn.Linear(sum(in_dims), inner), nn.Sequential(nn.Linear(inner, out_dim)),
            nn.Linear(out_dim, n_eff))

    @staticmethod
    def _proper(key):
        return [s for r in range(1, len(key)) for s in itertools.combinations(key, r)]

    def fusion(self, singletons):
        outs = {(i,): s for i, s in enumerate(singletons)}
        eff = self.efficacy_model(torch.cat(singletons, dim=1))
        j = 0
        for key in self.powerset[len(singletons):]:
            parts = []
            for s in self._proper(key):
                parts.append(outs[s] * eff[:, j].view(-1, 1))
                j += 1
            outs[key] = self.networks[key](torch.cat(parts, dim=1))
        parts = []
        for s in self.powerset:
            parts.append(outs[s] * eff[:, j].view(-1, 1))
            j += 1
        return self.t_network(torch.cat(parts, dim=1))


class RefGraphMFN(RefMFN):
    def __init__(self, dims, hidden, mem, inner, nn2, g1, g2, out):
        nn.Module.__init__(self)
        self.dh = hidden
        self.mem_dim = mem
        self.lstm_l = nn.LSTMCell(dims[0], hidden[0])
        self.lstm_a = nn.LSTMCell(dims[1], hidden[1])
        self.lstm_v = nn.LSTMCell(dims[2], hidden[2])
        self.l_transform = nn.Linear(2 * hidden[0], hidden[0])
        self.a_transform = nn.Linear(2 * hidden[1], hidden[1])
        self.v_transform = nn.Linear(2 * hidden[2], hidden[2])
        self.graph_mfn = RefDFG(list(hidden), inner)
        _mlp("att2", self, inner, nn2[0], mem, nn2[1])
        _mlp("gamma1", self, inner + mem, g1[0], mem, g1[1])
        _mlp("gamma2", self, inner + mem, g2[0], mem, g2[1])
        _mlp("out", self, sum(hidden) + mem, out[0], 1, out[1])

    def fusion(self, prev, new):
        singletons = [F.relu(tr(torch.cat([hp, hn], dim=1))) for tr, hp, hn in
                      zip((self.l_transform, self.a_transform, self.v_transform),
                          prev[0], new[0])]
        return self.graph_mfn.fusion(singletons)


# ---------------------------------------------------------------------------
# weights across: simsbench names -> the reference's names


def _rename(name, table):
    for ours, theirs in table:
        if name.startswith(ours):
            return theirs + name[len(ours):]
    raise AssertionError(f"no reference name for {name}")


_LMF_NAMES = [("fusion.", ""), ("trunk.", "")]
_HEAD_NAMES = [(f"heads.post_{m}.layer_{i}", f"post_{m}_layer_{i}")
               for m in ("text", "audio", "video") for i in (1, 2, 3)]
_MFN_NAMES = [("cells.text.", "lstm_l."), ("cells.audio.", "lstm_a."),
              ("cells.vision.", "lstm_v."), ("nn1.fc", "att1_fc"), ("nn2.fc", "att2_fc"),
              ("gamma1.fc", "gamma1_fc"), ("gamma2.fc", "gamma2_fc"), ("out.fc", "out_fc"),
              ("transform.text.", "l_transform."), ("transform.audio.", "a_transform."),
              ("transform.vision.", "v_transform."),
              ("graph.t_network.1.", "graph_mfn.t_network.1.0."),
              ("graph.t_network.0.", "graph_mfn.t_network.0."),
              ("graph.efficacy.0.", "graph_mfn.efficacy_model.0."),
              ("graph.efficacy.1.", "graph_mfn.efficacy_model.1.0."),
              ("graph.efficacy.2.", "graph_mfn.efficacy_model.2.")]


def load_into_reference(ref, module, table):
    """Copy every tensor of ``module``'s state into ``ref`` by name; both
    sides must match exactly (names and shapes), except the DFG node nets,
    which the reference does not register and which are copied by key."""
    state, nodes = {}, {}
    for name, tensor in module.state_dict().items():
        if name.startswith("graph.nodes."):
            nodes[name] = tensor
        else:
            state[_rename(name, table)] = tensor
    ref.load_state_dict(state, strict=True)
    for key, net in getattr(getattr(ref, "graph_mfn", None), "networks", {}).items():
        tag = "_".join(str(i) for i in key)
        with torch.no_grad():
            net[0].weight.copy_(nodes.pop(f"graph.nodes.{tag}.0.weight"))
            net[0].bias.copy_(nodes.pop(f"graph.nodes.{tag}.0.bias"))
            net[1][0].weight.copy_(nodes.pop(f"graph.nodes.{tag}.1.weight"))
            net[1][0].bias.copy_(nodes.pop(f"graph.nodes.{tag}.1.bias"))
    assert not nodes, sorted(nodes)
    return ref.eval()


# ---------------------------------------------------------------------------
# model factories: small reference-configuration estimators and their twins


def _lmf():
    est = LMF(hidden_dims=(8, 4, 6), rank=3, dropouts=(0.2, 0.3, 0.4, 0.5))
    ref = RefLMF(TINY_DIMS, (8, 4, 6), 3, est.dropouts)
    return est, ref, _LMF_NAMES


def _mlmf():
    est = MLMF(hidden_dims=(8, 4, 6), rank=2, post_text_dim=5, post_audio_dim=3,
               post_vision_dim=4)
    ref = RefMLMF(TINY_DIMS, (8, 4, 6), 2, (5, 3, 4), est.dropouts, est.post_dropouts)
    return est, ref, _HEAD_NAMES + _LMF_NAMES


def _mfn():
    est = MFN(hidden_dims=(8, 4, 6), memsize=5, nn1=(7, 0.2), nn2=(6, 0.1),
              gamma1=(5, 0.2), gamma2=(4, 0.3), out=(6, 0.3))
    ref = RefMFN(TINY_DIMS, (8, 4, 6), 5, est.nn1, est.nn2, est.gamma1, est.gamma2, est.out)
    return est, ref, _MFN_NAMES


def _graph_mfn():
    est = GraphMFN(hidden_dims=(8, 4, 6), memsize=5, inner_node_dim=7, nn2=(6, 0.1),
                   gamma1=(5, 0.2), gamma2=(4, 0.3), out=(6, 0.3))
    ref = RefGraphMFN(TINY_DIMS, (8, 4, 6), 5, 7, est.nn2, est.gamma1, est.gamma2, est.out)
    return est, ref, _MFN_NAMES


def _ref_inputs(name, X):
    """The tensors the reference model gets for the dict ``X``."""
    text = torch.from_numpy(np.asarray(X["text"], dtype=np.float32))
    T = text.shape[1]
    if name in ("LMF", "MLMF"):  # need_normalized, no model alignment
        return text, ref_normalize(X["audio"]), ref_normalize(X["vision"])
    if name == "MFN":  # need_normalized, then the aligner repeats the mean
        return text, ref_align(ref_normalize(X["audio"]), T), \
            ref_align(ref_normalize(X["vision"]), T)
    return text, ref_align(X["audio"], T), ref_align(X["vision"], T)  # Graph-MFN


FACTORIES = {"LMF": _lmf, "MLMF": _mlmf, "MFN": _mfn, "GraphMFN": _graph_mfn}


def _fit(est, ds, labels="M", epochs=1):
    est.set_params(max_epochs=epochs, batch_size=16, random_state=0, n_threads=1)
    return est.fit(ds.X("train"), ds.y("train", labels),
                   X_valid=ds.X("valid"), y_valid=ds.y("valid", labels))


def _labels(est):
    return LABELS if isinstance(est, MLMF) else "M"


# ---------------------------------------------------------------------------
# 1. forward pass equals the reference's, on padded inputs


@pytest.mark.parametrize("name", list(FACTORIES))
def test_forward_equals_reference(name, tiny):
    est, ref, table = FACTORIES[name]()
    assert variant_of(est.set_params(max_epochs=None)) == "reference"
    _fit(est, tiny, _labels(est))  # one epoch: trained weights, BatchNorm statistics
    X = tiny.X("test")
    lengths = [X[f"{m}_lengths"] for m in ("text", "audio", "vision")]
    assert all((ln < X[m].shape[1]).any() for ln, m in zip(lengths, ("text", "audio", "vision")))
    load_into_reference(ref, est.net_.module_, table)
    with torch.no_grad():
        out = ref(*_ref_inputs(name, X))
    np.testing.assert_allclose(est.predict(X), out["M"].reshape(-1).numpy(),
                               rtol=1e-5, atol=1e-5)
    if name == "MLMF":
        got = est.predict_all(X)
        for k, head in enumerate("MTAV"):
            np.testing.assert_allclose(got[:, k], out[head].reshape(-1).numpy(),
                                       rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# 2. trainable parameters: the reference's counts, as it registers them


@pytest.mark.parametrize("cls, ref_factory, expected", [
    (LMF, lambda: RefLMF(SIMS_DIMS, (64, 16, 64), 4, (0.2,) * 4), 272_381),
    (MLMF, lambda: RefMLMF(SIMS_DIMS, (256, 32, 256), 3, (8, 4, 32), (0.3,) * 3,
                           (0.4,) * 3), 1_413_392),
    (MFN, lambda: RefMFN(SIMS_DIMS, (64, 16, 64), 64, (128, 0.2), (128, 0.0), (64, 0.2),
                         (64, 0.7), (64, 0.7)), 601_505),
    (GraphMFN, lambda: RefGraphMFN(SIMS_DIMS, (256, 32, 256), 64, 128, (256, 0.5),
                                   (32, 0.2), (32, 0.7), (256, 0.2)), 2_724_860),
], ids=["LMF", "MLMF", "MFN", "GraphMFN"])
def test_trainable_parameters_as_the_reference_registers_them(cls, ref_factory, expected):
    module = cls().build_module(feature_dims=SIMS_DIMS, seq_lens=SIMS_LENS)
    assert count_parameters(module) == expected
    assert count_parameters(ref_factory()) == expected


def test_graph_mfn_corrected_trains_the_node_nets():
    ref = RefGraphMFN(SIMS_DIMS, (256, 32, 256), 64, 128, (256, 0.5), (32, 0.2),
                      (32, 0.7), (256, 0.2))
    unregistered = sum(p.numel() for net in ref.graph_mfn.networks.values()
                       for p in net.parameters())
    assert unregistered == 253_712
    module = GraphMFN(freeze_node_nets=False).build_module(SIMS_DIMS, SIMS_LENS)
    assert count_parameters(module) == 2_724_860 + unregistered


# ---------------------------------------------------------------------------
# 3. what the reference never updates, and the optimizer groups


class _InitialWeights(Callback):
    """Keeps a copy of the module's weights when training begins."""

    def on_train_begin(self, net, **kwargs):
        self.weights = {k: v.detach().clone() for k, v in net.module_.named_parameters()}


def _fit_with_spy(est, ds, monkeypatch, labels="M", epochs=2):
    spy = _InitialWeights()
    monkeypatch.setattr(type(est), "_callbacks", lambda self: [("initial_weights", spy)])
    _fit(est, ds, labels, epochs)
    final = dict(est.net_.module_.named_parameters())
    return {n: torch.equal(spy.weights[n], p) for n, p in final.items()}


def _groups(est):
    names = {id(p): n for n, p in est.net_.module_.named_parameters()}
    return [(sorted(names[id(p)] for p in g["params"]), g["lr"], g["weight_decay"])
            for g in est.net_.optimizer_.param_groups]


FUSION = ["fusion.fusion_bias", "fusion.fusion_weights"]
FACTORS = ["fusion.audio_factor", "fusion.text_factor", "fusion.video_factor"]


def test_lmf_leaves_fusion_weights_out_of_the_optimizer(tiny, monkeypatch):
    est = LMF(**LMF._tiny_params, factor_lr=3e-4, learning_rate=2e-3, weight_decay=1e-3)
    unchanged = _fit_with_spy(est, tiny, monkeypatch)
    groups = _groups(est)
    # MMSA src/MMSA/trains/singleTask/LMF.py: [factors @ factor_lr, the rest @ lr], both
    # with weight_decay; fusion_weights and fusion_bias in neither
    assert [(g[1], g[2]) for g in groups] == [(3e-4, 1e-3), (2e-3, 1e-3)]
    assert groups[0][0] == FACTORS
    all_names = [n for n, _ in est.net_.module_.named_parameters()]
    assert sorted(groups[1][0]) == sorted(set(all_names) - set(FACTORS) - set(FUSION))
    assert all(unchanged[n] for n in FUSION)
    assert not any(unchanged[n] for n in FACTORS)
    assert est.n_params_ == count_parameters(est.net_.module_)  # still counted


def test_lmf_corrected_trains_fusion_weights(tiny, monkeypatch):
    est = LMF(**LMF._tiny_params, freeze_fusion_weights=False)
    unchanged = _fit_with_spy(est, tiny, monkeypatch)
    assert not any(unchanged[n] for n in FUSION)
    assert all(n in g[0] for n in FUSION for g in _groups(est)[1:])


def test_mlmf_fusion_weights_in_a_zero_learning_rate_group(tiny, monkeypatch):
    est = MLMF(**MLMF._tiny_params, learning_rate=1e-3, factor_lr=5e-4,
               weight_decay_text=1e-4, weight_decay_audio=0.0, weight_decay_vision=2e-4,
               weight_decay=5e-3)
    unchanged = _fit_with_spy(est, tiny, monkeypatch, labels=LABELS)
    groups = _groups(est)
    # MMSA src/MMSA/trains/multiTask/MLMF.py: text, audio, video subnets, factors,
    # fusion_weights/bias at lr 0, the rest (heads)
    assert [(g[1], g[2]) for g in groups] == [
        (1e-3, 1e-4), (1e-3, 0.0), (1e-3, 2e-4), (5e-4, 5e-3), (0.0, 5e-3), (1e-3, 5e-3)]
    assert [g[0][0].split(".")[1] for g in groups[:3]] == [
        "text_subnet", "audio_subnet", "video_subnet"]
    assert groups[3][0] == FACTORS and groups[4][0] == FUSION
    assert all(n.startswith("heads.") for n in groups[5][0])
    # Adam with lr 0 leaves them exactly as they were, weight decay notwithstanding
    assert all(unchanged[n] for n in FUSION)
    assert not any(unchanged[n] for n in FACTORS)


def test_mlmf_corrected_trains_fusion_weights(tiny, monkeypatch):
    est = MLMF(**MLMF._tiny_params, freeze_fusion_weights=False)
    unchanged = _fit_with_spy(est, tiny, monkeypatch, labels=LABELS)
    assert not any(unchanged[n] for n in FUSION)
    assert all(g[1] > 0 for g in _groups(est))


@pytest.mark.parametrize("freeze", [True, False])
def test_graph_mfn_node_nets(tiny, monkeypatch, freeze):
    est = GraphMFN(**GraphMFN._tiny_params, freeze_node_nets=freeze)
    unchanged = _fit_with_spy(est, tiny, monkeypatch)
    nodes = [n for n in unchanged if n.startswith("graph.nodes.")]
    assert len(nodes) == 4 * 4  # four multimodal nodes, two Linear layers each
    if freeze:  # the reference: never updated
        assert all(unchanged[n] for n in nodes)
    else:
        assert not any(unchanged[n] for n in nodes)
    assert not unchanged["graph.t_network.0.weight"]
    assert not unchanged["graph.efficacy.0.weight"]


@pytest.mark.parametrize("freeze", [True, False])
def test_graph_mfn_node_nets_start_from_one_pattern(freeze):
    # the reference deep-copies one ``pattern_model`` Linear(100, inner) into every
    # node net and into tau, so their second layers start equal
    module = GraphMFN(**GraphMFN._tiny_params, freeze_node_nets=freeze).build_module(
        TINY_DIMS, (6, 12, 8))
    graph = module.graph
    second = [net[1] for net in graph.nodes.values()] + [graph.t_network[1]]
    assert len(second) == 5
    for layer in second[1:]:
        assert torch.equal(layer.weight, second[0].weight)
        assert torch.equal(layer.bias, second[0].bias)
        assert layer.weight is not second[0].weight  # copies, not shared parameters
    assert not torch.equal(graph.efficacy[1].weight, second[0].weight)


@pytest.mark.parametrize("cls", [LMF, MLMF])
@pytest.mark.parametrize("apply", [False, True])
def test_text_dropout_is_a_no_op_in_the_reference(cls, apply, tiny):
    est = cls(**cls._tiny_params, dropouts=(0.0, 0.0, 0.5) + (() if cls is MLMF else (0.0,)),
              text_state_dropout=apply)
    module = est.build_module(TINY_DIMS, (6, 12, 8)).train()
    inputs = {k: torch.as_tensor(v) for k, v in est._prepare_inputs(tiny.X("test")).items()}
    torch.manual_seed(0)
    first = module.representations(**inputs)["text"]
    second = module.representations(**inputs)["text"]
    assert torch.equal(first, second) is not apply


# ---------------------------------------------------------------------------
# 4. reference and corrected variants


EXPECTED_CORRECTIONS = {
    LMF: {"selection", "epoch_cap", "pooling", "text_dropout", "fusion_weights"},
    MLMF: {"selection", "epoch_cap", "pooling", "text_dropout", "fusion_weights"},
    MFN: {"selection", "epoch_cap", "alignment"},
    GraphMFN: {"selection", "epoch_cap", "alignment", "node_nets"},
}


@pytest.mark.parametrize("cls", list(EXPECTED_CORRECTIONS), ids=lambda c: c.__name__)
def test_variants(cls, tiny):
    assert {c.name for c in corrections(cls)} == EXPECTED_CORRECTIONS[cls]
    assert variant_of(cls()) == "reference"
    est = apply_variant(cls(**cls._tiny_params), "corrected")
    assert est.max_epochs == 100 and est.selection == "weighted"
    params = est.get_params()
    if cls in (LMF, MLMF):
        assert (params["pooling"], params["text_state_dropout"],
                params["freeze_fusion_weights"]) == ("length_aware", True, False)
    else:
        assert params["alignment"] == "length_aware"
    assert variant_of(est) == "corrected"
    _fit(est, tiny, LABELS if cls is MLMF else "M", epochs=2)
    assert np.isfinite(est.predict(tiny.X("test"))).all()


@pytest.mark.parametrize("cls, param, bad", [
    (LMF, "freeze_fusion_weights", "yes"),
    (LMF, "text_state_dropout", 1),
    (MLMF, "freeze_fusion_weights", None),
    (MLMF, "text_state_dropout", "no"),
    (MFN, "alignment", "window"),
    (GraphMFN, "alignment", "mean"),  # MFN's reference inputs, not Graph-MFN's
    (GraphMFN, "freeze_node_nets", 0),
])
def test_bad_correction_parameters(cls, param, bad, tiny):
    est = cls(**cls._tiny_params, **{param: bad})
    with pytest.raises(ValueError, match=param):
        _fit(est, tiny, LABELS if cls is MLMF else "M")
