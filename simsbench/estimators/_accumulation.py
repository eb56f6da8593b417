"""Corrections of the gradient-accumulation trainers (MulT, MISA, Self-MM).

The MMSA trainers that accumulate gradients over ``update_epochs`` batches
(``MMSA src/MMSA/trains/singleTask/MULT.py``, ``.../singleTask/MISA.py``,
``.../multiTask/SELF_MM.py``) share two quirks, each a named correction
(:class:`~simsbench.estimators._fidelity.Correction`) of the estimators that
expose its parameter:

* gradients are clipped by value after **every backward**, i.e. the running
  sum of the group's gradients is clipped again after each batch is added;
* the end-of-epoch flush never fires (its counter was reset after the last
  full group), so the last ``n_batches mod update_epochs`` batches'
  gradients are discarded.

The estimators declare the parameters' values with
:data:`ACCUMULATION_CONSTRAINTS` and pass them to ``SimsNet`` through
``_net_kwargs``.  This module imports neither torch nor the estimators.
"""

from __future__ import annotations

from simsbench.estimators._constraints import options
from simsbench.estimators._fidelity import Correction

__all__ = ["ACCUMULATION_CONSTRAINTS", "ACCUMULATION_TAIL", "CLIP_PER"]

CLIP_PER = Correction(
    "clip_per",
    "The reference clips the accumulated gradients by value after every backward pass; "
    "corrected: once per optimizer step, on the summed gradients.",
    {"clip_per": ("backward", "step")},
)

ACCUMULATION_TAIL = Correction(
    "accumulation_tail",
    "The reference discards the gradients of an epoch's last (n_batches mod update) "
    "batches; corrected: they make one last optimizer step.",
    {"accumulation_tail": ("drop", "apply")},
)

ACCUMULATION_CONSTRAINTS = {
    "clip_per": [options(*CLIP_PER.params["clip_per"])],
    "accumulation_tail": [options(*ACCUMULATION_TAIL.params["accumulation_tail"])],
}
"""The two corrections' parameters (an estimator declares those it has)."""
