"""Sizes of the ``--quick`` smoke runs, in a module that imports nothing, so
that the command line's help can name them without importing the runner."""

PRECISIONS = ("float32", "bfloat16")
"""The deep estimators' ``precision`` values (``--precision``); the first is
the default and the reference's arithmetic."""

QUICK_MAX_EPOCHS = 1
"""Epoch cap of ``--quick`` runs (estimators with a ``max_epochs`` parameter)."""
QUICK_MAX_TRAIN = 400
"""``--quick`` runs train on a seeded subset of at most this many labelled
clips (and as many unlabelled ones).  A smoke run: its numbers say nothing
about the models."""
QUICK_MAX_EVAL = 400
"""... and select and score on seeded subsets of at most this many validation
and test clips (CH-SIMS v2's 647 + 1,034 evaluation clips cost a long-sequence
model more than its 400 training clips)."""
