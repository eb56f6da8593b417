"""Torch modules of MFN and Graph-MFN: the memory fusion networks.

References: MMSA ``src/MMSA/models/singleTask/MFN.py`` and
``src/MMSA/models/singleTask/Graph_MFN.py``.  Both run one LSTM cell per
modality over the aligned time grid
(:mod:`simsbench.estimators._alignment`) and a gated multimodal memory
(:class:`_MemoryFusionBase`, shared).  The implementation is organised for
speed without changing the model:

* the LSTM cells do not see the memory, so their input projections are
  computed once for every (real) step of the batch in one matrix product,
  and the step loop only does the recurrent product and the gates;
* the fusion inputs of every step (MFN's attention over ``[c_{t-1}, c_t]``,
  Graph-MFN's Dynamic Fusion Graph over ``[h_{t-1}, h_t]``) depend only on
  the LSTM states, so they are computed for all steps at once; only the
  memory update, whose gates see the previous memory, is stepped;
* clips are sorted by length and the batch shrinks as clips end (as a packed
  sequence does), so with ``alignment="length_aware"`` padded steps cost
  nothing (the reference's alignments step over every padded step).
  Dropout masks of the stepped gate MLPs are drawn for all steps at once.
"""

from __future__ import annotations

import copy
from itertools import chain, combinations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from simsbench.estimators.modules._blocks import BUCKET_SIZE

__all__ = ["DynamicFusionGraph", "GraphMFNModule", "MFNModule"]

_DFG_HIDDEN = 100  # the reference's fixed inner width of the DFG node nets


class _MLP(nn.Module):
    """Linear -> ReLU -> Dropout -> Linear (every MLP of MFN)."""

    def __init__(self, in_size, hidden, out_size, dropout):
        super().__init__()
        self.fc1 = nn.Linear(in_size, hidden)
        self.fc2 = nn.Linear(hidden, out_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


def _dropout_mask(shape, p, like, training):
    """An inverted-dropout mask (None when inactive)."""
    if not training or p == 0:
        return None
    if p >= 1:
        return torch.zeros(shape, dtype=like.dtype, device=like.device)
    keep = 1.0 - p
    return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep) / keep


class _MemoryFusionBase(nn.Module):
    """LSTM cells per modality, a gated memory and the output MLP.

    Subclasses implement ``_fusion(hs, cs, hs_prev, cs_prev) -> z`` (the
    per-step fusion vector for all packed rows) and define ``self.nn2``.
    """

    def _init_common(self, dims, hidden_dims, fusion_dim, memsize, gamma1, gamma2, out):
        self.modalities = tuple(dims)
        h = dict(zip(("text", "audio", "vision"), hidden_dims))
        self.hidden = {m: int(h[m]) for m in self.modalities}
        self.memsize = int(memsize)
        self.cells = nn.ModuleDict(
            {m: nn.LSTMCell(dims[m], self.hidden[m]) for m in self.modalities}
        )
        gamma_in = fusion_dim + self.memsize
        self.gamma1 = _MLP(gamma_in, int(gamma1[0]), self.memsize, float(gamma1[1]))
        self.gamma2 = _MLP(gamma_in, int(gamma2[0]), self.memsize, float(gamma2[1]))
        self.out = _MLP(sum(self.hidden.values()) + self.memsize, int(out[0]), 1,
                        float(out[1]))
        self.fusion_dim = fusion_dim

    # -- the recurrences ----------------------------------------------------
    def _run_cells(self, inputs, order, lens_cpu, batch_sizes):
        """Step every LSTM cell over the packed steps.

        Returns per modality the packed hidden and cell states, each of shape
        (S, H) with S = sum of lengths, in time-major packed order.
        """
        hs, cs = {}, {}
        for m in self.modalities:
            x = inputs[m].index_select(0, order)
            hs[m], cs[m] = self._step_cell(m, x, lens_cpu, batch_sizes)
        return hs, cs

    def _step_cell(self, m, x, lens_cpu, batch_sizes):
        cell = self.cells[m]
        bs = batch_sizes
        bias = cell.bias_ih + cell.bias_hh
        if x.shape[1] == 1:  # constant input (alignment="mean")
            proj_const = F.linear(x[:, 0], cell.weight_ih, bias)
            projs = [proj_const[:n] for n in bs]
        else:
            data = pack_padded_sequence(x, lens_cpu, batch_first=True).data
            projs = torch.split(F.linear(data, cell.weight_ih, bias), bs)
        w_hh = cell.weight_hh.t()
        H = self.hidden[m]
        h = x.new_zeros(bs[0], H)
        c = x.new_zeros(bs[0], H)
        h_steps, c_steps = [], []
        for t, n in enumerate(bs):
            if t:
                h, c = h[:n], c[:n]
                gates = torch.addmm(projs[t], h, w_hh)
            else:  # zero initial state
                gates = projs[t]
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            h_steps.append(h)
            c_steps.append(c)
        return torch.cat(h_steps), torch.cat(c_steps)

    def _fused_hidden(self, m, x, lens_cpu):
        """Packed hidden states of cell ``m`` from torch's fused LSTM kernel.

        ``x`` holds the clips sorted by decreasing length; they run in
        buckets of ``BUCKET_SIZE``, each over its own longest length, so the
        padded steps cost (nearly) nothing.  Equal to :meth:`_step_cell`'s
        hidden states; the cell states are not returned by the kernel.
        """
        cell = self.cells[m]
        weights = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        steps = int(lens_cpu[0])
        outs = []
        for start in range(0, x.shape[0], BUCKET_SIZE):
            xb = x[start:start + BUCKET_SIZE, :int(lens_cpu[start])]
            h0 = x.new_zeros(1, xb.shape[0], self.hidden[m])
            out = torch.lstm(xb, (h0, h0), weights, True, 1, 0.0, self.training, False,
                             True)[0]
            outs.append(F.pad(out, (0, 0, 0, steps - out.shape[1])))
        return pack_padded_sequence(torch.cat(outs), lens_cpu, batch_first=True).data

    def _run_memory(self, z, batch_sizes):
        """Step the gated memory; returns the packed memory (S, memsize)."""
        g1, g2 = self.gamma1, self.gamma2
        M = self.memsize
        # [z, mem] @ W^T: the z part for every step at once, the memory part
        # per step.
        pre1 = F.linear(z, g1.fc1.weight[:, :-M], g1.fc1.bias)
        pre2 = F.linear(z, g2.fc1.weight[:, :-M], g2.fc1.bias)
        w1m = g1.fc1.weight[:, -M:].t()
        w2m = g2.fc1.weight[:, -M:].t()
        chat = torch.tanh(self.nn2(z))
        mask1 = _dropout_mask(pre1.shape, g1.dropout.p, z, self.training)
        mask2 = _dropout_mask(pre2.shape, g2.dropout.p, z, self.training)
        pieces = [torch.split(a, batch_sizes) if a is not None else None
                  for a in (pre1, pre2, chat, mask1, mask2)]
        p1, p2, ch, m1, m2 = pieces
        mem = z.new_zeros(batch_sizes[0], M)
        mems = []
        for t, n in enumerate(batch_sizes):
            mem = mem[:n]
            a1 = torch.relu(torch.addmm(p1[t], mem, w1m))
            a2 = torch.relu(torch.addmm(p2[t], mem, w2m))
            if m1 is not None:
                a1 = a1 * m1[t]
            if m2 is not None:
                a2 = a2 * m2[t]
            gam1 = torch.sigmoid(g1.fc2(a1))
            gam2 = torch.sigmoid(g2.fc2(a2))
            mem = gam1 * mem + gam2 * ch[t]
            mems.append(mem)
        return torch.cat(mems)

    def forward(self, step_lengths, **inputs):
        ref = inputs[self.modalities[0]]
        lengths = step_lengths.to(ref.device).long().clamp(min=1)
        lens_sorted, order = torch.sort(lengths, descending=True, stable=True)
        lens_cpu = lens_sorted.cpu()
        steps = int(lens_cpu[0])
        batch_sizes = (lens_cpu[None, :] > torch.arange(steps)[:, None]).sum(1).tolist()
        hs, cs = self._run_cells(inputs, order, lens_cpu, batch_sizes)
        # packed-row bookkeeping: row of (step t, clip b) = offsets[t] + b
        bs_t = torch.tensor(batch_sizes, device=ref.device)
        offsets = torch.cumsum(bs_t, 0) - bs_t
        z = self._fusion(hs, cs, offsets, batch_sizes)
        mem = self._run_memory(z, batch_sizes)
        last = offsets[lens_sorted - 1] + torch.arange(len(lens_sorted), device=ref.device)
        final = torch.cat([hs[m].index_select(0, last) for m in self.modalities]
                          + [mem.index_select(0, last)], dim=1)
        inv = torch.empty_like(order)
        inv[order] = torch.arange(len(order), device=order.device)
        return self.out(final).reshape(-1)[inv]

    @staticmethod
    def _shifted(packed, offsets, batch_sizes, k):
        """The packed rows ``k`` steps earlier (zeros before the start)."""
        S, H = packed.shape
        padded = torch.cat([packed, packed.new_zeros(1, H)])
        idx = []
        for t, n in enumerate(batch_sizes):
            ar = torch.arange(n, device=packed.device)
            if t >= k:
                idx.append(offsets[t - k] + ar)
            else:
                idx.append(torch.full((n,), S, device=packed.device, dtype=torch.long))
        return padded.index_select(0, torch.cat(idx))


class MFNModule(_MemoryFusionBase):
    """Memory Fusion Network: delta-memory attention over the LSTM cells of
    the last ``window`` steps, gated multi-view memory."""

    def __init__(self, dims, hidden_dims, memsize, window, nn1, nn2, gamma1, gamma2, out):
        super().__init__()
        total_h = sum(int(h) for m, h in zip(("text", "audio", "vision"), hidden_dims)
                      if m in dims)
        att_in = total_h * int(window)
        self.window = int(window)
        self._init_common(dims, hidden_dims, att_in, memsize, gamma1, gamma2, out)
        self.nn1 = _MLP(att_in, int(nn1[0]), att_in, float(nn1[1]))
        self.nn2 = _MLP(att_in, int(nn2[0]), self.memsize, float(nn2[1]))

    def _fusion(self, hs, cs, offsets, batch_sizes):
        c_now = torch.cat([cs[m] for m in self.modalities], dim=1)
        parts = [self._shifted(c_now, offsets, batch_sizes, k)
                 for k in range(self.window - 1, 0, -1)] + [c_now]
        c_star = torch.cat(parts, dim=1)
        attention = torch.softmax(self.nn1(c_star), dim=1)
        return attention * c_star


class DynamicFusionGraph(nn.Module):
    """The Dynamic Fusion Graph of Graph-MFN over ``k`` singleton inputs.

    One node per subset of at least two modalities, whose input is the
    efficacy-scaled outputs of its proper subsets' nodes, and the summary
    node tau over every node; each node net is Linear(in, 100) ->
    Linear(100, out), the efficacy net Linear(sum, 100) -> Linear(100, out)
    -> Linear(out, n_efficacies), all without activations, as the reference
    (MMSA ``src/MMSA/models/singleTask/Graph_MFN.py``).  As there, the
    second layer of every node net and of tau starts as a copy of one
    ``pattern`` Linear(100, out): they are equal at initialisation.
    """

    def __init__(self, in_dims, out_dim, freeze_nodes=False):
        super().__init__()
        k = len(in_dims)
        self.k = k
        self.in_dims = list(in_dims)
        self.powerset = [
            s for r in range(1, k + 1) for s in combinations(range(k), r)
        ]
        self.multi = [s for s in self.powerset if len(s) >= 2]
        size = {(i,): d for i, d in enumerate(in_dims)}
        self.nodes = nn.ModuleDict()
        pattern = nn.Linear(_DFG_HIDDEN, out_dim)  # copied, never registered itself
        n_eff = 0
        for key in self.multi:
            subsets = self._subsets(key)
            in_size = sum(size[s] for s in subsets)
            n_eff += len(subsets)
            size[key] = out_dim
            self.nodes[self._name(key)] = nn.Sequential(
                nn.Linear(in_size, _DFG_HIDDEN), copy.deepcopy(pattern))
        n_eff += len(self.powerset)
        t_in = sum(size[s] for s in self.powerset)
        self.t_network = nn.Sequential(nn.Linear(t_in, _DFG_HIDDEN), copy.deepcopy(pattern))
        self.efficacy = nn.Sequential(nn.Linear(sum(in_dims), _DFG_HIDDEN),
                                      nn.Linear(_DFG_HIDDEN, out_dim),
                                      nn.Linear(out_dim, n_eff))
        self.n_efficacies = n_eff
        self.size = size
        if freeze_nodes:
            for p in self.nodes.parameters():
                p.requires_grad_(False)

    @staticmethod
    def _name(key):
        return "_".join(str(i) for i in key)

    @staticmethod
    def _subsets(key):
        """Proper non-empty subsets of ``key``, in the reference's order."""
        return list(chain.from_iterable(
            combinations(key, r) for r in range(1, len(key))))

    def _scaled(self, outputs, keys, eff, start):
        """cat of the outputs of ``keys``, each times its efficacy column."""
        x = torch.cat([outputs[s] for s in keys], dim=1)
        cols = torch.cat([
            torch.full((self.size[s],), start + j, dtype=torch.long)
            for j, s in enumerate(keys)]).to(x.device)
        return x * eff.index_select(1, cols)

    def forward(self, singletons):
        outputs = {(i,): s for i, s in enumerate(singletons)}
        eff = self.efficacy(torch.cat(singletons, dim=1))
        start = 0
        for key in self.multi:
            subsets = self._subsets(key)
            outputs[key] = self.nodes[self._name(key)](
                self._scaled(outputs, subsets, eff, start))
            start += len(subsets)
        tau = self.t_network(self._scaled(outputs, self.powerset, eff, start))
        return tau, eff


class GraphMFNModule(_MemoryFusionBase):
    """Graph-MFN: MFN whose attention is replaced by a Dynamic Fusion Graph
    over per-modality singletons ReLU(Linear([h_{t-1}, h_t]))."""

    def __init__(self, dims, hidden_dims, memsize, inner_node_dim, nn_cfg, gamma1, gamma2,
                 out, freeze_node_nets=False):
        super().__init__()
        self._init_common(dims, hidden_dims, int(inner_node_dim), memsize, gamma1, gamma2,
                          out)
        self.transform = nn.ModuleDict(
            {m: nn.Linear(2 * self.hidden[m], self.hidden[m]) for m in self.modalities})
        self.graph = DynamicFusionGraph([self.hidden[m] for m in self.modalities],
                                        int(inner_node_dim), freeze_node_nets)
        self.nn2 = _MLP(int(inner_node_dim), int(nn_cfg[0]), self.memsize, float(nn_cfg[1]))

    def _run_cells(self, inputs, order, lens_cpu, batch_sizes):
        # The Dynamic Fusion Graph sees only hidden states, so the cells run
        # in torch's fused LSTM kernel (constant inputs keep the stepped loop,
        # which projects the constant once).
        hs = {}
        for m in self.modalities:
            x = inputs[m].index_select(0, order)
            if x.shape[1] == 1:
                hs[m] = self._step_cell(m, x, lens_cpu, batch_sizes)[0]
            else:
                hs[m] = self._fused_hidden(m, x, lens_cpu)
        return hs, None

    def _fusion(self, hs, cs, offsets, batch_sizes):
        singletons = []
        for m in self.modalities:
            prev = self._shifted(hs[m], offsets, batch_sizes, 1)
            singletons.append(torch.relu(self.transform[m](torch.cat([prev, hs[m]], dim=1))))
        tau, _ = self.graph(singletons)
        return tau
